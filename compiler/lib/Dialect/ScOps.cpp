// Shape verification for every sc op (ONNX semantics with static shapes) and the folders
// that turn shape computations into constants.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Diagnostics.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/SmallSet.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using namespace shardc::sc;

namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }
ArrayRef<int64_t> shapeOf(Value v) { return tensorType(v).getShape(); }
Type elemOf(Value v) { return tensorType(v).getElementType(); }

std::string shapeStr(ArrayRef<int64_t> shape) {
  if (shape.empty())
    return "[]";
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? "x" : "") + std::to_string(d);
  return s + "]";
}

LogicalResult verifyBroadcast(Operation *op, ValueRange operands, Value result) {
  SmallVector<int64_t> shape(shapeOf(operands.front()));
  for (Value v : operands.drop_front()) {
    SmallVector<int64_t> next;
    if (!broadcastShapes(shape, shapeOf(v), next))
      return op->emitOpError() << "operand shapes " << shapeStr(shape) << " and "
                               << shapeStr(shapeOf(v)) << " do not broadcast";
    shape = next;
  }
  if (ArrayRef<int64_t>(shape) != shapeOf(result))
    return op->emitOpError() << "result shape " << shapeStr(shapeOf(result))
                             << " differs from the broadcast shape " << shapeStr(shape);
  return success();
}

LogicalResult verifySameElement(Operation *op, Value a, Value b, StringRef what) {
  if (elemOf(a) != elemOf(b))
    return op->emitOpError() << what << " element types differ: " << elemOf(a) << " vs "
                             << elemOf(b);
  return success();
}

LogicalResult verifyAxis(Operation *op, int64_t axis, int64_t rank, bool allowEnd = false) {
  int64_t hi = allowEnd ? rank : rank - 1;
  if (axis < -rank || axis > hi)
    return op->emitOpError() << "axis " << axis << " out of range for rank " << rank;
  return success();
}

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

template <typename BinOp> LogicalResult verifyBinary(BinOp op, bool boolResult, bool sameTypes) {
  if (sameTypes && failed(verifySameElement(op, op.getLhs(), op.getRhs(), "operand")))
    return failure();
  Type want = boolResult ? Type(IntegerType::get(op.getContext(), 1)) : elemOf(op.getLhs());
  if (elemOf(op.getResult()) != want)
    return op.emitOpError() << "result element type " << elemOf(op.getResult())
                            << " should be " << want;
  return verifyBroadcast(op, {op.getLhs(), op.getRhs()}, op.getResult());
}

template <typename UnOp> LogicalResult verifyUnary(UnOp op, bool boolResult, bool anyType) {
  if (shapeOf(op.getInput()) != shapeOf(op.getResult()))
    return op.emitOpError() << "result shape " << shapeStr(shapeOf(op.getResult()))
                            << " differs from the input shape " << shapeStr(shapeOf(op.getInput()));
  if (anyType)
    return success();
  Type want = boolResult ? Type(IntegerType::get(op.getContext(), 1)) : elemOf(op.getInput());
  if (elemOf(op.getResult()) != want)
    return op.emitOpError() << "result element type " << elemOf(op.getResult())
                            << " should be " << want;
  return success();
}

LogicalResult verifyReduce(Operation *op, Value in, Value out, ArrayRef<int64_t> axes,
                           bool keepdims) {
  int64_t rank = shapeOf(in).size();
  llvm::SmallSet<int64_t, 4> seen;
  for (int64_t a : axes) {
    if (a < 0 || a >= rank)
      return op->emitOpError() << "axis " << a << " out of range for rank " << rank
                               << " (axes are normalised at import)";
    if (!seen.insert(a).second)
      return op->emitOpError() << "axis " << a << " repeated";
  }
  SmallVector<int64_t> want;
  for (int64_t i = 0; i < rank; ++i) {
    if (seen.contains(i)) {
      if (keepdims)
        want.push_back(1);
    } else {
      want.push_back(shapeOf(in)[i]);
    }
  }
  if (ArrayRef<int64_t>(want) != shapeOf(out))
    return op->emitOpError() << "result shape " << shapeStr(shapeOf(out)) << " should be "
                             << shapeStr(want);
  return success();
}

LogicalResult verifyNormScale(Operation *op, Value in, Value scale, int64_t axis) {
  int64_t rank = shapeOf(in).size();
  if (failed(verifyAxis(op, axis, rank)))
    return failure();
  ArrayRef<int64_t> tail = shapeOf(in).drop_front(normAxis(axis, rank));
  SmallVector<int64_t> b;
  if (!broadcastShapes(tail, shapeOf(scale), b) || ArrayRef<int64_t>(b) != tail)
    return op->emitOpError() << "scale shape " << shapeStr(shapeOf(scale))
                             << " does not broadcast to the normalised dims " << shapeStr(tail);
  return success();
}

} // namespace

