// `shardc report`'s mixture-of-experts lines (docs/moe.md): expert parallelism's mesh, the
// expert parameters per rank, and the dispatch/combine all-to-alls per step.
#pragma once

#include "shardc/runtime/Artifact.h"

#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <optional>

namespace shardc {

struct MoeSummary {
  int64_t ep = 1, epShard = 1;
  int64_t layers = 0;               // moe_dispatch steps (one per MoE layer)
  uint64_t expertParamBytes = 0;    // this rank's stored expert weights (split over ep)
  uint64_t expertParamGlobal = 0;   // all experts, whole
  uint64_t expertComputeBytes = 0;  // the expert weights a rank computes with (after the gathers)
  uint64_t sendBytes = 0;           // rows a rank dispatches per step (all layers): T·k·H·dtype each
  uint64_t balancedWireBytes = 0;   // dispatch + combine, (ep-1)/ep of the rows leaving a rank
  uint64_t receiveBufferBytes = 0;  // the worst-case receive buffers, ep·T·k rows per layer
  int64_t rowsPerLayer = 0, localExperts = 0, experts = 0;
  // With tp > 1: the 1/tp token split (each tp rank routes its share of the tokens) or expert
  // tensor parallelism (expert weights split over tp, every token on every tp rank).
  int64_t tp = 1;
  bool expertTp = false;
  int64_t tokensRouted = 0, rowsRouted = 0; // per rank per MoE layer: T and T·k
};

// nullopt when the artifact has no MoE step (moe_experts, or expert parallelism's).
std::optional<MoeSummary> analyzeMoe(const rt::Artifact &art);
void printMoe(llvm::raw_ostream &os, const MoeSummary &m);
llvm::json::Object moeJson(const MoeSummary &m);

} // namespace shardc
