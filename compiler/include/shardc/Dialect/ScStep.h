// The artifact step an sc op lowers to (StepOpInterface) and its cost. The attributes are the
// runtime's own type (shardc/runtime/Kernel.h), so what the compiler writes is what the
// runtime's kernels read, and import-time folding can run a step on the host unchanged.
#pragma once

#include "shardc/runtime/Kernel.h"

#include <cstdint>
#include <string>

#include "shardc/Dialect/ScShardingRule.h"

#include "mlir/Support/LLVM.h"

namespace mlir {
class Operation;
}

namespace shardc {

struct StepDesc {
  std::string kind;   // the runtime kernel's name
  rt::Attrs attrs;    // its attributes, by name
};

struct OpCost {
  uint64_t flops = 0; // floating-point operations (a multiply-add counts two)
  uint64_t bytes = 0; // bytes read (operands) plus written (results)
};

// No FLOPs (the op is bound by memory) and every operand and result read or written once.
OpCost defaultOpCost(mlir::Operation *op);

// The broadcast sharding rule of an elementwise op, Partial flowing as `flow` says.
ShardingRule elementwiseShardingRule(mlir::Operation *op, ShardingRule::PartialFlow flow);

// StepOpInterface's default: an elementwise op whose operands share one element type runs as
// the step kind `formula` with attribute `formula` naming its row of SC_ELEMENTWISE_FORMULAS
// (so a new formula adds no step kind); any other op as its mnemonic, with no attributes.
void defaultLowerToStep(mlir::Operation *op, StepDesc &step);

// A collective's step (Sc_CollectiveOp): the kind is its mnemonic; its attributes are its
// inherent ones by name: `axes` as strings, every integer attribute a dim (normalised to be
// non-negative), the reduction kind by name.
mlir::LogicalResult lowerCollectiveToStep(mlir::Operation *op, StepDesc &step);

namespace sc {
// ElementwiseOpInterface's verifier: operands broadcast to the result, element types agree.
mlir::LogicalResult verifyElementwiseFormulaOp(mlir::Operation *op);
} // namespace sc

} // namespace shardc
