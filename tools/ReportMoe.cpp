// `shardc report`'s MoE lines: read from the artifact's moe steps (the rows each rank routes,
// the tp mode), its moe_dispatch steps and its expert weight buffers (docs/moe.md, "Report and run figures").
#include "ReportMoe.h"
#include "ReportMemory.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

namespace shardc {

std::optional<MoeSummary> analyzeMoe(const rt::Artifact &art) {
  MoeSummary m;
  m.ep = art.deviceMesh.axisSize("ep");
  m.epShard = art.deviceMesh.axisSize("ep_shard");
  m.tp = art.deviceMesh.axisSize("tp");
  bool any = false;
  int64_t experts = 0, hidden = 0;
  for (const rt::Step &s : art.steps) {
    // The training backward's dispatches (expert parallelism's backward) repeat the forward's layers.
    if (isBackwardLoc(s.loc))
      continue;
    // The expert weights each rank multiplies by: whole (moe_experts) or its ep share.
    if ((s.op == "moe_experts" && s.in.size() == 5) || (s.op == "moe_grouped_gemm" && s.in.size() == 4)) {
      any = true;
      const rt::BufferDesc &down = art.buffers[size_t(s.in.back())];
      m.expertComputeBytes += art.buffers[size_t(s.in[s.in.size() - 2])].bytes + down.bytes;
      if (down.shape.size() == 3)
        hidden = down.shape[1];
      if (s.op == "moe_experts" && down.shape.size() == 3)
        experts = down.shape[0];
    }
    // The (token, choice) rows a rank routes: the indices [T, k] of moe_experts or moe_permute.
    if ((s.op == "moe_experts" || s.op == "moe_permute") && s.in.size() >= 2) {
      const rt::BufferDesc &ids = art.buffers[size_t(s.in[1])];
      if (ids.shape.size() == 2) {
        m.tokensRouted = ids.shape[0];
        m.rowsRouted = ids.shape[0] * ids.shape[1];
      }
    }
    if (s.op != "moe_dispatch" || s.in.size() != 2 || s.out.size() != 2)
      continue;
    const rt::BufferDesc &rows = art.buffers[size_t(s.in[0])], &recv = art.buffers[size_t(s.out[0])],
                         &counts = art.buffers[size_t(s.in[1])];
    ++m.layers;
    m.sendBytes += rows.bytes;
    m.receiveBufferBytes += recv.bytes;
    // Balanced routing: each expert gets 1/ep of a rank's rows, so (ep-1)/ep leave it, and the
    // combine brings as many back.
    m.balancedWireBytes += 2 * uint64_t(double(m.ep - 1) / double(m.ep) * double(rows.bytes));
    m.rowsPerLayer = rows.shape.empty() ? 0 : rows.shape[0];
    m.experts = counts.shape.empty() ? 0 : counts.shape[0];
    m.localExperts = m.experts / std::max<int64_t>(1, m.ep);
    experts = m.experts;
  }
  if (!any)
    return std::nullopt;
  // The stored expert weights: split over ep, or stacks [E, ., .] of the experts with the
  // hidden size as one of the other dims (without ep: gate_up, its expert_tp halves, down).
  auto has = [](const rt::BufferDesc &b, const char *axis) {
    return std::any_of(b.shard.begin(), b.shard.end(), [&](const rt::ShardDim &d) {
      return std::find(d.axes.begin(), d.axes.end(), axis) != d.axes.end();
    });
  };
  for (const rt::BufferDesc &b : art.buffers) {
    if (b.storage != rt::Storage::Weight)
      continue;
    const std::vector<int64_t> &g = b.globalShape.empty() ? b.shape : b.globalShape;
    bool stack = g.size() == 3 && experts > 0 && g[0] == experts && (g[1] == hidden || g[2] == hidden);
    if (has(b, "ep") || stack) {
      m.expertParamBytes += b.bytes;
      m.expertParamGlobal += b.globalBytes ? b.globalBytes : b.bytes;
      m.expertTp |= has(b, "tp");
    }
  }
  return m;
}

void printMoe(llvm::raw_ostream &os, const MoeSummary &m) {
  os << llvm::formatv("moe: expert weights computed with {0} bytes per rank per step (all MoE layers, after the "
                      "FSDP gathers)\n",
                      m.expertComputeBytes);
  const char *tpMode = m.tp <= 1 ? "" : m.expertTp ? ", expert TP (each expert's MLP split over tp, every token on every tp rank)"
                                                   : ", 1/tp token split (each tp rank routes 1/tp of its tokens)";
  os << llvm::formatv("moe: tp={0}{1}; per rank per layer {2} tokens, {3} (token, choice) rows routed; expert parameters "
                      "{4} bytes per rank (of {5})\n",
                      m.tp, tpMode, m.tokensRouted, m.rowsRouted, m.expertParamBytes, m.expertParamGlobal);
  if (m.layers == 0)
    return;
  os << llvm::formatv("moe: ep={0} ep_shard={1}, {2} expert-parallel layers, {3} of {4} experts per rank; expert "
                      "parameters {5} bytes per rank (of {6})\n",
                      m.ep, m.epShard, m.layers, m.localExperts, m.experts, m.expertParamBytes, m.expertParamGlobal);
  os << llvm::formatv("moe: per step per rank: {0} rows per layer dispatched ({1} bytes over all layers), "
                      "all-to-all wire {2} bytes when balanced (dispatch + combine), receive buffers {3} bytes "
                      "(ep x rows, the worst case); balanced tokens per expert per rank per layer {4:f1}\n",
                      m.rowsPerLayer, m.sendBytes, m.balancedWireBytes, m.receiveBufferBytes,
                      m.experts ? double(m.rowsPerLayer) / double(m.experts) : 0.0);
}

llvm::json::Object moeJson(const MoeSummary &m) {
  return llvm::json::Object{{"ep", m.ep},
                            {"ep_shard", m.epShard},
                            {"layers", m.layers},
                            {"experts", m.experts},
                            {"local_experts", m.localExperts},
                            {"expert_parameter_bytes", (int64_t)m.expertParamBytes},
                            {"expert_parameter_global_bytes", (int64_t)m.expertParamGlobal},
                            {"expert_compute_bytes", (int64_t)m.expertComputeBytes},
                            {"rows_per_layer", m.rowsPerLayer},
                            {"dispatch_bytes", (int64_t)m.sendBytes},
                            {"balanced_wire_bytes", (int64_t)m.balancedWireBytes},
                            {"receive_buffer_bytes", (int64_t)m.receiveBufferBytes},
                            {"tp", m.tp},
                            {"tp_mode", m.tp <= 1 ? "none" : m.expertTp ? "expert_tp" : "token_split"},
                            {"tokens_routed", m.tokensRouted},
                            {"rows_routed", m.rowsRouted}};
}

} // namespace shardc
