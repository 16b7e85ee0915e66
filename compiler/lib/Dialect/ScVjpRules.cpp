// Each differentiable sc op's VJP rule (VjpOpInterface, ScOpInterfaces.td): the ops that turn
// the gradients of its results into the gradients of its operands. Rules compose sc ops, each
// with its own sharding rule, step and kernels; the three backward computations that need
// kernels of their own are ops too (sc.attention_grad, sc.embedding_grad, sc.token_loss_grad,
// verified in ScGradOps.cpp). A rule builds at the builder's insertion point (sc-autodiff puts
// it after the forward program) and gives each op the forward op's location, so errors and
// profiles name the ONNX node and module path the gradient belongs to.
#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/STLExtras.h"

#include <numeric>

using namespace mlir;

namespace shardc::sc {
namespace {

RankedTensorType typeOf(Value v) { return cast<RankedTensorType>(v.getType()); }
RankedTensorType withShape(Value like, ArrayRef<int64_t> shape) {
  return RankedTensorType::get(shape, typeOf(like).getElementType());
}

// The gradient of an operand that was broadcast to `g`'s shape: summed over the dims the
// broadcast added or stretched, then given the operand's shape.
Value unbroadcast(OpBuilder &b, Location loc, Value g, RankedTensorType target) {
  ArrayRef<int64_t> gs = typeOf(g).getShape(), ts = target.getShape();
  if (gs == ts)
    return g;
  const int64_t lead = int64_t(gs.size()) - int64_t(ts.size());
  SmallVector<int64_t> axes, kept;
  for (int64_t i = 0; i < int64_t(gs.size()); ++i) {
    bool summed = i < lead || (ts[i - lead] == 1 && gs[i] != 1);
    if (summed)
      axes.push_back(i);
    kept.push_back(summed ? 1 : gs[i]);
  }
  Value r = g;
  if (!axes.empty())
    r = ReduceSumOp::create(b, loc, withShape(g, kept), g, b.getDenseI64ArrayAttr(axes), true);
  if (typeOf(r).getShape() != ts)
    r = ReshapeOp::create(b, loc, target, r);
  return r;
}

// A scalar constant of `like`'s element type, broadcast by the elementwise ops that read it.
Value scalar(OpBuilder &b, Location loc, Value like, double value) {
  auto type = RankedTensorType::get({}, typeOf(like).getElementType());
  return ConstantOp::create(b, loc, type,
                            DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), value)));
}

// The reduction axes [from, rank).
SmallVector<int64_t> tailAxes(int64_t from, int64_t rank) {
  SmallVector<int64_t> axes(rank - from);
  std::iota(axes.begin(), axes.end(), from);
  return axes;
}

// x [..., K] as [M, K].
Value flatten2d(OpBuilder &b, Location loc, Value x) {
  ArrayRef<int64_t> s = typeOf(x).getShape();
  if (s.size() == 2)
    return x;
  int64_t m = 1;
  for (int64_t d : s.drop_back())
    m *= d;
  return ReshapeOp::create(b, loc, withShape(x, {m, s.back()}), x);
}

Value transpose2d(OpBuilder &b, Location loc, Value x) {
  ArrayRef<int64_t> s = typeOf(x).getShape();
  return TransposeOp::create(b, loc, withShape(x, {s[1], s[0]}), x, b.getDenseI64ArrayAttr({1, 0}));
}

// An I64Attr axis (read back unsigned) counted from the end when negative.
int64_t normAxis(uint64_t raw, int64_t rank) {
  int64_t axis = int64_t(raw);
  return axis < 0 ? axis + rank : axis;
}

// The rows a normalisation over the dims [axis, rank) of `x` works on: means over them with
// the dims kept (shape `rowT`), and the reciprocal square root of a row statistic plus ε.
struct NormRows {
  OpBuilder &b;
  Location loc;
  RankedTensorType rowT;
  DenseI64ArrayAttr axes;

  NormRows(OpBuilder &b, Location loc, Value x, uint64_t rawAxis) : b(b), loc(loc) {
    RankedTensorType xt = typeOf(x);
    const int64_t rank = xt.getRank(), axis = normAxis(rawAxis, rank);
    SmallVector<int64_t> rowShape(xt.getShape());
    for (int64_t i = axis; i < rank; ++i)
      rowShape[i] = 1;
    rowT = withShape(x, rowShape);
    axes = b.getDenseI64ArrayAttr(tailAxes(axis, rank));
  }
  Value mean(Value v) { return ReduceMeanOp::create(b, loc, rowT, v, axes, true); }
  Value invSqrt(Value stat, Value like, double eps) {
    Value v = AddOp::create(b, loc, rowT, stat, scalar(b, loc, like, eps));
    return ReciprocalOp::create(b, loc, rowT, SqrtOp::create(b, loc, rowT, v));
  }
};

