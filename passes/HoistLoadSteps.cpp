// sc-hoist-load-steps: marks `sc.at_load` the steps that compute from weights, constants and
// load-time sources alone, so the runtime runs them once at load (see Passes.td).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"
#include "shardc/Passes/Passes.h"
#include "shardc/comm/CollectiveKernels.h"

#include "llvm/ADT/DenseSet.h"

namespace shardc {
#define GEN_PASS_DEF_SCHOISTLOADSTEPS
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

struct ScHoistLoadStepsPass : impl::ScHoistLoadStepsBase<ScHoistLoadStepsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.getBody().empty())
      return;
    Block &entry = func.getBody().front();
    // The buffers the function returns (an sc.layer's result is the value it yields).
    llvm::DenseSet<Value> outputs;
    if (auto ret = dyn_cast<func::ReturnOp>(entry.getTerminator()))
      for (Value v : ret.getOperands())
        outputs.insert(sc::storageValue(v));
    // Marks are recomputed; a memory plan made before is stale (sc-plan-memory runs after).
    func.walk([](Operation *op) {
      for (StringRef name : {sc::kAtLoadAttr, sc::kArenaOffsetsAttr, sc::kPersistentOffsetsAttr})
        op->removeAttr(name);
    });
    UnitAttr unit = UnitAttr::get(&getContext());
    // In step order, so an operand's producer is decided before its readers.
    (void)sc::forEachStep(entry, [&](Operation *op) {
      if (atLoad(op, outputs))
        op->setAttr(sc::kAtLoadAttr, unit);
      return success();
    });
  }

  static bool atLoad(Operation *op, const llvm::DenseSet<Value> &outputs) {
    if (llvm::any_of(op->getResults(), [&](Value r) { return outputs.contains(r); }))
      return false;
    std::optional<std::string> kind = sc::stepKindOf(op);
    if (!kind || rt::communicatesBetweenRanks(*kind))
      return false;
    // CPU offload: host steps and the copies between the memories run every step.
    if (sc::isHostOp(op) || op->hasAttr(sc::kCopyToAttr))
      return false;
    if (op->getNumOperands() == 0)
      return op->hasTrait<sc::LoadTimeSource>();
    return llvm::all_of(op->getOperands(), sc::isLoadTimeValue);
  }
};

} // namespace
} // namespace shardc
