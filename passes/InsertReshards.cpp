// sc-insert-reshards: materialises, per operand, the collectives from the value's sharding to
// the sharding its user needs (recorded by sc-propagate-sharding), and in place of each of
// the plan's sharding constraints the collectives to its layout; results of the function
// are made replicated. One planner (planReshard, shardc/Sharding/Reshard.h) serves every use.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Reshard.h"
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
// definition so every user can share them.
FailureOr<Value> materializeReshard(OpBuilder &b, Location loc, Value v, const Sharding &want, const MeshShape &mesh) {
  Sharding cur = shardingOf(v);
  auto type = cast<RankedTensorType>(v.getType());
  llvm::Expected<SmallVector<ReshardStep>> moves =
      planReshard(cur, want, mesh, type.getShape(), type.getElementType().getIntOrFloatBitWidth() / 8);
  if (!moves) {
    emitError(loc) << llvm::toString(moves.takeError());
    return failure();
  }
  // The pending reduction's kind; a Sharding read from the IR holds a valid one.
  auto reduce = sc::ReduceKindAttr::get(b.getContext(), sc::symbolizeReduceKind(cur.reduce).value_or(sc::ReduceKind::Sum));
  for (const ReshardStep &m : *moves) {
    // The op as the planner spells the step (spellingOf); its attributes are the step's.
    const ReshardStepSpelling &spelling = spellingOf(m.kind);
    OperationState state(loc, ("sc." + spelling.op).str());
    state.addOperands(v);
    state.addTypes(type);
    state.addAttribute("axes", axesAttr(b, m.axes));
    if (!spelling.dimAttr.empty())
      state.addAttribute(spelling.dimAttr, b.getI64IntegerAttr(m.dim));
    if (!spelling.fromDimAttr.empty())
      state.addAttribute(spelling.fromDimAttr, b.getI64IntegerAttr(m.fromDim));
    if (spelling.reduce)
      state.addAttribute("reduce", reduce);
    Operation *op = b.create(state);
    cur = applyReshardStep(cur, m);
    setSharding(op->getResult(0), cur);
    v = op->getResult(0);
  }
  return v;
}

struct ScInsertReshardsPass : impl::ScInsertReshardsBase<ScInsertReshardsPass> {
  // FSDP: a parameter is stored as its storage sharding and all-gathered to its compute
  // sharding as one group per layer (the sc.layer ops of sc-group-layers), issued right before
  // the layer that first reads it (or, with sc.fsdp_prefetch, before the layer ahead of it, as
  // FSDP2 prefetches the next group); the memory plan frees each gathered copy after its last
  // use. Parameters first read outside the layers are gathered right before that use.
  std::optional<MeshShape> mesh;