// v summed over one axis (an I64Attr, negative from the end), the dim kept (softmax rows).
Value sumOverAxis(OpBuilder &b, Location loc, Value v, uint64_t rawAxis) {
  RankedTensorType t = typeOf(v);
  int64_t axis = normAxis(rawAxis, t.getRank());
  SmallVector<int64_t> rowShape(t.getShape());
  rowShape[axis] = 1;
  return ReduceSumOp::create(b, loc, withShape(v, rowShape), v, b.getDenseI64ArrayAttr({axis}), true);
}

// A rule for an op whose only result gradient is `g` (the common case).
Value onlyGrad(ArrayRef<Value> resultGrads) { return resultGrads.empty() ? Value() : resultGrads[0]; }

} // namespace

// Elementwise arithmetic: operands broadcast to the result, so their gradients sum back.
LogicalResult AddOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg);
  for (unsigned i = 0; i < 2; ++i)
    if (wanted[i])
      og[i] = unbroadcast(b, getLoc(), g, typeOf(getOperand(i)));
  return success();
}
LogicalResult SubOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg);
  if (wanted[0])
    og[0] = unbroadcast(b, getLoc(), g, typeOf(getLhs()));
  if (wanted[1])
    og[1] = unbroadcast(b, getLoc(), NegOp::create(b, getLoc(), typeOf(g), g), typeOf(getRhs()));
  return success();
}
LogicalResult MulOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg);
  if (wanted[0])
    og[0] = unbroadcast(b, getLoc(), MulOp::create(b, getLoc(), typeOf(g), g, getRhs()), typeOf(getLhs()));
  if (wanted[1])
    og[1] = unbroadcast(b, getLoc(), MulOp::create(b, getLoc(), typeOf(g), g, getLhs()), typeOf(getRhs()));
  return success();
}
// d(a/b) = g/b for a, and −(g/b)·(a/b) = −g·a/b² for b.
LogicalResult DivOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg);
  Location loc = getLoc();
  Value gOverB = DivOp::create(b, loc, typeOf(g), g, getRhs());
  if (wanted[0])
    og[0] = unbroadcast(b, loc, gOverB, typeOf(getLhs()));
  if (wanted[1]) {
    Value t = MulOp::create(b, loc, typeOf(g), gOverB, getResult());
    og[1] = unbroadcast(b, loc, NegOp::create(b, loc, typeOf(g), t), typeOf(getRhs()));
  }
  return success();
}
LogicalResult NegOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = NegOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg));
  return success();
}
// silu'(x) = σ(x)(1 + x(1 − σ(x))): one formula row, silu_grad(x, g).
LogicalResult SiluOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = SiluGradOp::create(b, getLoc(), typeOf(getInput()), getInput(), onlyGrad(rg));
  return success();
}
// GELU's derivative, exact or tanh-approximated: one formula row each, f(x, g).
LogicalResult GeluOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Type t = typeOf(getInput());
  og[0] = getApproximate() == GeluApproximation::Tanh
              ? GeluTanhGradOp::create(b, getLoc(), t, getInput(), onlyGrad(rg)).getResult()
              : GeluErfGradOp::create(b, getLoc(), t, getInput(), onlyGrad(rg)).getResult();
  return success();
}
LogicalResult CastOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = CastOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg));
  return success();
}

