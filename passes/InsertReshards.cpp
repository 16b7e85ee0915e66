// sc-insert-reshards: materialises, per operand, the collectives from the value's sharding to
// the sharding its user needs (recorded by sc-propagate-sharding); results of the function
// are made replicated. One planner (planReshard) serves every use.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "llvm/Support/Regex.h"
#include "shardc/Sharding/Sharding.h"

#include <map>

namespace shardc {
#define GEN_PASS_DEF_SCINSERTRESHARDS
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

Sharding shardingOf(Value v) {
  if (auto s = getSharding(v))
    return *s;
  return Sharding::replicated(cast<RankedTensorType>(v.getType()).getRank());
}

ArrayAttr axesAttr(OpBuilder &b, ArrayRef<std::string> axes) {
  SmallVector<StringRef> names(axes.begin(), axes.end());
  return b.getStrArrayAttr(names);
}

// Builds the collectives that take `v` from its sharding to `want`, right after v's
// definition so every user can share them. The sequence: resolve Partial (reduce_scatter
// when the target shards a dim on exactly those axes, else all_reduce), move a dim's shard
// to another dim on the same axes (all_to_all), gather dims whose axes differ, then slice
// locally what the target shards further.
Value planReshard(OpBuilder &b, Location loc, Value v, const Sharding &want) {
  Sharding cur = shardingOf(v);
  Type type = v.getType();
  auto emit = [&](Operation *op) {
    setSharding(op->getResult(0), cur);
    v = op->getResult(0);
  };
  if (cur.hasPartial() && (cur.partial != want.partial || cur.reduce != want.reduce)) {
    std::optional<int64_t> scatterDim;
    for (auto [d, axes] : llvm::enumerate(want.dims))
      if (cur.dims[d].empty() && ArrayRef<std::string>(axes) == ArrayRef<std::string>(cur.partial))
        scatterDim = d;
    SmallVector<std::string, 2> axes = cur.partial;
    std::string kind = cur.reduce;
    cur.partial.clear();
    if (scatterDim) {
      cur.dims[*scatterDim] = axes;
      emit(sc::ReduceScatterOp::create(b, loc, type, v, axesAttr(b, axes), b.getI64IntegerAttr(*scatterDim),
                                       b.getStringAttr(kind)));
    } else {
      emit(sc::AllReduceOp::create(b, loc, type, v, axesAttr(b, axes), b.getStringAttr(kind)));
    }
  }
  // Shard(a) -> Shard(b) on the same axes.
  for (size_t a = 0; a < cur.dims.size(); ++a) {
    if (cur.dims[a].empty() || cur.dims[a] == want.dims[a])
      continue;
    for (size_t d = 0; d < cur.dims.size(); ++d) {
      if (d == a || !cur.dims[d].empty() || want.dims[d] != cur.dims[a] || !want.dims[a].empty())
        continue;
      SmallVector<std::string, 2> axes = cur.dims[a];
      cur.dims[d] = axes;
      cur.dims[a].clear();
      emit(sc::AllToAllOp::create(b, loc, type, v, axesAttr(b, axes), b.getI64IntegerAttr(d), b.getI64IntegerAttr(a)));
      break;
    }
  }
  for (size_t d = 0; d < cur.dims.size(); ++d) {
    if (cur.dims[d] == want.dims[d])
      continue;
    // Wanted axes a prefix of the current ones: gather only the inner axes (FSDP storage
    // [tp, dp_shard] -> compute [tp] is one all-gather over dp_shard).
    if (want.dims[d].size() < cur.dims[d].size() &&
        std::equal(want.dims[d].begin(), want.dims[d].end(), cur.dims[d].begin())) {
      SmallVector<std::string, 2> inner(cur.dims[d].begin() + want.dims[d].size(), cur.dims[d].end());
      cur.dims[d] = want.dims[d];
      emit(sc::AllGatherOp::create(b, loc, type, v, axesAttr(b, inner), b.getI64IntegerAttr(d)));
      continue;
    }
    if (!cur.dims[d].empty()) {
      SmallVector<std::string, 2> axes = cur.dims[d];
      cur.dims[d].clear();
      emit(sc::AllGatherOp::create(b, loc, type, v, axesAttr(b, axes), b.getI64IntegerAttr(d)));
    }
    if (!want.dims[d].empty()) {
      cur.dims[d] = want.dims[d];
      emit(sc::ShardSliceOp::create(b, loc, type, v, axesAttr(b, want.dims[d]), b.getI64IntegerAttr(d)));
    }
  }
  return v;
}

struct ScInsertReshardsPass : impl::ScInsertReshardsBase<ScInsertReshardsPass> {
  // FSDP: a parameter is stored as its storage sharding and all-gathered to its compute
  // sharding as one group per decoder layer, placed before the layer's first op (or, with
  // sc.fsdp_prefetch, before the previous layer's first op, as FSDP2 prefetches the next
  // group); the memory plan frees each gathered copy after its last use. Parameters outside
  // the layers are gathered right before their first use.
  void gatherStoredParams() {
    ModuleOp module = getOperation();
    bool prefetch = module->hasAttr("sc.fsdp_prefetch");
    static const llvm::Regex layerRe("^(.*\\.(layers|h|layer|blocks)\\.[0-9]+)(\\.|$)");
    auto layerOf = [](StringRef path) -> std::string {
      SmallVector<StringRef> m;
      return layerRe.match(path, &m) ? m[1].str() : std::string();
    };
    module.walk([&](func::FuncOp func) {
      // The first op of each layer, in program order.
      std::vector<std::string> layerOrder;
      llvm::StringMap<Operation *> layerStart;
      for (Operation &op : func.getBody().front()) {
        std::string layer = layerOf(modulePathOf(op.getLoc()));
        if (!layer.empty() && !isa<sc::ParamOp, sc::ConstantOp>(op) && !layerStart.count(layer)) {
          layerStart[layer] = &op;
          layerOrder.push_back(layer);
        }
      }
      auto groupPoint = [&](StringRef layer) -> Operation * {
        auto it = llvm::find(layerOrder, layer.str());
        if (it == layerOrder.end())
          return nullptr;
        if (prefetch && it != layerOrder.begin())
          --it;
        return layerStart[*it];
      };
      func.walk([&](sc::ParamOp p) {
        auto storage = Sharding::fromAttr(p->getAttr("sc.storage_sharding"));
        if (!storage || p->use_empty())
          return;
        Sharding compute = shardingOf(p);
        setSharding(p, *storage);
        // Mixed precision casts the parameter first, so the gather moves param_dtype bytes.
        Value stored = p.getResult();
        if (p->hasOneUse())
          if (auto cast = dyn_cast<sc::CastOp>(*p->getUsers().begin())) {
            cast->setAttr("sc.operand_shardings", ArrayAttr::get(cast.getContext(), {storage->toAttr(cast.getContext())}));
            setSharding(cast.getResult(), *storage);
            stored = cast.getResult();
          }
        if (stored.use_empty())
          return;
        Operation *first = nullptr;
        for (Operation *user : stored.getUsers())
          if (!first || user->isBeforeInBlock(first))
            first = user;
        Operation *at = groupPoint(layerOf(p.getName()));
        if (!at || first->isBeforeInBlock(at))
          at = first;
        OpBuilder b(at);
        // Named after the parameter, placed in the module where it is issued, so the layer
        // structure (sc-group-layers) and the report see the group where it runs.
        OnnxLocInfo where = readOnnxLoc(at->getLoc());
        where.nodeName = p.getName().str();
        Location loc = makeOnnxLoc(p.getContext(), where, 0);
        Value gathered = planReshard(b, loc, stored, compute);
        if (gathered == stored)
          return;
        // The chain's first op reads the stored value; every other user reads the gathered one.
        Operation *firstOfChain = gathered.getDefiningOp();
        while (firstOfChain->getOperand(0) != stored)
          firstOfChain = firstOfChain->getOperand(0).getDefiningOp();
        stored.replaceAllUsesExcept(gathered, firstOfChain);
      });
    });
  }

