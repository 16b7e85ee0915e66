// The reshard planner (shardc/Sharding/Reshard.h) on plain shardings: every transition kind,
// several axes on one dim, 2-D meshes, the cheapest-path choices of
// test/lit/sharding/reshard-transitions.mlir, and plans that cannot exist.
#include "shardc/Sharding/Reshard.h"

#include <gtest/gtest.h>

#include <initializer_list>
#include <string>
#include <vector>

namespace shardc {
namespace {

using Axes = std::vector<std::string>;

Sharding S(std::initializer_list<Axes> dims, Axes partial = {}, std::string reduce = "sum") {
  Sharding s;
  for (const Axes &d : dims)
    s.dims.emplace_back(d.begin(), d.end());
  s.partial.assign(partial.begin(), partial.end());
  s.reduce = std::move(reduce);
  return s;
}

MeshShape mesh1D(int64_t tp = 2) { return MeshShape{{{"tp", tp}}}; }
MeshShape mesh2D() { return MeshShape{{{"dp_shard", 2}, {"tp", 2}}}; }

// "all_gather[tp]@0", "all_to_all[tp]@1<-0", ... one string per step.
std::vector<std::string> describe(const llvm::SmallVector<ReshardStep> &steps) {
  std::vector<std::string> out;
  for (const ReshardStep &s : steps) {
    std::string d = reshardStepName(s.kind).str() + "[";
    for (size_t i = 0; i < s.axes.size(); ++i)
      d += (i ? "," : "") + s.axes[i];
    d += "]";
    if (s.kind != ReshardStep::AllReduce)
      d += "@" + std::to_string(s.dim);
    if (s.kind == ReshardStep::AllToAll)
      d += "<-" + std::to_string(s.fromDim);
    out.push_back(d);
  }
  return out;
}

// Plans from -> to, checks that applying the steps reaches `to` (its Partial dropped when
// `from` has none), and returns the steps described.
std::vector<std::string> plan(const Sharding &from, const Sharding &to, const MeshShape &mesh,
                              std::vector<int64_t> shape) {
  auto steps = planReshard(from, to, mesh, shape);
  if (!steps) {
    ADD_FAILURE() << llvm::toString(steps.takeError());
    return {};
  }
  Sharding cur = from;
  for (const ReshardStep &s : *steps)
    cur = applyReshardStep(cur, s);
  Sharding goal = to;
  if (!from.hasPartial())
    goal.partial.clear();
  EXPECT_EQ(cur, goal) << "the steps end at " << cur.toDTensorString(mesh) << ", not "
                       << goal.toDTensorString(mesh);
  return describe(*steps);
}

using V = std::vector<std::string>;

TEST(ReshardPlanner, SameShardingNeedsNothing) {
  EXPECT_EQ(plan(S({{"tp"}, {}}), S({{"tp"}, {}}), mesh1D(), {4, 8}), V{});
  EXPECT_EQ(plan(S({{}, {}}), S({{}, {}}), mesh1D(), {4, 8}), V{});
}

TEST(ReshardPlanner, ShardToReplicateIsAllGather) {
  EXPECT_EQ(plan(S({{"tp"}, {}}), S({{}, {}}), mesh1D(), {4, 8}), V{"all_gather[tp]@0"});
  EXPECT_EQ(plan(S({{}, {"tp"}}), S({{}, {}}), mesh1D(4), {4, 8}), V{"all_gather[tp]@1"});
}

TEST(ReshardPlanner, PartialToReplicateIsAllReduce) {
  EXPECT_EQ(plan(S({{}, {}}, {"tp"}), S({{}, {}}), mesh1D(), {4, 8}), V{"all_reduce[tp]"});
  // A max reduction too; the kind travels with the sharding, not the step.
  EXPECT_EQ(plan(S({{}, {}}, {"tp"}, "max"), S({{}, {}}), mesh1D(), {4, 8}), V{"all_reduce[tp]"});
}

TEST(ReshardPlanner, PartialToShardIsReduceScatter) {
  // reduce_scatter moves half what all_reduce + slice would: the cheaper path wins.
  EXPECT_EQ(plan(S({{}, {}}, {"tp"}), S({{}, {"tp"}}), mesh1D(), {4, 8}), V{"reduce_scatter[tp]@1"});
  EXPECT_EQ(plan(S({{}, {}}, {"tp"}), S({{"tp"}, {}}), mesh1D(), {4, 8}), V{"reduce_scatter[tp]@0"});
}

TEST(ReshardPlanner, PartialToShardOnAnotherAxisReducesThenSlices) {
  // Partial over tp, wanted split over dp_shard: a scatter could only add tp, so the
  // reduction is an all_reduce and the split a local slice.
  EXPECT_EQ(plan(S({{}, {}}, {"tp"}), S({{"dp_shard"}, {}}), mesh2D(), {4, 8}),
            (V{"all_reduce[tp]", "shard_slice[dp_shard]@0"}));
}

TEST(ReshardPlanner, HsdpGradientReduceScattersThenAllReducesTheShard) {
  // Partial over (dp_replicate, dp_shard), stored Shard(1: dp_shard): reduce-scatter over
  // dp_shard (B/2 on the wire) and all-reduce the half over dp_replicate (B/2), not one
  // all-reduce over both (1.5 B) and a slice.
  MeshShape hsdp{{{"dp_replicate", 2}, {"dp_shard", 2}}};
  EXPECT_EQ(plan(S({{}, {}}, {"dp_replicate", "dp_shard"}), S({{}, {"dp_shard"}}), hsdp, {4, 8}),
            (V{"reduce_scatter[dp_shard]@1", "all_reduce[dp_replicate]"}));
  // Wanted whole: one all-reduce over both stays cheapest.
  EXPECT_EQ(plan(S({{}, {}}, {"dp_replicate", "dp_shard"}), S({{}, {}}), hsdp, {4, 8}),
            V{"all_reduce[dp_replicate,dp_shard]"});
  // Wanted still Partial over one of them: reduce over the other only.
  EXPECT_EQ(plan(S({{}, {}}, {"dp_replicate", "dp_shard"}), S({{}, {}}, {"dp_shard"}), hsdp, {4, 8}),
            V{"all_reduce[dp_replicate]"});
}

TEST(ReshardPlanner, ReplicateToShardIsALocalSlice) {
  EXPECT_EQ(plan(S({{}, {}}), S({{}, {"tp"}}), mesh1D(), {4, 8}), V{"shard_slice[tp]@1"});
  // Both axes of a 2-D mesh on one dim in one slice (no communication, one step).
  EXPECT_EQ(plan(S({{}, {}}), S({{"dp_shard", "tp"}, {}}), mesh2D(), {8, 4}), V{"shard_slice[dp_shard,tp]@0"});
}

TEST(ReshardPlanner, ShardToOtherDimIsAllToAll) {
  // all_to_all moves (G-1)/G of the shard; all_gather + slice would move G-1 times it.
  EXPECT_EQ(plan(S({{"tp"}, {}}), S({{}, {"tp"}}), mesh2D(), {4, 8}), V{"all_to_all[tp]@1<-0"});
  EXPECT_EQ(plan(S({{}, {"tp"}}), S({{"tp"}, {}}), mesh1D(4), {8, 8}), V{"all_to_all[tp]@0<-1"});
}

TEST(ReshardPlanner, PartialAndShardOnTwoAxes) {
  // reshard-transitions.mlir @two_axes: the reduction first, then the gather.
  EXPECT_EQ(plan(S({{"dp_shard"}, {}}, {"tp"}), S({{}, {}}), mesh2D(), {4, 8}),
            (V{"all_reduce[tp]", "all_gather[dp_shard]@0"}));
}

TEST(ReshardPlanner, GatherOnlyTheInnerAxis) {
  // @inner_axis: the outer axis of a two-axis dim stays.
  EXPECT_EQ(plan(S({{"dp_shard", "tp"}, {}}), S({{"dp_shard"}, {}}), mesh2D(), {8, 4}), V{"all_gather[tp]@0"});
}

TEST(ReshardPlanner, GatherBothAxesInOneStep) {
  // Gathering (dp_shard, tp) at once moves as many bytes as two gathers; fewer steps win.
  EXPECT_EQ(plan(S({{"dp_shard", "tp"}, {}}), S({{}, {}}), mesh2D(), {8, 4}), V{"all_gather[dp_shard,tp]@0"});
}

TEST(ReshardPlanner, RefineAnInnerAxisLocally) {
  // @refine_inner: adding an inner axis is a slice, not a gather and a re-slice.
  EXPECT_EQ(plan(S({{"tp"}, {}}), S({{"tp", "dp_shard"}, {}}), mesh2D(), {8, 4}), V{"shard_slice[dp_shard]@0"});
}

TEST(ReshardPlanner, MoveTheInnerAxisToAnotherDim) {
  // @move_inner: one all_to_all; the outer axis stays.
  EXPECT_EQ(plan(S({{"dp_shard", "tp"}, {}}), S({{"dp_shard"}, {"tp"}}), mesh2D(), {8, 4}),
            V{"all_to_all[tp]@1<-0"});
}

TEST(ReshardPlanner, ScatterOntoAnAlreadyShardedDim) {
  // @scatter_inner: reduce_scatter appends tp after dp_shard.
  EXPECT_EQ(plan(S({{"dp_shard"}, {}}, {"tp"}), S({{"dp_shard", "tp"}, {}}), mesh2D(), {8, 4}),
            V{"reduce_scatter[tp]@0"});
}

TEST(ReshardPlanner, SwapAxesOfTwoDims) {
  // dp_shard on dim 0 and tp on dim 1, wanted the other way round on a 2-D mesh: some
  // sequence exists and ends there; it never gathers the whole tensor on every axis.
  auto steps = plan(S({{"dp_shard"}, {"tp"}}), S({{"tp"}, {"dp_shard"}}), mesh2D(), {8, 8});
  EXPECT_FALSE(steps.empty());
  EXPECT_LE(steps.size(), 4u);
}

TEST(ReshardPlanner, APartialThatCannotBeCreatedIsDropped) {
  // `to` asks for Partial but `from` is whole: the whole value serves.
  EXPECT_EQ(plan(S({{}, {}}), S({{}, {}}, {"tp"}), mesh1D(), {4, 8}), V{});
  EXPECT_EQ(plan(S({{"tp"}, {}}), S({{}, {}}, {"tp"}), mesh1D(), {4, 8}), V{"all_gather[tp]@0"});
}

TEST(ReshardPlanner, APendingMaxCannotBecomeAPendingSum) {
  // Reducing a max leaves a whole value, which is no pending sum.
  auto steps = planReshard(S({{}, {}}, {"tp"}, "max"), S({{}, {}}, {"tp"}, "sum"), mesh1D(), {4, 8});
  ASSERT_FALSE(steps);
  EXPECT_EQ(llvm::toString(steps.takeError()),
            "no collective sequence takes [tp: Partial(max)] to [tp: Partial(sum)] (shape does not divide)");
}

TEST(ReshardPlanner, UndividedShapeIsAnError) {
  auto steps = planReshard(S({{}, {}}), S({{"tp"}, {}}), mesh1D(), {3, 8});
  ASSERT_FALSE(steps);
  std::string msg = llvm::toString(steps.takeError());
  EXPECT_EQ(msg, "no collective sequence takes [tp: Replicate] to [tp: Shard(0)] (shape does not divide)");

  // Partial -> Shard(0) with dim 0 undivided: neither a scatter nor a slice reaches it.
  auto partial = planReshard(S({{}, {}}, {"tp"}), S({{"tp"}, {}}), mesh1D(4), {6, 8});
  ASSERT_FALSE(partial);
  EXPECT_NE(llvm::toString(partial.takeError()).find("no collective sequence takes"), std::string::npos);

  // Two axes on one dim where only the first divides.
  auto twoAxes = planReshard(S({{}, {}}), S({{"dp_shard", "tp"}, {}}), mesh2D(), {2, 8});
  ASSERT_FALSE(twoAxes);
  llvm::consumeError(twoAxes.takeError());
}

TEST(ReshardPlanner, ApplyStepFollowsEachKind) {
  Sharding s = S({{"dp_shard", "tp"}, {}}, {});
  EXPECT_EQ(applyReshardStep(s, {ReshardStep::AllGather, {"tp"}, 0}), S({{"dp_shard"}, {}}));
  EXPECT_EQ(applyReshardStep(s, {ReshardStep::AllToAll, {"tp"}, 1, 0}), S({{"dp_shard"}, {"tp"}}));
  EXPECT_EQ(applyReshardStep(S({{}, {}}), {ReshardStep::Slice, {"tp"}, 1}), S({{}, {"tp"}}));
  EXPECT_EQ(applyReshardStep(S({{}, {}}, {"tp"}), {ReshardStep::AllReduce, {"tp"}}), S({{}, {}}));
  EXPECT_EQ(applyReshardStep(S({{}, {}}, {"tp"}), {ReshardStep::ReduceScatter, {"tp"}, 0}), S({{"tp"}, {}}));
}

TEST(ReshardPlanner, StepNames) {
  EXPECT_EQ(reshardStepName(ReshardStep::AllReduce), "all_reduce");
  EXPECT_EQ(reshardStepName(ReshardStep::ReduceScatter), "reduce_scatter");
  EXPECT_EQ(reshardStepName(ReshardStep::AllToAll), "all_to_all");
  EXPECT_EQ(reshardStepName(ReshardStep::AllGather), "all_gather");
  EXPECT_EQ(reshardStepName(ReshardStep::Slice), "shard_slice");
}

} // namespace
} // namespace shardc
