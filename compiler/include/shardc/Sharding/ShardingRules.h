// Sharding rules of sc ops: the data is shardc/Dialect/ScShardingRule.h, and every sc tensor
// op provides its rule through ShardingRuleOpInterface (ScShardingInterface.td).
#pragma once

#include "shardc/Dialect/ScDialect.h"

#include <optional>

namespace shardc {

// The rule of `op`, or nullopt when it computes on whole tensors (or is not an sc op).
inline std::optional<ShardingRule> getShardingRule(mlir::Operation *op) {
  if (auto iface = llvm::dyn_cast<sc::ShardingRuleOpInterface>(op))
    return iface.getShardingRule();
  return std::nullopt;
}

} // namespace shardc
