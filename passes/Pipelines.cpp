// The named pipelines of shardc (raise, compile) and the registration of every pass with
// shardc-opt, so that `shardc compile --dump-pass-pipeline` output replays in shardc-opt.
#include "shardc/Passes/Offload.h"
#include "shardc/Passes/Passes.h"

#include "mlir/Pass/PassRegistry.h"
#include "mlir/Transforms/Passes.h"

namespace shardc {

void buildRaisePipeline(mlir::OpPassManager &pm) {
  auto &fn = pm.nest<mlir::func::FuncOp>();
  fn.addPass(mlir::createCanonicalizerPass());
  fn.addPass(createScRaiseLinear());
  fn.addPass(createScRaiseNorms());
  fn.addPass(createScRaiseActivations());
  fn.addPass(createScRaiseRotary());
  fn.addPass(createScRaiseAttention());
  fn.addPass(createScRaiseMoe());
  fn.addPass(mlir::createCanonicalizerPass());
  fn.addPass(mlir::createCSEPass());
}

void buildShardingPipeline(mlir::OpPassManager &pm) {
  // The plan's rewrites (packed projections, context parallelism, kv heads) see the flat
  // program; the layers are found once, after them and before sharding: propagation, FSDP
  // grouping, partitioning, fusion and the artifact keep or read them.
  // A `mode: train` plan (sc.train) appends the loss first, in the original token order.
  // sc-autodiff then differentiates the program as the plan rewrote it (packed projections,
  // replicated kv heads, the context-parallel order, layout constraints), so each rewrite has
  // its backward.
  // Mixed precision casts a train program before it is differentiated (the backward takes the
  // forward's dtypes), an inference program after the layers are grouped.
  pm.addPass(createScAddLoss());
  pm.addPass(createScApplyPlan());
  pm.addPass(createScMixedPrecision(ScMixedPrecisionOptions{/*train=*/true}));
  // Gradient accumulation: the forward and loss once per micro-batch, differentiated together,
  // then each micro-batch's backward moved right after its forward.
  pm.addPass(createScUnrollMicrobatches());
  pm.addPass(createScAutodiff());
  pm.addPass(createScScheduleMicrobatches());
  pm.addPass(createScCheckpointActivations());
  pm.addPass(createScAddOptimizer());
  pm.addPass(createScUpdateRouterBias());
  pm.nest<mlir::func::FuncOp>().addPass(createScGroupLayers());
  pm.addPass(createScMixedPrecision());
  pm.addPass(createScPropagateSharding());
  pm.addPass(createScInsertReshards());
  pm.addPass(createScPartition());
  pm.nest<mlir::func::FuncOp>().addPass(createScBucketFsdpGathers());
  // offload_policy: cpu: the optimizer on the host, copies between the memories.
  pm.addPass(createScOffloadPass());
}

void buildCompilePipeline(mlir::OpPassManager &pm, bool sharded, bool fuse) {
  buildRaisePipeline(pm);
  if (sharded)
    buildShardingPipeline(pm);
  else
    pm.nest<mlir::func::FuncOp>().addPass(createScGroupLayers());
  if (fuse) {
    pm.nest<mlir::func::FuncOp>().addPass(createScFuseLinearEpilogue());
    pm.nest<mlir::func::FuncOp>().addPass(createScFuseElementwise());
  }
  // The artifact's storage, on the final program: outputs in the arena, load steps, offsets.
  pm.nest<mlir::func::FuncOp>().addPass(createScMaterializeOutputs());
  pm.nest<mlir::func::FuncOp>().addPass(createScHoistLoadSteps());
  pm.addPass(createScPlanMemory());
}

void registerAllShardcPasses() {
  registerShardcPasses();
  mlir::registerPass([] { return createScOffloadPass(); });
  mlir::PassPipelineRegistration<>("sc-raise", "raise exporter patterns to semantic sc ops",
                                   buildRaisePipeline);
  mlir::PassPipelineRegistration<>("sc-compile", "the single-rank compile pipeline (raise, group layers, fuse, plan memory)",
                                   [](mlir::OpPassManager &pm) { buildCompilePipeline(pm, false); });
  mlir::PassPipelineRegistration<>(
      "sc-shard", "add-loss (train mode), apply-plan, unroll-microbatches, autodiff, schedule-microbatches, checkpoint-activations, add-optimizer and update-router-bias (train mode), group-layers, mixed-precision, propagate-sharding, insert-reshards, partition, "
                  "bucket-fsdp-gathers, offload (train mode)",
      buildShardingPipeline);
}

} // namespace shardc
