// Training through a raised mixture-of-experts block (docs/moe.md#training): the VJP rules of
// sc.moe_experts and sc.moe_router, and everything about the two backward ops they build
// (sc.moe_experts_grad, sc.moe_router_grad): shape verification, sharding rule, step and cost.
// The kernels are runtime/kernels/cpu/MoeGrad.cpp and shardc/kernels/MoeGradKernels.h.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Sharding/Sharding.h"

using namespace mlir;

namespace shardc::sc {
namespace {

using Dims = llvm::SmallVector<llvm::SmallVector<int, 2>>;

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }
ArrayRef<int64_t> shapeOf(Value v) { return typeOf(v).getShape(); }

uint64_t trafficOf(Operation *op) {
  uint64_t bytes = 0;
  auto add = [&](Value v) {
    RankedTensorType t = typeOf(v);
    Type et = t.getElementType();
    bytes += uint64_t(t.getNumElements()) * (et.isInteger(1) ? 1 : (et.getIntOrFloatBitWidth() + 7) / 8);
  };
  llvm::for_each(op->getOperands(), add);
  llvm::for_each(op->getResults(), add);
  return bytes;
}

// Whether sc-apply-plan split these stacked experts over ep (passes/ExpertParallel.cpp: the
// parameter or its training state, or the first of the two expert_tp halves, carries the ep
// split on its expert dim).
bool splitOverEp(Value stack) {
  if (auto halves = stack.getDefiningOp<ConcatOp>(); halves && halves->hasAttr("sc.expert_halves"))
    stack = halves.getInputs()[0];
  std::optional<Sharding> s = getSharding(stack);
  return s && !s->dims.empty() && llvm::is_contained(s->dims[0], "ep");
}

} // namespace

// ---- VJP rules.

// The expert MLPs: one backward op gives the gradients of x, of the combine weights (which
// carry the router's gradient) and of both stacks; the indices are integers. `hidden` is a
// workspace nothing differentiates.
LogicalResult MoeExpertsOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted,
                                     SmallVectorImpl<Value> &og) {
  if (!rg[0])
    return success();
  RankedTensorType work = RankedTensorType::get({shapeOf(getHidden())[0], 3 * shapeOf(getDown())[2]},
                                                typeOf(getX()).getElementType());
  auto grad = MoeExpertsGradOp::create(
      b, getLoc(), TypeRange{getX().getType(), getWeights().getType(), getGateUp().getType(), getDown().getType(), work},
      getX(), getIndices(), getWeights(), getGateUp(), getDown(), rg[0], getActivationAttr());
  // expert_tp: gate_up is the concat of its halves, each split on I (its sharding rule).
  if (auto halves = getGateUp().getDefiningOp<ConcatOp>(); halves && halves->hasAttr("sc.expert_halves"))
    grad->setAttr("sc.expert_halves", b.getUnitAttr());
  for (unsigned i : {0u, 2u, 3u, 4u})
    if (wanted[i])
      og[i] = grad.getResult(i == 0 ? 0 : i - 1);
  return success();
}

// The router: the combine weights' gradient reaches the logits through the normalisation and
// the softmax or sigmoid, the choice held fixed. The score bias and the group-limited
// selection only choose experts: no gradient flows to the bias.
LogicalResult MoeRouterOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted,
                                    SmallVectorImpl<Value> &og) {
  if (!wanted[0] || !rg[1])
    return success();
  og[0] = MoeRouterGradOp::create(b, getLoc(), getLogits().getType(), getLogits(), getIndices(), rg[1],
                                  getScoringAttr(), getNormalizeAttr(), getNormEpsilonAttr(), getScaleAttr());
  return success();
}

// ---- sc.moe_experts_grad

LogicalResult MoeExpertsGradOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getX()), ids = shapeOf(getIndices()), gu = shapeOf(getGateUp()),
                    dn = shapeOf(getDown());
  if (x.size() != 2 || ids.size() != 2 || gu.size() != 3 || dn.size() != 3 || ids[0] != x[0] ||
      shapeOf(getWeights()) != ids || gu[0] != dn[0] || gu[1] != 2 * dn[2] || gu[2] != x[1] || dn[1] != x[1])
    return emitOpError() << "x [T, H], indices and weights [T, k], gate_up [E, 2I, H], down [E, H, I] expected";
  if (getDy().getType() != getX().getType() || getDx().getType() != getX().getType() ||
      getDweights().getType() != getWeights().getType() || getDgateUp().getType() != getGateUp().getType() ||
      getDdown().getType() != getDown().getType())
    return emitOpError() << "dy and the gradients must have their primals' types";
  if (shapeOf(getWork()) != ArrayRef<int64_t>{ids[0] * ids[1], 3 * dn[2]})
    return emitOpError() << "work must be [T*k, 3I]";
  return success();
}

