// sc-partition: the global program becomes the per-rank SPMD program: every value's type is
// its local shape; parameters and inputs remember their global shape for weight/input slicing.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "mlir/IR/Verifier.h"
#include "shardc/Sharding/Sharding.h"

namespace shardc {
#define GEN_PASS_DEF_SCPARTITION
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

struct ScPartitionPass : impl::ScPartitionBase<ScPartitionPass> {
  void runOnOperation() override {
    auto mesh = MeshShape::fromModule(getOperation());
    if (!mesh) {
      getOperation().emitError() << "sc-partition needs sc.mesh";
      return signalPassFailure();
    }
    bool failed = false;
    auto localize = [&](Value v, Operation *where) -> bool {
      auto type = cast<RankedTensorType>(v.getType());
      auto s = getSharding(v);
      if (!s || s->dims.size() != (size_t)type.getRank())
        return true;
      auto local = s->localShape(type.getShape(), *mesh);
      if (!local) {
        where->emitError() << "a value of shape " << type << " cannot be split as "
                           << s->toDTensorString(*mesh) << ": a dim does not divide over its mesh axes";
        failed = true;
        return false;
      }
      if (ArrayRef<int64_t>(*local) != type.getShape())
        v.setType(RankedTensorType::get(*local, type.getElementType()));
      return true;
    };
    getOperation().walk([&](func::FuncOp func) {
      OpBuilder b(func.getContext());
      for (BlockArgument arg : func.getArguments()) {
        auto type = cast<RankedTensorType>(arg.getType());
        func.setArgAttr(arg.getArgNumber(), "sc.global_shape", b.getDenseI64ArrayAttr(type.getShape()));
        localize(arg, func);
      }
      func.walk([&](Operation *op) {
        if (auto p = dyn_cast<sc::ParamOp>(op))
          op->setAttr("sc.global_shape", b.getDenseI64ArrayAttr(cast<RankedTensorType>(p.getType()).getShape()));
        for (Value r : op->getResults())
          localize(r, op);
      });
      SmallVector<Type> args(func.getBody().front().getArgumentTypes());
      SmallVector<Type> results;
      func.walk([&](func::ReturnOp ret) {
        for (Value v : ret.getOperands())
          results.push_back(v.getType());
      });
      func.setType(FunctionType::get(func.getContext(), args, results));
    });
    if (failed)
      return signalPassFailure();
    // The per-rank program must still verify: a rule that let a dim shard inconsistently
    // shows up here rather than at run time.
    if (mlir::failed(verify(getOperation())))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
