// Declarations of shardc's passes and the pipelines built from them.
#pragma once

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/Pass/Pass.h"
#include "mlir/Pass/PassManager.h"

namespace shardc {

#define GEN_PASS_DECL
#include "shardc/Passes/Passes.h.inc"

#define GEN_PASS_REGISTRATION
#include "shardc/Passes/Passes.h.inc"

// Raising: linear, norms, activations, rotary, attention, then canonicalisation.
void buildRaisePipeline(mlir::OpPassManager &pm);
// Sharding: apply-plan, propagate-sharding, insert-reshards, partition (needs sc.mesh).
void buildShardingPipeline(mlir::OpPassManager &pm);
// The whole pipeline up to the artifact's IR: raise, [sharding], group layers, [fuse
// elementwise ops into generated kernels], then materialize outputs, hoist load steps and
// plan memory (what the artifact emitter reads).
void buildCompilePipeline(mlir::OpPassManager &pm, bool sharded, bool fuse = true);
// Registers passes and named pipelines (`sc-raise`, `sc-compile`) with shardc-opt.
void registerAllShardcPasses();

} // namespace shardc
