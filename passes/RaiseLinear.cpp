// ScRaiseLinear: MatMul/Gemm against a parameter (plus an Add of a bias parameter) becomes
// sc.linear, the unit that tensor-parallel plans and FSDP grouping talk about.
//
// A fused QKV projection (GPT-2's c_attn) stays `split(linear(x, Wqkv, b))`: the linear is
// raised like any other and the split is kept, so the sharding of packed QKV is decided on
// the split later rather than by un-fusing here.
#include "PatternMatchers.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/PatternMatch.h"
#include "mlir/Transforms/GreedyPatternRewriteDriver.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCRAISELINEAR
#include "shardc/Passes/Passes.h.inc"

namespace {

// The weight of `x @ rhs` when rhs is a 2-D parameter, or transpose(param, [1, 0]).
struct LinearWeight {
  Value weight;
  bool transposed = false;
};

std::optional<LinearWeight> linearWeightOf(Value rhs) {
  auto t = match::tensorTypeOf(rhs);
  if (!t || t.getRank() != 2)
    return std::nullopt;
  if (match::paramOf(rhs))
    return LinearWeight{rhs, false};
  if (auto tr = rhs.getDefiningOp<sc::TransposeOp>())
    if (match::paramOf(tr.getInput()) && tr.getPerm() == ArrayRef<int64_t>{1, 0})
      return LinearWeight{tr.getInput(), true};
  return std::nullopt;
}

bool linearTypesAgree(Value x, Value weight, bool transposed, Type resultType) {
  auto xt = match::tensorTypeOf(x), wt = match::tensorTypeOf(weight);
  auto rt = dyn_cast<RankedTensorType>(resultType);
  if (!xt || !wt || !rt || xt.getRank() < 1 || wt.getRank() != 2)
    return false;
  if (xt.getElementType() != wt.getElementType() || rt.getElementType() != xt.getElementType())
    return false;
  int64_t k = transposed ? wt.getDimSize(1) : wt.getDimSize(0);
  int64_t n = transposed ? wt.getDimSize(0) : wt.getDimSize(1);
  SmallVector<int64_t> want(xt.getShape().drop_back());
  want.push_back(n);
  return xt.getShape().back() == k && rt.getShape() == ArrayRef<int64_t>(want);
}

// matmul(x, W) and matmul(x, transpose(W)) with W a parameter.
struct MatMulToLinear : OpRewritePattern<sc::MatMulOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::MatMulOp op, PatternRewriter &rewriter) const override {
    auto w = linearWeightOf(op.getRhs());
    if (!w)
      return rewriter.notifyMatchFailure(op, "rhs is not a 2-D parameter");
    if (!linearTypesAgree(op.getLhs(), w->weight, w->transposed, op.getType()))
      return rewriter.notifyMatchFailure(op, "shapes or element types do not form a linear");
    rewriter.replaceOpWithNewOp<sc::LinearOp>(op, op.getType(), op.getLhs(), w->weight, Value(),
                                              rewriter.getBoolAttr(w->transposed), sc::LinearEpilogueAttr());
    return success();
  }
};

// gemm(x, W, b) with alpha = beta = 1, A not transposed, W a parameter and b a [N]
// parameter (or absent).
struct GemmToLinear : OpRewritePattern<sc::GemmOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::GemmOp op, PatternRewriter &rewriter) const override {
    if (op.getTransA() || op.getAlpha().convertToDouble() != 1.0 ||
        (op.getC() && op.getBeta().convertToDouble() != 1.0))
      return rewriter.notifyMatchFailure(op, "alpha/beta/transA not those of a linear");
    if (!match::paramOf(op.getB()))
      return rewriter.notifyMatchFailure(op, "B is not a parameter");
    bool transposed = op.getTransB();
    if (!linearTypesAgree(op.getA(), op.getB(), transposed, op.getType()))
      return rewriter.notifyMatchFailure(op, "shapes or element types do not form a linear");
    Value bias = op.getC();
    if (bias) {
      auto bt = match::tensorTypeOf(bias);
      int64_t n = op.getType().getShape().back();
      if (!match::paramOf(bias) || bt.getShape() != ArrayRef<int64_t>{n} ||
          bt.getElementType() != op.getType().getElementType())
        return rewriter.notifyMatchFailure(op, "C is not a [N] parameter");
    }
    rewriter.replaceOpWithNewOp<sc::LinearOp>(op, op.getType(), op.getA(), op.getB(), bias,
                                              rewriter.getBoolAttr(transposed), sc::LinearEpilogueAttr());
    return success();
  }
};

// add(linear(x, W), b) and add(b, linear(x, W)) with b a [N] parameter: the bias joins the
// linear, which takes the add's location (the op that defines the module's output).
struct AddBiasToLinear : OpRewritePattern<sc::AddOp> {
  using OpRewritePattern::OpRewritePattern;
  LogicalResult matchAndRewrite(sc::AddOp op, PatternRewriter &rewriter) const override {
    Value lin, bias;
    auto isBiasFree = [](Value v) {
      auto l = v.getDefiningOp<sc::LinearOp>();
      return l && !l.getBias() && l->hasOneUse();
    };
    if (!match::commutedPair(op.getLhs(), op.getRhs(), isBiasFree, lin, bias))
      return rewriter.notifyMatchFailure(op, "no bias-free linear operand");
    auto linear = lin.getDefiningOp<sc::LinearOp>();
    auto bt = match::tensorTypeOf(bias);
    int64_t n = linear.getType().getShape().back();
    if (!match::paramOf(bias) || bt.getShape() != ArrayRef<int64_t>{n} ||
        bt.getElementType() != linear.getType().getElementType() ||
        op.getType() != linear.getType())
      return rewriter.notifyMatchFailure(op, "other operand is not a [N] bias parameter");
    rewriter.replaceOpWithNewOp<sc::LinearOp>(op, op.getType(), linear.getInput(),
                                              linear.getWeight(), bias,
                                              linear.getTransposeWeightAttr(), sc::LinearEpilogueAttr());
    return success();
  }
};

struct ScRaiseLinearPass : impl::ScRaiseLinearBase<ScRaiseLinearPass> {
  void runOnOperation() override {
    RewritePatternSet patterns(&getContext());
    patterns.add<MatMulToLinear, GemmToLinear, AddBiasToLinear>(&getContext());
    if (failed(applyPatternsGreedily(getOperation(), std::move(patterns))))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
