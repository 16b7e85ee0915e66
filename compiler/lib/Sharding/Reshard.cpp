// The reshard planner (shardc/Sharding/Reshard.h): a cheapest-path search over shardings.
#include "shardc/Sharding/Reshard.h"

#include "llvm/ADT/STLExtras.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <vector>

namespace shardc {

namespace {

using llvm::ArrayRef;
using llvm::SmallVector;
using llvm::StringRef;

// The reshard planner: a cheapest-path search over shardings. A state is a sharding; the
// moves are the collectives, each changing the innermost axes of one dim (or the Partial
// axes): all_reduce (Partial -> whole), reduce_scatter (Partial -> appended to a dim),
// all_to_all (a dim's inner axes moved to another dim), all_gather (a dim's inner axes
// dropped) and shard_slice (axes appended locally). A move costs the bytes each rank puts on
// the wire in a ring (all_reduce 2(G-1)/G of its buffer, reduce_scatter and all_to_all
// (G-1)/G, all_gather G-1 times its chunk, shard_slice nothing) plus one step; plans compare
// by bytes, then steps. Slices and scatters only extend a dim toward the wanted axes, so the
// search stays small (a few dims, a few axes).

struct ReshardPlanner {
  const MeshShape &mesh;
  ArrayRef<int64_t> shape;
  int64_t elementBytes;

  double localBytes(const Sharding &s) const {
    double n = (double)elementBytes;
    for (auto [d, axes] : llvm::enumerate(s.dims))
      n *= (double)shape[d] / (double)mesh.product(axes);
    return n;
  }
  bool divides(const Sharding &s, int64_t d, ArrayRef<std::string> more) const {
    SmallVector<std::string> all(s.dims[d].begin(), s.dims[d].end());
    all.append(more.begin(), more.end());
    return shape[d] % mesh.product(all) == 0;
  }
  static bool usesAxis(const Sharding &s, StringRef a) {
    return llvm::is_contained(s.partial, a) ||
           llvm::any_of(s.dims, [&](auto &axes) { return llvm::is_contained(axes, a); });
  }
  // `cur` followed by `more` is a prefix of `want`.
  static bool extendsToward(ArrayRef<std::string> cur, ArrayRef<std::string> more, ArrayRef<std::string> want) {
    if (cur.size() + more.size() > want.size())
      return false;
    return std::equal(cur.begin(), cur.end(), want.begin()) &&
           std::equal(more.begin(), more.end(), want.begin() + cur.size());
  }

