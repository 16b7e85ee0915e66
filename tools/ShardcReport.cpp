// `shardc report m.shardc [--json]`: what a compiled artifact costs per rank — parameter
// bytes, peak arena, and every collective with its phase, layer, axes, dtype and bytes — read
// through the runtime's own artifact loader so the report describes exactly what runs.
#include "ShardcReport.h"
#include "ReportMemory.h"
#include "ReportMoe.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/Artifact.h"

#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <map>
#include <set>

namespace shardc {

namespace {

int64_t layerOf(llvm::StringRef loc) { return layerOfStepLoc(loc); }
const char *phaseOf(llvm::StringRef loc) { return isBackwardLoc(loc) ? "backward" : "forward"; }

struct Collective {
  std::string kind, axes, dtype, loc;
  int64_t layer = -1, groupSize = 1;
  uint64_t bytes = 0;    // payload: the larger of input and output on one rank
  uint64_t wireBytes = 0; // bytes one rank sends with a ring algorithm
};


llvm::json::Object memoryJson(const MemoryBreakdown &m) {
  llvm::json::Object o{{"weight_bytes", (int64_t)m.weightBytes},
                       {"persistent_bytes", (int64_t)m.persistentBytes},
                       {"arena_bytes", (int64_t)m.arenaBytes},
                       {"live_peak_bytes", (int64_t)m.livePeakBytes},
                       {"live_peak_step", m.livePeakStep}};
  if (m.training)
    o["fsdp_formula"] = llvm::json::Object{{"trainable_parameters", m.trainableParams},
                                           {"masters", (int64_t)m.masterBytes},
                                           {"gradients", (int64_t)m.gradientBytes},
                                           {"reduce_dtype", m.reduceDtype},
                                           {"optimizer_state", (int64_t)m.optimizerStateBytes},
                                           {"largest_gathered_group", (int64_t)m.largestGatheredGroupBytes},
                                           {"largest_gathered_group_layer", m.largestGatheredGroupLayer},
                                           {"saved_gathered_parameters", (int64_t)m.savedGatheredBytes},
                                           {"saved_activations", (int64_t)m.savedActivationBytes},
                                           {"total", (int64_t)m.formulaBytes},
                                           {"planned", (int64_t)(m.persistentBytes + m.arenaBytes)}};
  if (m.offload)
    o["host"] = llvm::json::Object{{"persistent_bytes", (int64_t)m.hostPersistentBytes},
                                   {"arena_bytes", (int64_t)m.hostArenaBytes},
                                   {"offloaded_formula_terms", (int64_t)m.offloadedBytes}};
  return o;
}

void printMemory(llvm::raw_ostream &os, const MemoryBreakdown &m) {
  auto mb = [](uint64_t b) { return llvm::formatv("{0:f2} MB", b / 1e6).str(); };
  os << "memory per rank: persistent " << mb(m.persistentBytes) << " + arena " << mb(m.arenaBytes) << " = "
     << mb(m.persistentBytes + m.arenaBytes) << " (arena live peak " << mb(m.livePeakBytes) << " at step "
     << m.livePeakStep << (m.livePeakLoc.empty() ? "" : ", " + m.livePeakLoc) << "); weights read at load "
     << mb(m.weightBytes) << "\n";
  if (!m.largestAtPeak.empty()) {
    os << "  largest at the peak:";
    for (auto [i, l] : llvm::enumerate(m.largestAtPeak))
      os << (i ? "," : "") << " " << mb(l.bytes) << " " << (l.name.empty() ? "(unnamed)" : l.name) << " from "
         << (l.writer.empty() ? "an input" : l.writer);
    os << "\n";
  }
  if (m.offload)
    os << "host memory per rank (cpu offload): persistent " << mb(m.hostPersistentBytes) << " + arena "
       << mb(m.hostArenaBytes) << " = " << mb(m.hostPersistentBytes + m.hostArenaBytes)
       << " (masters, gradient shards, optimizer state; the figures above are the device's)\n";
  if (!m.training)
    return;
  if (m.offload) {
    os << "fsdp formula (device, cpu offload): largest gathered group " << mb(m.largestGatheredGroupBytes)
       << (m.largestGatheredGroupLayer >= 0 ? " (layer " + std::to_string(m.largestGatheredGroupLayer) + ")" : "")
       << " + saved gathered parameters " << mb(m.savedGatheredBytes) << " + saved activations "
       << mb(m.savedActivationBytes) << " = " << mb(m.formulaBytes) << "; planned " << mb(m.persistentBytes + m.arenaBytes)
       << "\n  offloaded to the host: masters " << mb(m.masterBytes) << " + gradients " << mb(m.gradientBytes) << " ("
       << m.reduceDtype << ") + optimizer state " << mb(m.optimizerStateBytes) << " = " << mb(m.offloadedBytes) << "\n";
    return;
  }
  os << "fsdp formula: masters " << mb(m.masterBytes) << " + gradients " << mb(m.gradientBytes) << " ("
     << m.reduceDtype << ") + optimizer state " << mb(m.optimizerStateBytes) << " + largest gathered group "
     << mb(m.largestGatheredGroupBytes)
     << (m.largestGatheredGroupLayer >= 0 ? " (layer " + std::to_string(m.largestGatheredGroupLayer) + ")" : "")
     << " + saved gathered parameters " << mb(m.savedGatheredBytes) << " + saved activations "
     << mb(m.savedActivationBytes) << " = " << mb(m.formulaBytes) << "; planned "
     << mb(m.persistentBytes + m.arenaBytes)
     << llvm::formatv(" ({0:f2}x the formula)", m.formulaBytes ? double(m.persistentBytes + m.arenaBytes) / m.formulaBytes : 0.0)
     << "\n";
}

} // namespace

int runReport(llvm::StringRef path, bool json) {
  rt::Artifact art;
  if (std::string err = rt::loadArtifact(path.str(), art); !err.empty()) {
    llvm::errs() << "shardc: error: " << err << "\n";
    return 1;
  }
  uint64_t paramBytes = 0, globalParamBytes = 0;
  for (const rt::BufferDesc &b : art.buffers)
    if (b.storage == rt::Storage::Weight) {
      paramBytes += b.bytes;
      globalParamBytes += b.globalBytes ? b.globalBytes : b.bytes;
    }
  std::vector<Collective> collectives;
  for (const rt::Step &s : art.steps) {
    const rt::CollectiveKernel *kernel = rt::lookupCollectiveKernel(s.op);
    if (!kernel)
      continue;
    Collective c;
    c.kind = s.op;
    c.loc = s.loc;
    c.layer = layerOf(s.loc);
    std::vector<std::string> axesList;
    auto it = s.attrs.all().find("axes");
    if (it != s.attrs.all().end())
      if (auto *names = std::get_if<std::vector<std::string>>(&it->second))
        axesList = *names;
    std::string axes;
    int64_t group = 1;
    for (const std::string &a : axesList) {
      axes += (axes.empty() ? "" : ",") + a;
      group *= art.deviceMesh.axisSize(a);
    }
    c.axes = axes;
    c.groupSize = group;
    const rt::BufferDesc &in = art.buffers[s.in[0]], &out = art.buffers[s.out[0]];
    c.dtype = rt::dtypeName(in.dtype);
    c.bytes = std::max(in.bytes, out.bytes);
    c.wireBytes = kernel->wireBytes(in.bytes, out.bytes, group);
    collectives.push_back(c);
  }
  // Kernel launches per decoder layer: every step that is not a collective (copies and
  // local slices included, as they are launches on a GPU), and of them the generated ones.
  std::map<int64_t, std::pair<int64_t, int64_t>> kernelsPerLayer; // layer -> (kernels, fused)
  std::set<std::string> distinctFused;
  for (const rt::Step &s : art.steps) {
    if (rt::communicatesBetweenRanks(s.op))
      continue;
    auto &entry = kernelsPerLayer[layerOf(s.loc)];
    entry.first++;
    if (s.op == "fused") {
      entry.second++;
      distinctFused.insert(s.attrs.getString("kernel"));
    }
  }
  int64_t layers = 0, outsideKernels = 0, minKernels = INT64_MAX, maxKernels = 0, minFused = INT64_MAX;
  for (auto &[layer, counts] : kernelsPerLayer) {
    if (layer < 0) {
      outsideKernels = counts.first;
      continue;
    }
    ++layers;
    minKernels = std::min(minKernels, counts.first);
    maxKernels = std::max(maxKernels, counts.first);
    minFused = std::min(minFused, counts.second);
  }

  // Arithmetic per step per rank (each op's cost, recorded by the compiler): GEMMs and attention.
  uint64_t gemmFlops = 0, attentionFlops = 0;
  for (const rt::Step &s : art.steps)
    (s.op == "attention" ? attentionFlops : gemmFlops) += s.flops;

  uint64_t totalBytes = 0, totalWire = 0;
  std::map<std::string, int64_t> counts;
  for (const Collective &c : collectives) {
    totalBytes += c.bytes;
    totalWire += c.wireBytes;
    counts[c.kind]++;
  }
  const MemoryBreakdown mem = analyzeMemory(art);
  const std::optional<MoeSummary> moe = analyzeMoe(art);
  if (json) {
    llvm::json::Array list;
    for (const Collective &c : collectives)
      list.push_back(llvm::json::Object{{"phase", phaseOf(c.loc)}, {"layer", c.layer}, {"kind", c.kind},
                                        {"axes", c.axes}, {"group_size", c.groupSize}, {"dtype", c.dtype},
                                        {"bytes", (int64_t)c.bytes}, {"ring_wire_bytes", (int64_t)c.wireBytes},
                                        {"loc", c.loc}});
    const rt::DeviceMesh &m = art.deviceMesh;
    llvm::json::Object mesh{{"dp_replicate", m.axisSize("dp_replicate")}, {"dp_shard", m.axisSize("dp_shard")},
                            {"cp", m.axisSize("cp")}, {"tp", m.axisSize("tp")}};
    llvm::json::Object root{{"artifact", path.str()},
                            {"world_size", art.worldSize},
                            {"mesh", std::move(mesh)},
                            {"per_rank", llvm::json::Object{{"parameter_bytes", (int64_t)paramBytes},
                                                            {"arena_bytes", (int64_t)art.arenaBytes},
                                                            {"steps", (int64_t)art.steps.size()}}},
                            {"global_parameter_bytes", (int64_t)globalParamBytes},
                            {"memory", memoryJson(mem)},
                            {"collectives", std::move(list)},
                            {"kernels", [&] {
                               llvm::json::Array perLayer, fusedPerLayer;
                               for (auto &[layer, counts] : kernelsPerLayer)
                                 if (layer >= 0) {
                                   perLayer.push_back(counts.first);
                                   fusedPerLayer.push_back(counts.second);
                                 }
                               return llvm::json::Object{{"per_layer", std::move(perLayer)},
                                                         {"fused_per_layer", std::move(fusedPerLayer)},
                                                         {"outside_layers", outsideKernels},
                                                         {"distinct_fused", (int64_t)distinctFused.size()}};
                             }()},
                            {"flops", llvm::json::Object{{"gemm", (int64_t)gemmFlops},
                                                         {"attention", (int64_t)attentionFlops},
                                                         {"total", (int64_t)(gemmFlops + attentionFlops)}}},
                            {"moe", moe ? llvm::json::Value(moeJson(*moe)) : llvm::json::Value(nullptr)},
                            {"collective_bytes", (int64_t)totalBytes},
                            {"ring_wire_bytes", (int64_t)totalWire}};
    llvm::outs() << llvm::formatv("{0:2}", llvm::json::Value(std::move(root))) << "\n";
    return 0;
  }
  llvm::outs() << "artifact: " << path << " (" << art.source << ")\n"
               << "mesh: dp_replicate=" << art.deviceMesh.axisSize("dp_replicate")
               << " dp_shard=" << art.deviceMesh.axisSize("dp_shard") << " cp=" << art.deviceMesh.axisSize("cp")
               << " tp=" << art.deviceMesh.axisSize("tp")
               << (art.deviceMesh.expertParallel() > 1 ? " ep=" + std::to_string(art.deviceMesh.expertParallel()) : "")
               << ", world size " << art.worldSize << "\n"
               << "per rank: parameters " << paramBytes << " bytes (global " << globalParamBytes << "), arena "
               << art.arenaBytes << " bytes, " << art.steps.size() << " steps\n";
  printMemory(llvm::outs(), mem);
  if (moe)
    printMoe(llvm::outs(), *moe);
  llvm::outs() << "collectives: " << collectives.size();
  for (auto &[kind, n] : counts)
    llvm::outs() << ", " << n << " " << kind;
  llvm::outs() << "; payload " << totalBytes << " bytes, ring wire " << totalWire << " bytes per rank\n";
  if (layers > 0)
    llvm::outs() << "kernels: " << (minKernels == maxKernels ? std::to_string(minKernels)
                                                             : std::to_string(minKernels) + "-" + std::to_string(maxKernels))
                 << " per layer over " << layers << " layers (at least " << minFused << " of them generated), "
                 << outsideKernels << " outside the layers; " << distinctFused.size() << " distinct generated kernels\n";
  else
    llvm::outs() << "kernels: " << outsideKernels << " (no decoder layers found); " << distinctFused.size()
                 << " distinct generated kernels\n";
  llvm::outs() << llvm::formatv("compute: {0:f3} GFLOP per step per rank ({1:f3} in GEMMs, {2:f3} in attention)\n",
                                (gemmFlops + attentionFlops) / 1e9, gemmFlops / 1e9, attentionFlops / 1e9);
  for (const Collective &c : collectives)
    llvm::outs() << llvm::formatv("  {7,-8} layer {0,3} {1,-15} axes {2,-20} {3,-5} {4,10} bytes  wire {5,10}  {6}\n",
                                  c.layer < 0 ? std::string("-") : std::to_string(c.layer), c.kind, c.axes, c.dtype,
                                  c.bytes, c.wireBytes, c.loc, phaseOf(c.loc));
  return 0;
}

} // namespace shardc
