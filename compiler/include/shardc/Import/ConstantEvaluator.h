// Host evaluation of small constant subgraphs at import (shape arithmetic, masks, ranges):
// with static shapes every such subgraph folds to one sc.constant.
#pragma once

#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/BuiltinTypes.h"
#include "llvm/ADT/ArrayRef.h"
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

// Evaluates the sc op kind `opName` (e.g. "add", "gather", "concat") on constant operands
// producing a tensor of `resultType`; nullopt when the op is not evaluated on the host.
std::optional<HostTensor> evaluateOnHost(llvm::StringRef opName, llvm::ArrayRef<HostTensor> operands,
                                         mlir::RankedTensorType resultType, mlir::DictionaryAttr attrs);

} // namespace shardc