//===----------------------------------------------------------------------===//

LogicalResult ParamOp::verify() {
  if (getOffsetAttr().getInt() < 0) // I64Attr reads back as uint64_t
    return emitOpError() << "negative file offset " << getOffsetAttr().getInt();
  if (getTransform() == ParamTransform::Transpose && tensorType(getResult()).getRank() != 2)
    return emitOpError() << "transpose transform needs a 2-D parameter";
  return success();
}

LogicalResult ConstantOp::verify() {
  if (getValue().getType() != getResult().getType())
    return emitOpError() << "value type " << getValue().getType() << " differs from result type "
                         << getResult().getType();
  return success();
}
OpFoldResult ConstantOp::fold(FoldAdaptor) { return getValue(); }

// Formula ops (Sc_FormulaOp) are verified by ElementwiseOpInterface.
LogicalResult shardc::sc::verifyElementwiseFormulaOp(Operation *op) {
  Value result = op->getResult(0), first = op->getOperand(0);
  auto iface = cast<ElementwiseOpInterface>(op);
  static const std::vector<std::string> rows = rt::elementwiseFormulaNames();
  if (llvm::find(rows, iface.getFormula().str()) == rows.end())
    return op->emitOpError() << "names the formula '" << iface.getFormula()
                             << "', which is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)";
  if (op->getNumOperands() == 1) {
    if (shapeOf(first) != shapeOf(result))
      return op->emitOpError() << "result shape " << shapeStr(shapeOf(result))
                               << " differs from the input shape " << shapeStr(shapeOf(first));
  } else {
    if (iface.hasUniformOperandTypes())
      for (Value v : op->getOperands().drop_front())
        if (failed(verifySameElement(op, first, v, "operand")))
          return failure();
    if (failed(verifyBroadcast(op, op->getOperands(), result)))
      return failure();
  }
  if (elemOf(result) != elemOf(first))
    return op->emitOpError() << "result element type " << elemOf(result) << " should be " << elemOf(first);
  return success();
}

LogicalResult PowOp::verify() { return verifyBinary(*this, false, false); }
bool PowOp::hasUniformOperandTypes() { return false; }
LogicalResult EqualOp::verify() { return verifyBinary(*this, true, true); }

LogicalResult WhereOp::verify() {
  if (!elemOf(getCondition()).isInteger(1))
    return emitOpError() << "condition must be i1, got " << elemOf(getCondition());
  if (failed(verifySameElement(*this, getLhs(), getRhs(), "branch")) ||
      failed(verifySameElement(*this, getLhs(), getResult(), "result")))
    return failure();
  return verifyBroadcast(*this, {getCondition(), getLhs(), getRhs()}, getResult());
}

LogicalResult IsNaNOp::verify() { return verifyUnary(*this, true, false); }
LogicalResult CastOp::verify() { return verifyUnary(*this, false, true); }
LogicalResult CopyOp::verify() { return success(); } // AllTypesMatch (ScOps.td)
LogicalResult ReshapeOp::verify() {
  if (tensorType(getInput()).getNumElements() != tensorType(getResult()).getNumElements())
    return emitOpError() << "cannot reshape " << shapeStr(shapeOf(getInput())) << " to "
                         << shapeStr(shapeOf(getResult())) << ": element counts differ";
  return verifySameElement(*this, getInput(), getResult(), "result");
}
LogicalResult ExpandOp::verify() {
  SmallVector<int64_t> b;
  if (!broadcastShapes(shapeOf(getInput()), shapeOf(getResult()), b) ||
      ArrayRef<int64_t>(b) != shapeOf(getResult()))
    return emitOpError() << "cannot expand " << shapeStr(shapeOf(getInput())) << " to "
                         << shapeStr(shapeOf(getResult()));
  return verifySameElement(*this, getInput(), getResult(), "result");
}

LogicalResult GeluOp::verify() {
  return success(); // the approximation: its enum; shapes and types: ElementwiseOpInterface
}
StringRef GeluOp::getFormula() {
  return getApproximate() == GeluApproximation::Tanh ? "gelu_tanh" : "gelu_erf";
}

