// The artifact emitter reads the memory plan and the load-step marks from the IR and plans
// nothing itself: without sc-plan-memory's attributes, or with an output that
// sc-materialize-outputs should have copied, it fails with one line naming the pass; after
// the three storage passes it writes the artifact.
#include "shardc/Artifact/ArtifactEmitter.h"
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "mlir/Pass/PassManager.h"

#include <gtest/gtest.h>

#include "TempDir.h"

namespace shardc {
namespace {

class EmitterPlan : public ::testing::Test {
protected:
  EmitterPlan() { ctx.loadDialect<sc::ScDialect, mlir::func::FuncDialect>(); }

  mlir::OwningOpRef<mlir::ModuleOp> parse(llvm::StringRef text) {
    auto m = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
    EXPECT_TRUE(m) << text.str();
    return m;
  }
  // The emitter's error, "" on success.
  std::string emit(mlir::ModuleOp m) {
    EmitStats stats;
    llvm::Error err = emitArtifact(m, dir.file("m.shardc"), stats);
    last = stats;
    return err ? llvm::toString(std::move(err)) : "";
  }
  void runStoragePasses(mlir::ModuleOp m) {
    mlir::PassManager pm(&ctx);
    pm.nest<mlir::func::FuncOp>().addPass(createScMaterializeOutputs());
    pm.nest<mlir::func::FuncOp>().addPass(createScHoistLoadSteps());
    pm.addPass(createScPlanMemory());
    ASSERT_TRUE(mlir::succeeded(pm.run(m)));
  }

  mlir::MLIRContext ctx;
  TempDir dir{"shardc-emitter"};
  EmitStats last;
};

// An output that is a constant, and a step computed from constants alone.
constexpr llvm::StringLiteral kProgram = R"(
func.func @main(%x: tensor<4xf32>) -> (tensor<4xf32>, tensor<4xf32>) {
  %c = sc.constant dense<[1.0, 2.0, 3.0, 4.0]> : tensor<4xf32>
  %n = sc.neg %c : (tensor<4xf32>) -> tensor<4xf32>
  %y = sc.add %x, %n : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %y, %c : tensor<4xf32>, tensor<4xf32>
}
)";

TEST_F(EmitterPlan, RefusesAModuleWithoutAMemoryPlan) {
  auto m = parse(kProgram);
  std::string err = emit(*m);
  EXPECT_NE(err.find("run sc-plan-memory"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST_F(EmitterPlan, RefusesAnOutputThatIsNotInTheArena) {
  auto m = parse(kProgram);
  // A plan whose offsets cover every step, but the constant is still returned as it is.
  mlir::Builder b(&ctx);
  for (auto [name, value] : {std::pair{"sc.arena_bytes", 128}, {"sc.naive_arena_bytes", 192}, {"sc.persistent_bytes", 0}})
    (*m)->setAttr(name, b.getI64IntegerAttr(value));
  auto func = *m->getOps<mlir::func::FuncOp>().begin();
  func.setArgAttr(0, sc::kArenaOffsetAttr, b.getI64IntegerAttr(0));
  func.walk([&](mlir::Operation *op) {
    if (sc::isStepOp(op))
      op->setAttr(sc::kArenaOffsetsAttr, b.getDenseI64ArrayAttr({64}));
  });
  std::string err = emit(*m);
  EXPECT_NE(err.find("run sc-materialize-outputs"), std::string::npos) << err;
}

TEST_F(EmitterPlan, EmitsAfterTheStoragePasses) {
  auto m = parse(kProgram);
  runStoragePasses(*m);
  EXPECT_EQ(emit(*m), "");
  // neg(constant) runs at load; add and the constant output's copy run.
  EXPECT_EQ(last.loadSteps, 1);
  EXPECT_EQ(last.persistentBytes, 64);
  EXPECT_EQ(last.steps, 2);
  EXPECT_EQ(last.arenaBytes, 128); // the copy (step 2) reuses x's bytes (last read at step 1)
}

} // namespace
} // namespace shardc
