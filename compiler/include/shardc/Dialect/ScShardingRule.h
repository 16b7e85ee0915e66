// The data of a sharding rule (see ScShardingInterface.td): factors with their sizes, and per
// operand and result dim the factors it holds.
#pragma once

#include "llvm/ADT/SmallVector.h"

#include <cstdint>
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
    return static_cast<int>(factors.size()) - 1;
  }
};

} // namespace shardc