LogicalResult MatMulOp::verify() {
  ArrayRef<int64_t> a = shapeOf(getLhs()), b = shapeOf(getRhs());
  if (a.empty() || b.empty())
    return emitOpError() << "operands must have rank >= 1";
  if (failed(verifySameElement(*this, getLhs(), getRhs(), "operand")))
    return failure();
  int64_t k1 = a.back(), k2 = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (k1 != k2)
    return emitOpError() << "contracting dims differ: " << shapeStr(a) << " . " << shapeStr(b);
  SmallVector<int64_t> batch;
  ArrayRef<int64_t> ab = a.size() > 2 ? a.drop_back(2) : ArrayRef<int64_t>();
  ArrayRef<int64_t> bb = b.size() > 2 ? b.drop_back(2) : ArrayRef<int64_t>();
  if (!broadcastShapes(ab, bb, batch))
    return emitOpError() << "batch dims do not broadcast: " << shapeStr(a) << " . " << shapeStr(b);
  SmallVector<int64_t> want(batch);
  if (a.size() >= 2)
    want.push_back(a[a.size() - 2]);
  if (b.size() >= 2)
    want.push_back(b.back());
  if (ArrayRef<int64_t>(want) != shapeOf(getResult()))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be "
                         << shapeStr(want);
  return success();
}

LogicalResult GemmOp::verify() {
  ArrayRef<int64_t> a = shapeOf(getA()), b = shapeOf(getB());
  if (a.size() != 2 || b.size() != 2)
    return emitOpError() << "A and B must be 2-D, got " << shapeStr(a) << " and " << shapeStr(b);
  int64_t m = getTransA() ? a[1] : a[0], k = getTransA() ? a[0] : a[1];
  int64_t k2 = getTransB() ? b[1] : b[0], n = getTransB() ? b[0] : b[1];
  if (k != k2)
    return emitOpError() << "contracting dims differ: " << k << " vs " << k2;
  SmallVector<int64_t> want{m, n};
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be "
                         << shapeStr(want);
  if (getC()) {
    SmallVector<int64_t> bc;
    if (!broadcastShapes(shapeOf(getC()), want, bc) || ArrayRef<int64_t>(bc) != ArrayRef<int64_t>(want))
      return emitOpError() << "C shape " << shapeStr(shapeOf(getC())) << " does not broadcast to "
                           << shapeStr(want);
  }
  return success();
}

LogicalResult LinearOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput()), w = shapeOf(getWeight());
  if (x.empty() || w.size() != 2)
    return emitOpError() << "expects input rank >= 1 and a 2-D weight, got " << shapeStr(x)
                         << " and " << shapeStr(w);
  int64_t k = getTransposeWeight() ? w[1] : w[0], n = getTransposeWeight() ? w[0] : w[1];
  if (x.back() != k)
    return emitOpError() << "input features " << x.back() << " differ from the weight's " << k
                         << " (weight " << shapeStr(w)
                         << (getTransposeWeight() ? ", transposed)" : ")");
  if (getBias() && shapeOf(getBias()) != ArrayRef<int64_t>{n})
    return emitOpError() << "bias shape " << shapeStr(shapeOf(getBias())) << " should be [" << n << "]";
  SmallVector<int64_t> want(x.drop_back());
  want.push_back(n);
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be "
                         << shapeStr(want);
  return verifySameElement(*this, getInput(), getWeight(), "input and weight");
}

LogicalResult EmbeddingOp::verify() {
  ArrayRef<int64_t> t = shapeOf(getTable());
  if (t.size() != 2)
    return emitOpError() << "table must be 2-D, got " << shapeStr(t);
  if (!isa<IntegerType>(elemOf(getIds())))
    return emitOpError() << "ids must be integers, got " << elemOf(getIds());
  SmallVector<int64_t> want(shapeOf(getIds()));
  want.push_back(t[1]);
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be "
                         << shapeStr(want);
  // A vocabulary split: the first row this rank holds and the whole table's rows, together.
  if (bool(getRowStart()) != getVocabSize().has_value())
    return emitOpError() << "row_start and vocab_size go together (a vocabulary-split table)";
  if (Value start = getRowStart()) {
    if (!shapeOf(start).empty() || !elemOf(start).isInteger(64))
      return emitOpError() << "row_start must be an i64 scalar, got " << start.getType();
    if (int64_t(*getVocabSize()) < t[0])
      return emitOpError() << "vocab_size " << *getVocabSize() << " is smaller than the table's " << t[0] << " rows";
  }
  return verifySameElement(*this, getTable(), getResult(), "result");
}

