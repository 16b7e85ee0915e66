// The sharding op interface: every sc tensor op states how its operand and result dims map
// onto shared factors, which sc-propagate-sharding and sc-insert-reshards read.
#ifndef SHARDC_SC_SHARDING_INTERFACE
#define SHARDC_SC_SHARDING_INTERFACE

include "mlir/IR/OpBase.td"

def Sc_ShardingRuleOpInterface : OpInterface<"ShardingRuleOpInterface"> {
  let cppNamespace = "::shardc::sc";
  let description = [{
    The op's factor-based sharding rule (Shardy-style): each operand and result dim is a
    list of factors, major to minor; a factor sharded on mesh axes shards every dim that
    holds it. Factors only in operands are reductions (sharding them makes results Partial),
    factors marked unshardable keep their dims whole, and `partialFlow` says where Partial
    operands may pass through unreduced (a rowwise bias is added after the reduction).

    `std::nullopt` means the op computes on whole tensors: every operand is gathered and
    every result is replicated. Each op defines its rule next to the others in
    lib/Dialect/ScShardingRules.cpp, so an op added to the dialect without one does not link.
  }];
  let methods = [
    InterfaceMethod<"The op's sharding rule, or nullopt for whole tensors.",
      "std::optional<::shardc::ShardingRule>", "getShardingRule">,
  ];
}

#endif // SHARDC_SC_SHARDING_INTERFACE
