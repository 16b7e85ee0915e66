// ScGroupLayers: the ops of each decoder/encoder layer (by module path) move into one
// sc.layer region, the unit of FSDP parameter groups and of outlining identical layers.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/Matchers.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCGROUPLAYERS
#include "shardc/Passes/Passes.h.inc"

namespace {

// Params and constants stay at function top; they carry no layer.
bool isSource(Operation *op) {
  return isa<sc::ParamOp>(op) || op->hasTrait<OpTrait::ConstantLike>();
}

struct LayerPlan {
  std::string path;
  SmallVector<Operation *> ops;      // in program order
  SmallVector<Operation *> hoisted;  // unrelated ops between them, moved before the layer
};

struct ScGroupLayersPass : impl::ScGroupLayersBase<ScGroupLayersPass> {
  void runOnOperation() override {
    func::FuncOp fn = getOperation();
    if (fn.getBody().empty() || !fn.getBody().hasOneBlock())
      return;
    Block &block = fn.getBody().front();

    llvm::MapVector<StringRef, LayerPlan> plans;
    llvm::DenseMap<Operation *, StringRef> layerOf;
    SmallVector<std::string> pathStorage;
    for (Operation &op : block.without_terminator()) {
      // The backward program (sc-autodiff) runs after every forward layer, outside them.
      if (isSource(&op) || isa<sc::LayerOp>(op) || isBackwardLoc(op.getLoc()))
        continue;
      std::string layer = layerPathOf(modulePathOf(op.getLoc()));
      if (layer.empty())
        continue;
      auto key = StringAttr::get(&getContext(), layer).getValue();
      plans[key].path = layer;
      plans[key].ops.push_back(&op);
      layerOf[&op] = key;
    }
    if (plans.empty())
      return;

    // Plan everything first: a refusal must leave the function untouched.
    for (auto &[key, plan] : plans) {
      llvm::DenseSet<Operation *> members(plan.ops.begin(), plan.ops.end());
      for (Operation *op = plan.ops.front(); op != plan.ops.back(); op = op->getNextNode()) {
        if (members.contains(op))
          continue;
        auto other = layerOf.find(op);
        bool dependsOnLayer = llvm::any_of(op->getOperands(), [&](Value v) {
          Operation *def = v.getDefiningOp();
          return def && members.contains(def);
        });
        if (other != layerOf.end() || dependsOnLayer) {
          fn.emitRemark() << "layers not grouped: the ops of '" << plan.path
                          << "' are not contiguous (" << op->getName() << " at "
                          << describeLoc(op->getLoc()) << " lies between them)";
          return;
        }
        plan.hoisted.push_back(op);
      }
    }

    OpBuilder builder(&getContext());
    for (auto &[key, plan] : plans) {
      Operation *first = plan.ops.front();
      for (Operation *op : plan.hoisted)
        op->moveBefore(first);
      llvm::DenseSet<Operation *> members(plan.ops.begin(), plan.ops.end());
      SmallVector<Value> escaping;
      for (Operation *op : plan.ops)
        for (Value r : op->getResults())
          if (llvm::any_of(r.getUsers(), [&](Operation *u) {
                return !members.contains(block.findAncestorOpInBlock(*u));
              }))
            escaping.push_back(r);

      builder.setInsertionPoint(first);
      SmallVector<Type> types;
      for (Value v : escaping)
        types.push_back(v.getType());
      auto layer = sc::LayerOp::create(builder, first->getLoc(), types, builder.getStringAttr(plan.path));
      Block *body = new Block();
      layer.getBody().push_back(body);
      for (Operation *op : plan.ops)
        op->moveBefore(body, body->end());
      builder.setInsertionPointToEnd(body);
      sc::YieldOp::create(builder, plan.ops.back()->getLoc(), escaping);
      for (auto [v, r] : llvm::zip(escaping, layer.getResults()))
        v.replaceUsesWithIf(r, [&](OpOperand &use) { return !layer->isProperAncestor(use.getOwner()); });
    }
  }
};

} // namespace
} // namespace shardc