LogicalResult TokenLossOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getLogits()), y = shapeOf(getLabels());
  if (x.size() != 3 || !isa<FloatType>(elemOf(getLogits())))
    return emitOpError() << "logits must be float [B, S, V], got " << shapeStr(x) << " " << elemOf(getLogits());
  if (y.size() != 2 || y[0] != x[0] || y[1] != x[1])
    return emitOpError() << "labels " << shapeStr(y) << " must be [B, S] of the logits " << shapeStr(x);
  if (!elemOf(getLabels()).isInteger(64))
    return emitOpError() << "labels must be i64, got " << elemOf(getLabels());
  for (Value r : {getSum(), getCount()})
    if (!shapeOf(r).empty() || !elemOf(r).isF32())
      return emitOpError() << "sum and count must be f32 scalars (tensor<f32>), got " << r.getType();
  return success();
}

LogicalResult SoftmaxOp::verify() {
  if (shapeOf(getInput()) != shapeOf(getResult()))
    return emitOpError() << "result shape differs from the input shape";
  return verifyAxis(*this, getAxis(), shapeOf(getInput()).size());
}
LogicalResult LogSoftmaxOp::verify() {
  if (shapeOf(getInput()) != shapeOf(getResult()))
    return emitOpError() << "result shape differs from the input shape";
  return verifyAxis(*this, getAxis(), shapeOf(getInput()).size());
}

LogicalResult LayerNormOp::verify() {
  if (shapeOf(getInput()) != shapeOf(getResult()))
    return emitOpError() << "result shape differs from the input shape";
  if (failed(verifyNormScale(*this, getInput(), getScale(), getAxis())))
    return failure();
  if (getBias() && failed(verifyNormScale(*this, getInput(), getBias(), getAxis())))
    return failure();
  return success();
}
LogicalResult RmsNormOp::verify() {
  if (shapeOf(getInput()) != shapeOf(getResult()))
    return emitOpError() << "result shape differs from the input shape";
  return verifyNormScale(*this, getInput(), getScale(), getAxis());
}

LogicalResult RotaryOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getInput());
  if (x.empty() || x.back() % 2 != 0)
    return emitOpError() << "last dim of " << shapeStr(x) << " must be even (rotate-half)";
  for (Value t : {getCos(), getSin()}) {
    SmallVector<int64_t> b;
    if (!broadcastShapes(x, shapeOf(t), b) || ArrayRef<int64_t>(b) != x)
      return emitOpError() << "cos/sin shape " << shapeStr(shapeOf(t)) << " does not broadcast to "
                           << shapeStr(x);
  }
  if (shapeOf(getResult()) != x)
    return emitOpError() << "result shape differs from the input shape";
  return success();
}

LogicalResult AttentionOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey()), v = shapeOf(getValue());
  if (q.size() != 4 || k.size() != 4 || v.size() != 4)
    return emitOpError() << "expects 4-D [B, H, S, D] q, k, v; got " << shapeStr(q) << ", "
                         << shapeStr(k) << ", " << shapeStr(v);
  if (q[0] != k[0] || k[0] != v[0])
    return emitOpError() << "batch sizes differ";
  if (k[1] != v[1] || k[2] != v[2])
    return emitOpError() << "key " << shapeStr(k) << " and value " << shapeStr(v)
                         << " disagree on heads or length";
  if (q[3] != k[3])
    return emitOpError() << "query and key head dims differ: " << q[3] << " vs " << k[3];
  if (k[1] == 0 || q[1] % k[1] != 0)
    return emitOpError() << "query heads " << q[1] << " are not a multiple of key/value heads "
                         << k[1];
  SmallVector<int64_t> want{q[0], q[1], q[2], v[3]};
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be "
                         << shapeStr(want);
  if (getMask()) {
    SmallVector<int64_t> scores{q[0], q[1], q[2], k[2]}, b;
    if (!broadcastShapes(scores, shapeOf(getMask()), b) || ArrayRef<int64_t>(b) != ArrayRef<int64_t>(scores))
      return emitOpError() << "mask shape " << shapeStr(shapeOf(getMask()))
                           << " does not broadcast to the scores " << shapeStr(scores);
  }
  if (Value lse = getLse()) {
    SmallVector<int64_t> rows{q[0], q[1], q[2]};
    if (shapeOf(lse) != ArrayRef<int64_t>(rows) || !elemOf(lse).isF32())
      return emitOpError() << "lse must be f32 " << shapeStr(rows) << ", got " << lse.getType();
  }
  return success();
}

LogicalResult ReduceMeanOp::verify() {
  return verifyReduce(*this, getInput(), getResult(), getAxes(), getKeepdims());
}
LogicalResult ReduceSumOp::verify() {
  return verifyReduce(*this, getInput(), getResult(), getAxes(), getKeepdims());
}
LogicalResult ReduceMaxOp::verify() {
  return verifyReduce(*this, getInput(), getResult(), getAxes(), getKeepdims());
}