// Unary math: g times the derivative, written with the op's result where that is cheaper.
LogicalResult ExpOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = MulOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg), getResult());
  return success();
}
LogicalResult LogOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = DivOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg), getInput());
  return success();
}
// sqrt'(x) = 1 / (2·sqrt(x)).
LogicalResult SqrtOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  Value half = MulOp::create(b, loc, t, onlyGrad(rg), scalar(b, loc, getInput(), 0.5));
  og[0] = DivOp::create(b, loc, t, half, getResult());
  return success();
}
// (1/x)' = −1/x² = −y².
LogicalResult ReciprocalOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  Value y2 = MulOp::create(b, loc, t, getResult(), getResult());
  og[0] = NegOp::create(b, loc, t, MulOp::create(b, loc, t, onlyGrad(rg), y2));
  return success();
}
// tanh' = 1 − y².
LogicalResult TanhOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  Value y2 = MulOp::create(b, loc, t, getResult(), getResult());
  og[0] = MulOp::create(b, loc, t, onlyGrad(rg), SubOp::create(b, loc, t, scalar(b, loc, getInput(), 1.0), y2));
  return success();
}
// σ' = y·(1 − y).
LogicalResult SigmoidOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  Value oneMinus = SubOp::create(b, loc, t, scalar(b, loc, getInput(), 1.0), getResult());
  og[0] = MulOp::create(b, loc, t, onlyGrad(rg), MulOp::create(b, loc, t, getResult(), oneMinus));
  return success();
}
// erf'(x) = 2/√π · exp(−x²).
LogicalResult ErfOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  Value x = getInput();
  RankedTensorType t = typeOf(x);
  Value e = ExpOp::create(b, loc, t, NegOp::create(b, loc, t, MulOp::create(b, loc, t, x, x)));
  Value d = MulOp::create(b, loc, t, e, scalar(b, loc, x, 1.1283791670955126)); // 2/√π
  og[0] = MulOp::create(b, loc, t, onlyGrad(rg), d);
  return success();
}
LogicalResult CosOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  Value s = SinOp::create(b, loc, t, getInput());
  og[0] = NegOp::create(b, loc, t, MulOp::create(b, loc, t, onlyGrad(rg), s));
  return success();
}
LogicalResult SinOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  og[0] = MulOp::create(b, loc, t, onlyGrad(rg), CosOp::create(b, loc, t, getInput()));
  return success();
}
// The bool mask `lhs < rhs` (sc.less), broadcast numpy-style.
static Value lessMask(OpBuilder &b, Location loc, Value lhs, Value rhs, ArrayRef<int64_t> shape) {
  return LessOp::create(b, loc, RankedTensorType::get(shape, b.getI1Type()), lhs, rhs);
}
// relu'(x) = [x > 0] (0 at 0, as PyTorch).
LogicalResult ReluOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  Value x = getInput();
  RankedTensorType t = typeOf(x);
  Value zero = scalar(b, loc, x, 0.0);
  og[0] = WhereOp::create(b, loc, t, lessMask(b, loc, zero, x, t.getShape()), onlyGrad(rg), zero);
  return success();
}
// leaky_relu'(x) = 1 where x > 0, else alpha (PyTorch's choice at 0); alpha is a constant.
LogicalResult LeakyReluOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (wanted[1])
    return emitOpError() << "differentiates x only; its slope alpha must be a constant";
  Location loc = getLoc();
  Value x = getLhs(), g = onlyGrad(rg);
  RankedTensorType t = typeOf(x);
  Value scaled = MulOp::create(b, loc, t, g, getRhs());
  og[0] = WhereOp::create(b, loc, t, lessMask(b, loc, scalar(b, loc, x, 0.0), x, t.getShape()), g, scaled);
  return success();
}
// |x|' = sign(x) (0 at 0).
LogicalResult AbsOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  RankedTensorType t = typeOf(getInput());
  og[0] = MulOp::create(b, loc, t, onlyGrad(rg), SignOp::create(b, loc, t, getInput()));
  return success();
}
// min and max: the gradient goes to the chosen operand, halved on ties (as PyTorch's
// minimum/maximum), then summed back over broadcast dims.
static void minMaxVjp(OpBuilder &b, Location loc, Value lhs, Value rhs, Value g, bool isMax, ArrayRef<bool> wanted,
                      SmallVectorImpl<Value> &og) {
  RankedTensorType t = typeOf(g);
  Value zero = scalar(b, loc, g, 0.0);
  Value half = MulOp::create(b, loc, t, g, scalar(b, loc, g, 0.5));
  Value tie = EqualOp::create(b, loc, RankedTensorType::get(t.getShape(), b.getI1Type()), lhs, rhs);
  // lhs wins where lhs > rhs (max) or lhs < rhs (min).
  Value lhsWins = isMax ? lessMask(b, loc, rhs, lhs, t.getShape()) : lessMask(b, loc, lhs, rhs, t.getShape());
  Value rhsWins = isMax ? lessMask(b, loc, lhs, rhs, t.getShape()) : lessMask(b, loc, rhs, lhs, t.getShape());
  for (auto [i, wins, operand] : {std::tuple{0, lhsWins, lhs}, std::tuple{1, rhsWins, rhs}}) {
    if (!wanted[i])
      continue;
    Value onTies = WhereOp::create(b, loc, t, tie, half, zero);
    og[i] = unbroadcast(b, loc, WhereOp::create(b, loc, t, wins, g, onTies), typeOf(operand));
  }
}
LogicalResult MinOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  minMaxVjp(b, getLoc(), getLhs(), getRhs(), onlyGrad(rg), false, wanted, og);
  return success();
}
LogicalResult MaxOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  minMaxVjp(b, getLoc(), getLhs(), getRhs(), onlyGrad(rg), true, wanted, og);
  return success();
}
// y = x^e: dx = g·e·x^(e−1), de = g·y·log(x) (an exponent of another type is cast first).
LogicalResult PowOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  Value x = getLhs(), g = onlyGrad(rg);
  RankedTensorType t = typeOf(g);
  Value e = getRhs();
  if (typeOf(e).getElementType() != t.getElementType())
    e = CastOp::create(b, loc, withShape(x, typeOf(e).getShape()), e);
  if (wanted[0]) {
    Value em1 = SubOp::create(b, loc, typeOf(e), e, scalar(b, loc, x, 1.0));
    Value d = MulOp::create(b, loc, t, e, PowOp::create(b, loc, t, x, em1));
    og[0] = unbroadcast(b, loc, MulOp::create(b, loc, t, g, d), typeOf(x));
  }
  if (wanted[1]) {
    Value d = MulOp::create(b, loc, t, getResult(), LogOp::create(b, loc, typeOf(x), x));
    og[1] = unbroadcast(b, loc, MulOp::create(b, loc, t, g, d), typeOf(getRhs()));
  }
  return success();
}
// where(c, a, b): g goes to a where c holds, to b elsewhere.
LogicalResult WhereOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  Value g = onlyGrad(rg), zero = scalar(b, loc, g, 0.0);
  RankedTensorType t = typeOf(g);
  if (wanted[1])
    og[1] = unbroadcast(b, loc, WhereOp::create(b, loc, t, getCondition(), g, zero), typeOf(getLhs()));
  if (wanted[2])
    og[2] = unbroadcast(b, loc, WhereOp::create(b, loc, t, getCondition(), zero, g), typeOf(getRhs()));
  return success();
}
// log_softmax: dx = g − softmax(x)·Σ g over the axis, softmax(x) = exp(y).
LogicalResult LogSoftmaxOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg), y = getResult();
  Location loc = getLoc();
  RankedTensorType t = typeOf(y);
  Value sum = sumOverAxis(b, loc, g, getAxis());
  og[0] = SubOp::create(b, loc, t, g, MulOp::create(b, loc, t, ExpOp::create(b, loc, t, y), sum));
  return success();
}

