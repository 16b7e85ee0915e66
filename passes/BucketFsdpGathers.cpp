// sc-bucket-fsdp-gathers: one all_gather per FSDP group, as FSDP2 gathers a layer's flat
// parameter. Works on local (per-rank) shapes, so a shard that tensor parallelism also
// splits is bucketed like any other.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/MapVector.h"

namespace shardc {
#define GEN_PASS_DEF_SCBUCKETFSDPGATHERS
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

struct ScBucketFsdpGathersPass : impl::ScBucketFsdpGathersBase<ScBucketFsdpGathersPass> {
  void runOnOperation() override {
    auto mesh = MeshShape::fromModule(getOperation()->getParentOfType<ModuleOp>());
    if (!mesh)
      return;
    // Insertion order keeps the output deterministic.
    llvm::MapVector<std::tuple<int64_t, Attribute, Type>, SmallVector<sc::AllGatherOp>> groups;
    getOperation().walk([&](sc::AllGatherOp g) {
      if (auto id = g->getAttrOfType<IntegerAttr>("sc.fsdp_group"))
        groups[{id.getInt(), g.getAxes(), getElementTypeOrSelf(g.getType())}].push_back(g);
    });
    for (auto &entry : groups)
      if (entry.second.size() > 1)
        bucket(entry.second, *mesh);
  }

  // Local shard [.., c, ..] split on `dim` -> row [1, n]; after the gather, rows [G, n] ->
  // [.., G*c, ..]. As [P, c, Q] with P the dims before `dim` and Q those after, the gathered
  // tensor is [P, G, c, Q]: for dim 0 (P = 1) a reshape, else a transpose of [G, P, c, Q].
  void bucket(MutableArrayRef<sc::AllGatherOp> gathers, const MeshShape &mesh) {
    sc::AllGatherOp lead = gathers.front();
    SmallVector<std::string> axes;
    for (auto a : lead.getAxes().getAsValueRange<StringAttr>())
      axes.push_back(a.str());
    int64_t G = mesh.product(axes);
    Operation *last = lead;
    for (sc::AllGatherOp g : gathers)
      if (last->isBeforeInBlock(g))
        last = g;
    // Every shard exists before the merged gather: it goes where the last one was.
    OpBuilder b(last);
    Location loc = lead.getLoc();
    Type elt = getElementTypeOrSelf(lead.getType());
    auto tensor = [&](ArrayRef<int64_t> shape) { return RankedTensorType::get(shape, elt); };
    struct Layout {
      int64_t P, c, Q, n;
    };
    SmallVector<Layout> layouts;
    SmallVector<Value> rows;
    int64_t total = 0;
    for (sc::AllGatherOp g : gathers) {
      ArrayRef<int64_t> shard = cast<RankedTensorType>(g.getInput().getType()).getShape();
      int64_t d = g.getDim(), P = 1, Q = 1;
      for (int64_t k = 0; k < d; ++k)
        P *= shard[k];
      for (int64_t k = d + 1; k < (int64_t)shard.size(); ++k)
        Q *= shard[k];
      Layout l{P, shard[d], Q, P * shard[d] * Q};
      rows.push_back(sc::ReshapeOp::create(b, loc, tensor({1, l.n}), g.getInput()));
      layouts.push_back(l);
      total += l.n;
    }
    Value flat = sc::ConcatOp::create(b, loc, tensor({1, total}), rows, b.getI64IntegerAttr(1));
    Value all = sc::AllGatherOp::create(b, loc, tensor({G, total}), flat, lead.getAxesAttr(),
                                        b.getI64IntegerAttr(0));
    int64_t offset = 0;
    for (auto [g, l] : llvm::zip(gathers, layouts)) {
      SmallVector<Operation *> chain;
      Value v = sc::SliceOp::create(b, loc, tensor({G, l.n}), all, b.getDenseI64ArrayAttr({0, offset}),
                                    b.getDenseI64ArrayAttr({1, 1}));
      chain.push_back(v.getDefiningOp());
      offset += l.n;
      if (l.P > 1) {
        v = sc::ReshapeOp::create(b, loc, tensor({G, l.P, l.c, l.Q}), v);
        chain.push_back(v.getDefiningOp());
        v = sc::TransposeOp::create(b, loc, tensor({l.P, G, l.c, l.Q}), v, b.getDenseI64ArrayAttr({1, 0, 2, 3}));
        chain.push_back(v.getDefiningOp());
      }
      v = sc::ReshapeOp::create(b, loc, g.getType(), v);
      chain.push_back(v.getDefiningOp());
      g.getResult().replaceAllUsesWith(v);
      // The parameter is cut out of the bucket right before its first use, not where the
      // gather is: with the gather prefetched a layer early (sc.fsdp_prefetch), the layer in
      // between must not wait for it (on a GPU it runs on the communication stream).
      auto firstUserIn = [&](Block *block) {
        Operation *first = nullptr;
        for (Operation *user : v.getUsers()) {
          Operation *at = block->findAncestorOpInBlock(*user);
          if (at && (!first || at->isBeforeInBlock(first)))
            first = at;
        }
        return first;
      };
      Operation *first = firstUserIn(v.getDefiningOp()->getBlock());
      // Inside the layer that reads it, when only that layer does.
      if (auto layer = dyn_cast_if_present<sc::LayerOp>(first);
          layer && llvm::all_of(v.getUsers(), [&](Operation *u) { return layer->isProperAncestor(u); }))
        first = firstUserIn(&layer.getBody().front());
      if (first)
        for (Operation *op : chain) {
          op->moveBefore(first);
          op->setLoc(first->getLoc()); // part of the user's layer now
        }
    }
    for (sc::AllGatherOp g : gathers)
      g.erase();
  }
};

} // namespace
} // namespace shardc
