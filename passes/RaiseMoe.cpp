// ScRaiseMoe: the experts of an exported mixture-of-experts block become sc.moe_experts, and
// its router sc.moe_router (below the experts' pattern).
//
// PyTorch's exporter writes transformers' "batched_mm" experts as, for R = T·k rows (token t,
// choice j, row r = t·k + j) and the router's TopK indices [T, k] and weights [T, k]:
//   xr   = reshape(expand(unsqueeze(x [T, H]) -> [T, k, H])) [R, H]      (repeat_interleave)
//   idx  = views of indices                                   [R, 1]
//   gu   = squeeze(matmul(gather_nd(gate_up [E, 2I, H], idx), unsqueeze(xr)))    [R, 2I]
//   gate, up = split(gu, axis 1);  act = silu(gate) * up (GeGLU: gelu)  [R, I]
//   dn   = squeeze(matmul(gather_nd(down [E, H, I], idx), unsqueeze(act)))       [R, H]
//   y    = reduce_sum(reshape(dn * views of weights [R, 1]) [T, k, H], axis 1)  [T, H]
// The match starts at the reduce_sum and checks every link; views (reshape, squeeze,
// unsqueeze) are looked through where they keep the row-major order. Anything else is left.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>
#include <cstdlib>
#include <optional>
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

// act(gate) * up, act silu (SwiGLU) or gelu (GeGLU, tanh or erf), with gate, up the two halves
// of one split along the last axis: returns the split's input and names the activation.
Value gluInput(Value act, std::string &activation) {
  auto mul = act.getDefiningOp<sc::MulOp>();
  if (!mul)
    return {};
  for (auto [a, b] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
    Value gate;
    if (auto silu = a.getDefiningOp<sc::SiluOp>()) {
      gate = silu.getInput();
      activation = "silu";
    } else if (auto gelu = a.getDefiningOp<sc::GeluOp>()) {
      gate = gelu.getInput();
      activation = gelu.getApproximate() == sc::GeluApproximation::Tanh ? "gelu_tanh" : "gelu_erf";
    }
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
    std::string activation;
    Value gu = gluInput(throughViews(actCol), activation);
    Value gateUp, idxUp, xCol;
    if (!gu || !expertMatVec(gu, gateUp, idxUp, xCol))
      return rewriter.notifyMatchFailure(op, "no silu(gate) * up or gelu(gate) * up of an expert gate_up projection");
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
                                        x, ids, weights, gateUp, down, rewriter.getStringAttr(activation));
    rewriter.replaceOp(op, moe.getResult());
    return success();
  }
};

// ---- The router (docs/moe.md): from sc.moe_experts' indices and weights back to the logits.
//   scores  = softmax(logits, axis 1) | sigmoid(logits)                          [T, E]
//   choice  = scores [+ bias [E], a parameter or constant]
//   DeepSeek's group-limited selection (n_group G > 1):
//     gs    = reduce_sum(top_k(reshape(choice) [T, G, E/G], axis 2, group_k).values, axis 2)
//     mask  = reshape(expand(unsqueeze(scatter_elements(zeros [T, G], top_k(gs, topk_group)
//             .indices, ones, axis 1)))) [T, E], cast to bool; choice = where(not mask, -inf, choice)
//   indices = top_k(choice, axis 1, k).indices
//   values  = top_k's values (no bias, no groups) | gather_elements(scores, indices, axis 1)
//   weights = values [/ (reduce_sum(values, axis 1, keepdims) [+ eps])] [* scale]
// Every link is checked; anything else keeps the router as imported.

int64_t axisOf(uint64_t raw, size_t rank) { return int64_t(raw) < 0 ? int64_t(raw) + int64_t(rank) : int64_t(raw); }

// A bool constant with one value everywhere.
std::optional<bool> splatBool(Value v) {
  auto e = match::constantElements(v);
  if (!e || !e.getElementType().isInteger(1) || !e.isSplat())
    return std::nullopt;
  return e.getSplatValue<bool>();
}

// A float constant whose every element is `want` (stored as a splat or not).
bool allFloat(Value v, double want) {
  auto e = match::constantElements(v);
  if (!e || !isa<FloatType>(e.getElementType()))
    return false;
  for (const APFloat &f : e.getValues<APFloat>())
    if (f.convertToDouble() != want)
      return false;
  return true;
}

// top_k along the last axis of a rank-r value, largest first: the op, or null.
sc::TopKOp topKLast(Value v, size_t rank) {
  auto tk = v.getDefiningOp<sc::TopKOp>();
  if (!tk || !tk.getLargest() || shapeOf(tk.getInput()).size() != rank ||
      axisOf(tk.getAxis(), rank) != int64_t(rank) - 1)
    return {};
  return tk;
}