// y = a·b (numpy matmul, batch dims broadcast): da = g·bᵀ, db = aᵀ·g over the last two dims,
// summed back over the batch dims an operand was broadcast along.
static Value swapLastTwo(OpBuilder &b, Location loc, Value x) {
  RankedTensorType t = typeOf(x);
  const int64_t r = t.getRank();
  SmallVector<int64_t> perm(r), shape(t.getShape());
  std::iota(perm.begin(), perm.end(), 0);
  std::swap(perm[r - 1], perm[r - 2]);
  std::swap(shape[r - 1], shape[r - 2]);
  return TransposeOp::create(b, loc, withShape(x, shape), x, b.getDenseI64ArrayAttr(perm));
}
LogicalResult MatMulOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value lhs = getLhs(), rhs = getRhs(), g = onlyGrad(rg);
  if (typeOf(lhs).getRank() < 2 || typeOf(rhs).getRank() < 2)
    return emitOpError() << "has a vector operand; its VJP is written for operands of rank >= 2";
  Location loc = getLoc();
  ArrayRef<int64_t> gs = typeOf(g).getShape();
  const int64_t r = gs.size();
  if (wanted[0]) {
    SmallVector<int64_t> shape(gs);
    shape[r - 1] = typeOf(lhs).getShape().back();
    Value da = MatMulOp::create(b, loc, withShape(g, shape), g, swapLastTwo(b, loc, rhs));
    og[0] = unbroadcast(b, loc, da, typeOf(lhs));
  }
  if (wanted[1]) {
    SmallVector<int64_t> shape(gs);
    shape[r - 2] = typeOf(rhs).getShape()[typeOf(rhs).getRank() - 2];
    Value db = MatMulOp::create(b, loc, withShape(g, shape), swapLastTwo(b, loc, lhs), g);
    og[1] = unbroadcast(b, loc, db, typeOf(rhs));
  }
  return success();
}

// Data movement: the inverse movement.
LogicalResult ReshapeOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = ReshapeOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg));
  return success();
}
LogicalResult TransposeOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  ArrayRef<int64_t> perm = getPerm();
  SmallVector<int64_t> inverse(perm.size());
  for (auto [i, p] : llvm::enumerate(perm))
    inverse[p] = int64_t(i);
  og[0] = TransposeOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg), b.getDenseI64ArrayAttr(inverse));
  return success();
}

