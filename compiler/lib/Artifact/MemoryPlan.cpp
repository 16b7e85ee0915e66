// Arena offset assignment from buffer lifetimes (interval-graph colouring by best fit).
// Quadratic in the number of buffers, which is a few thousand for the largest models.
#include "shardc/Artifact/MemoryPlan.h"

#include <algorithm>
#include <numeric>

namespace shardc {

MemoryPlan planMemory(const std::vector<BufferLifetime> &buffers, int64_t alignment) {
  MemoryPlan plan;
  plan.offsets.assign(buffers.size(), 0);
  auto align = [&](int64_t v) { return (v + alignment - 1) / alignment * alignment; };
  std::vector<size_t> order(buffers.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (buffers[a].bytes != buffers[b].bytes)
      return buffers[a].bytes > buffers[b].bytes;
    return buffers[a].firstStep < buffers[b].firstStep;
  });
  std::vector<size_t> placed;
  for (size_t i : order) {
    const BufferLifetime &b = buffers[i];
    plan.naiveBytes += align(b.bytes);
    // Collect the occupied ranges of live-overlapping placed buffers, sorted by offset.
    std::vector<std::pair<int64_t, int64_t>> busy;
    for (size_t j : placed) {
      const BufferLifetime &o = buffers[j];
      if (o.firstStep <= b.lastStep && b.firstStep <= o.lastStep)
        busy.push_back({plan.offsets[j], plan.offsets[j] + align(o.bytes)});
    }
    std::sort(busy.begin(), busy.end());
    int64_t size = align(std::max<int64_t>(b.bytes, 1)), best = -1, bestGap = INT64_MAX, cursor = 0;
    for (auto [lo, hi] : busy) {
      if (lo - cursor >= size && lo - cursor < bestGap) {
        best = cursor;
        bestGap = lo - cursor;
      }
      cursor = std::max(cursor, hi);
    }
    if (best < 0)
      best = cursor;
    plan.offsets[i] = best;
    plan.arenaBytes = std::max(plan.arenaBytes, best + size);
    placed.push_back(i);
  }
  return plan;
}

} // namespace shardc
