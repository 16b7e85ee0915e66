// Factor-based sharding rules of sc ops (Shardy-style): every tensor dim of an op's operands
// and results is a list of factors; a factor sharded on some mesh axes shards every dim that
// holds it. Factors that appear only in operands are reductions: sharding them makes the
// result Partial.
#pragma once

#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>
#include <string>

namespace shardc {

struct ShardingRule {
  struct Factor {
    int64_t size = 1;
    bool shardable = true;  // false: normalised, sliced or concatenated dims stay whole
    bool reduction = false; // only in operands: sharding it makes results Partial
  };
  llvm::SmallVector<Factor> factors;
  // [operand or result][dim] -> factor ids, major to minor (empty: a broadcast size-1 dim).
  llvm::SmallVector<llvm::SmallVector<llvm::SmallVector<int, 2>>> operands, results;
  std::string reductionKind = "sum";
  // How Partial operands may flow through the op (a rowwise bias is added after the
  // reduction, so add(Partial, Replicate) must reduce first).
  enum class PartialFlow { None, AllOperands, OneOperand, FirstOperand, Unary };
  PartialFlow partialFlow = PartialFlow::None;

  int addFactor(int64_t size, bool shardable = true, bool reduction = false) {
    factors.push_back({size, shardable, reduction});
    return factors.size() - 1;
  }
};

// The rule of `op`, or nullopt when the op has none (all operands and results replicated).
std::optional<ShardingRule> getShardingRule(mlir::Operation *op);

} // namespace shardc
