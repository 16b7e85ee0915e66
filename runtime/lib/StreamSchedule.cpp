// Two-stream schedules from byte-range conflicts (see StreamSchedule.h).
#include "shardc/runtime/StreamSchedule.h"

#include <algorithm>

namespace shardc::rt {
namespace {

bool overlaps(const std::vector<ByteRange> &a, const std::vector<ByteRange> &b) {
  for (const ByteRange &x : a)
    for (const ByteRange &y : b)
      if (x.region == y.region && x.begin < y.end && y.begin < x.end && x.begin < x.end && y.begin < y.end)
        return true;
  return false;
}

// Whether `later` must come after `earlier` when both touch memory: it reads what `earlier`
// writes, or writes what `earlier` reads or writes.
bool conflicts(const StepAccess &earlier, const StepAccess &later) {
  return overlaps(earlier.writes, later.reads) || overlaps(earlier.reads, later.writes) ||
         overlaps(earlier.writes, later.writes);
}

} // namespace

StreamSchedule planStreams(const std::vector<StepAccess> &steps) {
  StreamSchedule s;
  const size_t n = steps.size();
  s.stream.resize(n);
  s.waitOn.assign(n, StreamSchedule::kNone);
  // covered[x]: the latest step of the other stream that stream x has already waited for
  // (directly or through an earlier wait), +1; 0 when none.
  size_t covered[2] = {0, 0};
  std::vector<size_t> byStream[2];
  for (size_t i = 0; i < n; ++i) {
    const int x = steps[i].stream == 1 ? 1 : 0, y = 1 - x;
    s.stream[i] = x;
    // The latest conflicting step of the other stream not yet covered.
    for (auto it = byStream[y].rbegin(); it != byStream[y].rend(); ++it) {
      const size_t t = *it;
      if (t + 1 <= covered[x])
        break;
      if (conflicts(steps[t], steps[i])) {
        s.waitOn[i] = t;
        covered[x] = t + 1;
        ++s.waits;
        break;
      }
    }
    byStream[x].push_back(i);
  }
  // Overlap windows: the compute steps a communication step may run beside. Before it: those
  // after the compute step its stream last waited for (the host enqueues ahead of the
  // device, so they may still be running when it starts). After it: those before the first
  // compute step that waits for it or a later communication step.
  size_t coveredCompute = 0; // compute steps 0 .. coveredCompute-1 are behind the comm stream
  for (size_t i = 0; i < n; ++i) {
    if (s.stream[i] != 1)
      continue;
    ++s.communicationSteps;
    if (s.waitOn[i] != StreamSchedule::kNone)
      coveredCompute = std::max(coveredCompute, s.waitOn[i] + 1);
    size_t window = 0;
    for (size_t j = coveredCompute; j < i; ++j)
      window += s.stream[j] == 0;
    for (size_t j = i + 1; j < n; ++j) {
      if (s.stream[j] != 0)
        continue;
      if (s.waitOn[j] != StreamSchedule::kNone && s.waitOn[j] >= i)
        break;
      ++window;
    }
    s.overlap.push_back(window);
  }
  return s;
}

std::string StreamSchedule::describe() const {
  std::string d = std::to_string(communicationSteps) + " of " + std::to_string(stream.size()) +
                  " steps on the communication stream, " + std::to_string(waits) + " waits between the streams";
  if (!overlap.empty()) {
    std::vector<size_t> sorted(overlap);
    std::sort(sorted.begin(), sorted.end());
    d += "; overlap (compute steps) min " + std::to_string(sorted.front()) + ", median " +
         std::to_string(sorted[sorted.size() / 2]) + ", max " + std::to_string(sorted.back());
  }
  return d;
}

} // namespace shardc::rt