LogicalResult UnsqueezeOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = ReshapeOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg));
  return success();
}
LogicalResult SqueezeOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = ReshapeOp::create(b, getLoc(), typeOf(getInput()), onlyGrad(rg));
  return success();
}
LogicalResult CopyOp::buildVjp(OpBuilder &, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = onlyGrad(rg);
  return success();
}
LogicalResult ExpandOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = unbroadcast(b, getLoc(), onlyGrad(rg), typeOf(getInput()));
  return success();
}
// gather(data, indices, axis): the gathered rows' gradients added back into a zeroed data,
// which is sc.embedding_grad once the axis is the leading dim and the rest is flattened:
// dy (outer + idx + inner) is moved to idx + inner + outer, scattered into [n, inner·outer]
// and moved back.
LogicalResult GatherOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (!wanted[0])
    return success();
  Location loc = getLoc();
  RankedTensorType dt = typeOf(getData());
  ArrayRef<int64_t> data = dt.getShape();
  const int64_t rank = dt.getRank(), axis = normAxis(getAxis(), rank);
  const int64_t idxRank = typeOf(getIndices()).getRank();
  Value g = onlyGrad(rg);
  // dy's dims: [0, axis) outer, then idxRank index dims, then the inner dims.
  SmallVector<int64_t> perm;
  for (int64_t i = 0; i < idxRank + (rank - 1 - axis); ++i)
    perm.push_back(axis + i);
  for (int64_t i = 0; i < axis; ++i)
    perm.push_back(i);
  ArrayRef<int64_t> gs = typeOf(g).getShape();
  SmallVector<int64_t> moved;
  for (int64_t p : perm)
    moved.push_back(gs[p]);
  if (axis != 0)
    g = TransposeOp::create(b, loc, withShape(g, moved), g, b.getDenseI64ArrayAttr(perm));
  int64_t width = 1;
  for (int64_t i = 0; i < rank; ++i)
    if (i != axis)
      width *= data[i];
  SmallVector<int64_t> rows(typeOf(getIndices()).getShape());
  rows.push_back(width);
  Value dy = ReshapeOp::create(b, loc, withShape(g, rows), g);
  // Constant indices counted from the end (x[:, -1]) are wrapped here; embedding_grad reads
  // indices in [0, n).
  Value indices = getIndices();
  if (auto c = indices.getDefiningOp<ConstantOp>()) {
    if (auto dense = dyn_cast<DenseIntElementsAttr>(c.getValue())) {
      SmallVector<APInt> wrapped;
      bool negative = false;
      for (APInt v : dense.getValues<APInt>()) {
        negative |= v.isNegative();
        wrapped.push_back(v.isNegative() ? v + APInt(v.getBitWidth(), uint64_t(data[axis])) : v);
      }
      if (negative)
        indices = ConstantOp::create(b, loc, typeOf(indices), DenseIntElementsAttr::get(typeOf(indices), wrapped));
    }
  }
  Value table = EmbeddingGradOp::create(b, loc, withShape(g, {data[axis], width}), indices, dy, Value(),
                                        IntegerAttr(), IntegerAttr());
  // [n, inner..., outer...] back to the data's order.
  SmallVector<int64_t> tableShape{data[axis]};
  for (int64_t i = axis + 1; i < rank; ++i)
    tableShape.push_back(data[i]);
  for (int64_t i = 0; i < axis; ++i)
    tableShape.push_back(data[i]);
  Value t = ReshapeOp::create(b, loc, withShape(g, tableShape), table);
  if (axis == 0) {
    og[0] = t;
    return success();
  }
  // Position of data dim d in tableShape: axis -> 0, d > axis -> d - axis, d < axis -> rank - axis + d.
  SmallVector<int64_t> back;
  for (int64_t d = 0; d < rank; ++d)
    back.push_back(d == axis ? 0 : d > axis ? d - axis : rank - axis + d);
  og[0] = TransposeOp::create(b, loc, dt, t, b.getDenseI64ArrayAttr(back));
  return success();
}

// A slice's gradient is g in place, zeros around it: one concat per sliced dim (unit steps).
LogicalResult SliceOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  ArrayRef<int64_t> in = typeOf(getInput()).getShape();
  Value g = onlyGrad(rg);
  for (auto [dim, start] : llvm::enumerate(getStarts())) {
    if (getSteps()[dim] != 1)
      return emitOpError() << "has a step of " << getSteps()[dim] << "; its VJP is written for unit steps";
    SmallVector<int64_t> shape(typeOf(g).getShape());
    const int64_t before = start, after = in[dim] - start - shape[dim];
    if (before == 0 && after == 0)
      continue;
    SmallVector<Value> parts;
    auto zeros = [&](int64_t n) {
      SmallVector<int64_t> zs(shape);
      zs[dim] = n;
      RankedTensorType t = withShape(g, zs);
      return ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, b.getFloatAttr(t.getElementType(), 0.0)));
    };
    if (before)
      parts.push_back(zeros(before));
    parts.push_back(g);
    if (after)
      parts.push_back(zeros(after));
    shape[dim] = in[dim];
    g = ConcatOp::create(b, loc, withShape(g, shape), parts, b.getI64IntegerAttr(int64_t(dim)));
  }
  og[0] = g;
  return success();
}
LogicalResult ConcatOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg);
  const int64_t rank = typeOf(g).getRank(), axis = normAxis(getAxis(), rank);
  // expert_tp's gate and up halves (docs/moe.md): a split of the gradient keeps the halves'
  // layout (each half split on I), where slices of a split axis would gather it first.
  if ((*this)->hasAttr("sc.expert_halves")) {
    auto split = SplitOp::create(b, getLoc(), getInputs().getTypes(), g, getAxisAttr());
    split->setAttr("sc.expert_halves", b.getUnitAttr());
    for (auto [i, r] : llvm::enumerate(split.getResults()))
      if (wanted[i])
        og[i] = r;
    return success();
  }
  SmallVector<int64_t> starts(rank, 0), ones(rank, 1);
  for (auto [i, v] : llvm::enumerate(getInputs())) {
    if (wanted[i])
      og[i] = SliceOp::create(b, getLoc(), typeOf(v), g, b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(ones));
    starts[axis] += typeOf(v).getShape()[axis];
  }
  return success();
}
// A split's gradient is its parts' gradients concatenated (zeros for a part none flows to).
LogicalResult SplitOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Location loc = getLoc();
  SmallVector<Value> parts;
  for (auto [r, g] : llvm::zip(getResults(), rg)) {
    if (g) {
      parts.push_back(g);
      continue;
    }
    RankedTensorType t = typeOf(r);
    parts.push_back(ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, b.getFloatAttr(t.getElementType(), 0.0))));
  }
  og[0] = ConcatOp::create(b, loc, typeOf(getInput()), parts, getAxisAttr());
  return success();
}

