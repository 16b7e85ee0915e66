// sc-propagate-sharding: a whole-function fixpoint over the ops' sharding rules
// (ShardingRuleOpInterface). Each value's sharding carries the priority of the seed it came
// from: the plan (parameters and its layout constraints) before the batch (inputs split
// over data parallel) before the rest. Forward sweeps give results the shardings their
// operands and the rule imply; backward sweeps refine an unseeded operand that only one op
// reads to the sharding that op wants, when its producer can compute it that way. Sweeps
// repeat until nothing changes; then each op records the operand shardings it needs, for
// sc-insert-reshards. Sums of Partial values that the program's order would reduce one by
// one (a parallel residual block's attention and MLP) are reassociated to be reduced once,
// and the fixpoint runs again on the rewritten function.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Propagation.h"
#include "shardc/Sharding/Sharding.h"
#include "shardc/Sharding/ShardingRules.h"

#include "llvm/ADT/DenseMap.h"

namespace shardc {
#define GEN_PASS_DEF_SCPROPAGATESHARDING
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;
constexpr int kMaxSweeps = 16;

int64_t rankOf(Value v) { return cast<RankedTensorType>(v.getType()).getRank(); }

// A parameter, or a parameter cast to the compute dtype (its sharding is the plan's).
bool isParamLike(Value v) {
  Operation *def = v.getDefiningOp();
  if (auto c = dyn_cast_if_present<sc::CastOp>(def))
    def = c.getInput().getDefiningOp();
  // A training state (sc-add-optimizer) stands in for its parameter: its seed is as fixed.
  return isa_and_present<sc::ParamOp, sc::StateOp>(def);
}

// `to` shards every dim `from` shards the same way, and at least one more.
bool strictlyRefines(const Sharding &to, const Sharding &from) {
  if (to.dims.size() != from.dims.size() || from.hasPartial() || to.hasPartial())
    return false;
  bool more = false;
  for (auto [t, f] : llvm::zip(to.dims, from.dims)) {
    if (f.empty())
      more |= !t.empty();
    else if (t != f)
      return false;
  }
  return more;
}

using Decision = ShardingDecision;

struct ScPropagateShardingPass : impl::ScPropagateShardingBase<ScPropagateShardingPass> {
  using Base::Base;

  const MeshShape *mesh = nullptr;
  DenseMap<Value, int> priority;
  DenseSet<Value> fixed; // seeds and sources: never refined backward
  // The shardings being refined: read from the IR's attributes once, before the fixpoint,
  // and written back once after it (no attribute round trip inside the sweeps).
  DenseMap<Value, Sharding> current;

  std::optional<Sharding> lookup(Value v) const {
    auto it = current.find(v);
    if (it == current.end())
      return std::nullopt;
    return it->second;
  }
  bool has(Value v) const { return current.contains(v); }
  void assign(Value v, const Sharding &s) { current[v] = s; }
  Sharding shardingOf(Value v) const {
    if (auto it = current.find(v); it != current.end())
      return it->second;
    return Sharding::replicated(rankOf(v));
  }
  int priorityOf(Value v) const {
    auto it = priority.find(v);
    return it == priority.end() ? kNone : it->second;
  }

  void runOnOperation() override {
    auto meshShape = MeshShape::fromModule(getOperation());
    if (!meshShape) {
      getOperation().emitError() << "sc-propagate-sharding needs sc.mesh (run sc-apply-plan first)";
      return signalPassFailure();
    }
    mesh = &*meshShape;
    getOperation().walk([&](func::FuncOp func) { propagateFunction(func); });
  }

  void propagateFunction(func::FuncOp func) {
    auto allValues = [&] {
      SmallVector<Value> values(func.getArguments());
      func.walk([&](Operation *op) {
        if (op != func.getOperation())
          values.append(op->result_begin(), op->result_end());
      });
      return values;
    };
    // From the seeds: every value's sharding as the plan set it.
    auto propagateFromSeeds = [&] {
      current.clear();
      priority.clear();
      fixed.clear();
      for (Value v : allValues())
        if (auto s = getSharding(v))
          current[v] = *s;
      propagate(func);
    };
    propagateFromSeeds();
    // Again on the rewritten function (nothing was written back yet).
    if (reassociatePartialSums(func))
      propagateFromSeeds();
    recordAll(func);
    for (Value v : allValues())
      if (auto it = current.find(v); it != current.end())
        setSharding(v, it->second);
    current.clear();
  }