LogicalResult UnsqueezeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  if (out.size() != in.size() + getAxes().size())
    return emitOpError() << "result rank " << out.size() << " should be " << in.size() + getAxes().size();
  llvm::SmallSet<int64_t, 4> axes(getAxes().begin(), getAxes().end());
  size_t j = 0;
  for (size_t i = 0; i < out.size(); ++i) {
    if (axes.contains(i)) {
      if (out[i] != 1)
        return emitOpError() << "inserted dim " << i << " must be 1";
    } else if (j >= in.size() || out[i] != in[j++]) {
      return emitOpError() << "result shape " << shapeStr(out) << " does not match "
                           << shapeStr(in) << " with axes inserted";
    }
  }
  return success();
}
LogicalResult SqueezeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  llvm::SmallSet<int64_t, 4> axes(getAxes().begin(), getAxes().end());
  SmallVector<int64_t> want;
  for (size_t i = 0; i < in.size(); ++i) {
    if (axes.contains(i)) {
      if (in[i] != 1)
        return emitOpError() << "cannot squeeze dim " << i << " of size " << in[i];
    } else {
      want.push_back(in[i]);
    }
  }
  if (ArrayRef<int64_t>(want) != out)
    return emitOpError() << "result shape " << shapeStr(out) << " should be " << shapeStr(want);
  return success();
}

LogicalResult TransposeOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  ArrayRef<int64_t> perm = getPerm();
  if (perm.size() != in.size())
    return emitOpError() << "perm has " << perm.size() << " entries for rank " << in.size();
  llvm::SmallSet<int64_t, 4> seen;
  for (auto [i, p] : llvm::enumerate(perm)) {
    if (p < 0 || p >= (int64_t)in.size() || !seen.insert(p).second)
      return emitOpError() << "perm is not a permutation";
    if (out.size() != in.size() || out[i] != in[p])
      return emitOpError() << "result shape " << shapeStr(out) << " does not match the permuted input";
  }
  return success();
}

LogicalResult SliceOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  if (getStarts().size() != in.size() || getSteps().size() != in.size() || out.size() != in.size())
    return emitOpError() << "starts, steps and result must have one entry per dim (rank " << in.size() << ")";
  for (size_t i = 0; i < in.size(); ++i) {
    int64_t s = getStarts()[i], st = getSteps()[i], n = out[i];
    if (st == 0)
      return emitOpError() << "step of dim " << i << " is zero";
    if (n == 0)
      continue;
    int64_t last = s + (n - 1) * st;
    if (s < 0 || s >= in[i] || last < 0 || last >= in[i])
      return emitOpError() << "dim " << i << " reads [" << s << ", " << last << "] outside [0, " << in[i] << ")";
  }
  return success();
}

LogicalResult ConcatOp::verify() {
  if (getInputs().empty())
    return emitOpError() << "needs at least one input";
  ArrayRef<int64_t> out = shapeOf(getResult());
  int64_t rank = out.size();
  if (failed(verifyAxis(*this, getAxis(), rank)))
    return failure();
  int64_t axis = normAxis(getAxis(), rank), total = 0;
  for (Value v : getInputs()) {
    ArrayRef<int64_t> s = shapeOf(v);
    if ((int64_t)s.size() != rank)
      return emitOpError() << "input ranks differ";
    for (int64_t i = 0; i < rank; ++i)
      if (i != axis && s[i] != out[i])
        return emitOpError() << "input " << shapeStr(s) << " differs from result " << shapeStr(out)
                             << " outside the concat axis";
    total += s[axis];
  }
  if (total != out[axis])
    return emitOpError() << "concat axis sums to " << total << ", result has " << out[axis];
  return success();
}

LogicalResult SplitOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t rank = in.size();
  if (failed(verifyAxis(*this, getAxis(), rank)))
    return failure();
  int64_t axis = normAxis(getAxis(), rank), total = 0;
  for (Value v : getResults()) {
    ArrayRef<int64_t> s = shapeOf(v);
    if ((int64_t)s.size() != rank)
      return emitOpError() << "result ranks differ from the input";
    for (int64_t i = 0; i < rank; ++i)
      if (i != axis && s[i] != in[i])
        return emitOpError() << "result " << shapeStr(s) << " differs from input outside the split axis";
    total += s[axis];
  }
  if (total != in[axis])
    return emitOpError() << "split sizes sum to " << total << ", input has " << in[axis];
  return success();
}

