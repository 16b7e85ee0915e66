// ScRaiseActivations: x*sigmoid(x) becomes sc.silu and the erf and tanh spellings of GELU
// become sc.gelu, so that fusion and precision rules see one op per activation.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

#include <cmath>

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISEACTIVATIONS
#include "shardc/Passes/Passes.h.inc"

namespace {

constexpr double kInvSqrt2 = 0.70710678118654752440;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluCubic = 0.044715;

// 1 + v or v + 1: returns v.
Value onePlus(Value v) {
  auto add = v.getDefiningOp<sc::AddOp>();
  if (!add)
    return {};
  if (match::isSplatFloat(add.getLhs(), 1.0))
    return add.getRhs();
  if (match::isSplatFloat(add.getRhs(), 1.0))
    return add.getLhs();
  return {};
}

// x / sqrt(2) or x * (1/sqrt(2)).
bool isXOverSqrt2(Value v, Value x) {
  if (auto div = v.getDefiningOp<sc::DivOp>()) {
    auto c = match::splatFloat(div.getRhs());
    return div.getLhs() == x && c && match::closeTo(*c, 1.0 / kInvSqrt2);
  }
  match::Product p = match::flattenProduct(v, 1);
  return p.factors.size() == 1 && p.factors[0] == x && match::closeTo(p.coefficient, kInvSqrt2);
}

// x^3 as pow(x, 3) or x*x*x.
bool isCube(Value v, Value x) {
  if (auto pow = v.getDefiningOp<sc::PowOp>())
    return pow.getLhs() == x && match::isSplatFloat(pow.getRhs(), 3.0);
  match::Product p = match::flattenProduct(v, 2);
  return p.coefficient == 1.0 && p.factors.size() == 3 &&
         llvm::all_of(p.factors, [&](Value f) { return f == x; });
}

// sqrt(2/pi) * (x + 0.044715 * x^3), in any order of the products and the sum.
bool isTanhGeluArgument(Value v, Value x) {
  match::Product outer = match::flattenProduct(v, 2);
  if (outer.factors.size() != 1 || !match::closeTo(outer.coefficient, kSqrt2OverPi))
    return false;
  auto sum = outer.factors[0].getDefiningOp<sc::AddOp>();
  if (!sum)
    return false;
  for (auto [lin, cubic] : {std::pair{sum.getLhs(), sum.getRhs()}, std::pair{sum.getRhs(), sum.getLhs()}}) {
    if (lin != x)
      continue;
    match::Product c = match::flattenProduct(cubic, 1);
    if (c.factors.size() == 1 && match::closeTo(c.coefficient, kGeluCubic) && isCube(c.factors[0], x))
      return true;
  }
  return false;
}

// mul(x, sigmoid(x)) in either order.
struct SigmoidGateToSilu : OpRewritePattern<sc::MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::MulOp op, PatternRewriter &rewriter) const override {
    for (auto [x, gate] : {std::pair{op.getLhs(), op.getRhs()}, std::pair{op.getRhs(), op.getLhs()}}) {
      auto sig = gate.getDefiningOp<sc::SigmoidOp>();
      if (sig && sig.getInput() == x && x.getType() == op.getType() && match::hasFloatElements(x)) {
        rewriter.replaceOpWithNewOp<sc::SiluOp>(op, op.getType(), x);
        return success();
      }
    }
    return rewriter.notifyMatchFailure(op, "not x * sigmoid(x)");
  }
};

// The product {0.5, x, 1 + f(x)} in any association, with f = erf(x/sqrt 2) (exact) or
// tanh(sqrt(2/pi) (x + 0.044715 x^3)) (tanh approximation).
struct ProductToGelu : OpRewritePattern<sc::MulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::MulOp op, PatternRewriter &rewriter) const override {
    match::Product p = match::flattenProduct(op.getResult(), 3);
    if (p.factors.size() != 2 || !match::closeTo(p.coefficient, 0.5))
      return rewriter.notifyMatchFailure(op, "not 0.5 * x * (1 + f)");
    for (auto [x, gate] : {std::pair{p.factors[0], p.factors[1]}, std::pair{p.factors[1], p.factors[0]}}) {
      if (x.getType() != op.getType() || !match::hasFloatElements(x))
        continue;
      Value f = onePlus(gate);
      if (!f || f.getType() != op.getType())
        continue;
      sc::GeluApproximation approximate;
      if (auto erf = f.getDefiningOp<sc::ErfOp>(); erf && isXOverSqrt2(erf.getInput(), x))
        approximate = sc::GeluApproximation::None;
      else if (auto tanh = f.getDefiningOp<sc::TanhOp>(); tanh && isTanhGeluArgument(tanh.getInput(), x))
        approximate = sc::GeluApproximation::Tanh;
      else
        continue;
      rewriter.replaceOpWithNewOp<sc::GeluOp>(op, op.getType(), x, approximate);
      return success();
    }
    return rewriter.notifyMatchFailure(op, "no erf/tanh GELU gate");
  }
};

struct ScRaiseActivationsPass : impl::ScRaiseActivationsBase<ScRaiseActivationsPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<SigmoidGateToSilu, ProductToGelu>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