struct RouterMatch {
  Value logits, bias;
  bool sigmoid = false, normalize = false;
  double eps = 0.0, scale = 1.0;
  int64_t nGroup = 1, topkGroup = 1, groupK = 2;
};

// `mask` [T, E] (bool) is the expansion of DeepSeek's group mask of `choice`: binds the groups.
bool groupMask(Value mask, Value choice, RouterMatch &m) {
  auto cast = mask.getDefiningOp<sc::CastOp>();
  if (!cast)
    return false;
  auto expand = throughViews(cast.getInput()).getDefiningOp<sc::ExpandOp>();
  if (!expand)
    return false;
  ArrayRef<int64_t> tge = shapeOf(expand.getResult()), ce = shapeOf(choice);
  if (tge.size() != 3 || tge[0] != ce[0] || tge[1] * tge[2] != ce[1])
    return false;
  auto scatter = throughViews(expand.getInput()).getDefiningOp<sc::ScatterElementsOp>();
  if (!scatter || shapeOf(scatter.getResult()) != ArrayRef<int64_t>{tge[0], tge[1]} || scatter.getReduction() != "none" ||
      axisOf(scatter.getAxis(), 2) != 1 || !allFloat(scatter.getData(), 0.0) || !allFloat(scatter.getUpdates(), 1.0))
    return false;
  auto groupTop = topKLast(scatter.getIndices(), 2);
  if (!groupTop || scatter.getIndices() != groupTop.getIndices())
    return false;
  auto groupSum = groupTop.getInput().getDefiningOp<sc::ReduceSumOp>();
  if (!groupSum || groupSum.getKeepdims() || groupSum.getAxes().size() != 1 || groupSum.getAxes()[0] != 2)
    return false;
  auto inGroup = topKLast(groupSum.getInput(), 3);
  if (!inGroup || groupSum.getInput() != inGroup.getValues() || throughViews(inGroup.getInput()) != throughViews(choice) ||
      shapeOf(inGroup.getInput()) != tge)
    return false;
  m.nGroup = tge[1];
  m.topkGroup = shapeOf(groupTop.getIndices())[1];
  m.groupK = shapeOf(inGroup.getValues())[2];
  return true;
}

// The choice scores behind top_k's input: binds bias and groups; returns the scores.
Value choiceScores(Value in, RouterMatch &m) {
  if (auto where = in.getDefiningOp<sc::WhereOp>()) {
    // where(not mask, -inf, choice) or where(mask, choice, -inf); not m = where(m, false, true).
    Value cond = where.getCondition(), choice;
    bool negated = false;
    if (auto inner = cond.getDefiningOp<sc::WhereOp>();
        inner && splatBool(inner.getLhs()) == false && splatBool(inner.getRhs()) == true) {
      cond = inner.getCondition();
      negated = true;
    }
    auto ninf = [](Value v) { auto f = match::splatFloat(v); return f && std::isinf(*f) && *f < 0; };
    if (negated && ninf(where.getLhs()))
      choice = where.getRhs();
    else if (!negated && ninf(where.getRhs()))
      choice = where.getLhs();
    if (!choice || shapeOf(choice) != shapeOf(in) || !groupMask(cond, choice, m))
      return {};
    in = choice;
  }
  if (auto add = in.getDefiningOp<sc::AddOp>()) {
    const int64_t E = shapeOf(in)[1];
    Value scores, bias;
    auto isBias = [&](Value v) {
      Value b = throughViews(v);
      return (b.getDefiningOp<sc::ParamOp>() || b.getDefiningOp<sc::ConstantOp>()) &&
             shapeOf(b) == ArrayRef<int64_t>{E} && shapeOf(v).back() == E;
    };
    if (!match::commutedPair(add.getRhs(), add.getLhs(), isBias, bias, scores) || shapeOf(scores) != shapeOf(in))
      return {};
    m.bias = throughViews(bias);
    in = scores;
  }
  return in;
}

// The scores' source: softmax over the experts or sigmoid; binds logits.
bool scoresOf(Value scores, RouterMatch &m) {
  if (auto sm = scores.getDefiningOp<sc::SoftmaxOp>(); sm && axisOf(sm.getAxis(), 2) == 1)
    m.logits = sm.getInput();
  else if (auto sg = scores.getDefiningOp<sc::SigmoidOp>())
    m.logits = sg.getInput(), m.sigmoid = true;
  return m.logits && shapeOf(m.logits).size() == 2 && shapeOf(m.logits) == shapeOf(scores);
}