// The plan's layout holds for the gradient too: Megatron's sequence-parallel all-gather
// becomes a reduce-scatter of the gradient, a replicated output's gradient an all-reduce.
LogicalResult ShardingConstraintOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = ShardingConstraintOp::create(b, getLoc(), onlyGrad(rg).getType(), onlyGrad(rg), getAxes(), getSharding());
  return success();
}

// y = x·W (+ b), W [K, N], or x·Wᵀ with W [N, K] (transpose_weight):
// dx = g·Wᵀ (resp. g·W), a linear with the other orientation; dW = x₂ᵀ·g₂ (resp. g₂ᵀ·x₂) over
// the flattened rows; db = g summed over the rows.
LogicalResult LinearOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (getEpilogue())
    return emitOpError() << "has a fused epilogue; sc-autodiff runs before sc-fuse-linear-epilogue";
  Value g = onlyGrad(rg);
  Location loc = getLoc();
  const bool t = getTransposeWeight();
  if (wanted[0])
    og[0] = LinearOp::create(b, loc, typeOf(getInput()), g, getWeight(), Value(), !t, nullptr);
  if (wanted[1]) {
    Value x2 = flatten2d(b, loc, getInput()), g2 = flatten2d(b, loc, g);
    og[1] = t ? MatMulOp::create(b, loc, typeOf(getWeight()), transpose2d(b, loc, g2), x2)
              : MatMulOp::create(b, loc, typeOf(getWeight()), transpose2d(b, loc, x2), g2);
  }
  if (getBias() && wanted[2]) {
    int64_t rank = typeOf(g).getRank();
    og[2] = rank == 1 ? g
                      : ReduceSumOp::create(b, loc, typeOf(getBias()), g, b.getDenseI64ArrayAttr(tailAxes(0, rank - 1)),
                                            false)
                            .getResult();
  }
  return success();
}

// A sum's gradient is g spread back over the reduced dims (a mean's divided by their count).
static Value spread(OpBuilder &b, Location loc, Value g, Value input, ArrayRef<int64_t> axes, bool keepdims) {
  RankedTensorType in = typeOf(input);
  SmallVector<int64_t> kept(in.getShape());
  for (int64_t a : axes)
    kept[normAxis(a, in.getRank())] = 1;
  Value k = keepdims ? g : ReshapeOp::create(b, loc, withShape(g, kept), g).getResult();
  if (typeOf(k).getShape() == in.getShape())
    return k;
  return ExpandOp::create(b, loc, withShape(g, in.getShape()), k);
}
static SmallVector<int64_t> reducedAxes(Value input, ArrayRef<int64_t> axes) {
  if (!axes.empty())
    return SmallVector<int64_t>(axes);
  return tailAxes(0, typeOf(input).getRank()); // no axes: all dims
}
LogicalResult ReduceSumOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  og[0] = spread(b, getLoc(), onlyGrad(rg), getInput(), reducedAxes(getInput(), getAxes()), getKeepdims());
  return success();
}
LogicalResult ReduceMeanOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  SmallVector<int64_t> axes = reducedAxes(getInput(), getAxes());
  int64_t n = 1;
  for (int64_t a : axes)
    n *= typeOf(getInput()).getShape()[normAxis(a, typeOf(getInput()).getRank())];
  Value g = onlyGrad(rg);
  Value scaled = MulOp::create(b, getLoc(), typeOf(g), g, scalar(b, getLoc(), g, 1.0 / double(n)));
  og[0] = spread(b, getLoc(), scaled, getInput(), axes, getKeepdims());
  return success();
}

// y = softmax(x): dx = y·(g − Σ g·y) over the axis.
LogicalResult SoftmaxOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool>, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg), y = getResult();
  Location loc = getLoc();
  RankedTensorType t = typeOf(y);
  Value dot = sumOverAxis(b, loc, MulOp::create(b, loc, t, g, y), getAxis());
  og[0] = MulOp::create(b, loc, t, y, SubOp::create(b, loc, t, g, dot));
  return success();
}

// y = (x − μ)·r·scale + bias with r = (var + ε)^-½ over [axis, rank): with n = (x − μ)·r and
// gs = g·scale, dx = r·(gs − mean(gs) − n·mean(gs·n)); dscale = Σ g·n, dbias = Σ g over the
// other dims.
LogicalResult LayerNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg), x = getInput();
  Location loc = getLoc();
  RankedTensorType xt = typeOf(x);
  NormRows rows(b, loc, x, getAxis());
  Value centered = SubOp::create(b, loc, xt, x, rows.mean(x));
  Value r = rows.invSqrt(rows.mean(MulOp::create(b, loc, xt, centered, centered)), x, getEpsilon().convertToDouble());
  Value n = MulOp::create(b, loc, xt, centered, r);
  if (wanted[1])
    og[1] = unbroadcast(b, loc, MulOp::create(b, loc, xt, g, n), typeOf(getScale()));
  if (getBias() && wanted[2])
    og[2] = unbroadcast(b, loc, g, typeOf(getBias()));
  if (wanted[0]) {
    Value gs = MulOp::create(b, loc, xt, g, getScale());
    Value inner = SubOp::create(b, loc, xt, SubOp::create(b, loc, xt, gs, rows.mean(gs)),
                                MulOp::create(b, loc, xt, n, rows.mean(MulOp::create(b, loc, xt, gs, n))));
    og[0] = MulOp::create(b, loc, xt, inner, r);
  }
  return success();
}