// Tokens are independent rows of x, the choices, dy, dx and the workspace; the expert
// gradients sum over them, so splitting the tokens (data parallelism) leaves them Partial,
// reduced as any weight gradient. The expert dim splits only where the forward's experts are
// split over ep (sc-partition then expands the op into the dispatch, passes/ExpertParallel.cpp,
// and the expert gradients are Partial only over the ranks that share an expert,
// docs/moe.md#training); elsewhere it stays whole.
std::optional<ShardingRule> MoeExpertsGradOp::getShardingRule() {
  ArrayRef<int64_t> ids = shapeOf(getIndices()), gu = shapeOf(getGateUp()), dn = shapeOf(getDown());
  // expert_tp (gate_up the concat of its halves, docs/moe.md): I splits as in the forward;
  // the gradients of x and of the weights sum over it (Partial), the expert gradients and the
  // workspace keep the split (the halves' layout in gate_up's 2I dim).
  const bool expertTp = (*this)->hasAttr("sc.expert_halves");
  ShardingRule r;
  int t = r.addFactor(ids[0], true, /*reduction=*/true), k = r.addFactor(ids[1], false);
  int h = r.addFactor(dn[1], false), e = r.addFactor(gu[0], splitOverEp(getGateUp()) || splitOverEp(getDown()));
  int i = r.addFactor(dn[2], expertTp, /*reduction=*/expertTp);
  int i2 = expertTp ? i : r.addFactor(gu[1], false), i3 = expertTp ? i : r.addFactor(3 * dn[2], false);
  Dims rows{{t}, {h}}, choice{{t}, {k}}, gateUp{{e}, {i2}, {h}}, down{{e}, {h}, {i}};
  r.operands = {rows, choice, choice, gateUp, down, rows};
  r.results = {rows, choice, gateUp, down, {{t, k}, {i3}}};
  r.reductionKind = "sum";
  return r;
}

LogicalResult MoeExpertsGradOp::lowerToStep(StepDesc &step) {
  step.attrs.set("activation", getActivation().str());
  step.kind = "moe_experts_grad";
  return success();
}
// Per row the recomputed gate/up product (2·2I·H), the down product for dweights (2·H·I), dh
// (2·H·I), the two weight gradients (2·2I·H + 2·H·I) and dx (2·2I·H).
OpCost MoeExpertsGradOp::getCost() {
  ArrayRef<int64_t> ids = shapeOf(getIndices()), dn = shapeOf(getDown());
  const uint64_t rows = uint64_t(ids[0] * ids[1]), H = uint64_t(dn[1]), I = uint64_t(dn[2]);
  return {2 * rows * 9 * H * I, trafficOf(*this)};
}

// ---- sc.moe_grouped_gemm_grad (expert parallelism's backward, passes/ExpertParallel.cpp)

LogicalResult MoeGroupedGemmGradOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getRecvX()), gu = shapeOf(getGateUp()), dn = shapeOf(getDown());
  if (x.size() != 2 || shapeOf(getRecvDy()) != x || shapeOf(getRecvW()) != ArrayRef<int64_t>{x[0], 1} ||
      shapeOf(getRecvCounts()).size() != 1 || gu.size() != 3 || dn.size() != 3 || gu[0] != dn[0] ||
      gu[1] != 2 * dn[2] || gu[2] != x[1] || dn[1] != x[1])
    return emitOpError() << "recv_x and recv_dy [R, H], recv_w [R, 1], recv_counts [G*E], gate_up [E, 2I, H], "
                            "down [E, H, I] expected";
  if (shapeOf(getDx()) != x || shapeOf(getDweights()) != shapeOf(getRecvW()) ||
      getDgateUp().getType() != getGateUp().getType() || getDdown().getType() != getDown().getType() ||
      shapeOf(getWork()) != ArrayRef<int64_t>{x[0], 3 * dn[2]})
    return emitOpError() << "dx [R, H], dweights [R, 1], the stacks' gradients and work [R, 3I] expected";
  return success();
}
std::optional<ShardingRule> MoeGroupedGemmGradOp::getShardingRule() { return std::nullopt; }
LogicalResult MoeGroupedGemmGradOp::lowerToStep(StepDesc &step) {
  step.attrs.set("activation", getActivation().str());
  step.kind = "moe_grouped_gemm_grad";
  return success();
}
// As sc.moe_experts_grad's, over the R received rows.
OpCost MoeGroupedGemmGradOp::getCost() {
  ArrayRef<int64_t> dn = shapeOf(getDown());
  const uint64_t rows = uint64_t(shapeOf(getRecvX())[0]), H = uint64_t(dn[1]), I = uint64_t(dn[2]);
  return {2 * rows * 9 * H * I, trafficOf(*this)};
}

// ---- sc.moe_router_grad

LogicalResult MoeRouterGradOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()), ids = shapeOf(getIndices());
  if (logits.size() != 2 || ids.size() != 2 || ids[0] != logits[0] || ids[1] < 1 || ids[1] > logits[1] ||
      !typeOf(getIndices()).getElementType().isInteger(64))
    return emitOpError() << "logits [T, E] and i64 indices [T, k] with 1 <= k <= E expected";
  if (shapeOf(getDweights()) != ids || typeOf(getDweights()).getElementType() != typeOf(getLogits()).getElementType() ||
      getResult().getType() != getLogits().getType())
    return emitOpError() << "dweights [T, k] and the result [T, E] of the logits' element type expected";
  if (getScoring() != "softmax" && getScoring() != "sigmoid")
    return emitOpError() << "scoring '" << getScoring() << "' is not softmax or sigmoid";
  return success();
}

// Each token's row is its own; the experts and the choices stay whole.
std::optional<ShardingRule> MoeRouterGradOp::getShardingRule() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()), ids = shapeOf(getIndices());
  ShardingRule r;
  int t = r.addFactor(logits[0]), e = r.addFactor(logits[1], false), k = r.addFactor(ids[1], false);
  r.operands = {{{t}, {e}}, {{t}, {k}}, {{t}, {k}}};
  r.results = {{{t}, {e}}};
  return r;
}

LogicalResult MoeRouterGradOp::lowerToStep(StepDesc &step) {
  step.attrs.set("scoring", getScoring().str());
  step.attrs.set("normalize", getNormalize());
  step.attrs.set("norm_epsilon", getNormEpsilon().convertToDouble());
  step.attrs.set("scale", getScale().convertToDouble());
  step.kind = "moe_router_grad";
  return success();
}
OpCost MoeRouterGradOp::getCost() { return {0, trafficOf(*this)}; }

} // namespace shardc::sc