  // Parallel residual blocks (GPT-NeoX, Falcon: x + attn(ln1(x)) + mlp(ln2(x))) add two
  // rowwise outputs, each Partial over tp, to the residual: in the exporter's order, (x + a)
  // + m, or with a bias added after each rowwise matmul, every Partial meets a whole value
  // and is reduced on its own. A tree of one-use adds whose current order reduces two or more
  // Partial leaves (one-use, summed over the same axes) becomes (Partials summed) + (the rest
  // summed), so the Partials are reduced once (Megatron's order; an all-reduce, or with
  // sequence parallelism a reduce-scatter onto the sequence-sharded residual). Returns
  // whether anything changed.
  bool reassociatePartialSums(func::FuncOp func) {
    auto partialOf = [&](Value v) -> const Sharding * {
      auto it = current.find(v);
      return it != current.end() && it->second.hasPartial() && it->second.reduce == "sum" ? &it->second : nullptr;
    };
    auto innerAdd = [](Value v, Block *block) {
      auto add = v.getDefiningOp<sc::AddOp>();
      return add && v.hasOneUse() && add->getBlock() == block ? add : sc::AddOp();
    };
    SmallVector<sc::AddOp> roots;
    func.walk([&](sc::AddOp add) {
      Value r = add.getResult();
      if (!(r.hasOneUse() && isa<sc::AddOp>(*r.getUsers().begin()) && (*r.getUsers().begin())->getBlock() == add->getBlock()))
        roots.push_back(add);
    });
    bool any = false;
    for (sc::AddOp root : roots) {
      SmallVector<Value> leaves;
      SmallVector<sc::AddOp> tree{root};
      for (size_t i = 0; i < tree.size(); ++i)
        for (Value v : tree[i]->getOperands()) {
          if (sc::AddOp inner = innerAdd(v, root->getBlock()))
            tree.push_back(inner);
          else
            leaves.push_back(v);
        }
      SmallVector<Value> partial, rest;
      for (Value v : leaves)
        (partialOf(v) && v.hasOneUse() && v.getType() == root.getType() ? partial : rest).push_back(v);
      if (partial.size() < 2 || rest.empty() ||
          llvm::any_of(partial, [&](Value v) { return partialOf(v)->partial != partialOf(partial[0])->partial; }))
        continue;
      int reductions = 0; // adds where a Partial operand meets a whole value
      for (sc::AddOp add : tree)
        reductions += !partialOf(add.getResult()) && llvm::any_of(add->getOperands(), partialOf);
      if (reductions < 2)
        continue;
      OpBuilder b(root);
      auto sum = [&](ArrayRef<Value> vs) {
        Value acc = vs.front();
        for (Value v : vs.drop_front()) {
          auto t = cast<RankedTensorType>(acc.getType());
          SmallVector<int64_t> shape;
          (void)sc::broadcastShapes(t.getShape(), cast<RankedTensorType>(v.getType()).getShape(), shape);
          acc = sc::AddOp::create(b, root.getLoc(), RankedTensorType::get(shape, t.getElementType()), acc, v);
        }
        return acc;
      };
      Value partials = sum(partial), others = sum(rest);
      auto top = sc::AddOp::create(b, root.getLoc(), root.getType(), partials, others);
      root.getResult().replaceAllUsesWith(top.getResult());
      for (sc::AddOp add : tree) // users first: the tree was collected from the root down
        add->erase();
      any = true;
    }
    return any;
  }

  // Each op records the operand shardings it needs (sc-insert-reshards reads a constraint's
  // operand and result shardings; a layer has no operands).
  void recordAll(func::FuncOp func) {
    func.walk([&](Operation *op) {
      if (op == func.getOperation() || op->getNumResults() == 0 ||
          isa<sc::ParamOp, sc::ConstantOp, sc::StateOp, sc::ShardingConstraintOp, sc::LayerOp>(op))
        return;
      Decision d = decide(op);
      record(op, d.operands);
      if (explain)
        explainOp(op, d);
    });
  }

  void propagate(func::FuncOp func) {
    // Seeds: the plan's parameter shardings and constraints, the batch split of the inputs.
    for (BlockArgument arg : func.getArguments()) {
      fixed.insert(arg);
      if (auto s = lookup(arg); s && !s->isReplicated())
        priority[arg] = kBatch;
    }
    SmallVector<Operation *> ops;
    func.walk([&](Operation *op) {
      if (op == func.getOperation() || op->getNumResults() == 0)
        return;
      // Sources: parameters, constants, and training states (sc-add-optimizer seeds them).
      if (isa<sc::ParamOp, sc::ConstantOp, sc::StateOp>(op)) {
        Value r = op->getResult(0);
        if (!has(r))
          assign(r, Sharding::replicated(rankOf(r)));
        fixed.insert(r);
        priority[r] = shardingOf(r).isReplicated() ? kNone : kPlan;
        return;
      }
      ops.push_back(op);
    });
    // The plan's layout constraints are seeds too: their results are fixed at the plan's
    // priority (recomputed as their operands change, since other axes flow through them).
    SmallVector<Operation *> ruled;
    for (Operation *op : ops) {
      ruled.push_back(op);
      if (isParamLike(op->getResult(0)) || isa<sc::ShardingConstraintOp>(op))
        fixed.insert(op->getResult(0));
      forward(op);
    }

    int sweeps = 1;
    for (bool changed = true; changed && sweeps < kMaxSweeps; ++sweeps) {
      changed = false;
      for (Operation *op : llvm::reverse(ruled))
        changed |= backward(op);
      for (Operation *op : ruled)
        changed |= forward(op);
      if (!changed)
        break;
    }
    if (sweeps >= kMaxSweeps)
      func.emitWarning() << "sc-propagate-sharding: no fixpoint after " << kMaxSweeps
                         << " sweeps; the last shardings are used";

  }