  std::optional<SmallVector<ReshardStep>> plan(const Sharding &from, const Sharding &want) const {
    struct Node {
      Sharding s;
      double bytes = 0;
      int steps = 0;
      SmallVector<ReshardStep> moves;
    };
    auto key = [](const Sharding &s) {
      std::string k;
      for (auto &axes : s.dims) {
        for (auto &a : axes)
          k += a + ",";
        k += "|";
      }
      for (auto &a : s.partial)
        k += a + ",";
      // The reduction kind only matters while a reduction is pending (as in Sharding's ==):
      // an all_reduce of a max leaves a whole value like any other.
      return s.partial.empty() ? k : k + s.reduce;
    };
    auto better = [](const Node &a, const Node &b) {
      if (std::abs(a.bytes - b.bytes) > 1e-6)
        return a.bytes < b.bytes;
      return a.steps < b.steps;
    };
    std::string goal = key(want);
    std::map<std::string, Node> best;
    std::vector<Node> open{Node{from, 0, 0, {}}};
    best[key(from)] = open.front();
    for (int expanded = 0; !open.empty() && expanded < 4096; ++expanded) {
      auto it = std::min_element(open.begin(), open.end(), better);
      Node node = *it;
      open.erase(it);
      std::string k = key(node.s);
      if (better(best[k], node))
        continue; // stale
      if (k == goal)
        return node.moves;
      auto push = [&](Sharding next, double bytes, ReshardStep move) {
        Node n{std::move(next), node.bytes + bytes, node.steps + 1, node.moves};
        n.moves.push_back(std::move(move));
        std::string nk = key(n.s);
        auto found = best.find(nk);
        if (found != best.end() && !better(n, found->second))
          return;
        best[nk] = n;
        open.push_back(std::move(n));
      };
      const Sharding &s = node.s;
      double here = localBytes(s);
      bool partialWrong = s.hasPartial() && (s.partial != want.partial || s.reduce != want.reduce);
      if (partialWrong) {
        // Reduce over any non-empty subset of the Partial axes, the rest staying pending: HSDP's
        // gradient, Partial over dp_replicate and dp_shard and stored Shard(dp_shard), is
        // reduce-scattered over dp_shard and its shard all-reduced over dp_replicate (1x its
        // bytes on the wire, where one all-reduce over both costs 1.5x).
        const size_t n = s.partial.size();
        for (unsigned mask = 1; mask < (1u << n); ++mask) {
          SmallVector<std::string, 2> over, rest;
          for (size_t i = 0; i < n; ++i)
            ((mask >> i) & 1 ? over : rest).push_back(s.partial[i]);
          double g = (double)mesh.product(over);
          Sharding r = s;
          r.partial.assign(rest.begin(), rest.end());
          push(r, 2 * (g - 1) / g * here, {ReshardStep::AllReduce, over});
          for (size_t d = 0; d < s.dims.size(); ++d)
            if (extendsToward(s.dims[d], over, want.dims[d]) && divides(s, d, over)) {
              Sharding rs = r;
              rs.dims[d].append(over.begin(), over.end());
              push(rs, (g - 1) / g * here, {ReshardStep::ReduceScatter, over, (int64_t)d});
            }
        }
        continue; // a pending reduction is resolved before any dim moves
      }
      for (size_t d = 0; d < s.dims.size(); ++d) {
        const auto &axes = s.dims[d];
        // Drop the innermost k axes of dim d: all_gather, or all_to_all onto another dim.
        for (size_t k = 1; k <= axes.size(); ++k) {
          SmallVector<std::string, 2> inner(axes.end() - k, axes.end());
          double g = (double)mesh.product(inner);
          Sharding gathered = s;
          gathered.dims[d].resize(axes.size() - k);
          push(gathered, (g - 1) * here, {ReshardStep::AllGather, inner, (int64_t)d});
          for (size_t e = 0; e < s.dims.size(); ++e)
            if (e != d && extendsToward(s.dims[e], inner, want.dims[e]) && divides(gathered, e, inner)) {
              Sharding moved = gathered;
              moved.dims[e].append(inner.begin(), inner.end());
              push(moved, (g - 1) / g * here, {ReshardStep::AllToAll, inner, (int64_t)e, (int64_t)d});
            }
        }
        // Append the next wanted axes locally.
        if (extendsToward(axes, {}, want.dims[d]) && axes.size() < want.dims[d].size()) {
          for (size_t k = 1; k + axes.size() <= want.dims[d].size(); ++k) {
            SmallVector<std::string, 2> more(want.dims[d].begin() + axes.size(), want.dims[d].begin() + axes.size() + k);
            if (llvm::any_of(more, [&](const std::string &a) { return usesAxis(s, a); }) || !divides(s, d, more))
              continue;
            Sharding sliced = s;
            sliced.dims[d].append(more.begin(), more.end());
            push(sliced, 0, {ReshardStep::Slice, more, (int64_t)d});
          }
        }
      }
    }
    return std::nullopt;
  }
};

} // namespace

const ReshardStepSpelling &spellingOf(ReshardStep::Kind kind) {
  // Indexed by ReshardStep::Kind.
  static const ReshardStepSpelling kSpellings[] = {
      {"all_reduce", "", "", /*reduce=*/true},
      {"reduce_scatter", "dim", "", /*reduce=*/true},
      {"all_to_all", "split_dim", "concat_dim", /*reduce=*/false},
      {"all_gather", "dim", "", /*reduce=*/false},
      {"shard_slice", "dim", "", /*reduce=*/false},
  };
  return kSpellings[kind];
}

Sharding applyReshardStep(const Sharding &s, const ReshardStep &m) {
  Sharding cur = s;
  switch (m.kind) {
  case ReshardStep::AllReduce: // over the step's axes; the others stay pending
    llvm::erase_if(cur.partial, [&](const std::string &a) { return llvm::is_contained(m.axes, a); });
    break;
  case ReshardStep::ReduceScatter:
    llvm::erase_if(cur.partial, [&](const std::string &a) { return llvm::is_contained(m.axes, a); });
    cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
    break;
  case ReshardStep::AllToAll:
    cur.dims[m.fromDim].resize(cur.dims[m.fromDim].size() - m.axes.size());
    cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
    break;
  case ReshardStep::AllGather:
    cur.dims[m.dim].resize(cur.dims[m.dim].size() - m.axes.size());
    break;
  case ReshardStep::Slice:
    cur.dims[m.dim].append(m.axes.begin(), m.axes.end());
    break;
  }
  return cur;
}

llvm::Expected<SmallVector<ReshardStep>> planReshard(const Sharding &from, const Sharding &to,
                                                     const MeshShape &mesh, ArrayRef<int64_t> shape,
                                                     int64_t elementBytes) {
  Sharding goal = to;
  if (!from.hasPartial() && goal.hasPartial())
    goal.partial.clear(); // a reduction cannot be created; the whole value serves
  ReshardPlanner planner{mesh, shape, std::max<int64_t>(1, elementBytes)};
  std::optional<SmallVector<ReshardStep>> steps = planner.plan(from, goal);
  if (!steps)
    return llvm::createStringError("no collective sequence takes " + from.toDTensorString(mesh) + " to " +
                                   goal.toDTensorString(mesh) + " (shape does not divide)");
  return std::move(*steps);
}

} // namespace shardc
