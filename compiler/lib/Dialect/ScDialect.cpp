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

//===----------------------------------------------------------------------===//
// #sc.sharding<[[axes of dim 0], ...], partial = [axis: kind, ...]>
//===----------------------------------------------------------------------===//

static ParseResult parseAxisList(AsmParser &parser, SmallVectorImpl<Attribute> &axes) {
  return parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() -> ParseResult {
    std::string name;
    if (parser.parseKeywordOrString(&name))
      return failure();
    axes.push_back(StringAttr::get(parser.getContext(), name));
    return success();
  });
}

Attribute ShardingAttr::parse(AsmParser &parser, Type) {
  MLIRContext *ctx = parser.getContext();
  SmallVector<ArrayAttr> dims;
  SmallVector<StringAttr> partialAxes;
  SmallVector<ReduceKind> partialKinds;
  if (parser.parseLess() ||
      parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() -> ParseResult {
        SmallVector<Attribute> axes;
        if (parseAxisList(parser, axes))
          return failure();
        dims.push_back(ArrayAttr::get(ctx, axes));
        return success();
      }))
    return {};
  if (succeeded(parser.parseOptionalComma())) {
    if (parser.parseKeyword("partial") || parser.parseEqual() ||
        parser.parseCommaSeparatedList(AsmParser::Delimiter::Square, [&]() -> ParseResult {
          std::string axis;
          StringRef kind;
          SMLoc loc;
          if (parser.parseKeywordOrString(&axis) || parser.parseColon() ||
              parser.getCurrentLocation(&loc) || parser.parseKeyword(&kind))
            return failure();
          std::optional<ReduceKind> k = symbolizeReduceKind(kind);
          if (!k)
            return parser.emitError(loc) << "unknown reduction kind '" << kind << "' (expected sum or max)";
          partialAxes.push_back(StringAttr::get(ctx, axis));
          partialKinds.push_back(*k);
          return success();
        }))
      return {};
  }
  if (parser.parseGreater())
    return {};
  return getChecked([&] { return parser.emitError(parser.getNameLoc()); }, ctx, dims, partialAxes,
                    partialKinds);
}

void ShardingAttr::print(AsmPrinter &printer) const {
  printer << "<[";
  llvm::interleaveComma(getDims(), printer, [&](ArrayAttr axes) {
    printer << "[";
    llvm::interleaveComma(axes.getAsValueRange<StringAttr>(), printer,
                          [&](StringRef a) { printer.printKeywordOrString(a); });
    printer << "]";
  });
  printer << "]";
  if (!getPartialAxes().empty()) {
    printer << ", partial = [";
    llvm::interleaveComma(llvm::zip(getPartialAxes(), getPartialKinds()), printer, [&](auto entry) {
      printer.printKeywordOrString(std::get<0>(entry).getValue());
      printer << ": " << stringifyReduceKind(std::get<1>(entry));
    });
    printer << "]";
  }
  printer << ">";
}

LogicalResult ShardingAttr::verify(function_ref<InFlightDiagnostic()> emitError, ArrayRef<ArrayAttr> dims,
                                   ArrayRef<StringAttr> partialAxes, ArrayRef<ReduceKind> partialKinds) {
  if (partialAxes.size() != partialKinds.size())
    return emitError() << "sharding: " << partialAxes.size() << " partial axes but " << partialKinds.size()
                       << " reduction kinds";
  llvm::SmallDenseSet<StringAttr> seen;
  auto use = [&](Attribute a) -> LogicalResult {
    auto name = dyn_cast_if_present<StringAttr>(a);
    if (!name)
      return emitError() << "sharding: a mesh axis must be a string";
    if (!seen.insert(name).second)
      return emitError() << "sharding: mesh axis '" << name.getValue() << "' is used twice";
    return success();
  };
  for (ArrayAttr axes : dims) {
    if (!axes)
      return emitError() << "sharding: a dim's axes must be an array";
    for (Attribute a : axes)
      if (failed(use(a)))
        return failure();
  }
  for (StringAttr a : partialAxes)
    if (failed(use(a)))
      return failure();
  return success();
}
