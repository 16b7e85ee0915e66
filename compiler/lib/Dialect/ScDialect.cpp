// Registers the sc dialect and its ops, and materialises folded constants as sc.constant.
#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/DialectImplementation.h"
#include "llvm/ADT/TypeSwitch.h"

using namespace mlir;
using namespace shardc::sc;

#include "shardc/Dialect/ScDialect.cpp.inc"
#include "shardc/Dialect/ScShardingInterface.cpp.inc"
#include "shardc/Dialect/ScOpInterfaces.cpp.inc"
#include "shardc/Dialect/ScEnums.cpp.inc"
#define GET_ATTRDEF_CLASSES
#include "shardc/Dialect/ScAttrs.cpp.inc"

void ScDialect::initialize() {
  addAttributes<
#define GET_ATTRDEF_LIST
#include "shardc/Dialect/ScAttrs.cpp.inc"
      >();
  addOperations<
#define GET_OP_LIST
#include "shardc/Dialect/ScOps.cpp.inc"
      >();
}

Operation *ScDialect::materializeConstant(OpBuilder &builder, Attribute value, Type type,
                                          Location loc) {
  auto elements = dyn_cast<ElementsAttr>(value);
  if (!elements || elements.getType() != type)
    return nullptr;
  return ConstantOp::create(builder, loc, type, elements);
}
