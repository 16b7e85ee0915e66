// Expert parallelism (docs/moe.md): sc-apply-plan splits the expert weights of every
// sc.moe_experts over the `ep` sub-axis of dp_shard x cp (and stores them FSDP-split over
// `ep_shard`); sc-partition then expands each such op, on local shapes, into permute,
// dispatch (all-to-all over ep), the local experts' grouped GEMMs, combine (the reverse
// all-to-all) and the weighted unpermute; and each sc.moe_experts_grad of such experts into
// the same dispatch of x's rows, dy's rows and the weights, the local experts' backward
// (sc.moe_grouped_gemm_grad) and the combine of the rows' dx and dweights.
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace shardc {

using namespace mlir;

namespace {
// A view of rows [start, start + size) along `dim` of the stored parameter `p` (sc.file_shape,
// sc.file_start: the same bytes), named `<p>.part<index>` as sc-apply-plan's other parts are.
sc::ParamOp expertPart(OpBuilder &b, sc::ParamOp p, int64_t dim, int64_t index, int64_t start, int64_t size) {
  auto t = cast<RankedTensorType>(p.getType());
  SmallVector<int64_t> shape(t.getShape()), first(t.getRank(), 0);
  shape[dim] = size;
  first[dim] = start;
  sc::ParamOp part = paramView(b, p, shape);
  part.setName((p.getName() + ".part" + llvm::Twine(index)).str());
  part->setAttr("sc.file_start", b.getDenseI64ArrayAttr(first));
  return part;
}

// The sharding of one stacked expert weight: its expert dim over ep (when ep > 1), its I dim
// over tp (expert TP), and, stored, one more dim over ep_shard (FSDP) when it divides.
void shardExpertWeight(sc::ParamOp p, const MeshShape &mesh, int64_t iDim, bool expertTp, int64_t fsdpDim,
                       llvm::SmallPtrSetImpl<Operation *> &expertParams) {
  auto type = cast<RankedTensorType>(p.getType());
  Sharding compute = Sharding::replicated(3);
  if (mesh.ep > 1)
    compute.dims[0] = {"ep"};
  if (expertTp)
    compute.dims[iDim] = {"tp"};
  setSharding(p, compute);
  if (mesh.ep <= 1)
    return; // FSDP over dp_shard x cp on dim 0 as for any parameter (sc-apply-plan)
  Sharding storage = compute;
  const int64_t epShard = mesh.size("ep_shard");
  if (epShard > 1 && type.getDimSize(fsdpDim) % epShard == 0)
    storage.dims[fsdpDim] = {"ep_shard"};
  p->setAttr("sc.storage_sharding", storage.toAttr(p.getContext()));
  expertParams.insert(p);
}
// Under cp the tokens reach an sc.moe_experts replicated over cp: the block flattens [B, S, H]
// to [B·S, H], and the split of the minor S dim does not survive that (its chunks are not
// contiguous in B·S), so the flattened tokens are gathered. ep is carved from dp_shard x cp,
// and the dispatch needs the token sets of an ep group's ranks to be disjoint (in the backward
// each local expert sums the rows of every source rank: ranks holding the same tokens would
// count them twice). So each cp rank takes a contiguous 1/cp of the tokens (x, the indices and
// the weights constrained to dim 0 split over cp: a local slice), and the result is gathered
// back over cp after the block (as the 1/tp token split).
LogicalResult splitTokensOverCp(sc::MoeExpertsOp op, StringRef at, const MeshShape &mesh) {
  const int64_t cp = mesh.size("cp"), dp = mesh.product({"dp_replicate", "dp_shard", "cp"});
  const int64_t T = cast<RankedTensorType>(op.getX().getType()).getDimSize(0);
  if (T % dp != 0)
    return op.emitError() << at << ": expert parallelism over cp = " << cp << " splits the tokens over the "
                          << "data-parallel ranks, and " << T << " tokens do not divide over " << dp << " ranks";
  OpBuilder b(op);
  SmallVector<std::string> cpAxes{"cp"};
  for (unsigned i = 0; i < 3; ++i)
    op->setOperand(i, constrainLayout(b, op.getLoc(), op->getOperand(i), cpAxes, 0));
  b.setInsertionPointAfter(op);
  Value whole = constrainLayout(b, op.getLoc(), op.getResult(), cpAxes, -1);
  op.getResult().replaceAllUsesExcept(whole, whole.getDefiningOp());
  return success();
}
} // namespace

LogicalResult seedExpertParallel(ModuleOp module, const MeshShape &mesh,
                                 llvm::SmallPtrSetImpl<Operation *> &expertParams) {
  const int64_t ep = mesh.ep, tp = mesh.size("tp"), cp = mesh.size("cp");
  const bool expertTp = tp > 1 && module->hasAttr("sc.expert_tp");
  const bool sequenceParallel = module->hasAttr("sc.sequence_parallel");
  if (ep <= 1 && tp <= 1)
    return success();
  const int64_t dp = mesh.product({"dp_replicate", "dp_shard", "cp"});
  bool failed = false;
  SmallVector<sc::MoeExpertsOp> ops;
  module.walk([&](sc::MoeExpertsOp op) { ops.push_back(op); });
  for (sc::MoeExpertsOp op : ops) {
    std::string path = modulePathOf(op->getLoc());
    std::string at = "sc.moe_experts" + (path.empty() ? std::string() : " at " + path);
    if (ep > 1 && op.getActivation() != "silu") {
      op.emitError() << "expert parallelism runs SwiGLU experts only; these use " << op.getActivation()
                     << " (run the model without ep)";
      failed = true;
      continue;
    }
    auto gu = op.getGateUp().getDefiningOp<sc::ParamOp>(), dn = op.getDown().getDefiningOp<sc::ParamOp>();
    auto guType = cast<RankedTensorType>(op.getGateUp().getType());
    auto dnType = cast<RankedTensorType>(op.getDown().getType());
    const int64_t E = dnType.getDimSize(0), I = dnType.getDimSize(2), H = dnType.getDimSize(1);
    if (ep > 1 || expertTp) {
      bool stored = true;
      for (sc::ParamOp p : {gu, dn})
        stored &= p && p.getTransform() != sc::ParamTransform::Transpose &&
                  (!expertTp || !p->hasAttr("sc.file_shape"));
      if (!stored) {
        op.emitError() << (ep > 1 ? "expert parallelism" : "expert tensor parallelism")
                       << " needs the stacked expert weights to be parameters as stored";
        failed = true;
        continue;
      }
      if (E % ep != 0) {
        op.emitError() << E << " experts do not divide over ep = " << ep;
        failed = true;
        continue;
      }
    }
    if (expertTp) {
      // Each expert's MLP colwise/rowwise over tp: the gate and up halves of the fused stack
      // [E, 2I, H] each split on I (two views of the stored stack, concatenated again: the
      // concat's rule lets each half keep its split), down [E, H, I] split on I. The result
      // is Partial over tp (the rule's I is a reduction factor); sc-insert-reshards reduces it.
      if (I % tp != 0) {
        op.emitError() << at << ": expert_tp splits the experts' intermediate size " << I
                       << ", which does not divide over tp = " << tp;
        failed = true;
        continue;
      }
      if (expertParams.contains(dn)) {
        op.emitError() << at << ": expert_tp needs each sc.moe_experts to have its own expert weights";
        failed = true;
        continue;
      }
      OpBuilder b(gu);
      b.setInsertionPointAfter(gu);
      sc::ParamOp gate = expertPart(b, gu, 1, 0, 0, I), up = expertPart(b, gu, 1, 1, I, I);
      for (sc::ParamOp p : {gate, up})
        shardExpertWeight(p, mesh, /*iDim=*/1, true, /*fsdpDim=*/2, expertParams);
      shardExpertWeight(dn, mesh, /*iDim=*/2, true, /*fsdpDim=*/1, expertParams);
      b.setInsertionPoint(op);
      auto both = sc::ConcatOp::create(b, op.getLoc(), guType, ValueRange{gate, up}, b.getI64IntegerAttr(1));
      both->setAttr("sc.expert_halves", b.getUnitAttr());
      op.getGateUpMutable().assign(both.getResult());
      if (gu->use_empty())
        gu.erase();
      if (ep > 1 && cp > 1 && mlir::failed(splitTokensOverCp(op, at, mesh)))
        failed = true;
      continue;
    }
    if (ep > 1)
      for (sc::ParamOp p : {gu, dn})
        if (!expertParams.contains(p))
          shardExpertWeight(p, mesh, 0, false, /*fsdpDim=*/1, expertParams);
    if (ep > 1 && cp > 1 && mlir::failed(splitTokensOverCp(op, at, mesh)))
      failed = true;
    if (tp <= 1)
      continue;
    // The 1/tp token split: the tokens arrive replicated over tp (unless sequence parallel
    // already splits them); each tp rank routes and computes a contiguous 1/tp of them, and
    // the result is gathered back over tp (with sequence parallel it stays split).
    const int64_t T = cast<RankedTensorType>(op.getX().getType()).getDimSize(0);
    if (T % (dp * tp) != 0) {
      op.emitError() << at << ": the 1/tp token split needs the tokens of each data-parallel rank (" << T
                     << " tokens over " << dp << " ranks) to divide over tp = " << tp
                     << " (or expert_tp: true, which keeps every token on every tp rank)";
      failed = true;
      continue;
    }
    OpBuilder b(op);
    SmallVector<std::string> tpAxes{"tp"};
    for (unsigned i = 0; i < 3; ++i)
      op->setOperand(i, constrainLayout(b, op.getLoc(), op->getOperand(i), tpAxes, 0));
    if (!sequenceParallel) {
      b.setInsertionPointAfter(op);
      Value whole = constrainLayout(b, op.getLoc(), op.getResult(), tpAxes, -1);
      op.getResult().replaceAllUsesExcept(whole, whole.getDefiningOp());
    }
  }
  return failure(failed);
}

namespace {
RankedTensorType tensorOf(ArrayRef<int64_t> shape, Type elem) { return RankedTensorType::get(shape, elem); }

// The sharding the op reads its operand `i` with (propagation records it), else the value's.
std::optional<Sharding> operandSharding(Operation *op, unsigned i) {
  if (auto list = op->getAttrOfType<ArrayAttr>("sc.operand_shardings"); list && i < list.size())
    return Sharding::fromAttr(list[i]);
  return getSharding(op->getOperand(i));
}
} // namespace

LogicalResult expandExpertParallel(ModuleOp module, const MeshShape &mesh) {
  SmallVector<sc::MoeExpertsOp> ops;
  module.walk([&](sc::MoeExpertsOp op) { ops.push_back(op); });
  for (sc::MoeExpertsOp op : ops) {
    std::optional<Sharding> gu = operandSharding(op, 3), dn = operandSharding(op, 4);
    auto expertAxes = [](const std::optional<Sharding> &s) {
      return s ? SmallVector<std::string, 2>(s->dims[0]) : SmallVector<std::string, 2>();
    };
    SmallVector<std::string, 2> axes = expertAxes(gu);
    if (axes.empty() && expertAxes(dn).empty())
      continue;
    if (mesh.ep <= 1 || axes != SmallVector<std::string, 2>{"ep"} || expertAxes(dn) != axes)
      return op.emitError() << "the experts of sc.moe_experts may be split over the ep sub-axis only";
    if (!op.getHidden().use_empty())
      return op.emitError() << "expert parallelism: the experts' workspace (hidden) must have no users";
    const int64_t G = mesh.ep;
    auto xt = cast<RankedTensorType>(op.getX().getType());
    auto ids = cast<RankedTensorType>(op.getIndices().getType());
    auto dnt = cast<RankedTensorType>(op.getDown().getType());
    const int64_t T = xt.getDimSize(0), H = xt.getDimSize(1), k = ids.getDimSize(1);
    const int64_t E = dnt.getDimSize(0) * G, I = dnt.getDimSize(2), N = T * k, R = G * N;
    Type elem = xt.getElementType(), i64 = IntegerType::get(op.getContext(), 64);
    OpBuilder b(op);
    Location loc = op.getLoc();
    ArrayAttr axesAttr = b.getStrArrayAttr({"ep"});
    auto permute = sc::MoePermuteOp::create(
        b, loc, TypeRange{tensorOf({N, H}, elem), tensorOf({E}, i64), tensorOf({N}, i64)}, op.getX(),
        op.getIndices(), b.getI64IntegerAttr(E));
    auto dispatch = sc::MoeDispatchOp::create(b, loc, TypeRange{tensorOf({R, H}, elem), tensorOf({E}, i64)},
                                              permute.getRows(), permute.getCounts(), axesAttr);
    auto gemm = sc::MoeGroupedGemmOp::create(b, loc, TypeRange{tensorOf({R, H}, elem), tensorOf({R, I}, elem)},
                                             dispatch.getRecv(), dispatch.getRecvCounts(), op.getGateUp(),
                                             op.getDown());
    auto combine = sc::MoeCombineOp::create(b, loc, tensorOf({N, H}, elem), gemm.getOut(),
                                            dispatch.getRecvCounts(), permute.getCounts(), axesAttr);
    auto y = sc::MoeUnpermuteOp::create(b, loc, op.getResult().getType(), combine.getResult(), permute.getSlots(),
                                        op.getWeights());
    op.getResult().replaceAllUsesWith(y.getResult());
    op.erase();
  }
  // The backward of each such op (docs/moe.md#training): x's rows, dy's rows and the combine
  // weights cross the ep group as the forward's rows did (the same permutation and counts),
  // the local experts' backward runs over the received rows, and the rows' dx and dweights come
  // back with the reverse all-to-all. The expert gradients stay local (split over ep).
  SmallVector<sc::MoeExpertsGradOp> grads;
  module.walk([&](sc::MoeExpertsGradOp op) { grads.push_back(op); });
  for (sc::MoeExpertsGradOp op : grads) {
    std::optional<Sharding> gu = operandSharding(op, 3), dn = operandSharding(op, 4);
    auto split = [](const std::optional<Sharding> &s) { return s && !s->dims[0].empty(); };
    if (!split(gu) && !split(dn))
      continue;
    if (mesh.ep <= 1 || !split(gu) || !split(dn) || gu->dims[0] != SmallVector<std::string, 2>{"ep"} ||
        dn->dims[0] != gu->dims[0])
      return op.emitError() << "the experts of sc.moe_experts_grad may be split over the ep sub-axis only";
    if (!op.getWork().use_empty())
      return op.emitError() << "expert parallelism: the backward's workspace (work) must have no users";
    // Each local expert sums the rows of every rank of its ep group: their tokens must differ,
    // so x must be split over every axis that ep is carved from (sc-apply-plan splits it).
    std::optional<Sharding> xs = operandSharding(op, 0);
    for (StringRef axis : {"dp_shard", "cp"})
      if (mesh.size(axis) > 1 && (!xs || xs->dims.empty() || !llvm::is_contained(xs->dims[0], axis)))
        return op.emitError() << "the expert-parallel backward needs the tokens split over " << axis
                              << " (ep is carved from dp_shard x cp; ranks of an ep group holding the same "
                                 "tokens would add their expert gradients twice)";
    const int64_t G = mesh.ep;
    auto xt = cast<RankedTensorType>(op.getX().getType());
    auto ids = cast<RankedTensorType>(op.getIndices().getType());
    auto dnt = cast<RankedTensorType>(op.getDown().getType());
    const int64_t T = xt.getDimSize(0), H = xt.getDimSize(1), k = ids.getDimSize(1);
    const int64_t E = dnt.getDimSize(0) * G, I = dnt.getDimSize(2), N = T * k, R = G * N;
    Type elem = xt.getElementType(), i64 = IntegerType::get(op.getContext(), 64);
    OpBuilder b(op);
    Location loc = op.getLoc();
    ArrayAttr axesAttr = b.getStrArrayAttr({"ep"});
    // The weights travel as one-column rows: [T·k, 1] permuted by the flattened choices
    // ([T·k, 1]) is the same counting sort as x's rows (pairs in t·k + j order within an expert).
    Value flatIds = sc::ReshapeOp::create(b, loc, tensorOf({N, 1}, i64), op.getIndices());
    Value flatW = sc::ReshapeOp::create(b, loc, tensorOf({N, 1}, elem), op.getWeights());
    auto permute = [&](Value v, Value choices, int64_t width) {
      return sc::MoePermuteOp::create(
          b, loc, TypeRange{tensorOf({N, width}, elem), tensorOf({E}, i64), tensorOf({N}, i64)}, v, choices,
          b.getI64IntegerAttr(E));
    };
    auto px = permute(op.getX(), op.getIndices(), H), pdy = permute(op.getDy(), op.getIndices(), H),
         pw = permute(flatW, flatIds, 1);
    auto dispatch = [&](Value rows, int64_t width) {
      return sc::MoeDispatchOp::create(b, loc, TypeRange{tensorOf({R, width}, elem), tensorOf({E}, i64)}, rows,
                                       px.getCounts(), axesAttr);
    };
    auto dx = dispatch(px.getRows(), H), ddy = dispatch(pdy.getRows(), H), dw = dispatch(pw.getRows(), 1);
    auto grad = sc::MoeGroupedGemmGradOp::create(
        b, loc,
        TypeRange{tensorOf({R, H}, elem), tensorOf({R, 1}, elem), op.getGateUp().getType(), op.getDown().getType(),
                  tensorOf({R, 3 * I}, elem)},
        dx.getRecv(), ddy.getRecv(), dw.getRecv(), dx.getRecvCounts(), op.getGateUp(), op.getDown(),
        op.getActivationAttr());
    auto combine = [&](Value rows, int64_t width) {
      return sc::MoeCombineOp::create(b, loc, tensorOf({N, width}, elem), rows, dx.getRecvCounts(), px.getCounts(),
                                      axesAttr)
          .getResult();
    };
    Value dxRows = combine(grad.getDx(), H), dwRows = combine(grad.getDweights(), 1);
    // dx sums each token's k rows in j order; dweights[t, j] is its pair's row (weights 1).
    auto ones = [&](int64_t rows, int64_t cols) -> Value {
      auto t = tensorOf({rows, cols}, elem);
      Attribute one = b.getFloatAttr(elem, 1.0);
      return sc::ConstantOp::create(b, loc, t, DenseElementsAttr::get(t, one));
    };
    auto dxTok = sc::MoeUnpermuteOp::create(b, loc, op.getDx().getType(), dxRows, px.getSlots(), ones(T, k));
    auto dwPairs = sc::MoeUnpermuteOp::create(b, loc, tensorOf({N, 1}, elem), dwRows, px.getSlots(), ones(N, 1));
    Value dweights = sc::ReshapeOp::create(b, loc, op.getDweights().getType(), dwPairs.getResult());
    op.getDx().replaceAllUsesWith(dxTok.getResult());
    op.getDweights().replaceAllUsesWith(dweights);
    op.getDgateUp().replaceAllUsesWith(grad.getDgateUp());
    op.getDdown().replaceAllUsesWith(grad.getDdown());
    op.erase();
  }
  return success();
}

} // namespace shardc
