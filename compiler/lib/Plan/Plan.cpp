// The plan's names (tensor-parallel styles, dtypes, model families) and its mesh: resolution
// against the world size and the --mesh override. YAML parsing is in PlanYaml.cpp, glob
// matching and the auto plan in PlanMatch.cpp, printing and the sc.plan attribute in
// PlanAttr.cpp.
#include "shardc/Plan/Plan.h"

#include "PlanInternal.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using llvm::StringRef;

namespace shardc {
using namespace plan;

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

llvm::ArrayRef<StringRef> allTpStyleNames() {
  static const std::vector<StringRef> names = [] {
    std::vector<StringRef> out;
    for (uint32_t i = 0; i <= sc::getMaxEnumValForTpStyle(); ++i)
      out.push_back(sc::stringifyTpStyle(*sc::symbolizeTpStyle(i)));
    return out;
  }();
  return names;
}

StorageSplit storageSplitOf(TpStyle style) {
  switch (style) {
  case TpStyle::Colwise:
  case TpStyle::ColwiseRep:
  case TpStyle::EmbeddingRowwise: // [vocab, dim]: the vocab rows are a tied lm_head's out dim
    return StorageSplit::Out;
  case TpStyle::PackedColwise:
    return StorageSplit::OutPacked;
  case TpStyle::Rowwise:
  case TpStyle::RowwiseRep:
    return StorageSplit::In;
  case TpStyle::SequenceParallel:
  case TpStyle::Replicate:
    return StorageSplit::None;
  }
  return StorageSplit::None;
}

StringRef stringifyDType(DType d) {
  switch (d) {
  case DType::BF16:
    return "bf16";
  case DType::FP16:
    return "fp16";
  case DType::FP32:
    return "fp32";
  }
  return "fp32";
}


//===----------------------------------------------------------------------===//
// Mesh
//===----------------------------------------------------------------------===//

int64_t Mesh::size(StringRef axis) const {
  if (axis == "ep")
    return ep;
  if (axis == "ep_shard")
    return size("dp_shard") * size("cp") / std::max<int64_t>(1, ep);
  for (const auto &[name, size] : axes)
    if (name == axis)
      return size;
  return 1;
}

int64_t Mesh::worldSize() const {
  int64_t n = 1;
  for (const auto &a : axes) {
    if (a.second <= 0)
      return -1;
    n *= a.second;
  }
  return n;
}

std::string Mesh::str() const {
  std::string s;
  for (const auto &[name, size] : axes)
    s += (s.empty() ? "" : ",") + name + "=" + std::to_string(size);
  if (ep != 1)
    s += ",ep=" + std::to_string(ep);
  return s;
}


llvm::Error resolveMesh(Mesh &mesh, std::optional<int64_t> worldSize) {
  for (const auto &[name, size] : mesh.axes)
    if (auto e = checkAxisSize(name, size))
      return e;
  if (worldSize && (*worldSize < 1 || *worldSize > kMaxAxisSize))
    return err(llvm::formatv("world size {0} is out of range", *worldSize).str());
  if (mesh.size("dp_shard") == -1) {
    if (!worldSize)
      return err("mesh dp_shard: -1 needs the world size (--nproc) to be inferred");
    int64_t others = 1;
    for (const auto &[name, size] : mesh.axes)
      if (name != "dp_shard")
        others *= size;
    if (*worldSize % others != 0)
      return err(llvm::formatv("cannot infer dp_shard: world size {0} is not divisible by dp_replicate*cp*tp = {1}",
                               *worldSize, others)
                     .str());
    setAxis(mesh, "dp_shard", *worldSize / others);
  }
  if (mesh.ep < 1 || mesh.ep > kMaxAxisSize)
    return err(llvm::formatv("mesh axis ep has size {0}; sizes are positive", mesh.ep).str());
  if (int64_t fsdp = mesh.size("dp_shard") * mesh.size("cp"); fsdp > 0 && fsdp % mesh.ep != 0)
    return err(llvm::formatv("ep = {0} does not divide dp_shard*cp = {1} (the expert-parallel ranks are "
                             "carved out of dp_shard x cp)",
                             mesh.ep, fsdp)
                   .str());
  if (worldSize && mesh.worldSize() != *worldSize)
    return err(llvm::formatv("mesh {0} has {1} devices but the world size is {2}", mesh.str(), mesh.worldSize(),
                             *worldSize)
                   .str());
  return llvm::Error::success();
}


llvm::Error applyMeshOverride(Plan &plan, StringRef spec) {
  llvm::SmallVector<StringRef> items;
  spec.split(items, ',', -1, /*KeepEmpty=*/false);
  if (items.empty())
    return err("--mesh: empty; expected e.g. tp=2,dp_shard=2");
  for (StringRef item : items) {
    auto [name, value] = item.split('=');
    name = name.trim();
    value = value.trim();
    if (std::string r = rejectedAxisMessage(name); !r.empty())
      return err("--mesh: " + r);
    if (name == "ep") {
      int64_t size;
      if (value.empty() || value.getAsInteger(10, size) || size < 1 || size > kMaxAxisSize)
        return err("--mesh: '" + item + "' is not ep=<positive integer>");
      plan.mesh.ep = size;
      continue;
    }
    if (!llvm::is_contained(kAxisNames, name))
      return err("--mesh: unknown mesh axis '" + name + "'" + didYouMean(name, kAxisNames) + " (axes: " +
                 joinNames(kAxisNames) + ")");
    int64_t size;
    if (value.empty() || value.getAsInteger(10, size))
      return err("--mesh: '" + item + "' is not axis=integer");
    if (auto e = checkAxisSize(name, size))
      return err("--mesh: " + llvm::toString(std::move(e)));
    setAxis(plan.mesh, name, size);
  }
  return llvm::Error::success();
}

Plan defaultPlan(const Mesh &mesh) {
  Plan p;
  p.mesh = mesh;
  p.tpAuto = true;
  return p;
}

} // namespace shardc
