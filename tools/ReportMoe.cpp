// `shardc report`'s MoE lines: read from the artifact's moe_dispatch steps and its weight
// buffers split over the ep sub-axis (docs/moe.md, "Report and run figures").
#include "ReportMoe.h"

#include "llvm/Support/FormatVariadic.h"

#include <algorithm>

namespace shardc {

std::optional<MoeSummary> analyzeMoe(const rt::Artifact &art) {
  MoeSummary m;
  m.ep = art.deviceMesh.axisSize("ep");
  m.epShard = art.deviceMesh.axisSize("ep_shard");
  bool any = false;
  for (const rt::Step &s : art.steps) {
    // The expert weights each rank multiplies by: whole (moe_experts) or its ep share.
    if ((s.op == "moe_experts" && s.in.size() == 5) || (s.op == "moe_grouped_gemm" && s.in.size() == 4)) {
      any = true;
      m.expertComputeBytes += art.buffers[size_t(s.in[s.in.size() - 2])].bytes + art.buffers[size_t(s.in.back())].bytes;
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
  }
  if (!any)
    return std::nullopt;
  for (const rt::BufferDesc &b : art.buffers) {
    if (b.storage != rt::Storage::Weight)
      continue;
    bool expert = std::any_of(b.shard.begin(), b.shard.end(), [](const rt::ShardDim &d) {
      return std::find(d.axes.begin(), d.axes.end(), "ep") != d.axes.end();
    });
    if (expert) {
      m.expertParamBytes += b.bytes;
      m.expertParamGlobal += b.globalBytes ? b.globalBytes : b.bytes;
    }
  }
  return m;
}

void printMoe(llvm::raw_ostream &os, const MoeSummary &m) {
  os << llvm::formatv("moe: expert weights computed with {0} bytes per rank per step (all MoE layers, after the "
                      "FSDP gathers)\n",
                      m.expertComputeBytes);
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
                            {"receive_buffer_bytes", (int64_t)m.receiveBufferBytes}};
}

} // namespace shardc