  void runOnOperation() override {
    gatherStoredParams();
    std::map<std::pair<void *, std::string>, Value> cache; // (value, wanted sharding) -> resharded
    SmallVector<std::pair<Operation *, ArrayAttr>> work;
    getOperation().walk([&](Operation *op) {
      if (auto attr = op->getAttrOfType<ArrayAttr>("sc.operand_shardings"))
        work.push_back({op, attr});
      else if (isa<func::ReturnOp>(op)) {
        SmallVector<Attribute> reps;
        for (Value v : op->getOperands())
          reps.push_back(Sharding::replicated(cast<RankedTensorType>(v.getType()).getRank()).toAttr(op->getContext()));
        work.push_back({op, ArrayAttr::get(op->getContext(), reps)});
      }
    });
    for (auto [op, attr] : work) {
      for (auto [i, operand] : llvm::enumerate(op->getOpOperands())) {
        if (i >= attr.size())
          break;
        auto want = Sharding::fromAttr(attr[i]);
        Value v = operand.get();
        if (!want || shardingOf(v) == *want)
          continue;
        std::string key;
        llvm::raw_string_ostream(key) << attr[i];
        auto &slot = cache[{v.getAsOpaquePointer(), key}];
        if (!slot) {
          OpBuilder b(op->getContext());
          if (Operation *def = v.getDefiningOp())
            b.setInsertionPointAfter(def);
          else
            b.setInsertionPointToStart(cast<BlockArgument>(v).getOwner());
          slot = planReshard(b, op->getLoc(), v, *want);
        }
        operand.set(slot);
      }
      op->removeAttr("sc.operand_shardings");
    }
  }
};

} // namespace
} // namespace shardc
