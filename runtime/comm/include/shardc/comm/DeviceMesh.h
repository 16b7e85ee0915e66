// The device mesh as the runtime sees it: named axes, outermost first, and the row-major
// rank <-> coordinates map that defines groups and group indices (docs/artifact-format.md).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

struct MeshAxis {
  std::string name;
  int64_t size = 1;
  bool operator==(const MeshAxis &o) const { return name == o.name && size == o.size; }
};

class DeviceMesh {
public:
  DeviceMesh() = default; // one rank, no axes
  explicit DeviceMesh(std::vector<MeshAxis> axes) : axes_(std::move(axes)) {}
  // Expert parallelism: the sub-axes `ep` (size ep, the inner factor of the flattened
  // dp_shard x cp index) and `ep_shard` (the outer factor) become usable in groups and shard
  // specs. "" or a one-line error (ep must divide dp_shard·cp).
  std::string setExpertParallel(int64_t ep);
  int64_t expertParallel() const { return ep_; }

  const std::vector<MeshAxis> &axes() const { return axes_; }
  int64_t worldSize() const;
  // Position of `name` in axes(), or -1.
  int axisIndex(std::string_view name) const;
  // The size of axis `name` (the ep sub-axes included); 1 when the mesh has no such axis.
  int64_t axisSize(std::string_view name) const;
  // "" when every name is an axis of this mesh and none repeats; else a one-line error.
  std::string checkAxes(const std::vector<std::string> &names) const;

  // Row-major decomposition of `rank` (last axis fastest), one coordinate per axis.
  std::vector<int64_t> coords(int64_t rank) const;
  int64_t rankOf(const std::vector<int64_t> &coords) const;
  // Product of the sizes of `names` (checked with checkAxes first).
  int64_t groupSize(const std::vector<std::string> &names) const;
  // The ranks agreeing with `rank` on every axis not in `names`, in group-index order: the
  // row-major order of their coordinates on `names`, taken in the order `names` lists them.
  std::vector<int64_t> groupRanks(int64_t rank, const std::vector<std::string> &names) const;
  // `rank`'s position in groupRanks(rank, names).
  int64_t groupIndex(int64_t rank, const std::vector<std::string> &names) const;

  // "dp_shard=1 tp=0": coordinates on the axes of size > 1 ("" for a one-rank mesh).
  std::string describeRank(int64_t rank) const;
  // "dp_replicate=1 dp_shard=2 cp=1 tp=2".
  std::string describe() const;

  bool operator==(const DeviceMesh &o) const { return axes_ == o.axes_ && ep_ == o.ep_; }
  bool operator!=(const DeviceMesh &o) const { return !(*this == o); }

private:
  std::vector<MeshAxis> axes_;
  int64_t ep_ = 1;
  // With ep: the mesh with dp_shard and cp replaced by ep_shard, ep (the same rank numbering:
  // row-major over the flattened index), used for groups that name a sub-axis.
  std::vector<MeshAxis> refined_;
  bool usesSubAxes(const std::vector<std::string> &names) const;
  DeviceMesh refined() const { return DeviceMesh(refined_); }
};

// "[tp]", "[dp_shard, tp]".
std::string axesString(const std::vector<std::string> &names);

} // namespace shardc::rt