// y = x·r·scale with r = (mean(x²) + ε)^-½ over the normalised dims [axis, rank):
// dscale = Σ g·x·r over the other dims; dx = r·(g·scale − x·r·mean(g·scale·x·r)).
LogicalResult RmsNormOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  Value g = onlyGrad(rg), x = getInput();
  Location loc = getLoc();
  RankedTensorType xt = typeOf(x);
  NormRows rows(b, loc, x, getAxis());
  Value r = rows.invSqrt(rows.mean(MulOp::create(b, loc, xt, x, x)), x, getEpsilon().convertToDouble());
  Value n = MulOp::create(b, loc, xt, x, r);
  if (wanted[1])
    og[1] = unbroadcast(b, loc, MulOp::create(b, loc, xt, g, n), typeOf(getScale()));
  if (wanted[0]) {
    Value gs = MulOp::create(b, loc, xt, g, getScale());
    Value dot = rows.mean(MulOp::create(b, loc, xt, gs, n));
    Value inner = SubOp::create(b, loc, xt, gs, MulOp::create(b, loc, xt, n, dot));
    og[0] = MulOp::create(b, loc, xt, inner, r);
  }
  return success();
}

// y = x·cos + rot(x)·sin with rot(x) = [−x₂, x₁] over the last dim's halves, so
// dx = g·cos + rotᵀ(g·sin) with rotᵀ(u) = [u₂, −u₁]. The tables are constants (no gradient).
LogicalResult RotaryOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (wanted[1] || wanted[2])
    return emitOpError() << "has a cos/sin table that depends on a trainable parameter; sc-autodiff "
                            "differentiates rotary tables only as constants";
  Value g = onlyGrad(rg);
  Location loc = getLoc();
  RankedTensorType xt = typeOf(getInput());
  const int64_t rank = xt.getRank(), d = xt.getShape().back(), half = d / 2;
  // Mixed precision keeps the tables f32 while x is 16-bit (the kernel widens them): the
  // gradient's arithmetic takes them in its own type.
  auto asG = [&](Value table) -> Value {
    Type et = typeOf(g).getElementType();
    if (typeOf(table).getElementType() == et)
      return table;
    return CastOp::create(b, loc, RankedTensorType::get(typeOf(table).getShape(), et), table);
  };
  Value cos = asG(getCos()), sin = asG(getSin());
  Value u = MulOp::create(b, loc, xt, g, sin);
  SmallVector<int64_t> halfShape(xt.getShape());
  halfShape.back() = half;
  SmallVector<int64_t> zeros(rank, 0), ones(rank, 1), mid(rank, 0);
  mid.back() = half;
  RankedTensorType ht = withShape(u, halfShape);
  Value u1 = SliceOp::create(b, loc, ht, u, b.getDenseI64ArrayAttr(zeros), b.getDenseI64ArrayAttr(ones));
  Value u2 = SliceOp::create(b, loc, ht, u, b.getDenseI64ArrayAttr(mid), b.getDenseI64ArrayAttr(ones));
  Value rotT = ConcatOp::create(b, loc, xt, ValueRange{u2, NegOp::create(b, loc, ht, u1)},
                                b.getI64IntegerAttr(rank - 1));
  og[0] = AddOp::create(b, loc, xt, MulOp::create(b, loc, xt, g, cos), rotT);
  return success();
}

// The backward needs the forward's log-sum-exp: the rule rebuilds the forward op with its
// `lse` result in place (sc-autodiff erases the old one once nothing reads it).
LogicalResult AttentionOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (getMask() && wanted[3])
    return emitOpError() << "has a mask that depends on a trainable parameter; sc-autodiff treats masks as constants";
  Location loc = getLoc();
  AttentionOp forward = *this;
  if (!getLse()) {
    OpBuilder::InsertionGuard guard(b);
    b.setInsertionPoint(*this);
    RankedTensorType q = typeOf(getQuery());
    auto lseType = RankedTensorType::get(q.getShape().drop_back(), b.getF32Type());
    forward = AttentionOp::create(b, loc, getResult().getType(), lseType, getQuery(), getKey(), getValue(),
                                  getMask(), getScaleAttr(), getCausalAttr());
    getResult().replaceAllUsesWith(forward.getResult());
  }
  auto grad = AttentionGradOp::create(b, loc, TypeRange{getQuery().getType(), getKey().getType(), getValue().getType()},
                                      getQuery(), getKey(), getValue(), forward.getResult(), forward.getLse(),
                                      onlyGrad(rg), getMask(), getScaleAttr(), getCausalAttr());
  for (unsigned i = 0; i < 3; ++i)
    if (wanted[i])
      og[i] = grad.getResult(i);
  return success();
}