  // FSDP2's reshard_after_forward in a training step (sc.train's `reshard_after_forward`):
  // "true" gathers a layer's parameters again for its backward, at the first backward op that
  // reads one of them (with prefetch, at the backward of the layer after it, which runs
  // first), so the forward's gathered copies die after the layer's forward; "auto" does so for
  // every layer but the last; "false" (and programs without a backward) keep the forward's
  // copies for the backward. The root group (parameters first read outside the layers) is
  // never gathered again.
  // Under gradient accumulation (sc-unroll-microbatches) each micro-batch gathers its own
  // copies, as FSDP2 gathers again in each micro-batch's forward and backward: a parameter's
  // readers are split by micro-batch (the `mb<j>` head of their module path) and each part is
  // gathered as above on its own, the layers and "the last layer" being the micro-batch's.
  // So gathered copies never live from one micro-batch into the next.
  void gatherStoredParams() {
    ModuleOp module = getOperation();
    bool prefetch = module->hasAttr("sc.fsdp_prefetch");
    StringRef reshard = "false";
    if (auto train = module->getAttrOfType<DictionaryAttr>("sc.train"))
      if (auto r = train.getAs<StringAttr>("reshard_after_forward"))
        reshard = r.getValue();
    module.walk([&](func::FuncOp func) {
      Block &body = func.getBody().front();
      SmallVector<sc::LayerOp> layers(body.getOps<sc::LayerOp>());
      // The last layer of each micro-batch (-1: no micro-batches).
      llvm::DenseMap<int64_t, Operation *> lastLayer;
      for (sc::LayerOp l : layers)
        lastLayer[microbatchOf(l->getLoc())] = l;
      auto sameMicrobatch = [](Operation *a, Operation *b) {
        return microbatchOf(a->getLoc()) == microbatchOf(b->getLoc());
      };
      // Where the gathers of a parameter first read by top-level op `first` are issued (a
      // prefetch stays inside the micro-batch).
      auto groupPoint = [&](Operation *first) -> Operation * {
        auto layer = dyn_cast<sc::LayerOp>(first);
        if (!layer)
          return first;
        auto it = llvm::find(layers, layer);
        if (prefetch && it != layers.begin() && sameMicrobatch(*std::prev(it), layer))
          --it;
        return *it;
      };
      // A trained parameter's state (sc-add-optimizer) is stored like a parameter: its initial
      // copy reads the stored weight as it is, and the assign of the update writes the stored
      // layout, so neither is a reader to gather for.
      struct Stored {
        Operation *param;
        Value stored;
        Sharding compute;
        llvm::DenseSet<Operation *> readers;                   // this entry's (one micro-batch's)
        Operation *first = nullptr, *firstBackward = nullptr; // top-level readers
      };
      std::vector<Stored> all;
      auto readsStoredOf = [](const Sharding &storage) {
        // Readers of the stored layout itself: the assign of a state's update, and the
        // update's own read of the state (a constraint to the stored layout).
        return [storage](Operation *user) {
          if (isa<sc::AssignOp>(user))
            return true;
          auto c = dyn_cast<sc::ShardingConstraintOp>(user);
          return c && Sharding::fromAttr(c.getSharding()) == storage;
        };
      };
      auto topOf = [&](Operation *user) { return body.findAncestorOpInBlock(*user); };
      func.walk([&](Operation *p) {
        if (!isa<sc::ParamOp, sc::StateOp>(p))
          return;
        auto storage = Sharding::fromAttr(p->getAttr("sc.storage_sharding"));
        if (!storage || p->use_empty())
          return;
        Sharding compute = shardingOf(p->getResult(0));
        setSharding(p->getResult(0), *storage);
        if (isa<sc::StateOp>(p))
          p->removeAttr("sc.operand_shardings");
        // Mixed precision casts the parameter first, so the gather moves param_dtype bytes.
        Value stored = p->getResult(0);
        if (p->hasOneUse())
          if (auto cast = dyn_cast<sc::CastOp>(*p->getUsers().begin())) {
            cast->setAttr("sc.operand_shardings", ArrayAttr::get(cast.getContext(), {storage->toAttr(cast.getContext())}));
            setSharding(cast.getResult(), *storage);
            stored = cast.getResult();
          }
        if (stored.use_empty())
          return;
        auto readsStored = readsStoredOf(*storage);
        // One entry per micro-batch, in the order of the micro-batches' first readers.
        llvm::MapVector<int64_t, Stored> parts;
        for (Operation *user : stored.getUsers()) {
          if (readsStored(user))
            continue;
          Operation *top = topOf(user);
          auto [it, inserted] = parts.try_emplace(microbatchOf(top->getLoc()));
          Stored &entry = it->second;
          if (inserted) {
            entry.param = p;
            entry.stored = stored;
            entry.compute = compute;
          }
          entry.readers.insert(user);
          Operation *&slot = isBackwardLoc(top->getLoc()) ? entry.firstBackward : entry.first;
          if (!slot || top->isBeforeInBlock(slot))
            slot = top;
        }
        for (auto &part : parts)
          all.push_back(std::move(part.second));
      });
      // The first backward op that reads a parameter of each layer.
      llvm::DenseMap<Operation *, Operation *> backwardPoint; // sc.layer -> top-level backward op
      for (const Stored &e : all)
        if (e.first && isa<sc::LayerOp>(e.first) && e.firstBackward) {
          Operation *&slot = backwardPoint[e.first];
          if (!slot || e.firstBackward->isBeforeInBlock(slot))
            slot = e.firstBackward;
        }
      auto regathered = [&](const Stored &e) {
        auto layer = e.first ? dyn_cast<sc::LayerOp>(e.first) : sc::LayerOp();
        if (!layer || !e.firstBackward || reshard == "false")
          return false;
        return reshard == "true" || layer != lastLayer.lookup(microbatchOf(layer->getLoc()));
      };
      for (Stored &e : all) {
        bool again = regathered(e);
        // The forward's gathers (all of the entry's readers when the backward keeps them), then
        // the backward's.
        auto backwardUse = [&](OpOperand &use) { return isBackwardLoc(topOf(use.getOwner())->getLoc()); };
        if (e.first || !again)
          if (failed(gather(e.param, e.stored, e.compute, groupPoint(e.first ? e.first : e.firstBackward), false,
                            [&](OpOperand &use) {
                              return e.readers.contains(use.getOwner()) && (!again || !backwardUse(use));
                            })))
            return;
        if (!again)
          continue;
        Operation *at = backwardPoint.lookup(e.first);
        if (prefetch) {
          auto next = std::next(llvm::find(layers, cast<sc::LayerOp>(e.first)));
          if (next != layers.end() && sameMicrobatch(*next, e.first))
            if (Operation *earlier = backwardPoint.lookup(*next); earlier && earlier->isBeforeInBlock(at))
              at = earlier;
        }
        if (failed(gather(e.param, e.stored, e.compute, at, true, [&](OpOperand &use) {
              return e.readers.contains(use.getOwner()) && backwardUse(use);
            })))
          return;
      }
    });
  }

