// Rank <-> coordinates arithmetic of the device mesh; the one definition of groups and group
// indices that the executor, the communicators and shard specs all use.
#include "shardc/comm/DeviceMesh.h"

namespace shardc::rt {

int64_t DeviceMesh::worldSize() const {
  int64_t n = 1;
  for (const MeshAxis &a : axes_)
    n *= a.size;
  return n;
}

std::string DeviceMesh::setExpertParallel(int64_t ep) {
  const int64_t fsdp = axisSize("dp_shard") * axisSize("cp");
  if (ep < 1 || fsdp % ep != 0)
    return "ep = " + std::to_string(ep) + " does not divide dp_shard*cp = " + std::to_string(fsdp);
  ep_ = ep;
  refined_.clear();
  if (ep == 1)
    return "";
  bool placed = false;
  for (const MeshAxis &a : axes_) {
    if (a.name != "dp_shard" && a.name != "cp") {
      refined_.push_back(a);
    } else if (!placed) {
      refined_.push_back({"ep_shard", fsdp / ep});
      refined_.push_back({"ep", ep});
      placed = true;
    }
  }
  if (!placed)
    return "ep needs a dp_shard axis";
  return "";
}

bool DeviceMesh::usesSubAxes(const std::vector<std::string> &names) const {
  if (ep_ <= 1)
    return false;
  for (const std::string &n : names)
    if (n == "ep" || n == "ep_shard")
      return true;
  return false;
}

int64_t DeviceMesh::axisSize(std::string_view name) const {
  if (ep_ > 1 && (name == "ep" || name == "ep_shard"))
    return name == "ep" ? ep_ : axisSize("dp_shard") * axisSize("cp") / ep_;
  int i = axisIndex(name);
  return i < 0 ? 1 : axes_[static_cast<size_t>(i)].size;
}

int DeviceMesh::axisIndex(std::string_view name) const {
  for (size_t i = 0; i < axes_.size(); ++i)
    if (axes_[i].name == name)
      return static_cast<int>(i);
  return -1;
}

std::string DeviceMesh::checkAxes(const std::vector<std::string> &names) const {
  if (usesSubAxes(names)) {
    for (const std::string &n : names)
      if (n == "dp_shard" || n == "cp")
        return "mesh axis '" + n + "' cannot be grouped with the ep sub-axes that split it";
    return refined().checkAxes(names);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (axisIndex(names[i]) < 0) {
      std::string known;
      for (const MeshAxis &a : axes_)
        known += (known.empty() ? "" : ", ") + a.name;
      return "unknown mesh axis '" + names[i] + "' (the mesh has " +
             (known.empty() ? std::string("no axes") : known) + ")";
    }
    for (size_t j = 0; j < i; ++j)
      if (names[j] == names[i])
        return "mesh axis '" + names[i] + "' is listed twice";
  }
  return "";
}

std::vector<int64_t> DeviceMesh::coords(int64_t rank) const {
  std::vector<int64_t> c(axes_.size(), 0);
  for (size_t i = axes_.size(); i-- > 0;) {
    c[i] = rank % axes_[i].size;
    rank /= axes_[i].size;
  }
  return c;
}

int64_t DeviceMesh::rankOf(const std::vector<int64_t> &coords) const {
  int64_t r = 0;
  for (size_t i = 0; i < axes_.size(); ++i)
    r = r * axes_[i].size + coords[i];
  return r;
}

int64_t DeviceMesh::groupSize(const std::vector<std::string> &names) const {
  if (usesSubAxes(names))
    return refined().groupSize(names);
  int64_t n = 1;
  for (const std::string &name : names)
    n *= axes_[static_cast<size_t>(axisIndex(name))].size;
  return n;
}

std::vector<int64_t> DeviceMesh::groupRanks(int64_t rank,
                                            const std::vector<std::string> &names) const {
  if (usesSubAxes(names))
    return refined().groupRanks(rank, names);
  std::vector<int64_t> base = coords(rank);
  int64_t n = groupSize(names);
  std::vector<int64_t> ranks;
  ranks.reserve(static_cast<size_t>(n));
  for (int64_t index = 0; index < n; ++index) {
    std::vector<int64_t> c = base;
    int64_t rest = index;
    for (size_t i = names.size(); i-- > 0;) {
      size_t axis = static_cast<size_t>(axisIndex(names[i]));
      c[axis] = rest % axes_[axis].size;
      rest /= axes_[axis].size;
    }
    ranks.push_back(rankOf(c));
  }
  return ranks;
}

int64_t DeviceMesh::groupIndex(int64_t rank, const std::vector<std::string> &names) const {
  if (usesSubAxes(names))
    return refined().groupIndex(rank, names);
  std::vector<int64_t> c = coords(rank);
  int64_t index = 0;
  for (const std::string &name : names) {
    size_t axis = static_cast<size_t>(axisIndex(name));
    index = index * axes_[axis].size + c[axis];
  }
  return index;
}

std::string DeviceMesh::describeRank(int64_t rank) const {
  std::vector<int64_t> c = coords(rank);
  std::string s;
  for (size_t i = 0; i < axes_.size(); ++i)
    if (axes_[i].size > 1)
      s += (s.empty() ? "" : " ") + axes_[i].name + "=" + std::to_string(c[i]);
  return s;
}

std::string DeviceMesh::describe() const {
  std::string s;
  for (const MeshAxis &a : axes_)
    s += (s.empty() ? "" : " ") + a.name + "=" + std::to_string(a.size);
  if (ep_ > 1)
    s += " (ep=" + std::to_string(ep_) + " ep_shard=" + std::to_string(axisSize("ep_shard")) + ")";
  return s;
}

std::string axesString(const std::vector<std::string> &names) {
  std::string s = "[";
  for (size_t i = 0; i < names.size(); ++i)
    s += (i ? ", " : "") + names[i];
  return s + "]";
}

} // namespace shardc::rt
