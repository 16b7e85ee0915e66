// sc-fuse-linear-epilogue: a tanh GELU that only reads a biased linear becomes the linear's
// GEMM epilogue (see Passes.td).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"

namespace shardc {
#define GEN_PASS_DEF_SCFUSELINEAREPILOGUE
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

struct ScFuseLinearEpiloguePass : impl::ScFuseLinearEpilogueBase<ScFuseLinearEpiloguePass> {
  void runOnOperation() override {
    SmallVector<sc::GeluOp> gelus;
    getOperation().walk([&](sc::GeluOp g) { gelus.push_back(g); });
    for (sc::GeluOp gelu : gelus) {
      // Directly, or through a reshape that only it reads (GPT-2's Conv1D flattens the tokens
      // around its Gemm): an elementwise op commutes with a reshape.
      Value in = gelu.getInput();
      auto reshape = in.getDefiningOp<sc::ReshapeOp>();
      if (reshape && reshape.getResult().hasOneUse())
        in = reshape.getInput();
      auto linear = in.getDefiningOp<sc::LinearOp>();
      auto elementType = [](Value v) { return cast<RankedTensorType>(v.getType()).getElementType(); };
      if (!linear || gelu.getApproximate() != sc::GeluApproximation::Tanh || !linear.getBias() || linear.getEpilogue() ||
          !linear.getResult().hasOneUse() || elementType(linear.getResult()) != elementType(gelu.getResult()) ||
          gelu.getInput().getType() != gelu.getResult().getType() || linear->getBlock() != gelu->getBlock())
        continue;
      linear.setEpilogue(sc::LinearEpilogue::GeluTanh);
      gelu.getResult().replaceAllUsesWith(gelu.getInput());
      gelu.erase();
    }
  }
};

} // namespace
} // namespace shardc