  // The collectives from `stored` to `compute` issued before `at`, read by the uses `which`
  // selects: one FSDP group per issue point (sc-bucket-fsdp-gathers merges it), named after
  // the parameter and placed in the module where it is issued, so that the report sees the
  // group where it runs (`backward`: with the backward's location).
  LogicalResult gather(Operation *p, Value stored, const Sharding &compute, Operation *at, bool backward,
                       llvm::function_ref<bool(OpOperand &)> which) {
    OpBuilder b(at);
    OnnxLocInfo where = readOnnxLoc(at->getLoc());
    where.nodeName = p->getAttrOfType<StringAttr>("name").getValue().str();
    Location loc = makeOnnxLoc(p->getContext(), where, 0);
    if (backward)
      loc = makeBackwardLoc(loc);
    FailureOr<Value> planned = materializeReshard(b, loc, stored, compute, *mesh);
    if (failed(planned)) {
      failedAny = true;
      return failure();
    }
    Value gathered = *planned;
    if (gathered == stored)
      return success();
    // The chain's first op reads the stored value; the selected users read the gathered one.
    Operation *firstOfChain = gathered.getDefiningOp();
    while (firstOfChain->getOperand(0) != stored)
      firstOfChain = firstOfChain->getOperand(0).getDefiningOp();
    stored.replaceUsesWithIf(gathered, [&](OpOperand &use) { return use.getOwner() != firstOfChain && which(use); });
    if (auto g = dyn_cast<sc::AllGatherOp>(gathered.getDefiningOp()); g && g.getInput() == stored) {
      auto [it, inserted] = groupIds.try_emplace(at, (int64_t)groupIds.size());
      (void)inserted;
      g->setAttr("sc.fsdp_group", b.getI64IntegerAttr(it->second));
    }
    return success();
  }
  // The plan's layout constraints: each becomes the collectives from its operand's layout to
  // its own, at its place in the program, and goes.
  void materializeConstraints() {
    SmallVector<sc::ShardingConstraintOp> constraints;
    getOperation().walk([&](sc::ShardingConstraintOp c) { constraints.push_back(c); });
    for (sc::ShardingConstraintOp c : constraints) {
      OpBuilder b(c);
      FailureOr<Value> planned = materializeReshard(b, c.getLoc(), c.getInput(), shardingOf(c.getResult()), *mesh);
      if (failed(planned)) {
        failedAny = true;
        continue;
      }
      c.getResult().replaceAllUsesWith(*planned);
      c.erase();
    }
  }

  llvm::DenseMap<Operation *, int64_t> groupIds;
  bool failedAny = false;

  void runOnOperation() override {
    mesh = MeshShape::fromModule(getOperation());
    if (!mesh) {
      getOperation().emitError() << "sc-insert-reshards needs sc.mesh (run sc-apply-plan first)";
      return signalPassFailure();
    }
    gatherStoredParams();
    materializeConstraints();
    // A state keeps its layout from run to run: the value assigned to it is resharded to it.
    getOperation().walk([&](sc::AssignOp a) {
      Attribute layout = shardingOf(a.getState()).toAttr(a.getContext());
      a->setAttr("sc.operand_shardings", ArrayAttr::get(a.getContext(), {layout, layout}));
    });
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
          FailureOr<Value> planned = materializeReshard(b, op->getLoc(), v, *want, *mesh);
          if (failed(planned)) {
            failedAny = true; // reported at the op; the pass fails once every op is seen
            continue;
          }
          slot = *planned;
        }
        operand.set(slot);
      }
      op->removeAttr("sc.operand_shardings");
    }
    // A reshard that cannot be planned is an error, not a program with a wrong layout.
    if (failedAny)
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
