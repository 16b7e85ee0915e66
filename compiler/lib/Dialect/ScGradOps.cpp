// Shape verification of the ops that only training creates: the backward ops with kernels of
// their own (attention, embedding, token loss) that sc-autodiff builds (their VJP-rule callers
// are in ScVjpRules.cpp), and the state that sc-add-optimizer keeps across runs. Their sharding
// rules are in ScShardingRules.cpp.
#include "shardc/Dialect/ScDialect.h"

#include "llvm/ADT/STLExtras.h"

using namespace mlir;

namespace shardc::sc {
namespace {

RankedTensorType tensorType(Value v) { return cast<RankedTensorType>(v.getType()); }
ArrayRef<int64_t> shapeOf(Value v) { return tensorType(v).getShape(); }
Type elemOf(Value v) { return tensorType(v).getElementType(); }

std::string shapeStr(ArrayRef<int64_t> shape) {
  std::string s = "[";
  for (auto [i, d] : llvm::enumerate(shape))
    s += (i ? "x" : "") + std::to_string(d);
  return s + "]";
}

LogicalResult sameType(Operation *op, Value grad, Value of, StringRef what) {
  if (grad.getType() != of.getType())
    return op->emitOpError() << what << " must have the type of its primal " << of.getType() << ", got "
                             << grad.getType();
  return success();
}

} // namespace

LogicalResult AttentionGradOp::verify() {
  ArrayRef<int64_t> q = shapeOf(getQuery()), k = shapeOf(getKey()), v = shapeOf(getValue());
  if (q.size() != 4 || k.size() != 4 || v.size() != 4 || q[0] != k[0] || k[0] != v[0] || k[1] != v[1] ||
      k[2] != v[2] || q[3] != k[3] || k[1] == 0 || q[1] % k[1] != 0)
    return emitOpError() << "q, k, v must be attention's [B, H, S, D] operands, got " << shapeStr(q) << ", "
                         << shapeStr(k) << ", " << shapeStr(v);
  SmallVector<int64_t> out{q[0], q[1], q[2], v[3]}, rows{q[0], q[1], q[2]};
  if (shapeOf(getOut()) != ArrayRef<int64_t>(out) || shapeOf(getDout()) != ArrayRef<int64_t>(out))
    return emitOpError() << "out and dout must be " << shapeStr(out);
  if (shapeOf(getLse()) != ArrayRef<int64_t>(rows) || !elemOf(getLse()).isF32())
    return emitOpError() << "lse must be f32 " << shapeStr(rows) << ", got " << getLse().getType();
  if (failed(sameType(*this, getDquery(), getQuery(), "dquery")) ||
      failed(sameType(*this, getDkey(), getKey(), "dkey")) || failed(sameType(*this, getDvalue(), getValue(), "dvalue")))
    return failure();
  return success();
}

LogicalResult EmbeddingGradOp::verify() {
  ArrayRef<int64_t> ids = shapeOf(getIds()), dy = shapeOf(getDy()), t = shapeOf(getResult());
  if (!isa<IntegerType>(elemOf(getIds())))
    return emitOpError() << "ids must be integers, got " << elemOf(getIds());
  if (t.size() != 2 || dy.size() != ids.size() + 1 || dy.drop_back() != ids || dy.back() != t[1])
    return emitOpError() << "dy " << shapeStr(dy) << " must be ids " << shapeStr(ids)
                         << " by the table's width, and the result [V, H], got " << shapeStr(t);
  if (elemOf(getDy()) != elemOf(getResult()))
    return emitOpError() << "result element type must be dy's " << elemOf(getDy());
  if (bool(getRowStart()) != getVocabSize().has_value())
    return emitOpError() << "row_start and vocab_size go together (a vocabulary-split table)";
  if (Value start = getRowStart())
    if (!shapeOf(start).empty() || !elemOf(start).isInteger(64))
      return emitOpError() << "row_start must be an i64 scalar, got " << start.getType();
  return success();
}

LogicalResult TokenLossGradOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getLogits()), y = shapeOf(getLabels());
  if (x.size() != 3 || !isa<FloatType>(elemOf(getLogits())))
    return emitOpError() << "logits must be float [B, S, V], got " << getLogits().getType();
  if (y.size() != 2 || y[0] != x[0] || y[1] != x[1] || !elemOf(getLabels()).isInteger(64))
    return emitOpError() << "labels must be i64 [B, S] of the logits, got " << getLabels().getType();
  if (!shapeOf(getDsum()).empty() || !elemOf(getDsum()).isF32())
    return emitOpError() << "dsum must be an f32 scalar, got " << getDsum().getType();
  return sameType(*this, getResult(), getLogits(), "result");
}

LogicalResult TokenLossStatsGradOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getLogits());
  if (x.size() != 3 || !isa<FloatType>(elemOf(getLogits())))
    return emitOpError() << "logits must be float [B, S, V], got " << getLogits().getType();
  Type rowElem = elemOf(getLogits()).isF64() ? elemOf(getLogits()) : Float32Type::get(getContext());
  for (Value r : {getDsumexp(), getDpicked()})
    if (shapeOf(r) != x.take_front(2) || elemOf(r) != rowElem)
      return emitOpError() << "dsumexp and dpicked must be " << rowElem << " [B, S] of the logits, got " << r.getType();
  if (shapeOf(getMax()) != x.take_front(2) || elemOf(getMax()) != elemOf(getLogits()))
    return emitOpError() << "max must be [B, S] in the logits' type, got " << getMax().getType();
  if (shapeOf(getLabels()) != x.take_front(2) || !elemOf(getLabels()).isInteger(64))
    return emitOpError() << "labels must be i64 [B, S] of the logits, got " << getLabels().getType();
  if (Value start = getVocabStart(); start && (!shapeOf(start).empty() || !elemOf(start).isInteger(64)))
    return emitOpError() << "vocab_start must be an i64 scalar, got " << start.getType();
  return sameType(*this, getResult(), getLogits(), "result");
}

LogicalResult StateOp::verify() {
  if (getInit() && getInit().getType() != getResult().getType())
    return emitOpError() << "init " << getInit().getType() << " must have the state's type " << getResult().getType();
  if (getName().empty())
    return emitOpError() << "needs a name (checkpoints read and write states by name)";
  return success();
}

LogicalResult AssignOp::verify() {
  if (!getState().getDefiningOp<StateOp>())
    return emitOpError() << "assigns to a value that is not an sc.state result";
  if (getValue().getType() != getState().getType())
    return emitOpError() << "value " << getValue().getType() << " must have the state's type " << getState().getType();
  return success();
}

} // namespace shardc::sc
