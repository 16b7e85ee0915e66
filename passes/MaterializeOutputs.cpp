// sc-materialize-outputs: a graph output whose buffer is a weight, a constant or an argument
// is returned through an sc.copy, since the runtime reads outputs from the arena (see
// Passes.td).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"

namespace shardc {
#define GEN_PASS_DEF_SCMATERIALIZEOUTPUTS
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

struct ScMaterializeOutputsPass : impl::ScMaterializeOutputsBase<ScMaterializeOutputsPass> {
  void runOnOperation() override {
    func::FuncOp func = getOperation();
    if (func.getBody().empty())
      return;
    auto ret = dyn_cast<func::ReturnOp>(func.getBody().front().getTerminator());
    if (!ret)
      return;
    OpBuilder b(ret);
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      Value storage = sc::storageValue(v);
      if (!isa<BlockArgument>(storage) && !isa_and_present<sc::ParamOp, sc::ConstantOp>(storage.getDefiningOp()))
        continue;
      auto name = func.getResultAttrOfType<StringAttr>(i, "sc.name");
      std::string n = name ? name.str() : "output" + std::to_string(i);
      // The step's location reads `output <name>` (no ONNX node made it).
      Location loc = NameLoc::get(b.getStringAttr("output " + n));
      ret->setOperand(i, sc::CopyOp::create(b, loc, v.getType(), v).getResult());
    }
  }
};

} // namespace
} // namespace shardc