LogicalResult GatherOp::verify() {
  ArrayRef<int64_t> d = shapeOf(getData());
  if (failed(verifyAxis(*this, getAxis(), d.size())))
    return failure();
  if (!isa<IntegerType>(elemOf(getIndices())))
    return emitOpError() << "indices must be integers";
  int64_t axis = normAxis(getAxis(), d.size());
  SmallVector<int64_t> want(d.take_front(axis));
  llvm::append_range(want, shapeOf(getIndices()));
  llvm::append_range(want, d.drop_front(axis + 1));
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be " << shapeStr(want);
  return success();
}

LogicalResult GatherElementsOp::verify() {
  if (failed(verifyAxis(*this, getAxis(), shapeOf(getData()).size())))
    return failure();
  if (shapeOf(getIndices()).size() != shapeOf(getData()).size())
    return emitOpError() << "indices rank differs from data rank";
  if (shapeOf(getResult()) != shapeOf(getIndices()))
    return emitOpError() << "result shape must equal the indices shape";
  return success();
}

LogicalResult TopKOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getValues());
  if (failed(verifyAxis(*this, getAxis(), in.size())))
    return failure();
  int64_t axis = normAxis(getAxis(), in.size());
  if (shapeOf(getIndices()) != out || !elemOf(getIndices()).isInteger(64) || elemOf(getValues()) != elemOf(getInput()))
    return emitOpError() << "values must have the input's element type, indices i64 and the values' shape";
  bool fits = out.size() == in.size() && out[axis] <= in[axis];
  for (size_t d = 0; fits && d < in.size(); ++d)
    fits = int64_t(d) == axis || out[d] == in[d];
  if (!fits)
    return emitOpError() << "result " << shapeStr(out) << " is not " << shapeStr(in) << " cut to k along axis " << axis;
  return success();
}

LogicalResult GatherNdOp::verify() {
  ArrayRef<int64_t> data = shapeOf(getData()), idx = shapeOf(getIndices());
  int64_t b = getBatchDims();
  if (!isa<IntegerType>(elemOf(getIndices())) || elemOf(getResult()) != elemOf(getData()))
    return emitOpError() << "integer indices and a result of the data's element type expected";
  if (idx.empty() || b < 0 || b >= int64_t(idx.size()) || idx.back() < 1 || b + idx.back() > int64_t(data.size()))
    return emitOpError() << "indices " << shapeStr(idx) << " with batch_dims " << b << " do not fit data " << shapeStr(data);
  SmallVector<int64_t> want(idx.drop_back());
  llvm::append_range(want, data.drop_front(b + idx.back()));
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want) || data.take_front(b) != idx.take_front(b))
    return emitOpError() << "result shape " << shapeStr(shapeOf(getResult())) << " should be " << shapeStr(want);
  return success();
}

LogicalResult MoeExpertsOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getX()), ids = shapeOf(getIndices()), gu = shapeOf(getGateUp()), dn = shapeOf(getDown());
  if (x.size() != 2 || ids.size() != 2 || gu.size() != 3 || dn.size() != 3)
    return emitOpError() << "x [T, H], indices [T, k], gate_up [E, 2I, H], down [E, H, I] expected";
  const int64_t T = x[0], H = x[1], k = ids[1], E = gu[0], I = dn[2];
  if (ids[0] != T || shapeOf(getWeights()) != ids || gu[1] != 2 * I || gu[2] != H || dn[0] != E || dn[1] != H)
    return emitOpError() << "shapes do not agree: x " << shapeStr(x) << ", indices " << shapeStr(ids) << ", gate_up "
                         << shapeStr(gu) << ", down " << shapeStr(dn);
  if (!elemOf(getIndices()).isInteger(64))
    return emitOpError() << "indices must be i64";
  if (shapeOf(getResult()) != x || shapeOf(getHidden()) != ArrayRef<int64_t>{T * k, I})
    return emitOpError() << "result [T, H] and hidden [T*k, I] expected";
  for (Value v : {getWeights(), getGateUp(), getDown(), getResult(), getHidden()})
    if (elemOf(v) != elemOf(getX()))
      return emitOpError() << "x, weights, gate_up, down and the results share one element type";
  return success();
}

LogicalResult DynamicSliceOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput()), out = shapeOf(getResult());
  if (failed(verifyAxis(*this, getAxis(), in.size())))
    return failure();
  if (!shapeOf(getStart()).empty() || !elemOf(getStart()).isInteger(64))
    return emitOpError() << "start must be an i64 scalar, got " << getStart().getType();
  int64_t axis = normAxis(getAxis(), in.size());
  if (out.size() != in.size() || out[axis] > in[axis])
    return emitOpError() << "result " << shapeStr(out) << " is not a slice of " << shapeStr(in) << " along axis " << axis;
  for (size_t d = 0; d < in.size(); ++d)
    if ((int64_t)d != axis && in[d] != out[d])
      return emitOpError() << "result " << shapeStr(out) << " differs from the input " << shapeStr(in)
                           << " on dim " << d << " (only axis " << axis << " is sliced)";
  return verifySameElement(*this, getInput(), getResult(), "result");
}

