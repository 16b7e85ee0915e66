// sc-propagate-sharding: one walk in program order; each op's rule decides its factor
// shardings from its operands, the result shardings follow, and the operand shardings the op
// needs are recorded for sc-insert-reshards.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"
#include "shardc/Sharding/ShardingRules.h"

#include "llvm/ADT/StringSet.h"

namespace shardc {
#define GEN_PASS_DEF_SCPROPAGATESHARDING
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;
using PF = ShardingRule::PartialFlow;

Sharding shardingOf(Value v) {
  if (auto s = getSharding(v))
    return *s;
  return Sharding::replicated(cast<RankedTensorType>(v.getType()).getRank());
}

int64_t shardedAxisCount(const Sharding &s) {
  int64_t n = 0;
  for (auto &d : s.dims)
    n += d.size();
  return n;
}

// The first factor of a dim larger than 1: only it can be sharded contiguously.
int majorFactor(const ShardingRule &rule, ArrayRef<int> factors) {
  for (int f : factors)
    if (rule.factors[f].size > 1)
      return f;
  return -1;
}

Sharding project(const ShardingRule &rule, ArrayRef<SmallVector<int, 2>> dims,
                 ArrayRef<SmallVector<std::string, 2>> factorAxes) {
  Sharding s = Sharding::replicated(dims.size());
  for (auto [d, factors] : llvm::enumerate(dims)) {
    int major = majorFactor(rule, factors);
    if (major >= 0)
      s.dims[d] = factorAxes[major];
  }
  return s;
}

struct ScPropagateShardingPass : impl::ScPropagateShardingBase<ScPropagateShardingPass> {
  using Base::Base;

  void runOnOperation() override {
    auto mesh = MeshShape::fromModule(getOperation());
    if (!mesh) {
      getOperation().emitError() << "sc-propagate-sharding needs sc.mesh (run sc-apply-plan first)";
      return signalPassFailure();
    }
    getOperation().walk([&](Operation *op) {
      if (isa<func::FuncOp, ModuleOp>(op) || op->getNumResults() == 0)
        return;
      if (isa<sc::ParamOp, sc::ConstantOp>(op)) {
        if (!getSharding(op->getResult(0)))
          setSharding(op->getResult(0), Sharding::replicated(cast<RankedTensorType>(op->getResult(0).getType()).getRank()));
        return;
      }
      propagate(op, *mesh);
    });
  }

  // A parameter, or a parameter cast to the compute dtype.
  static bool isParamLike(Value v) {
    Operation *def = v.getDefiningOp();
    if (auto c = dyn_cast_if_present<sc::CastOp>(def))
      def = c.getInput().getDefiningOp();
    return isa_and_present<sc::ParamOp>(def);
  }

