// One step of sharding propagation (shardc/Sharding/Propagation.h): an op's rule applied to
// the shardings of its operands and results.
#include "shardc/Sharding/Propagation.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringSet.h"

#include <algorithm>

namespace shardc {

namespace {

using llvm::ArrayRef;
using llvm::SmallVector;
using PF = ShardingRule::PartialFlow;

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

} // namespace

ShardingDecision decideShardings(const ShardingRule &rule, ArrayRef<ShardingSource> operands,
                                 ArrayRef<ShardingSource> results, const MeshShape &mesh) {
  ShardingDecision d;
  SmallVector<Sharding> operandShardings;
  for (const ShardingSource &o : operands)
    operandShardings.push_back(o.sharding);

  // 1. Sources: operands, then results (a refinement a user asked for), by priority; at
  // equal priority parameters first (a colwise weight keeps tp on its output features
  // even when the activation arrives sequence-sharded), then the most sharded.
  struct Source {
    Sharding sharding;
    ArrayRef<SmallVector<int, 2>> dims;
    int priority;
    bool param;
  };
  SmallVector<Source> sources;
  for (auto [i, o] : llvm::enumerate(operands))
    sources.push_back({o.sharding, rule.operands[i], o.priority, o.param});
  for (auto [i, r] : llvm::enumerate(results))
    if (r.priority < kNone) {
      Sharding s = r.sharding;
      s.partial.clear();
      sources.push_back({s, rule.results[i], r.priority, false});
    }
  llvm::stable_sort(sources, [](const Source &a, const Source &b) {
    if (a.priority != b.priority)
      return a.priority < b.priority;
    if (a.param != b.param)
      return a.param;
    return shardedAxisCount(a.sharding) > shardedAxisCount(b.sharding);
  });
  SmallVector<SmallVector<std::string, 2>> factorAxes(rule.factors.size());
  SmallVector<int> factorPriority(rule.factors.size(), kNone);
  llvm::StringSet<> used;
  for (const Source &src : sources)
    for (auto [dim, axes] : llvm::enumerate(src.sharding.dims)) {
      if (axes.empty() || dim >= src.dims.size())
        continue;
      int f = majorFactor(rule, src.dims[dim]);
      if (f < 0 || !rule.factors[f].shardable || !factorAxes[f].empty())
        continue;
      if (rule.factors[f].size % mesh.product(axes) != 0)
        continue;
      if (llvm::any_of(axes, [&](const std::string &a) { return used.contains(a); }))
        continue;
      factorAxes[f] = axes;
      factorPriority[f] = src.priority;
      for (auto &a : axes)
        used.insert(a);
    }
  // A factor that is the minor part of a compound dim somewhere cannot stay sharded: its
  // chunks would not be contiguous there.
  auto dropNonMajor = [&](ArrayRef<SmallVector<SmallVector<int, 2>>> tensors) {
    for (auto &dims : tensors)
      for (auto &factors : dims) {
        int major = majorFactor(rule, factors);
        for (int f : factors)
          if (f != major && rule.factors[f].size > 1 && !factorAxes[f].empty()) {
            for (auto &a : factorAxes[f])
              used.erase(a);
            factorAxes[f].clear();
            factorPriority[f] = kNone;
          }
      }
  };
  dropNonMajor(rule.operands);
  dropNonMajor(rule.results);
  for (int p : factorPriority)
    d.priority = std::min(d.priority, p);

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
    switch (rule.partialFlow) {
    case PF::AllOperands:
      allowed = sameAxes && sum && partialOperands.size() == operands.size();
      break;
    case PF::OneOperand:
      allowed = sum && partialOperands.size() == 1;
      break;
    case PF::FirstOperand:
      allowed = sum && partialOperands.size() == 1 && partialOperands.front() == 0;
      break;
    case PF::Unary:
      allowed = operands.size() == 1;
      break;
    case PF::None:
      break;
    }
    if (llvm::any_of(partialOperands, [&](unsigned i) { return operands[i].readElsewhere; }))
      allowed = false;
    if (allowed && llvm::none_of(first.partial, [&](const std::string &a) { return used.contains(a); })) {
      flowing = first.partial;
      flowingKind = first.reduce;
      d.priority = std::min(d.priority, operands[partialOperands.front()].priority);
    }
  }

  // 3. Results: projected factors, plus Partial from the sharded reduction factors the result
  // does not have (a result indexed by such a factor is split along it, as attention_grad's
  // dq by the query sequence while dk and dv sum over it).
  for (unsigned i = 0; i < results.size(); ++i) {
    SmallVector<std::string, 2> reduced;
    for (auto [f, factor] : llvm::enumerate(rule.factors))
      if (factor.reduction && !factorAxes[f].empty() &&
          llvm::none_of(rule.results[i], [&, f = int(f)](const SmallVector<int, 2> &dim) { return llvm::is_contained(dim, f); }))
        reduced.append(factorAxes[f].begin(), factorAxes[f].end());
    Sharding s = project(rule, rule.results[i], factorAxes);
    // Expert parallelism (docs/moe.md#training): a result split over the ep sub-axis of
    // dp_shard x cp already sums its ep group's tokens; it is Partial only over ep_shard.
    if (!reduced.empty() && llvm::any_of(s.dims, [](const auto &d) { return llvm::is_contained(d, "ep"); })) {
      bool carved = false;
      llvm::erase_if(reduced, [&](const std::string &a) {
        bool sub = a == "dp_shard" || a == "cp";
        carved |= sub;
        return sub;
      });
      if (carved && mesh.size("ep_shard") > 1)
        reduced.push_back("ep_shard");
    }
    s.partial = flowing;
    s.reduce = flowingKind;
    if (!reduced.empty()) {
      s.partial.append(reduced.begin(), reduced.end());
      s.reduce = rule.reductionKind;
    }
    d.results.push_back(s);
  }
  for (unsigned i = 0; i < operands.size(); ++i) {
    Sharding s = project(rule, rule.operands[i], factorAxes);
    if (!flowing.empty() && operandShardings[i].hasPartial()) {
      s.partial = flowing;
      s.reduce = flowingKind;
    }
    d.operands.push_back(s);
  }
  return d;
}

} // namespace shardc
