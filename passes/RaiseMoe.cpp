// ScRaiseMoe: the experts of an exported mixture-of-experts block become sc.moe_experts.
//
// PyTorch's exporter writes transformers' "batched_mm" experts as, for R = T·k rows (token t,
// choice j, row r = t·k + j) and the router's TopK indices [T, k] and weights [T, k]:
//   xr   = reshape(expand(unsqueeze(x [T, H]) -> [T, k, H])) [R, H]      (repeat_interleave)
//   idx  = views of indices                                   [R, 1]
//   gu   = squeeze(matmul(gather_nd(gate_up [E, 2I, H], idx), unsqueeze(xr)))    [R, 2I]
//   gate, up = split(gu, axis 1);  act = silu(gate) * up                [R, I]
//   dn   = squeeze(matmul(gather_nd(down [E, H, I], idx), unsqueeze(act)))       [R, H]
//   y    = reduce_sum(reshape(dn * views of weights [R, 1]) [T, k, H], axis 1)  [T, H]
// The match starts at the reduce_sum and checks every link; views (reshape, squeeze,
// unsqueeze) are looked through where they keep the row-major order. Anything else is left.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cstdlib>
#include <string>

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISEMOE
#include "shardc/Passes/Passes.h.inc"

namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

// The value behind reshapes, squeezes and unsqueezes (they keep the elements' order).
Value throughViews(Value v) {
  while (Operation *op = v.getDefiningOp()) {
    if (!isa<sc::ReshapeOp, sc::SqueezeOp, sc::UnsqueezeOp>(op))
      break;
    v = op->getOperand(0);
  }
  return v;
}

// squeeze(matmul(gather_nd(W [E, M, N], idx [R, 1]), col [R, N, 1])) [R, M]: binds W, idx, col.
bool expertMatVec(Value v, Value &weight, Value &idx, Value &col) {
  auto mm = throughViews(v).getDefiningOp<sc::MatMulOp>();
  if (!mm)
    return false;
  auto g = mm.getLhs().getDefiningOp<sc::GatherNdOp>();
  if (!g || g.getBatchDims() != 0)
    return false;
  ArrayRef<int64_t> w = shapeOf(g.getData()), i = shapeOf(g.getIndices()), c = shapeOf(mm.getRhs());
  ArrayRef<int64_t> out = shapeOf(v);
  if (w.size() != 3 || i.size() != 2 || i[1] != 1 || c.size() != 3 || c[0] != i[0] || c[1] != w[2] || c[2] != 1 ||
      out.size() != 2 || out[0] != i[0] || out[1] != w[1])
    return false;
  weight = g.getData();
  idx = g.getIndices();
  col = mm.getRhs();
  return true;
}

// silu(gate) * up, silu raised or as gate * sigmoid(gate), with gate, up the two halves of one
// split along the last axis: returns the split's input.
Value swigluInput(Value act) {
  auto mul = act.getDefiningOp<sc::MulOp>();
  if (!mul)
    return {};
  for (auto [a, b] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
    Value gate;
    if (auto silu = a.getDefiningOp<sc::SiluOp>())
      gate = silu.getInput();
    if (!gate)
      continue;
    auto split = gate.getDefiningOp<sc::SplitOp>();
    if (!split || split.getNumResults() != 2 || gate != split.getResult(0) || b != split.getResult(1))
      continue;
    ArrayRef<int64_t> in = shapeOf(split.getInput());
    int64_t axis = split.getAxis() < 0 ? split.getAxis() + int64_t(in.size()) : split.getAxis();
    if (in.size() == 2 && axis == 1 && shapeOf(gate) == shapeOf(b))
      return split.getInput();
  }
  return {};
}

