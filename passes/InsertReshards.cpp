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

// The reshard planner: a cheapest-path search over shardings. A state is a sharding; the
// moves are the collectives, each changing the innermost axes of one dim (or the Partial
// axes): all_reduce (Partial -> whole), reduce_scatter (Partial -> appended to a dim),
// all_to_all (a dim's inner axes moved to another dim), all_gather (a dim's inner axes
// dropped) and shard_slice (axes appended locally). A move costs the bytes each rank puts on
// the wire in a ring (all_reduce 2(G-1)/G of its buffer, reduce_scatter and all_to_all
// (G-1)/G, all_gather G-1 times its chunk, shard_slice nothing) plus one step; plans compare
// by bytes, then steps. Slices and scatters only extend a dim toward the wanted axes, so the
// search stays small (a few dims, a few axes).
struct ReshardMove {
  enum Kind { AllReduce, ReduceScatter, AllToAll, AllGather, Slice } kind;
  SmallVector<std::string, 2> axes;
  int64_t dim = 0, fromDim = 0;
};

struct ReshardPlanner {
  const MeshShape &mesh;
  ArrayRef<int64_t> shape;
  int64_t elementBytes;

  double localBytes(const Sharding &s) const {
    double n = (double)elementBytes;
    for (auto [d, axes] : llvm::enumerate(s.dims))
      n *= (double)shape[d] / (double)mesh.product(axes);
    return n;
  }
  bool divides(const Sharding &s, int64_t d, ArrayRef<std::string> more) const {
    SmallVector<std::string> all(s.dims[d].begin(), s.dims[d].end());
    all.append(more.begin(), more.end());
    return shape[d] % mesh.product(all) == 0;
  }
  static bool usesAxis(const Sharding &s, StringRef a) {
    return llvm::is_contained(s.partial, a) ||
           llvm::any_of(s.dims, [&](auto &axes) { return llvm::is_contained(axes, a); });
  }
  // `cur` followed by `more` is a prefix of `want`.
  static bool extendsToward(ArrayRef<std::string> cur, ArrayRef<std::string> more, ArrayRef<std::string> want) {
    if (cur.size() + more.size() > want.size())
      return false;
    return std::equal(cur.begin(), cur.end(), want.begin()) &&
           std::equal(more.begin(), more.end(), want.begin() + cur.size());
  }

  std::optional<SmallVector<ReshardMove>> plan(const Sharding &from, const Sharding &want) const {
    struct Node {
      Sharding s;
      double bytes = 0;
      int steps = 0;
      SmallVector<ReshardMove> moves;
    };
    auto key = [](const Sharding &s) {
      std::string k;
      for (auto &axes : s.dims) {
        for (auto &a : axes)
          k += a + ",";
        k += "|";
      }
      for (auto &a : s.partial)
        k += a + ",";
      return k + s.reduce;
    };
    auto better = [](const Node &a, const Node &b) {
      if (std::abs(a.bytes - b.bytes) > 1e-6)
        return a.bytes < b.bytes;
      return a.steps < b.steps;
    };
    std::string goal = key(want);
    std::map<std::string, Node> best;
    std::vector<Node> open{Node{from, 0, 0, {}}};
    best[key(from)] = open.front();
    for (int expanded = 0; !open.empty() && expanded < 4096; ++expanded) {
      auto it = std::min_element(open.begin(), open.end(), better);
      Node node = *it;
      open.erase(it);
      std::string k = key(node.s);
      if (better(best[k], node))
        continue; // stale
      if (k == goal)
        return node.moves;
      auto push = [&](Sharding next, double bytes, ReshardMove move) {
        Node n{std::move(next), node.bytes + bytes, node.steps + 1, node.moves};
        n.moves.push_back(std::move(move));
        std::string nk = key(n.s);
        auto found = best.find(nk);
        if (found != best.end() && !better(n, found->second))
          return;
        best[nk] = n;
        open.push_back(std::move(n));
      };
      const Sharding &s = node.s;
      double here = localBytes(s);
      bool partialWrong = s.hasPartial() && (s.partial != want.partial || s.reduce != want.reduce);
      if (partialWrong) {
        double g = (double)mesh.product(s.partial);
        Sharding r = s;
        r.partial.clear();
        push(r, 2 * (g - 1) / g * here, {ReshardMove::AllReduce, s.partial});
        for (size_t d = 0; d < s.dims.size(); ++d)
          if (extendsToward(s.dims[d], s.partial, want.dims[d]) && divides(s, d, s.partial)) {
            Sharding rs = r;
            rs.dims[d].append(s.partial.begin(), s.partial.end());
            push(rs, (g - 1) / g * here, {ReshardMove::ReduceScatter, s.partial, (int64_t)d});
          }
        continue; // a pending reduction is resolved before any dim moves
      }
      for (size_t d = 0; d < s.dims.size(); ++d) {
        const auto &axes = s.dims[d];
        // Drop the innermost k axes of dim d: all_gather, or all_to_all onto another dim.
        for (size_t k = 1; k <= axes.size(); ++k) {
          SmallVector<std::string, 2> inner(axes.end() - k, axes.end());
          double g = (double)mesh.product(inner);
          Sharding gathered = s;
          gathered.dims[d].resize(axes.size() - k);
          push(gathered, (g - 1) * here, {ReshardMove::AllGather, inner, (int64_t)d});
          for (size_t e = 0; e < s.dims.size(); ++e)
            if (e != d && extendsToward(s.dims[e], inner, want.dims[e]) && divides(gathered, e, inner)) {
              Sharding moved = gathered;
              moved.dims[e].append(inner.begin(), inner.end());
              push(moved, (g - 1) / g * here, {ReshardMove::AllToAll, inner, (int64_t)e, (int64_t)d});
            }
        }
        // Append the next wanted axes locally.
        if (extendsToward(axes, {}, want.dims[d]) && axes.size() < want.dims[d].size()) {
          for (size_t k = 1; k + axes.size() <= want.dims[d].size(); ++k) {
            SmallVector<std::string, 2> more(want.dims[d].begin() + axes.size(), want.dims[d].begin() + axes.size() + k);
            if (llvm::any_of(more, [&](const std::string &a) { return usesAxis(s, a); }) || !divides(s, d, more))
              continue;
            Sharding sliced = s;
            sliced.dims[d].append(more.begin(), more.end());
            push(sliced, 0, {ReshardMove::Slice, more, (int64_t)d});
          }
        }
      }
    }
    return std::nullopt;
  }
};