  // The factor shardings of `op` from its operands and results, best source first, and what
  // they make of every operand and result.
  Decision decide(Operation *op) const {
    Decision d;
    SmallVector<Sharding> operandShardings;
    for (Value v : op->getOperands())
      operandShardings.push_back(shardingOf(v));
    // A layout constraint: the constrained axes as the plan places them, the others as the
    // operand has them.
    if (auto c = dyn_cast<sc::ShardingConstraintOp>(op)) {
      SmallVector<std::string> axes;
      for (auto a : c.getAxes().getAsValueRange<StringAttr>())
        axes.push_back(a.str());
      d.operands.push_back(operandShardings[0]);
      d.results.push_back(applyConstraint(operandShardings[0], axes, *Sharding::fromAttr(c.getSharding())));
      d.priority = kPlan;
      return d;
    }
    // A layer (sc-group-layers) passes its yielded values out unchanged.
    if (auto layer = dyn_cast<sc::LayerOp>(op)) {
      for (Value v : layer.getBody().front().getTerminator()->getOperands()) {
        d.results.push_back(shardingOf(v));
        d.priority = std::min(d.priority, priorityOf(v));
      }
      return d;
    }
    std::optional<ShardingRule> rule = getShardingRule(op);
    // `sc.replicate_operands`: the op wants whole operands (e.g. the output-dtype cast, so
    // that outputs are gathered in the compute dtype first).
    if (!rule || op->hasAttr("sc.replicate_operands")) {
      for (Value v : op->getOperands())
        d.operands.push_back(Sharding::replicated(rankOf(v)));
      for (Value r : op->getResults())
        d.results.push_back(Sharding::replicated(rankOf(r)));
      return d;
    }

    SmallVector<ShardingSource> operands, results;
    for (auto [i, v] : llvm::enumerate(op->getOperands()))
      operands.push_back({operandShardings[i], priorityOf(v), isParamLike(v),
                          llvm::any_of(v.getUsers(), [&](Operation *u) { return u != op; })});
    for (Value r : op->getResults())
      results.push_back({shardingOf(r), has(r) ? priorityOf(r) : kNone, false});
    return decideShardings(*rule, operands, results, *mesh);
  }

  // Results take the op's decision. Returns whether any changed.
  bool forward(Operation *op) {
    Decision d = decide(op);
    bool changed = false;
    for (auto [i, r] : llvm::enumerate(op->getResults())) {
      // A replicated result constrains nothing, so it carries no priority.
      int p = d.results[i].isReplicated() ? kNone : d.priority;
      if (has(r) && shardingOf(r) == d.results[i] && priorityOf(r) == p)
        continue;
      assign(r, d.results[i]);
      priority[r] = p;
      changed = true;
    }
    return changed;
  }

  // An operand that only `op` reads, and that no seed fixed, is refined to the sharding `op`
  // wants when its producer, asked for it, computes exactly that: the producer then works
  // on its share instead of the whole tensor being computed and sliced afterwards.
  bool backward(Operation *op) {
    Decision d = decide(op);
    if (d.priority >= kNone)
      return false;
    bool changed = false;
    for (auto [i, v] : llvm::enumerate(op->getOperands())) {
      Operation *producer = v.getDefiningOp();
      if (!producer || fixed.contains(v) || !v.hasOneUse() || !getShardingRule(producer))
        continue;
      Sharding want = d.operands[i];
      want.partial.clear();
      Sharding have = shardingOf(v);
      if (!strictlyRefines(want, have))
        continue;
      int oldPriority = priorityOf(v);
      assign(v, want);
      priority[v] = d.priority;
      Decision again = decide(producer);
      if (again.results[cast<OpResult>(v).getResultNumber()] == want) {
        changed = true;
        continue;
      }
      assign(v, have);
      priority[v] = oldPriority;
    }
    return changed;
  }

  void explainOp(Operation *op, const Decision &d) {
    if (llvm::all_of(d.results, [](const Sharding &s) { return s.isReplicated(); }))
      return;
    static const char *const kNames[] = {"plan", "batch", "derived", "none"};
    auto diag = op->emitRemark() << "sharding: results";
    for (Value r : op->getResults())
      diag << " " << shardingOf(r).toDTensorString(*mesh);
    diag << " from operands";
    for (Value v : op->getOperands())
      diag << " " << shardingOf(v).toDTensorString(*mesh);
    diag << " (priority: " << kNames[d.priority] << ")";
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
