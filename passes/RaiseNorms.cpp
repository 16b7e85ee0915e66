// ScRaiseNorms: the exporter's decomposed RMSNorm (Pow, ReduceMean, Add eps, Sqrt,
// Reciprocal, Mul, Mul scale) becomes sc.rms_norm over the last dim.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISENORMS
#include "shardc/Passes/Passes.h.inc"

namespace {

// reduce_mean(pow(x, 2), axes = [last], keepdims) + eps (either order): binds eps.
bool matchMeanSquarePlusEps(Value v, Value x, double &eps) {
  auto add = v.getDefiningOp<sc::AddOp>();
  if (!add)
    return false;
  Value mean, epsValue;
  auto isMean = [](Value m) { return static_cast<bool>(m.getDefiningOp<sc::ReduceMeanOp>()); };
  if (!match::commutedPair(add.getLhs(), add.getRhs(), isMean, mean, epsValue))
    return false;
  auto epsConst = match::splatFloat(epsValue);
  if (!epsConst || *epsConst < 0 || match::tensorTypeOf(epsValue).getNumElements() != 1)
    return false;
  auto rm = mean.getDefiningOp<sc::ReduceMeanOp>();
  int64_t rank = match::tensorTypeOf(x).getRank();
  if (!rm.getKeepdims() || rm.getAxes() != ArrayRef<int64_t>{rank - 1})
    return false;
  if (add.getType() != rm.getType())
    return false;
  Value squared = rm.getInput();
  if (auto pow = squared.getDefiningOp<sc::PowOp>()) {
    if (pow.getLhs() != x || !match::isSplatFloat(pow.getRhs(), 2.0))
      return false;
  } else if (auto mul = squared.getDefiningOp<sc::MulOp>()) {
    if (mul.getLhs() != x || mul.getRhs() != x)
      return false;
  } else {
    return false;
  }
  eps = *epsConst;
  return true;
}

// 1/sqrt(ms + eps), spelt reciprocal(sqrt(.)) or pow(., -0.5).
bool matchInverseRms(Value v, Value x, double &eps) {
  if (auto rec = v.getDefiningOp<sc::ReciprocalOp>()) {
    auto sqrt = rec.getInput().getDefiningOp<sc::SqrtOp>();
    return sqrt && matchMeanSquarePlusEps(sqrt.getInput(), x, eps);
  }
  if (auto pow = v.getDefiningOp<sc::PowOp>())
    return match::isSplatFloat(pow.getRhs(), -0.5) && matchMeanSquarePlusEps(pow.getLhs(), x, eps);
  return false;
}

// x * inv_rms (either order) or x / sqrt(ms + eps): binds x and eps.
bool matchNormalized(Value v, Value &x, double &eps) {
  if (auto mul = v.getDefiningOp<sc::MulOp>()) {
    for (auto [a, b] : {std::pair{mul.getLhs(), mul.getRhs()}, std::pair{mul.getRhs(), mul.getLhs()}}) {
      if (match::tensorTypeOf(a) == mul.getType() && matchInverseRms(b, a, eps)) {
        x = a;
        return true;
      }
    }
    return false;
  }
  if (auto div = v.getDefiningOp<sc::DivOp>()) {
    auto sqrt = div.getRhs().getDefiningOp<sc::SqrtOp>();
    if (sqrt && match::tensorTypeOf(div.getLhs()) == div.getType() &&
        matchMeanSquarePlusEps(sqrt.getInput(), div.getLhs(), eps)) {
      x = div.getLhs();
      return true;
    }
  }
  return false;
}

// scale * normalized(x) and normalized(x) * scale, scale a [H] tensor over the last dim.
struct ScaledRmsNorm : OpRewritePattern<sc::MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::MulOp op, PatternRewriter &rewriter) const override {
    if (!match::hasFloatElements(op.getResult()))
      return failure();
    auto type = op.getType();
    for (auto [scale, normed] : {std::pair{op.getLhs(), op.getRhs()}, std::pair{op.getRhs(), op.getLhs()}}) {
      Value x;
      double eps = 0;
      auto st = match::tensorTypeOf(scale);
      if (!st || st.getRank() != 1 || st.getDimSize(0) != type.getShape().back() ||
          st.getElementType() != type.getElementType() || match::tensorTypeOf(normed) != type)
        continue;
      if (!matchNormalized(normed, x, eps) || match::tensorTypeOf(x) != type)
        continue;
      rewriter.replaceOpWithNewOp<sc::RmsNormOp>(op, type, x, scale,
                                                 rewriter.getI64IntegerAttr(-1),
                                                 rewriter.getF32FloatAttr(static_cast<float>(eps)));
      return success();
    }
    return rewriter.notifyMatchFailure(op, "not scale * x / rms(x)");
  }
};

struct ScRaiseNormsPass : impl::ScRaiseNormsBase<ScRaiseNormsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<ScaledRmsNorm>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
