// Expert parallelism (docs/moe.md): sc-apply-plan splits the expert weights of every
// sc.moe_experts over the `ep` sub-axis of dp_shard x cp (and stores them FSDP-split over
// `ep_shard`); sc-partition then expands each such op, on local shapes, into permute,
// dispatch (all-to-all over ep), the local experts' grouped GEMMs, combine (the reverse
// all-to-all) and the weighted unpermute.
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Sharding/Sharding.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"

namespace shardc {

using namespace mlir;

LogicalResult seedExpertParallel(ModuleOp module, const MeshShape &mesh,
                                 llvm::SmallPtrSetImpl<Operation *> &expertParams) {
  if (mesh.ep <= 1)
    return success();
  const int64_t ep = mesh.ep, epShard = mesh.size("ep_shard");
  bool failed = false;
  module.walk([&](sc::MoeExpertsOp op) {
    if (op.getActivation() != "silu") {
      op.emitError() << "expert parallelism runs SwiGLU experts only; these use " << op.getActivation()
                     << " (run the model without ep)";
      failed = true;
      return;
    }
    for (Value w : {op.getGateUp(), op.getDown()}) {
      auto p = w.getDefiningOp<sc::ParamOp>();
      if (!p || p.getTransform() == sc::ParamTransform::Transpose) {
        op.emitError() << "expert parallelism needs the stacked expert weights to be parameters as stored";
        failed = true;
        return;
      }
      auto type = cast<RankedTensorType>(p.getType());
      if (type.getDimSize(0) % ep != 0) {
        op.emitError() << type.getDimSize(0) << " experts do not divide over ep = " << ep;
        failed = true;
        return;
      }
      if (expertParams.contains(p))
        continue;
      Sharding compute = Sharding::replicated(3);
      compute.dims[0] = {"ep"};
      Sharding storage = compute;
      // FSDP over the rest of dp_shard x cp: dim 1 (dim 0 is the experts'), when it divides.
      if (epShard > 1 && type.getDimSize(1) % epShard == 0)
        storage.dims[1] = {"ep_shard"};
      setSharding(p, compute);
      p->setAttr("sc.storage_sharding", storage.toAttr(p.getContext()));
      expertParams.insert(p);
    }
  });
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
  return success();
}

} // namespace shardc
