// The sc dialect's C++ declarations: dialect class, enums, attributes and the generated op classes.
// Include this (not the .inc files) wherever sc ops are built or matched.
#pragma once

#include "mlir/Bytecode/BytecodeOpInterface.h"
#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/BuiltinTypes.h"
#include "mlir/IR/Dialect.h"
#include "mlir/IR/ImplicitLocOpBuilder.h"
#include "mlir/IR/OpDefinition.h"
#include "mlir/IR/OpImplementation.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"

#include "shardc/Dialect/ScShardingRule.h"
#include "shardc/Dialect/ScStep.h"
#include "shardc/Dialect/ScStorage.h"

#include <optional>

#include "shardc/Dialect/ScDialect.h.inc"
#include "shardc/Dialect/ScEnums.h.inc"
#define GET_ATTRDEF_CLASSES
#include "shardc/Dialect/ScAttrs.h.inc"
#include "shardc/Dialect/ScShardingInterface.h.inc"
#include "shardc/Dialect/ScOpInterfaces.h.inc"

#define GET_OP_CLASSES
#include "shardc/Dialect/ScOps.h.inc"