LogicalResult ProcessIndexOp::verify() {
  llvm::SmallSet<StringRef, 4> seen;
  for (StringRef a : getAxes().getAsValueRange<StringAttr>())
    if (!seen.insert(a).second)
      return emitOpError() << "axis '" << a << "' is listed twice";
  return success();
}

LogicalResult TriluOp::verify() {
  if (shapeOf(getInput()).size() < 2)
    return emitOpError() << "needs rank >= 2";
  if (shapeOf(getInput()) != shapeOf(getResult()))
    return emitOpError() << "result shape differs from the input shape";
  return success();
}

LogicalResult ShapeOp::verify() {
  auto rt = tensorType(getResult());
  if (rt.getRank() != 1 || !rt.getElementType().isInteger(64))
    return emitOpError() << "result must be a 1-D i64 tensor";
  return success();
}
OpFoldResult ShapeOp::fold(FoldAdaptor) {
  ArrayRef<int64_t> in = shapeOf(getInput());
  int64_t rank = in.size();
  int64_t start = std::clamp<int64_t>(normAxis(getStart(), rank), 0, rank);
  int64_t end = getEnd() ? std::clamp<int64_t>(normAxis(*getEnd(), rank), 0, rank) : rank;
  SmallVector<int64_t> dims;
  for (int64_t i = start; i < end; ++i)
    dims.push_back(in[i]);
  auto rt = tensorType(getResult());
  if (rt.getDimSize(0) != (int64_t)dims.size())
    return {};
  return DenseIntElementsAttr::get(rt, dims);
}

LogicalResult ConstantOfShapeOp::verify() {
  auto typed = dyn_cast<TypedAttr>(getValue());
  if (!typed || typed.getType() != elemOf(getResult()))
    return emitOpError() << "fill value must have the result's element type";
  return success();
}
OpFoldResult ConstantOfShapeOp::fold(FoldAdaptor) {
  auto rt = tensorType(getResult());
  if (auto i = dyn_cast<IntegerAttr>(getValue()))
    return DenseElementsAttr::get(rt, i.getValue());
  if (auto f = dyn_cast<FloatAttr>(getValue()))
    return DenseElementsAttr::get(rt, f.getValue());
  return {};
}

// start + i * delta for each element of the (static) result, in its element type.
OpFoldResult RangeOp::fold(FoldAdaptor adaptor) {
  auto start = dyn_cast_if_present<DenseElementsAttr>(adaptor.getStart());
  auto delta = dyn_cast_if_present<DenseElementsAttr>(adaptor.getDelta());
  auto rt = tensorType(getResult());
  if (!start || !delta || start.getNumElements() != 1 || delta.getNumElements() != 1)
    return {};
  Type et = rt.getElementType();
  if (auto it = dyn_cast<IntegerType>(et)) {
    if (!isa<IntegerType>(start.getElementType()) || !isa<IntegerType>(delta.getElementType()))
      return {};
    int64_t s0 = (*start.getValues<APInt>().begin()).getSExtValue();
    int64_t d = (*delta.getValues<APInt>().begin()).getSExtValue();
    SmallVector<APInt> vals;
    for (int64_t i = 0; i < rt.getNumElements(); ++i)
      vals.push_back(APInt(it.getWidth(), uint64_t(s0 + i * d), /*isSigned=*/true, /*implicitTrunc=*/true));
    return DenseElementsAttr::get(rt, vals);
  }
  auto ft = dyn_cast<FloatType>(et);
  if (!ft || !isa<FloatType>(start.getElementType()) || !isa<FloatType>(delta.getElementType()))
    return {};
  double s0 = (*start.getValues<APFloat>().begin()).convertToDouble();
  double d = (*delta.getValues<APFloat>().begin()).convertToDouble();
  SmallVector<APFloat> vals;
  for (int64_t i = 0; i < rt.getNumElements(); ++i) {
    APFloat v(s0 + d * double(i));
    bool lost;
    v.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    vals.push_back(v);
  }
  return DenseElementsAttr::get(rt, vals);
}

LogicalResult RangeOp::verify() {
  if (tensorType(getResult()).getRank() != 1)
    return emitOpError() << "result must be 1-D";
  return success();
}

