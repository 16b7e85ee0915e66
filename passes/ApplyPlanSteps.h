// The larger rewrites of sc-apply-plan, each in its own file: the context-parallel
// sequence order, the unpacking of packed_colwise projections, kv-head replication.
#pragma once

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Sharding/Sharding.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/SmallPtrSet.h"

#include <string>

namespace shardc {

// `v` constrained to be split on `dim` over `axes` (dim < 0: replicated over them), the other
// mesh axes as propagation finds them: an sc.sharding_constraint inserted at `b`, which
// sc-insert-reshards turns into the collectives (or the local slice) that make the layout.
mlir::Value constrainLayout(mlir::OpBuilder &b, mlir::Location loc, mlir::Value v, llvm::ArrayRef<std::string> axes,
                            int64_t dim);

// Context parallel over `cp` ranks: the load-balanced sequence order applied once (inputs,
// position ids, rotary tables, masks), the token stream split over cp after the embedding,
// outputs put back in order. Errors at the op that prevents it.
mlir::LogicalResult applyContextParallel(mlir::func::FuncOp func, int64_t cp);

// packed_colwise: `reshape?(linear(x, W, b))` cut along its features into parts (one split,
// or slices that tile the features; parts may differ in size) becomes one colwise linear per
// part over column blocks of W (and b), each sliced locally over `tp`.
mlir::LogicalResult unpackColwise(sc::LinearOp lin, llvm::ArrayRef<std::string> tp, int64_t tpSize);

// kv heads fewer than tp (tp a multiple of them): each kv head repeated tp / kv_heads times
// before `att`; the key and value projections feeding it are added to `replicated` (they
// keep whole weights instead of their colwise split).
mlir::LogicalResult replicateKvHeads(sc::AttentionOp att, int64_t tpSize,
                                     llvm::SmallPtrSetImpl<mlir::Operation *> &replicated);

// A clone of `p` of type `shape` that views the stored bytes of `p` (sc.file_shape records
// their shape; the caller adds how the view maps onto them: padding, sc.file_start,
// sc.file_repeat), inserted at `b`.
sc::ParamOp paramView(mlir::OpBuilder &b, sc::ParamOp p, llvm::ArrayRef<int64_t> shape);

// Uneven shards: dim `dim` of `p` padded with zeros to `size` (sc.file_shape records the
// file's shape); embeddings and linears whose output features are padded use the padded
// tensor (the linear's output is trimmed after it), other users read a slice. Returns the
// padded parameter, which replaces `p`.
sc::ParamOp padParameter(sc::ParamOp p, int64_t dim, int64_t size);

// Expert parallelism (ExpertParallel.cpp). With mesh.ep > 1, the stacked expert weights of
// every sc.moe_experts are split on their expert dim over `ep` (compute) and stored split on
// dim 1 over `ep_shard` too (FSDP); they are added to `expertParams`, which the generic FSDP
// split then leaves alone. Errors at an op whose experts do not divide over ep. With tp > 1:
// the 1/tp token split (constraints on the op's tokens), or, with the module's sc.expert_tp,
// each expert's MLP split on I over tp (gate and up as views of the fused stack, concatenated
// under sc.expert_halves; down split on I) (docs/moe.md, "Tensor parallelism").
mlir::LogicalResult seedExpertParallel(mlir::ModuleOp module, const MeshShape &mesh,
                                       llvm::SmallPtrSetImpl<mlir::Operation *> &expertParams);
// sc-partition's part: each sc.moe_experts whose experts arrive split over `ep` becomes
// moe_permute, moe_dispatch, moe_grouped_gemm, moe_combine and moe_unpermute on local shapes.
mlir::LogicalResult expandExpertParallel(mlir::ModuleOp module, const MeshShape &mesh);

} // namespace shardc
