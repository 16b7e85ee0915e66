// CPU offload (`offload_policy: cpu`, docs/training.md#cpu-offload): what sc-add-optimizer,
// sc-offload, sc-fuse-elementwise, sc-hoist-load-steps, sc-plan-memory and the artifact emitter
// share about host memory. An op marked sc.host runs on the host with the CPU kernels; its
// results live in host memory (the host arena, or for an sc.state the host persistent block),
// planned apart from the device's. The copies between the memories are sc.copy ops with
// sc.copy_to = "host" | "device" (steps copy_to_host, copy_to_device).
#pragma once

#include "shardc/Dialect/ScDialect.h"

namespace shardc::sc {

inline constexpr llvm::StringLiteral kHostAttr = "sc.host";
inline constexpr llvm::StringLiteral kCopyToAttr = "sc.copy_to";
// Module: the host arena's peak and the host persistent block's size (sc-plan-memory).
inline constexpr llvm::StringLiteral kHostArenaBytesAttr = "sc.host_arena_bytes";
inline constexpr llvm::StringLiteral kHostPersistentBytesAttr = "sc.host_persistent_bytes";

// Whether the op runs on the host.
inline bool isHostOp(mlir::Operation *op) { return op && op->hasAttr(kHostAttr); }

// Whether the op is a copy into `space` ("host" or "device").
inline bool isCopyTo(mlir::Operation *op, llvm::StringRef space) {
  auto to = mlir::isa_and_nonnull<CopyOp>(op) ? op->getAttrOfType<mlir::StringAttr>(kCopyToAttr) : mlir::StringAttr();
  return to && to.getValue() == space;
}

// Whether `v`'s buffer is in host memory: a result of a host op or of a copy to the host
// (through sc.layer results).
inline bool isHostValue(mlir::Value v) {
  mlir::Operation *def = storageValue(v).getDefiningOp();
  return def && (isHostOp(def) || isCopyTo(def, "host"));
}

} // namespace shardc::sc
