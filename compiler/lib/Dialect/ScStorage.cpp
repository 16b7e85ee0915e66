// Where an sc value lives (ScStorage.h): buffer aliasing through sc.layer, load-time values,
// the emitter's step order.
#include "shardc/Dialect/ScStorage.h"

#include "shardc/Dialect/ScDialect.h"

#include "mlir/Interfaces/SideEffectInterfaces.h"

using namespace mlir;

namespace shardc::sc {

LogicalResult verifyLoadTimeSource(Operation *op) {
  if (op->getNumOperands() != 0)
    return op->emitOpError() << "is a load-time source and must have no operands";
  if (!isMemoryEffectFree(op))
    return op->emitOpError() << "is a load-time source and must have no side effects";
  return success();
}

Value storageValue(Value v) {
  while (auto result = dyn_cast<OpResult>(v)) {
    auto layer = dyn_cast<LayerOp>(result.getOwner());
    if (!layer || layer.getBody().empty())
      break;
    v = layer.getBody().front().getTerminator()->getOperand(result.getResultNumber());
  }
  return v;
}

bool isAtLoad(Operation *op) { return op && op->hasAttr(kAtLoadAttr); }

bool isLoadTimeValue(Value v) {
  Operation *def = storageValue(v).getDefiningOp();
  return def && (isa<ParamOp, ConstantOp>(def) || isAtLoad(def));
}

bool isStepOp(Operation *op) { return isa<FusedOp, StepOpInterface>(op); }

std::optional<std::string> stepKindOf(Operation *op) {
  if (isa<FusedOp>(op))
    return std::string("fused");
  auto s = dyn_cast<StepOpInterface>(op);
  StepDesc step;
  if (!s || failed(s.lowerToStep(step)))
    return std::nullopt;
  return step.kind;
}

LogicalResult forEachStep(Block &block, function_ref<LogicalResult(Operation *)> fn) {
  for (Operation &op : block.without_terminator()) {
    if (auto layer = dyn_cast<LayerOp>(op)) {
      if (!layer.getBody().empty() && failed(forEachStep(layer.getBody().front(), fn)))
        return failure();
    } else if (isStepOp(&op) && failed(fn(&op))) {
      return failure();
    }
  }
  return success();
}

std::optional<int64_t> bufferBytes(Type t) {
  auto tensor = dyn_cast<RankedTensorType>(t);
  if (!tensor || !tensor.hasStaticShape() || !tensor.getElementType().isIntOrFloat())
    return std::nullopt;
  Type et = tensor.getElementType();
  return tensor.getNumElements() * (et.isInteger(1) ? 1 : (et.getIntOrFloatBitWidth() + 7) / 8);
}

} // namespace shardc::sc