// Builds the collectives that take `v` from its sharding to `want`, right after v's
// definition so every user can share them.
Value planReshard(OpBuilder &b, Location loc, Value v, const Sharding &want, const MeshShape &mesh) {
  Sharding cur = shardingOf(v);
  auto type = cast<RankedTensorType>(v.getType());
  Sharding goal = want;
  if (!cur.hasPartial() && goal.hasPartial())
    goal.partial.clear(); // a reduction cannot be created; the whole value serves
  ReshardPlanner planner{mesh, type.getShape(),
                         std::max<int64_t>(1, type.getElementType().getIntOrFloatBitWidth() / 8)};
  std::optional<SmallVector<ReshardMove>> moves = planner.plan(cur, goal);
  if (!moves) {
    emitError(loc) << "no collective sequence takes " << cur.toDTensorString(mesh) << " to "
                   << goal.toDTensorString(mesh) << " (shape does not divide)";
    return v;
  }
  for (const ReshardMove &m : *moves) {
    Operation *op = nullptr;
    switch (m.kind) {
    case ReshardMove::AllReduce:
      op = sc::AllReduceOp::create(b, loc, type, v, axesAttr(b, m.axes), b.getStringAttr(cur.reduce));
      cur.partial.clear();
      break;
    case ReshardMove::ReduceScatter:
      op = sc::ReduceScatterOp::create(b, loc, type, v, axesAttr(b, m.axes), b.getI64IntegerAttr(m.dim),
                                       b.getStringAttr(cur.reduce));
      cur.partial.clear();
      cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
      break;
    case ReshardMove::AllToAll:
      op = sc::AllToAllOp::create(b, loc, type, v, axesAttr(b, m.axes), b.getI64IntegerAttr(m.dim),
                                  b.getI64IntegerAttr(m.fromDim));
      cur.dims[m.fromDim].resize(cur.dims[m.fromDim].size() - m.axes.size());
      cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
      break;
    case ReshardMove::AllGather:
      op = sc::AllGatherOp::create(b, loc, type, v, axesAttr(b, m.axes), b.getI64IntegerAttr(m.dim));
      cur.dims[m.dim].resize(cur.dims[m.dim].size() - m.axes.size());
      break;
    case ReshardMove::Slice:
      op = sc::ShardSliceOp::create(b, loc, type, v, axesAttr(b, m.axes), b.getI64IntegerAttr(m.dim));
      cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
      break;
    }
    setSharding(op->getResult(0), cur);
    v = op->getResult(0);
  }
  return v;
}

struct ScInsertReshardsPass : impl::ScInsertReshardsBase<ScInsertReshardsPass> {
  // FSDP: a parameter is stored as its storage sharding and all-gathered to its compute
  // sharding as one group per decoder layer, placed before the layer's first op (or, with
  // sc.fsdp_prefetch, before the previous layer's first op, as FSDP2 prefetches the next
  // group); the memory plan frees each gathered copy after its last use. Parameters outside
  // the layers are gathered right before their first use.
  std::optional<MeshShape> mesh;

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
        Value gathered = planReshard(b, loc, stored, compute, *mesh);
        if (gathered == stored)
          return;
        // The chain's first op reads the stored value; every other user reads the gathered one.
        Operation *firstOfChain = gathered.getDefiningOp();
        while (firstOfChain->getOperand(0) != stored)
          firstOfChain = firstOfChain->getOperand(0).getDefiningOp();
        stored.replaceAllUsesExcept(gathered, firstOfChain);
        // Gathers issued at one point form an FSDP group; sc-bucket-fsdp-gathers merges them.
        if (auto g = dyn_cast<sc::AllGatherOp>(gathered.getDefiningOp()); g && g.getInput() == stored) {
          auto [it, inserted] = groupIds.try_emplace(at, (int64_t)groupIds.size());
          (void)inserted;
          g->setAttr("sc.fsdp_group", b.getI64IntegerAttr(it->second));
        }
      });
    });
  }
  llvm::DenseMap<Operation *, int64_t> groupIds;

  void runOnOperation() override {
    mesh = MeshShape::fromModule(getOperation());
    if (!mesh) {
      getOperation().emitError() << "sc-insert-reshards needs sc.mesh (run sc-apply-plan first)";
      return signalPassFailure();
    }
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
          slot = planReshard(b, op->getLoc(), v, *want, *mesh);
        }
        operand.set(slot);
      }
      op->removeAttr("sc.operand_shardings");
    }
  }
};

} // namespace
} // namespace shardc
