// sc-print-sharding-rules: each op's ShardingRuleOpInterface rule as a remark, in factor
// notation, so lit tests can check every rule and a user can see why a dim stays whole.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/ShardingRules.h"

#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCPRINTSHARDINGRULES
#include "shardc/Passes/Passes.h.inc"

namespace {

std::string factorName(int f) {
  std::string name(1, char('i' + f % 18));
  if (f >= 18)
    name += std::to_string(f / 18);
  return name;
}

std::string tensors(ArrayRef<SmallVector<SmallVector<int, 2>>> list) {
  if (list.empty())
    return "()";
  SmallVector<std::string> parts;
  for (auto &dims : list) {
    SmallVector<std::string> ds;
    for (auto &factors : dims) {
      if (factors.empty()) {
        ds.push_back("1");
        continue;
      }
      SmallVector<std::string> fs;
      for (int f : factors)
        fs.push_back(factorName(f));
      ds.push_back(llvm::join(fs, "*"));
    }
    parts.push_back("(" + llvm::join(ds, ", ") + ")");
  }
  return llvm::join(parts, ", ");
}

const char *flowName(ShardingRule::PartialFlow flow) {
  switch (flow) {
  case ShardingRule::PartialFlow::None: return "none";
  case ShardingRule::PartialFlow::AllOperands: return "all-operands";
  case ShardingRule::PartialFlow::OneOperand: return "one-operand";
  case ShardingRule::PartialFlow::FirstOperand: return "first-operand";
  case ShardingRule::PartialFlow::Unary: return "unary";
  }
  return "none";
}

struct ScPrintShardingRulesPass : impl::ScPrintShardingRulesBase<ScPrintShardingRulesPass> {
  void runOnOperation() override {
    getOperation().walk([](Operation *op) {
      auto iface = dyn_cast<sc::ShardingRuleOpInterface>(op);
      if (!iface)
        return;
      std::optional<ShardingRule> rule = iface.getShardingRule();
      if (!rule) {
        op->emitRemark() << op->getName() << ": whole tensors";
        return;
      }
      SmallVector<std::string> reduction, whole;
      for (auto [f, factor] : llvm::enumerate(rule->factors)) {
        if (factor.reduction)
          reduction.push_back(factorName(f));
        if (!factor.shardable)
          whole.push_back(factorName(f));
      }
      auto diag = op->emitRemark() << op->getName() << ": " << tensors(rule->operands) << " -> "
                                   << tensors(rule->results);
      if (!reduction.empty())
        diag << " reduction={" << llvm::join(reduction, ",") << "}:" << rule->reductionKind;
      if (!whole.empty())
        diag << " whole={" << llvm::join(whole, ",") << "}";
      diag << " partial=" << flowName(rule->partialFlow);
    });
  }
};

} // namespace
} // namespace shardc
