// The memory part of `shardc report`: what one rank holds, read from the artifact's buffers and
// step list, beside FSDP's formula for a training step (docs/training.md#memory-per-rank).
#include "ReportMemory.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/runtime/Tensor.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringRef.h"

#include <algorithm>
#include <map>

namespace shardc {

namespace {

bool hasAxis(const rt::Step &s, llvm::StringRef axis) {
  auto it = s.attrs.all().find("axes");
  if (it == s.attrs.all().end())
    return false;
  if (auto *names = std::get_if<std::vector<std::string>>(&it->second))
    return llvm::is_contained(*names, axis.str());
  return false;
}

} // namespace

bool isBackwardLoc(llvm::StringRef loc) { return loc.ends_with(" (backward)"); }

int64_t layerOfStepLoc(llvm::StringRef loc) {
  size_t at = loc.find(" @ ");
  return at == llvm::StringRef::npos ? -1 : layerIndexOf(loc.substr(at + 3).split(' ').first);
}

MemoryBreakdown analyzeMemory(const rt::Artifact &art) {
  MemoryBreakdown m;
  m.arenaBytes = art.arenaBytes;
  m.persistentBytes = art.persistentBytes;
  m.hostPersistentBytes = art.hostPersistentBytes;
  m.hostArenaBytes = art.hostArenaBytes;
  uint64_t masterElements = 0;
  for (const rt::BufferDesc &b : art.buffers) {
    if (b.storage == rt::Storage::Weight)
      m.weightBytes += b.bytes;
    if (b.storage != rt::Storage::State)
      continue;
    m.offload |= b.host;
    llvm::StringRef name(b.name);
    if (name.starts_with("adamw.")) {
      m.optimizerStateBytes += b.bytes;
    } else if (name.starts_with("optimizer.")) {
      m.optimizerStateBytes += b.bytes; // the step count
    } else {
      m.masterBytes += b.bytes;
      masterElements += b.bytes / rt::dtypeSize(b.dtype);
      ++m.trainableParams;
    }
  }
  m.training = m.trainableParams > 0;

  // Each arena buffer's live range over the step list: from the step that writes it first (0
  // for inputs) to the step that reads it last (the end for outputs).
  const int64_t n = static_cast<int64_t>(art.steps.size());
  std::vector<int64_t> first(art.buffers.size(), -1), last(art.buffers.size(), -1);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t id : art.steps[i].out)
      if (first[id] < 0)
        first[id] = i;
    for (int64_t id : art.steps[i].in)
      last[id] = i;
  }
  for (const rt::IoBinding &io : art.inputs)
    first[io.buffer] = 0;
  for (const rt::IoBinding &io : art.outputs)
    last[io.buffer] = n;
  // The device arena (CPU offload's host arena is reported apart).
  auto isArena = [&](int64_t id) { return art.buffers[id].storage == rt::Storage::Arena && !art.buffers[id].host; };

  // Live bytes per step (a difference array), and its peak: the least arena any packing needs.
  std::vector<int64_t> delta(n + 2, 0);
  for (size_t id = 0; id < art.buffers.size(); ++id) {
    if (!isArena(id) || first[id] < 0)
      continue;
    int64_t end = std::max(last[id], first[id]);
    delta[first[id]] += art.buffers[id].bytes;
    delta[end + 1] -= art.buffers[id].bytes;
  }
  int64_t live = 0;
  for (int64_t i = 0; i <= n; ++i) {
    live += delta[i];
    if (static_cast<uint64_t>(live) > m.livePeakBytes) {
      m.livePeakBytes = live;
      m.livePeakStep = i;
    }
  }
  if (m.livePeakStep < n)
    m.livePeakLoc = art.steps[m.livePeakStep].loc;
  for (size_t id = 0; id < art.buffers.size(); ++id)
    if (isArena(id) && first[id] >= 0 && first[id] <= m.livePeakStep && std::max(last[id], first[id]) >= m.livePeakStep)
      m.largestAtPeak.push_back({art.buffers[id].name, first[id] < n ? art.steps[first[id]].loc : "", art.buffers[id].bytes});
  llvm::sort(m.largestAtPeak, [](const auto &a, const auto &b) { return a.bytes > b.bytes; });
  if (m.largestAtPeak.size() > 5)
    m.largestAtPeak.resize(5);

  if (!m.training)
    return m;

  // FSDP's gathered parameters: the forward's all-gathers over dp_shard, summed per layer.
  std::map<int64_t, uint64_t> gatheredPerLayer;
  std::vector<bool> gathered(art.buffers.size(), false);
  int64_t boundary = n; // the first backward step
  for (int64_t i = 0; i < n; ++i) {
    const rt::Step &s = art.steps[i];
    if (isBackwardLoc(s.loc)) {
      boundary = std::min(boundary, i);
      if (s.op == "reduce_scatter" && hasAxis(s, "dp_shard") && !m.reduceDtype.size())
        m.reduceDtype = rt::dtypeName(art.buffers[s.in[0]].dtype);
      continue;
    }
    if (s.op == "all_gather" && hasAxis(s, "dp_shard")) {
      gatheredPerLayer[layerOfStepLoc(s.loc)] += art.buffers[s.out[0]].bytes;
      gathered[s.out[0]] = true;
    }
  }
  for (auto &[layer, bytes] : gatheredPerLayer)
    if (bytes > m.largestGatheredGroupBytes) {
      m.largestGatheredGroupBytes = bytes;
      m.largestGatheredGroupLayer = layer;
    }
  // What the forward leaves for the backward: arena values written before the first backward
  // step and read at or after it.
  for (size_t id = 0; id < art.buffers.size(); ++id) {
    if (!isArena(id) || first[id] < 0 || first[id] >= boundary || last[id] < boundary || last[id] == n)
      continue;
    (gathered[id] ? m.savedGatheredBytes : m.savedActivationBytes) += art.buffers[id].bytes;
  }
  if (m.reduceDtype.empty())
    m.reduceDtype = "f32";
  m.gradientBytes = masterElements * (m.reduceDtype == "f32" ? 4 : 2);
  m.formulaBytes = m.masterBytes + m.gradientBytes + m.optimizerStateBytes + m.largestGatheredGroupBytes +
                   m.savedGatheredBytes + m.savedActivationBytes;
  if (m.offload) { // FSDP2's CPUOffloadPolicy: the masters, gradients and optimizer state are the host's
    m.offloadedBytes = m.masterBytes + m.gradientBytes + m.optimizerStateBytes;
    m.formulaBytes -= m.offloadedBytes;
  }
  return m;
}

} // namespace shardc