LogicalResult EmbeddingOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (getRowStart())
    return emitOpError() << "is vocabulary-split already; sc-autodiff runs on the global program";
  if (!wanted[0])
    return success();
  Value grad = EmbeddingGradOp::create(b, getLoc(), typeOf(getTable()), getIds(), onlyGrad(rg), Value(),
                                       IntegerAttr(), getPaddingIdxAttr());
  // A vocabulary-split table (embedding_rowwise, or a tied colwise lm_head: sc-apply-plan splits
  // its rows): its gradient is asked for split the same way, over those axes only (the batch's
  // Partial flows through), so it is sliced before any data-parallel reduction, and
  // sc-partition makes the slice of the embedding gradient compute only this rank's rows.
  Value table = getTable();
  if (auto c = table.getDefiningOp<CastOp>())
    table = c.getInput();
  Operation *def = table.getDefiningOp();
  auto attrs = def ? def->getAttrOfType<ArrayAttr>("sc.sharding") : ArrayAttr();
  auto split = attrs && attrs.size() == 1 ? dyn_cast<ShardingAttr>(attrs[0]) : ShardingAttr();
  if (split && split.getDims().size() == 2 && !split.getDims()[0].empty()) {
    ArrayAttr axes = split.getDims()[0];
    auto rows = ShardingAttr::get(getContext(), {axes, b.getArrayAttr({})}, {}, {});
    grad = ShardingConstraintOp::create(b, getLoc(), grad.getType(), grad, axes, rows);
  }
  og[0] = grad;
  return success();
}

// Only the sum carries a gradient (the count is a count of labels).
LogicalResult TokenLossOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted, SmallVectorImpl<Value> &og) {
  if (wanted[0] && rg[0])
    og[0] = TokenLossGradOp::create(b, getLoc(), typeOf(getLogits()), getLogits(), getLabels(), rg[0]);
  return success();
}

// The vocabulary-parallel loss (sc-add-loss). The rows' maxima reach both ops through
// sc.stop_gradient (whose result sc-autodiff never differentiates), so no gradient is asked
// of them; a rule asked for one refuses.
static LogicalResult maxNeedsNoGradient(Operation *op, bool wanted) {
  if (!wanted)
    return success();
  return op->emitOpError() << "cannot differentiate its row maxima: read them through sc.stop_gradient (the "
                              "loss does not depend on the shift of its log-sum-exp)";
}
LogicalResult TokenLossStatsOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted,
                                         SmallVectorImpl<Value> &og) {
  if (failed(maxNeedsNoGradient(*this, wanted[2])))
    return failure();
  if (!wanted[0])
    return success();
  Location loc = getLoc();
  RankedTensorType rowT = typeOf(getMax());
  auto zeros = [&]() { return ConstantOp::create(b, loc, rowT, DenseElementsAttr::get(rowT, b.getZeroAttr(rowT.getElementType()))); };
  Value dsumexp = rg[0] ? rg[0] : zeros(), dpicked = rg[1] ? rg[1] : zeros();
  og[0] = TokenLossStatsGradOp::create(b, loc, typeOf(getLogits()), getLogits(), getLabels(), getMax(), dsumexp,
                                       dpicked, getVocabStart());
  return success();
}
// sum = Σ_counted log(sumexp) + max − picked: d sumexp = dsum / sumexp, d picked = −dsum on
// the counted rows (label ≠ −100), zero on the others.
LogicalResult TokenLossCombineOp::buildVjp(OpBuilder &b, ArrayRef<Value> rg, ArrayRef<bool> wanted,
                                           SmallVectorImpl<Value> &og) {
  if (failed(maxNeedsNoGradient(*this, wanted[2])))
    return failure();
  if (!rg[0] || !(wanted[0] || wanted[1]))
    return success();
  Location loc = getLoc();
  RankedTensorType rowT = typeOf(getSumexp()), labelsT = typeOf(getLabels());
  auto minus100 = ConstantOp::create(b, loc, RankedTensorType::get({}, labelsT.getElementType()),
                                     DenseElementsAttr::get(RankedTensorType::get({}, labelsT.getElementType()),
                                                            b.getIntegerAttr(labelsT.getElementType(), -100)));
  Value ignored = EqualOp::create(b, loc, RankedTensorType::get(rowT.getShape(), b.getI1Type()), getLabels(), minus100);
  Value zero = scalar(b, loc, getSumexp(), 0.0);
  Value dsum = rg[0];
  if (typeOf(dsum).getElementType() != rowT.getElementType())
    dsum = CastOp::create(b, loc, RankedTensorType::get({}, rowT.getElementType()), dsum);
  if (wanted[0])
    og[0] = WhereOp::create(b, loc, rowT, ignored, zero, DivOp::create(b, loc, rowT, dsum, getSumexp()));
  if (wanted[1]) {
    Value minusDsum = NegOp::create(b, loc, typeOf(dsum), dsum);
    og[1] = WhereOp::create(b, loc, rowT, ignored, zero, minusDsum);
  }
  return success();
}

} // namespace shardc::sc