struct ExpertsToMoeExperts : OpRewritePattern<sc::ReduceSumOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::ReduceSumOp op, PatternRewriter &rewriter) const override {
    ArrayRef<int64_t> out = shapeOf(op.getResult());
    if (op.getKeepdims() || op.getAxes().size() != 1 || op.getAxes()[0] != 1 || out.size() != 2)
      return rewriter.notifyMatchFailure(op, "not a sum over axis 1 of [T, k, H]");
    ArrayRef<int64_t> tkh = shapeOf(op.getInput());
    if (tkh.size() != 3 || !match::hasFloatElements(op.getInput()))
      return failure();
    const int64_t T = tkh[0], k = tkh[1], H = tkh[2], R = T * k;
    auto scaled = throughViews(op.getInput()).getDefiningOp<sc::MulOp>();
    if (!scaled || shapeOf(scaled.getResult()) != ArrayRef<int64_t>{R, H})
      return rewriter.notifyMatchFailure(op, "no weighted rows [T*k, H]");
    // One factor is the down projection, the other the routing weights as [R, 1].
    Value down, idxDown, actCol, weights;
    for (auto [a, b] : {std::pair{scaled.getLhs(), scaled.getRhs()}, std::pair{scaled.getRhs(), scaled.getLhs()}}) {
      if (shapeOf(b) == ArrayRef<int64_t>{R, 1} && expertMatVec(a, down, idxDown, actCol)) {
        weights = throughViews(b);
        break;
      }
    }
    if (!weights || shapeOf(weights) != ArrayRef<int64_t>{T, k} || shapeOf(down)[1] != H)
      return rewriter.notifyMatchFailure(op, "no expert down projection scaled by [T, k] weights");
    Value gu = swigluInput(throughViews(actCol));
    Value gateUp, idxUp, xCol;
    if (!gu || !expertMatVec(gu, gateUp, idxUp, xCol))
      return rewriter.notifyMatchFailure(op, "no silu(gate) * up of an expert gate_up projection");
    const int64_t E = shapeOf(down)[0], I = shapeOf(down)[2];
    if (shapeOf(gateUp) != ArrayRef<int64_t>{E, 2 * I, H})
      return rewriter.notifyMatchFailure(op, "gate_up and down stacks do not agree");
    // Both gathers read one [T, k] index tensor.
    Value ids = throughViews(idxDown);
    if (throughViews(idxUp) != ids || shapeOf(ids) != ArrayRef<int64_t>{T, k} ||
        !cast<RankedTensorType>(ids.getType()).getElementType().isInteger(64))
      return rewriter.notifyMatchFailure(op, "the experts' gathers do not share [T, k] i64 indices");
    // The tokens repeated k times: expand([T, 1, H] -> [T, k, H]) of x [T, H].
    auto expand = throughViews(xCol).getDefiningOp<sc::ExpandOp>();
    if (!expand || shapeOf(expand.getResult()) != ArrayRef<int64_t>{T, k, H} ||
        shapeOf(expand.getInput()) != ArrayRef<int64_t>{T, 1, H})
      return rewriter.notifyMatchFailure(op, "the rows are not the tokens repeated k times");
    Value x = throughViews(expand.getInput());
    if (shapeOf(x) != ArrayRef<int64_t>{T, H}) {
      x = expand.getInput();
      rewriter.setInsertionPoint(op);
      x = sc::ReshapeOp::create(rewriter, op.getLoc(), RankedTensorType::get({T, H}, match::tensorTypeOf(x).getElementType()), x);
    }
    Type et = match::tensorTypeOf(x).getElementType();
    if (match::tensorTypeOf(weights).getElementType() != et || match::tensorTypeOf(gateUp).getElementType() != et ||
        match::tensorTypeOf(down).getElementType() != et || op.getType().getElementType() != et)
      return rewriter.notifyMatchFailure(op, "mixed element types");
    auto moe = sc::MoeExpertsOp::create(rewriter, op.getLoc(), TypeRange{op.getType(), RankedTensorType::get({R, I}, et)},
                                        x, ids, weights, gateUp, down);
    rewriter.replaceOp(op, moe.getResult());
    return success();
  }
};

struct ScRaiseMoePass : impl::ScRaiseMoeBase<ScRaiseMoePass> {
  void runOnOperation() override {
    // SHARDC_NO_RAISE_MOE=1 keeps the exported form (the benchmark's and tests' baseline).
    if (const char *off = std::getenv("SHARDC_NO_RAISE_MOE"); off && std::string(off) == "1")
      return;
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpertsToMoeExperts>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
