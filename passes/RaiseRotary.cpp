// ScRaiseRotary: the rotate-half rotary embedding, x*cos + concat(-x2, x1)*sin, becomes
// sc.rotary so that sequence/head sharding of q and k can see the position tables.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISEROTARY
#include "shardc/Passes/Passes.h.inc"

namespace {

// slice(x) keeping every dim whole except the last, which is [start, start + D/2) unit-step.
bool isHalfSlice(Value v, Value x, bool secondHalf) {
  auto slice = v.getDefiningOp<sc::SliceOp>();
  if (!slice || slice.getInput() != x)
    return false;
  ArrayRef<int64_t> in = match::tensorTypeOf(x).getShape();
  ArrayRef<int64_t> out = slice.getType().getShape();
  int64_t rank = in.size(), half = in.back() / 2;
  if (rank == 0 || in.back() % 2 != 0 || out.size() != in.size())
    return false;
  for (int64_t i = 0; i < rank; ++i) {
    bool last = i == rank - 1;
    int64_t wantStart = last && secondHalf ? half : 0;
    int64_t wantSize = last ? half : in[i];
    if (slice.getStarts()[i] != wantStart || slice.getSteps()[i] != 1 || out[i] != wantSize)
      return false;
  }
  return true;
}

// concat(neg(x[..., D/2:]), x[..., :D/2]) along the last dim.
bool isRotateHalf(Value v, Value x) {
  auto concat = v.getDefiningOp<sc::ConcatOp>();
  if (!concat || concat.getInputs().size() != 2 || concat.getType() != x.getType())
    return false;
  int64_t rank = concat.getType().getRank();
  if (match::normalizedAxis(concat.getAxis(), rank) != rank - 1)
    return false;
  auto neg = concat.getInputs()[0].getDefiningOp<sc::NegOp>();
  return neg && isHalfSlice(neg.getInput(), x, /*secondHalf=*/true) &&
         isHalfSlice(concat.getInputs()[1], x, /*secondHalf=*/false);
}

// add(mul(x, cos), mul(rotate_half(x), sin)) with every add/mul operand order.
struct RotateHalfToRotary : OpRewritePattern<sc::AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::AddOp op, PatternRewriter &rewriter) const override {
    auto type = op.getType();
    if (!match::hasFloatElements(op.getResult()) || type.getRank() == 0 || type.getShape().back() % 2)
      return rewriter.notifyMatchFailure(op, "not a float tensor with an even last dim");
    for (auto [direct, rotated] : {std::pair{op.getLhs(), op.getRhs()}, std::pair{op.getRhs(), op.getLhs()}}) {
      auto mulCos = direct.getDefiningOp<sc::MulOp>();
      auto mulSin = rotated.getDefiningOp<sc::MulOp>();
      if (!mulCos || !mulSin || mulCos.getType() != type || mulSin.getType() != type)
        continue;
      for (auto [x, cos] : {std::pair{mulCos.getLhs(), mulCos.getRhs()}, std::pair{mulCos.getRhs(), mulCos.getLhs()}}) {
        if (x.getType() != type)
          continue;
        for (auto [rot, sin] : {std::pair{mulSin.getLhs(), mulSin.getRhs()}, std::pair{mulSin.getRhs(), mulSin.getLhs()}}) {
          if (!isRotateHalf(rot, x) || match::tensorTypeOf(cos).getElementType() != type.getElementType() ||
              match::tensorTypeOf(sin).getElementType() != type.getElementType())
            continue;
          rewriter.replaceOpWithNewOp<sc::RotaryOp>(op, type, x, cos, sin);
          return success();
        }
      }
    }
    return rewriter.notifyMatchFailure(op, "not x*cos + rotate_half(x)*sin");
  }
};

struct ScRaiseRotaryPass : impl::ScRaiseRotaryBase<ScRaiseRotaryPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<RotateHalfToRotary>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
