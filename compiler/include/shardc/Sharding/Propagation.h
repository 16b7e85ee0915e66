// One step of sharding propagation: what an op's sharding rule makes of the shardings of its
// operands and results. sc-propagate-sharding runs it to a fixpoint over a function; it is
// plain data in and out, so it is tested without IR.
#pragma once

#include "shardc/Dialect/ScShardingRule.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/SmallVector.h"

namespace shardc {

// Where a value's sharding came from; lower wins: the plan (parameters, its layout
// constraints) before the batch (inputs split over data parallel) before the rest.
enum ShardingPriority : int { kPlan = 0, kBatch = 1, kDerived = 2, kNone = 3 };

// An operand or result of the op as the rule sees it.
struct ShardingSource {
  Sharding sharding;
  int priority = kNone;
  bool param = false; // a parameter (or one cast to the compute dtype)
  // An operand that other ops read too: its Partial does not flow into this op's result. It
  // is reduced once, where it is made, and every reader shares that collective; flowing it into
  // each reader would reduce it (or what each makes of it) once per reader.
  bool readElsewhere = false;
};

struct ShardingDecision {
  llvm::SmallVector<Sharding> results, operands; // what the op makes and needs
  int priority = kNone;                          // of the best source that sharded a factor
};

// Applies `rule` (one entry per operand and result) to `operands` and `results`. Sources are
// the operands, then the results with a priority (a refinement a user asked for; their
// Partial is ignored), best priority first, at equal priority parameters first, then the most
// sharded. Each source gives its dims' major factors its axes where the factor is shardable,
// divides, and the axes are not taken yet; a factor that is the minor part of a compound dim
// somewhere stays whole. Partial operands flow through as the rule's PartialFlow allows
// (otherwise they are wanted reduced); a sharded reduction factor makes the results Partial
// with the rule's reduction kind.
ShardingDecision decideShardings(const ShardingRule &rule, llvm::ArrayRef<ShardingSource> operands,
                                 llvm::ArrayRef<ShardingSource> results, const MeshShape &mesh);

} // namespace shardc