  void propagate(Operation *op, const MeshShape &mesh) {
    SmallVector<Sharding> operandShardings;
    for (Value v : op->getOperands())
      operandShardings.push_back(shardingOf(v));
    // Resharding ops placed by sc-apply-plan (sequence parallel) change the sharding of
    // their operand as they say; they take it as it is.
    if (auto slice = dyn_cast<sc::ShardSliceOp>(op)) {
      Sharding s = operandShardings[0];
      int64_t dim = (int64_t)slice.getDim();
      for (auto a : slice.getAxes().getAsValueRange<StringAttr>())
        s.dims[dim].push_back(a.str());
      setSharding(slice.getResult(), s);
      record(op, operandShardings);
      return;
    }
    if (auto gather = dyn_cast<sc::AllGatherOp>(op)) {
      Sharding in = operandShardings[0];
      if (in.dims[(int64_t)gather.getDim()].empty()) {
        // Nothing to gather on this dim after all: the op is an identity.
        gather.getResult().replaceAllUsesWith(gather.getInput());
        gather.erase();
        return;
      }
      in.partial.clear();
      Sharding s = in;
      s.dims[(int64_t)gather.getDim()].clear();
      setSharding(gather.getResult(), s);
      record(op, {in});
      return;
    }
    std::optional<ShardingRule> rule = getShardingRule(op);
    SmallVector<Sharding> desired;
    // `sc.replicate_operands`: the op wants whole operands (e.g. the output-dtype cast,
    // so that outputs are gathered in the compute dtype first).
    if (!rule || op->hasAttr("sc.replicate_operands")) {
      for (Value v : op->getOperands())
        desired.push_back(Sharding::replicated(cast<RankedTensorType>(v.getType()).getRank()));
      for (Value r : op->getResults())
        setSharding(r, Sharding::replicated(cast<RankedTensorType>(r.getType()).getRank()));
      record(op, desired);
      return;
    }

    // 1. Factor shardings from the operands, most-sharded operand first.
    SmallVector<SmallVector<std::string, 2>> factorAxes(rule->factors.size());
    llvm::StringSet<> used;
    SmallVector<unsigned> order;
    for (unsigned i = 0; i < op->getNumOperands(); ++i)
      order.push_back(i);
    // Priorities: the plan's parameters first (a colwise weight keeps tp on its output
    // features even when the activation arrives sequence-sharded), then the most-sharded.
    auto isParam = [&](unsigned i) { return isParamLike(op->getOperand(i)); };
    llvm::stable_sort(order, [&](unsigned a, unsigned b) {
      if (isParam(a) != isParam(b))
        return isParam(a);
      return shardedAxisCount(operandShardings[a]) > shardedAxisCount(operandShardings[b]);
    });
    for (unsigned i : order) {
      const Sharding &s = operandShardings[i];
      for (auto [d, axes] : llvm::enumerate(s.dims)) {
        if (axes.empty() || d >= rule->operands[i].size())
          continue;
        int f = majorFactor(*rule, rule->operands[i][d]);
        if (f < 0 || !rule->factors[f].shardable || !factorAxes[f].empty())
          continue;
        if (rule->factors[f].size % mesh.product(axes) != 0)
          continue;
        if (llvm::any_of(axes, [&](const std::string &a) { return used.contains(a); }))
          continue;
        factorAxes[f] = axes;
        for (auto &a : axes)
          used.insert(a);
      }
    }
    // A factor that is the minor part of a compound dim somewhere cannot stay sharded: its
    // chunks would not be contiguous there.
    auto dropNonMajor = [&](ArrayRef<SmallVector<SmallVector<int, 2>>> tensors) {
      for (auto &dims : tensors)
        for (auto &factors : dims) {
          int major = majorFactor(*rule, factors);
          for (int f : factors)
            if (f != major && rule->factors[f].size > 1 && !factorAxes[f].empty()) {
              for (auto &a : factorAxes[f])
                used.erase(a);
              factorAxes[f].clear();
            }
        }
    };
    dropNonMajor(rule->operands);
    dropNonMajor(rule->results);

    // 2. Partial operands: flow through where the rule allows, otherwise reduce first.
    SmallVector<std::string, 2> flowing;
    std::string flowingKind = "sum";
    SmallVector<unsigned> partialOperands;
    for (unsigned i = 0; i < operandShardings.size(); ++i)
      if (operandShardings[i].hasPartial())
        partialOperands.push_back(i);
    if (!partialOperands.empty()) {
      const Sharding &first = operandShardings[partialOperands.front()];
      bool sameAxes = llvm::all_of(partialOperands, [&](unsigned i) {
        return operandShardings[i].partial == first.partial && operandShardings[i].reduce == first.reduce;
      });
      bool sum = first.reduce == "sum";
      bool allowed = false;
      switch (rule->partialFlow) {
      case PF::AllOperands:
        allowed = sameAxes && sum && partialOperands.size() == op->getNumOperands();
        break;
      case PF::OneOperand:
        allowed = sum && partialOperands.size() == 1;
        break;
      case PF::FirstOperand:
        allowed = sum && partialOperands.size() == 1 && partialOperands.front() == 0;
        break;
      case PF::Unary:
        allowed = op->getNumOperands() == 1;
        break;
      case PF::None:
        break;
      }
      if (allowed && llvm::none_of(first.partial, [&](const std::string &a) { return used.contains(a); })) {
        flowing = first.partial;
        flowingKind = first.reduce;
      }
    }

    // 3. Results: projected factors, plus Partial from sharded reduction factors.
    SmallVector<std::string, 2> reduced;
    for (auto [f, factor] : llvm::enumerate(rule->factors))
      if (factor.reduction && !factorAxes[f].empty())
        reduced.append(factorAxes[f].begin(), factorAxes[f].end());
    for (auto [i, r] : llvm::enumerate(op->getResults())) {
      Sharding s = project(*rule, rule->results[i], factorAxes);
      s.partial = flowing;
      s.reduce = flowingKind;
      if (!reduced.empty()) {
        s.partial.append(reduced.begin(), reduced.end());
        s.reduce = rule->reductionKind;
      }
      setSharding(r, s);
    }
    for (auto [i, v] : llvm::enumerate(op->getOperands())) {
      Sharding s = project(*rule, rule->operands[i], factorAxes);
      if (!flowing.empty() && operandShardings[i].hasPartial()) {
        s.partial = flowing;
        s.reduce = flowingKind;
      }
      desired.push_back(s);
    }
    record(op, desired);

    if (explain) {
      bool any = llvm::any_of(op->getResults(), [](Value r) { return !shardingOf(r).isReplicated(); });
      if (any) {
        auto diag = op->emitRemark() << "sharding: results";
        for (Value r : op->getResults())
          diag << " " << shardingOf(r).toDTensorString(mesh);
        diag << " from operands";
        for (const Sharding &s : operandShardings)
          diag << " " << s.toDTensorString(mesh);
      }
    }
  }

  void record(Operation *op, ArrayRef<Sharding> desired) {
    SmallVector<Attribute> attrs;
    for (const Sharding &s : desired)
      attrs.push_back(s.toAttr(op->getContext()));
    op->setAttr("sc.operand_shardings", ArrayAttr::get(op->getContext(), attrs));
  }
};

} // namespace
} // namespace shardc
