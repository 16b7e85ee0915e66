// Host evaluation of small constant subgraphs at import (shape arithmetic, masks, ranges):
// with static shapes every such subgraph folds to one sc.constant.
#pragma once

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/ADT/StringRef.h"

#include <optional>
#include <vector>

namespace shardc {

// A dense host tensor; integers and floats both held as double (exact for the int64
// magnitudes shape arithmetic uses, and for f32 values).
struct HostTensor {
  mlir::RankedTensorType type;
  std::vector<double> values;

  static std::optional<HostTensor> fromAttr(mlir::ElementsAttr attr);
  mlir::DenseElementsAttr toAttr() const;
  int64_t numel() const { return type.getNumElements(); }
  std::vector<int64_t> asInts() const;
};

// Evaluates `op` on constant operands by running its artifact step (StepOpInterface) with
// the runtime's CPU kernel, in the operands' own element types. nullopt when the op has no
// step or kernel, or the kernel refuses the operands (then the op is left for run time).
std::optional<llvm::SmallVector<mlir::DenseElementsAttr>>
evaluateOnHost(mlir::Operation *op, llvm::ArrayRef<mlir::DenseElementsAttr> operands);

} // namespace shardc
