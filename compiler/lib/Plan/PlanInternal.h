// Helpers shared by the plan's files (Plan.cpp, PlanYaml.cpp, PlanMatch.cpp, PlanAttr.cpp):
// the style and axis names, errors with "did you mean", the axis checks.
#ifndef SHARDC_LIB_PLAN_PLANINTERNAL_H
#define SHARDC_LIB_PLAN_PLANINTERNAL_H

#include "shardc/Plan/Plan.h"

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/ADT/Twine.h"
#include "llvm/Support/Error.h"

#include <optional>
#include <string>

namespace shardc::plan {

using llvm::StringRef;

inline constexpr StringRef kAxisNames[] = {"dp_replicate", "dp_shard", "cp", "tp"};
inline constexpr int64_t kMaxAxisSize = 1 << 20; // keeps products far from overflow

llvm::Error err(const llvm::Twine &msg);
// "; did you mean 'X'?" for the nearest candidate within half the word's length, else "".
std::string didYouMean(StringRef word, llvm::ArrayRef<StringRef> candidates);
std::string joinNames(llvm::ArrayRef<StringRef> names);

std::optional<DType> parseDType(StringRef s);
std::optional<Mode> parseMode(StringRef s);
StringRef stringifyMode(Mode m);
std::optional<Checkpointing> parseCheckpointing(StringRef s);
std::optional<ReshardAfterForward> parseReshardAfterForward(StringRef s);

// A mesh axis size as written: positive, or -1 for dp_shard.
llvm::Error checkAxisSize(StringRef axis, int64_t size);
void setAxis(Mesh &mesh, StringRef axis, int64_t size);
// Why an axis of a parallelism shardc lacks (pp, ep, ...) is refused; "" for others.
std::string rejectedAxisMessage(StringRef axis);

} // namespace shardc::plan

#endif
