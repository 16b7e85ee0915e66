// sc-offload (passes/Offload.cpp): CPU offload's copies between device and host memory, with
// `offload_policy: cpu`, on the per-rank program after sc-partition (docs/training.md#cpu-offload).
// Written by hand rather than in Passes.td; registered with shardc-opt by
// registerAllShardcPasses (Pipelines.cpp).
#pragma once

#include "mlir/Pass/Pass.h"

#include <memory>

namespace shardc {
std::unique_ptr<mlir::Pass> createScOffloadPass();
} // namespace shardc