struct RouterToMoeRouter : OpRewritePattern<sc::MoeExpertsOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::MoeExpertsOp op, PatternRewriter &rewriter) const override {
    Value ids = op.getIndices(), w = op.getWeights();
    if (ids.getDefiningOp<sc::MoeRouterOp>())
      return failure();
    RouterMatch m;
    if (auto mul = w.getDefiningOp<sc::MulOp>()) {
      Value c, rest;
      if (match::commutedPair(mul.getLhs(), mul.getRhs(), [](Value v) { return match::splatFloat(v).has_value(); }, c,
                              rest) &&
          shapeOf(rest) == shapeOf(w)) {
        m.scale = *match::splatFloat(c);
        w = rest;
      }
    }
    Value values = w;
    if (auto div = w.getDefiningOp<sc::DivOp>()) {
      Value denom = div.getRhs();
      if (auto add = denom.getDefiningOp<sc::AddOp>()) {
        Value c, rest;
        if (match::commutedPair(add.getLhs(), add.getRhs(), [](Value v) { return match::splatFloat(v).has_value(); }, c,
                                rest))
          m.eps = *match::splatFloat(c), denom = rest;
      }
      auto sum = denom.getDefiningOp<sc::ReduceSumOp>();
      if (!sum || sum.getInput() != div.getLhs() || !sum.getKeepdims() || sum.getAxes().size() != 1 ||
          sum.getAxes()[0] != 1)
        return rewriter.notifyMatchFailure(op, "weights divided by something else than their sum");
      m.normalize = true;
      values = div.getLhs();
    }
    auto top = topKLast(ids, 2);
    if (!top || top.getIndices() != ids || shapeOf(values) != shapeOf(ids))
      return rewriter.notifyMatchFailure(op, "the indices are not a top_k over the experts");
    Value scores;
    if (values == top.getValues()) {
      scores = top.getInput(); // the choice reads the scores themselves
    } else if (auto gather = values.getDefiningOp<sc::GatherElementsOp>();
               gather && gather.getIndices() == ids && axisOf(gather.getAxis(), 2) == 1) {
      scores = gather.getData();
      if (choiceScores(top.getInput(), m) != scores)
        return rewriter.notifyMatchFailure(op, "the choice does not read the scores (+ bias, groups)");
    } else {
      return rewriter.notifyMatchFailure(op, "the weights are not the chosen scores");
    }
    if (!scoresOf(scores, m) || !match::hasFloatElements(m.logits))
      return rewriter.notifyMatchFailure(op, "the scores are not softmax or sigmoid of [T, E] logits");
    Type et = match::tensorTypeOf(m.logits).getElementType();
    if (match::tensorTypeOf(op.getWeights()).getElementType() != et ||
        (m.bias && match::tensorTypeOf(m.bias).getElementType() != et))
      return rewriter.notifyMatchFailure(op, "mixed element types");
    // The runtime's limits (MoeKernels.h): at most 64 groups, group_k at most 8.
    const int64_t E = shapeOf(m.logits)[1], k = shapeOf(ids)[1];
    if (m.nGroup > 64 || m.groupK > 8 || m.topkGroup * (E / m.nGroup) < k)
      return rewriter.notifyMatchFailure(op, "the router's groups do not fit the kernel");
    rewriter.setInsertionPoint(op);
    auto router = sc::MoeRouterOp::create(
        rewriter, top.getLoc(), TypeRange{ids.getType(), op.getWeights().getType()}, m.logits, m.bias,
        rewriter.getStringAttr(m.sigmoid ? "sigmoid" : "softmax"), rewriter.getI64IntegerAttr(m.nGroup),
        rewriter.getI64IntegerAttr(m.topkGroup), rewriter.getI64IntegerAttr(m.groupK), rewriter.getBoolAttr(m.normalize),
        rewriter.getF64FloatAttr(m.eps), rewriter.getF64FloatAttr(m.scale));
    rewriter.modifyOpInPlace(op, [&] {
      op.getIndicesMutable().assign(router.getIndices());
      op.getWeightsMutable().assign(router.getWeights());
    });
    return success();
  }
};

struct ScRaiseMoePass : impl::ScRaiseMoeBase<ScRaiseMoePass> {
  void runOnOperation() override {
    // SHARDC_NO_RAISE_MOE=1 keeps the exported form (the benchmark's and tests' baseline).
    if (const char *off = std::getenv("SHARDC_NO_RAISE_MOE"); off && std::string(off) == "1")
      return;
    RewritePatternSet patterns(&getContext());
    patterns.add<ExpertsToMoeExperts, RouterToMoeRouter>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
