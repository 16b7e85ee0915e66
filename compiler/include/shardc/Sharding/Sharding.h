// Tensor shardings over a named device mesh: per tensor dim the ordered mesh axes that split
// it (outermost first), plus the axes over which the value is a pending reduction (Partial).
#pragma once

#include "mlir/IR/Attributes.h"
#include "mlir/IR/BuiltinAttributes.h"
#include "mlir/IR/Operation.h"
#include "llvm/ADT/SmallVector.h"

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace shardc {
namespace sc {
class ShardingAttr;
} // namespace sc

// The mesh as recorded on the module (`sc.mesh = [["dp_replicate", 1], ..., ["tp", 2]]`),
// outermost axis first. Expert parallelism adds two sub-axes that split dp_shard x cp (its
// flattened index, ep the inner factor) without changing the world size, recorded as
// `["ep_shard", n, "sub"], ["ep", ep, "sub"]` entries: shardings may name them like axes.
struct MeshShape {
  std::vector<std::pair<std::string, int64_t>> axes; // the physical axes (their product: the world)
  int64_t ep = 1;                                    // > 1: the sub-axes ep and ep_shard exist
  int64_t size(llvm::StringRef axis) const;
  int64_t product(llvm::ArrayRef<std::string> axisNames) const;
  int64_t worldSize() const;
  mlir::ArrayAttr toAttr(mlir::MLIRContext *ctx) const;
  static std::optional<MeshShape> fromModule(mlir::Operation *module);
};

struct Sharding {
  llvm::SmallVector<llvm::SmallVector<std::string, 2>> dims; // one entry per tensor dim
  llvm::SmallVector<std::string, 2> partial;                 // axes of a pending reduction
  std::string reduce = "sum";                                // kind of the pending reduction

  static Sharding replicated(int64_t rank);
  bool isReplicated() const; // no dim sharded and nothing partial
  bool hasPartial() const { return !partial.empty(); }
  bool operator==(const Sharding &o) const {
    return dims == o.dims && partial == o.partial && (partial.empty() || reduce == o.reduce);
  }
  bool operator!=(const Sharding &o) const { return !(*this == o); }
  // Every mesh axis used (dims and partial).
  llvm::SmallVector<std::string> usedAxes() const;
  // The local shape of a global shape under this sharding; nullopt when a dim does not divide.
  std::optional<llvm::SmallVector<int64_t>> localShape(llvm::ArrayRef<int64_t> global, const MeshShape &mesh) const;

  // The attribute form, #sc.sharding<[[axes of dim 0], ...], partial = [axis: kind, ...]>.
  sc::ShardingAttr toAttr(mlir::MLIRContext *ctx) const;
  static std::optional<Sharding> fromAttr(mlir::Attribute attr); // nullopt unless #sc.sharding
  // DTensor notation, one placement per mesh axis: "[tp: Shard(2), dp_shard: Replicate]".
  std::string toDTensorString(const MeshShape &mesh) const;
};

// The layout of `in` after a sharding constraint (sc.sharding_constraint): the mesh axes in
// `axes` leave every dim and the pending reduction, then take the places `placement` gives
// them; the other axes keep theirs.
Sharding applyConstraint(const Sharding &in, llvm::ArrayRef<std::string> axes, const Sharding &placement);

// Shardings are stored per op result as `sc.sharding = [#sc.sharding<...>, ...]` and on
// function arguments as the argument attribute `sc.sharding = #sc.sharding<...>`.
inline constexpr llvm::StringLiteral kShardingAttr = "sc.sharding";
std::optional<Sharding> getSharding(mlir::Value v);
void setSharding(mlir::Value v, const Sharding &s);

} // namespace shardc
