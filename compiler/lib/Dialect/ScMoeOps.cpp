// Shape verification of expert parallelism's ops (docs/moe.md): sc-partition makes them from an
// sc.moe_experts whose experts are split over ep; the shapes are local.
#include "shardc/Dialect/ScDialect.h"

using namespace mlir;
using namespace shardc::sc;

namespace {
ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }
Type elemOf(Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); }
} // namespace

LogicalResult MoePermuteOp::verify() {
  ArrayRef<int64_t> x = shapeOf(getX()), ids = shapeOf(getIndices());
  if (x.size() != 2 || ids.size() != 2 || ids[0] != x[0] || !elemOf(getIndices()).isInteger(64))
    return emitOpError() << "x [T, H] and i64 indices [T, k] expected";
  int64_t rows = ids[0] * ids[1];
  if (shapeOf(getRows()) != ArrayRef<int64_t>{rows, x[1]} || elemOf(getRows()) != elemOf(getX()) ||
      shapeOf(getCounts()) != ArrayRef<int64_t>{static_cast<int64_t>(getNumExperts())} || shapeOf(getSlots()) != ArrayRef<int64_t>{rows} ||
      !elemOf(getCounts()).isInteger(64) || !elemOf(getSlots()).isInteger(64))
    return emitOpError() << "rows [T*k, H] (x's type), counts [num_experts] and slots [T*k] (i64) expected";
  return success();
}
LogicalResult MoeDispatchOp::verify() {
  ArrayRef<int64_t> rows = shapeOf(getRows()), recv = shapeOf(getRecv());
  if (rows.size() != 2 || recv.size() != 2 || recv[1] != rows[1] || elemOf(getRecv()) != elemOf(getRows()) ||
      shapeOf(getRecvCounts()) != shapeOf(getCounts()) || !elemOf(getCounts()).isInteger(64) ||
      !elemOf(getRecvCounts()).isInteger(64))
    return emitOpError() << "rows [N, H] -> recv [R, H], i64 counts -> recv_counts of the same shape expected";
  return success();
}
LogicalResult MoeGroupedGemmOp::verify() {
  ArrayRef<int64_t> recv = shapeOf(getRecv()), gu = shapeOf(getGateUp()), dn = shapeOf(getDown());
  if (recv.size() != 2 || gu.size() != 3 || dn.size() != 3 || gu[0] != dn[0] || gu[1] != 2 * dn[2] ||
      gu[2] != recv[1] || dn[1] != recv[1])
    return emitOpError() << "recv [R, H], gate_up [E, 2I, H], down [E, H, I] expected";
  if (shapeOf(getOut()) != recv || shapeOf(getHidden()) != ArrayRef<int64_t>{recv[0], dn[2]})
    return emitOpError() << "out [R, H] and hidden [R, I] expected";
  return success();
}
LogicalResult MoeCombineOp::verify() {
  if (shapeOf(getOut()).size() != 2 || shapeOf(getResult()).size() != 2 ||
      shapeOf(getOut())[1] != shapeOf(getResult())[1] || elemOf(getOut()) != elemOf(getResult()))
    return emitOpError() << "out [R, H] -> result [N, H] of one element type expected";
  return success();
}
LogicalResult MoeUnpermuteOp::verify() {
  ArrayRef<int64_t> rows = shapeOf(getRows()), w = shapeOf(getWeights()), y = shapeOf(getResult());
  if (rows.size() != 2 || w.size() != 2 || rows[0] != w[0] * w[1] || shapeOf(getSlots()) != ArrayRef<int64_t>{rows[0]} ||
      y != ArrayRef<int64_t>{w[0], rows[1]})
    return emitOpError() << "rows [T*k, H], slots [T*k], weights [T, k] -> result [T, H] expected";
  return success();
}

