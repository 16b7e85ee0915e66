// sc-offload: CPU offload (`offload_policy: cpu`, FSDP2's CPUOffloadPolicy) on the per-rank
// program. sc-add-optimizer marked the optimizer's states (masters, moments, step count) and
// its update ops `sc.host`; this pass places the copies between the two memories:
//   - a device value a host op reads (the reduced gradient shard, an all-reduced sum of
//     squares) is copied to the host once, right after it is computed (sc.copy with sc.copy_to = "host"), so the
//     device buffer dies there;
//   - a host value a device op reads (a master for the forward's and backward's gathers, the
//     outputs grad_norm and lr) is copied to the device right before that op (sc.copy_to = "device",
//     one per reading op), so the device copy lives only as long as FSDP2's unsharded use;
//   - a cast of a host value (to param_dtype, before the gathers) runs on the host, so the
//     copy moves param_dtype bytes.
// sc-plan-memory then plans host values in a host arena and host states in a host persistent
// block, and the artifact marks host steps, which the executor runs with the CPU kernels.
#include "shardc/Passes/Offload.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "llvm/ADT/DenseMap.h"

namespace shardc {

namespace {

using namespace mlir;

Value copyTo(OpBuilder &b, Location loc, Value v, StringRef space) {
  auto copy = sc::CopyOp::create(b, loc, v.getType(), v);
  copy->setAttr(sc::kCopyToAttr, b.getStringAttr(space));
  return copy.getResult();
}

bool isConstantValue(Value v) {
  Operation *def = v.getDefiningOp();
  return def && isa<sc::ConstantOp>(def);
}

struct ScOffloadPass : mlir::PassWrapper<ScOffloadPass, mlir::OperationPass<mlir::ModuleOp>> {
  MLIR_DEFINE_EXPLICIT_INTERNAL_INLINE_TYPE_ID(ScOffloadPass)
  llvm::StringRef getArgument() const override { return "sc-offload"; }
  llvm::StringRef getDescription() const override {
    return "CPU offload: copies between device and host memory around the host-side optimizer";
  }
  void getDependentDialects(mlir::DialectRegistry &registry) const override { registry.insert<sc::ScDialect>(); }

  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
    auto policy = train ? train.getAs<StringAttr>("offload_policy") : StringAttr();
    if (!policy || policy.getValue() != "cpu")
      return;
    for (auto func : module.getOps<func::FuncOp>())
      if (!func.isExternal())
        place(func);
  }

  void place(func::FuncOp func) {
    MLIRContext *ctx = func.getContext();
    SmallVector<Operation *> ops;
    func.walk<WalkOrder::PreOrder>([&](Operation *op) {
      if (op != func.getOperation())
        ops.push_back(op);
    });
    llvm::DenseMap<Value, Value> onHost; // device value -> its copy_to_host
    for (Operation *op : ops) {
      if (isa<sc::ParamOp, sc::ConstantOp, sc::YieldOp>(op) || op->hasAttr(sc::kCopyToAttr))
        continue;
      // A cast of a host value (the master cast to param_dtype for the gathers) runs on the
      // host: the copy then moves param_dtype bytes.
      if (!sc::isHostOp(op) && isa<sc::CastOp>(op) && sc::isHostValue(op->getOperand(0)))
        op->setAttr(sc::kHostAttr, UnitAttr::get(ctx));
      if (sc::isHostOp(op)) {
        if (isa<sc::StateOp>(op))
          continue; // its init is copied to the host once, at load (the artifact emitter)
        for (OpOperand &use : op->getOpOperands()) {
          Value v = use.get();
          if (sc::isHostValue(v) || isConstantValue(v))
            continue;
          Value &copy = onHost[v];
          if (!copy) {
            OpBuilder b(ctx);
            b.setInsertionPointAfterValue(v);
            copy = copyTo(b, op->getLoc(), v, "host");
          }
          use.set(copy);
        }
        continue;
      }
      // A device op (a collective, a layer's op, the return): host operands come over.
      llvm::DenseMap<Value, Value> here;
      for (OpOperand &use : op->getOpOperands()) {
        Value v = use.get();
        if (!sc::isHostValue(v))
          continue;
        Value &copy = here[v];
        if (!copy) {
          OpBuilder b(op);
          copy = copyTo(b, op->getLoc(), v, "device");
        }
        use.set(copy);
      }
    }
  }
};

} // namespace

std::unique_ptr<mlir::Pass> createScOffloadPass() { return std::make_unique<ScOffloadPass>(); }

} // namespace shardc
