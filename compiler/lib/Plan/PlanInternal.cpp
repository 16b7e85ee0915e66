// Helpers shared by the plan's files: names, did-you-mean, axis checks.
#include "PlanInternal.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

namespace shardc::plan {


llvm::Error err(const llvm::Twine &msg) { return llvm::createStringError(llvm::inconvertibleErrorCode(), msg); }

// "; did you mean 'X'?" for the nearest candidate within half the word's length, else "".
// (Half: "training" -> "train" is 3 edits; a wrong suggestion costs little next to none.)
std::string didYouMean(StringRef word, llvm::ArrayRef<StringRef> candidates) {
  unsigned best = ~0u;
  StringRef bestName;
  for (StringRef c : candidates) {
    unsigned d = word.edit_distance_insensitive(c, true, best);
    if (d < best)
      best = d, bestName = c;
  }
  unsigned limit = std::max<unsigned>(2, word.size() / 2);
  if (bestName.empty() || best > limit)
    return "";
  return ("; did you mean '" + bestName + "'?").str();
}

std::string joinNames(llvm::ArrayRef<StringRef> names) { return llvm::join(names, ", "); }

std::optional<DType> parseDType(StringRef s) {
  s.consume_front("torch.");
  if (s == "bf16" || s == "bfloat16")
    return DType::BF16;
  if (s == "fp16" || s == "float16" || s == "half")
    return DType::FP16;
  if (s == "fp32" || s == "float32" || s == "float")
    return DType::FP32;
  return std::nullopt;
}

std::optional<Mode> parseMode(StringRef s) {
  if (s == "inference")
    return Mode::Inference;
  if (s == "train")
    return Mode::Train;
  return std::nullopt;
}

StringRef stringifyMode(Mode m) { return m == Mode::Train ? "train" : "inference"; }

std::optional<ReshardAfterForward> parseReshardAfterForward(StringRef s) {
  if (s == "auto" || s == "null")
    return ReshardAfterForward::Auto;
  if (s == "true")
    return ReshardAfterForward::Always;
  if (s == "false")
    return ReshardAfterForward::Never;
  return std::nullopt;
}

std::optional<Checkpointing> parseCheckpointing(StringRef s) {
  if (s == "false" || s == "none")
    return Checkpointing::None;
  if (s == "true" || s == "full")
    return Checkpointing::Full;
  if (s == "selective")
    return Checkpointing::Selective;
  return std::nullopt;
}


llvm::Error checkAxisSize(StringRef axis, int64_t size) {
  if (size == -1 && axis != "dp_shard")
    return err("mesh axis " + axis + " is -1; only dp_shard may be -1 (inferred from the world size)");
  if (size == 0 || size < -1 || size > kMaxAxisSize)
    return err(llvm::formatv("mesh axis {0} has size {1}; sizes are positive (dp_shard may be -1)", axis, size).str());
  return llvm::Error::success();
}

void setAxis(Mesh &mesh, StringRef axis, int64_t size) {
  for (auto &a : mesh.axes)
    if (a.first == axis)
      a.second = size;
}

std::string rejectedAxisMessage(StringRef axis) {
  if (axis == "pp" || axis == "pp_size")
    return "pipeline parallelism (pp) is not supported yet";
  if (axis == "etp")
    return "expert tensor parallelism is not a mesh axis (etp): it splits the experts over tp with expert_tp: true";
  if (axis == "expert" || axis == "moe")
    return "expert parallelism is the mesh axis ep (carved out of dp_shard x cp), not " + axis.str();
  return "";
}

} // namespace shardc::plan

namespace shardc {
llvm::StringRef stringifyReshardAfterForward(ReshardAfterForward r) {
  return r == ReshardAfterForward::Always ? "true" : r == ReshardAfterForward::Never ? "false" : "auto";
}

llvm::StringRef stringifyCheckpointing(Checkpointing c) {
  return c == Checkpointing::Full ? "full" : c == Checkpointing::Selective ? "selective" : "false";
}
} // namespace shardc
