// IR the MoE training passes build from a raised router (sc-add-loss's load-balancing loss,
// sc-update-router-bias's bias update).
#pragma once

#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/Builders.h"

namespace shardc {

// The (token, choice) pairs each expert got, [E] f32: Σ over t, j of [indices[t, j] == e].
mlir::Value expertCounts(mlir::OpBuilder &b, mlir::Location loc, sc::MoeRouterOp r);

} // namespace shardc
