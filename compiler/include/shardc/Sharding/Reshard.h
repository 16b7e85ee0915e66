// The reshard planner: the cheapest sequence of collectives that takes a value of a given
// shape from one sharding to another over a mesh. sc-insert-reshards materialises its steps
// as sc collectives; it is plain data in and out, so it is tested without IR.
#pragma once

#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <string>

namespace shardc {

// One collective of a plan. Every step changes the innermost axes of one dim, or the
// pending reduction:
//   AllReduce      Partial(axes) -> not partial
//   ReduceScatter  Partial(axes) -> axes appended to dim `dim`
//   AllToAll       the innermost `axes` of dim `fromDim` moved to the end of dim `dim`
//   AllGather      the innermost `axes` of dim `dim` dropped
//   Slice          `axes` appended to dim `dim`, locally (no communication)
struct ReshardStep {
  enum Kind { AllReduce, ReduceScatter, AllToAll, AllGather, Slice } kind;
  llvm::SmallVector<std::string, 2> axes;
  int64_t dim = 0, fromDim = 0;
};

// How the sc dialect spells a step: the collective op's mnemonic ("all_gather", ...), the
// names of its attributes that take the step's `dim` and `fromDim` (empty: it has none), and
// whether it carries the kind of the pending reduction it resolves (`reduce`). Every
// collective op also takes `axes`. sc-insert-reshards builds the ops from this alone, so a
// new step kind is defined here, in the planner, and on its op.
struct ReshardStepSpelling {
  llvm::StringRef op, dimAttr, fromDimAttr;
  bool reduce = false;
};
const ReshardStepSpelling &spellingOf(ReshardStep::Kind kind);
inline llvm::StringRef reshardStepName(ReshardStep::Kind kind) { return spellingOf(kind).op; }

// The sharding after `step` is applied to `s`.
Sharding applyReshardStep(const Sharding &s, const ReshardStep &step);

// The cheapest steps from `from` to `to` for a tensor of `shape` whose elements take
// `elementBytes` each: a search whose moves cost the bytes each rank puts on the wire in a
// ring (all_reduce 2(G-1)/G of its buffer, reduce_scatter and all_to_all (G-1)/G, all_gather
// G-1 times its chunk, shard_slice nothing) plus one step; plans compare by bytes, then
// steps. A pending reduction is resolved before any dim moves. `to` asking for a Partial
// that `from` does not have is taken as its whole value (a reduction cannot be created).
// Empty when the shardings are equal; an error when no sequence exists (a dim that does not
// divide over the axes it must take).
llvm::Expected<llvm::SmallVector<ReshardStep>> planReshard(const Sharding &from, const Sharding &to,
                                                           const MeshShape &mesh,
                                                           llvm::ArrayRef<int64_t> shape,
                                                           int64_t elementBytes = 4);

} // namespace shardc