LogicalResult ShardingConstraintOp::verify() {
  ShardingAttr s = getSharding();
  int64_t rank = getType().getRank();
  if ((int64_t)s.getDims().size() != rank)
    return emitOpError() << "sharding has " << s.getDims().size() << " dims for a tensor of rank " << rank;
  if (!s.getPartialAxes().empty())
    return emitOpError() << "a constraint cannot ask for a pending reduction";
  if (getAxes().empty())
    return emitOpError() << "constrains no mesh axis";
  llvm::SmallSet<StringRef, 4> constrained;
  for (auto a : getAxes().getAsValueRange<StringAttr>())
    constrained.insert(a);
  for (ArrayAttr dim : s.getDims())
    for (auto a : dim.getAsValueRange<StringAttr>())
      if (!constrained.contains(a))
        return emitOpError() << "places mesh axis '" << a << "', which it does not constrain (axes "
                             << getAxes() << ")";
  return success();
}

LogicalResult LayerOp::verify() {
  auto yield = cast<YieldOp>(getBody().front().getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError() << "yielded types differ from the result types";
  return success();
}

LogicalResult FusedOp::verify() {
  Block &body = getBody().front();
  if (body.getNumArguments() != getInputs().size())
    return emitOpError() << "has " << body.getNumArguments() << " block arguments for " << getInputs().size()
                         << " inputs";
  for (auto [arg, in] : llvm::zip(body.getArguments(), getInputs()))
    if (arg.getType() != in.getType())
      return emitOpError() << "block argument type " << arg.getType() << " differs from its input's " << in.getType();
  auto yield = cast<FusedYieldOp>(body.getTerminator());
  if (yield.getValues().getTypes() != getResultTypes())
    return emitOpError() << "yielded types differ from the result types";
  if (getNumResults() == 0)
    return emitOpError() << "has no results";
  ArrayRef<int64_t> shape = cast<RankedTensorType>(getResult(0).getType()).getShape();
  for (Type t : getResultTypes())
    if (cast<RankedTensorType>(t).getShape() != shape)
      return emitOpError() << "results differ in shape; a fused kernel computes one shape";
  return success();
}

// ONNX comparisons, scans and index ops (ScOps.td); the formula ops among them are verified
// by ElementwiseOpInterface.
LogicalResult LessOp::verify() { return verifyBinary(*this, true, true); }
LogicalResult LessEqualOp::verify() { return verifyBinary(*this, true, true); }

LogicalResult CumSumOp::verify() {
  if (failed(verifyAxis(*this, static_cast<int64_t>(getAxis()), shapeOf(getInput()).size())))
    return failure();
  if (getInput().getType() != getResult().getType())
    return emitOpError() << "result type differs from the input type";
  return success();
}

LogicalResult ArgMaxOp::verify() {
  int64_t rank = shapeOf(getInput()).size(), axis = static_cast<int64_t>(getAxis());
  if (failed(verifyAxis(*this, axis, rank)))
    return failure();
  if (!elemOf(getResult()).isInteger(64))
    return emitOpError() << "result must be i64, got " << elemOf(getResult());
  return verifyReduce(*this, getInput(), getResult(), {normAxis(axis, rank)}, getKeepdims());
}

LogicalResult ScatterNDOp::verify() {
  ArrayRef<int64_t> data = shapeOf(getData()), idx = shapeOf(getIndices()), upd = shapeOf(getUpdates());
  if (!elemOf(getIndices()).isInteger(64))
    return emitOpError() << "indices must be i64, got " << elemOf(getIndices());
  if (idx.empty() || idx.back() > int64_t(data.size()))
    return emitOpError() << "indices " << shapeStr(idx) << " do not address data " << shapeStr(data);
  SmallVector<int64_t> want(idx.drop_back());
  llvm::append_range(want, data.drop_front(idx.back()));
  if (upd != ArrayRef<int64_t>(want))
    return emitOpError() << "updates shape " << shapeStr(upd) << " should be " << shapeStr(want);
  if (failed(verifySameElement(*this, getData(), getUpdates(), "updates")) ||
      failed(verifySameElement(*this, getData(), getResult(), "result")))
    return failure();
  if (shapeOf(getResult()) != data)
    return emitOpError() << "result shape differs from the data shape";
  StringRef r = getReduction();
  if (r != "none" && r != "add" && r != "mul" && r != "max" && r != "min")
    return emitOpError() << "reduction '" << r << "' is not none, add, mul, max or min";
  return success();
}

#define GET_OP_CLASSES
#include "shardc/Dialect/ScOps.cpp.inc"
