// Shape verification of the ops of mixture-of-experts routing added with the raised router
// (docs/moe.md): ONNX ArgMin and ScatterElements (DeepSeek-V3's group-limited selection) and
// sc.moe_router. The other ops are verified in ScOps.cpp.
#include "shardc/Dialect/ScDialect.h"

using namespace mlir;
using namespace shardc::sc;

namespace {

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
Type elemOf(Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); }

bool isReduction(StringRef r) { return r == "none" || r == "add" || r == "mul" || r == "max" || r == "min"; }

} // namespace

LogicalResult ArgMinOp::verify() {
  ArrayRef<int64_t> in = shapeOf(getInput());
  const int64_t rank = in.size(), raw = static_cast<int64_t>(getAxis());
  if (raw < -rank || raw >= rank)
    return emitOpError() << "axis " << raw << " out of range for rank " << rank;
  if (!elemOf(getResult()).isInteger(64))
    return emitOpError() << "result must be i64, got " << elemOf(getResult());
  const int64_t axis = raw < 0 ? raw + rank : raw;
  SmallVector<int64_t> want;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis || getKeepdims())
      want.push_back(d == axis ? 1 : in[d]);
  if (shapeOf(getResult()) != ArrayRef<int64_t>(want))
    return emitOpError() << "result shape does not follow from the input's, axis " << axis << " and keepdims";
  return success();
}

LogicalResult ScatterElementsOp::verify() {
  ArrayRef<int64_t> data = shapeOf(getData()), idx = shapeOf(getIndices());
  const int64_t rank = data.size(), raw = static_cast<int64_t>(getAxis());
  if (raw < -rank || raw >= rank)
    return emitOpError() << "axis " << raw << " out of range for rank " << rank;
  if (!elemOf(getIndices()).isInteger(64))
    return emitOpError() << "indices must be i64, got " << elemOf(getIndices());
  if (shapeOf(getUpdates()) != idx || int64_t(idx.size()) != rank)
    return emitOpError() << "indices and updates must share one shape of the data's rank";
  for (int64_t d = 0; d < rank; ++d)
    if (idx[d] > data[d])
      return emitOpError() << "indices are larger than the data in dim " << d;
  if (elemOf(getUpdates()) != elemOf(getData()) || getResult().getType() != getData().getType())
    return emitOpError() << "updates and the result must have the data's element type, the result its shape";
  if (!isReduction(getReduction()))
    return emitOpError() << "reduction '" << getReduction() << "' is not none, add, mul, max or min";
  return success();
}

LogicalResult MoeRouterOp::verify() {
  ArrayRef<int64_t> logits = shapeOf(getLogits()), ids = shapeOf(getIndices());
  if (logits.size() != 2 || ids.size() != 2 || ids[0] != logits[0] || ids[1] < 1 || ids[1] > logits[1])
    return emitOpError() << "logits [T, E] and indices [T, k] with 1 <= k <= E expected";
  if (!elemOf(getIndices()).isInteger(64) || shapeOf(getWeights()) != ids)
    return emitOpError() << "indices must be i64 and the weights of their shape";
  if (!isa<FloatType>(elemOf(getLogits())) || elemOf(getWeights()) != elemOf(getLogits()))
    return emitOpError() << "float logits and weights of their element type expected";
  if (getBias() && (shapeOf(getBias()) != logits.drop_front() || elemOf(getBias()) != elemOf(getLogits())))
    return emitOpError() << "the score bias must be [E] of the logits' element type";
  if (getScoring() != "softmax" && getScoring() != "sigmoid")
    return emitOpError() << "scoring '" << getScoring() << "' is not softmax or sigmoid";
  const int64_t E = logits[1], groups = getNGroup(), keep = getTopkGroup(), gk = getGroupK();
  if (groups < 1 || E % groups != 0 || keep < 1 || keep > groups || gk < 1 || gk > E / groups)
    return emitOpError() << "n_group must divide the " << E << " experts, 1 <= topk_group <= n_group and "
                         << "1 <= group_k <= the experts of a group";
  if (keep * (E / groups) < ids[1])
    return emitOpError() << "the " << keep << " groups kept hold fewer than k experts";
  return success();
}
