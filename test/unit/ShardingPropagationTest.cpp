// One propagation step (shardc/Sharding/Propagation.h): the rules of real sc ops, parsed from
// small IR, applied to hand-written operand and result shardings: contraction -> Partial,
// broadcasting, reshape with compound factors, Partial flow and the source priorities
// (plan > batch > derived).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Sharding/Propagation.h"
#include "shardc/Sharding/ShardingRules.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"

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

ShardingSource src(Sharding s, int priority = kDerived, bool param = false) { return {std::move(s), priority, param}; }
// A result nobody asked anything of.
ShardingSource none(int64_t rank) { return {Sharding::replicated(rank), kNone, false}; }

MeshShape tp(int64_t n = 2) { return MeshShape{{{"tp", n}}}; }
MeshShape dpTp() { return MeshShape{{{"dp_shard", 2}, {"tp", 2}}}; }

class Propagation : public ::testing::Test {
protected:
  Propagation() { ctx.loadDialect<sc::ScDialect, mlir::func::FuncDialect>(); }

  // The rule of the single sc op in `body`, a function body over `args` ending in return.
  ShardingRule ruleOf(llvm::StringRef args, llvm::StringRef body) {
    std::string text = ("func.func @f(" + args + ") {\n" + body + "\n  return\n}\n").str();
    module = mlir::parseSourceString<mlir::ModuleOp>(text, &ctx);
    EXPECT_TRUE(module) << text;
    std::optional<ShardingRule> rule;
    if (module)
      module->walk([&](mlir::Operation *op) {
        if (!rule && op->getDialect() && op->getDialect()->getNamespace() == "sc")
          rule = getShardingRule(op);
      });
    EXPECT_TRUE(rule.has_value()) << text;
    return rule.value_or(ShardingRule{});
  }

  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
};

// x [4, 8] @ W [8, 6] (no bias): sharding the contraction over tp makes the result Partial.
TEST_F(Propagation, ContractionMakesPartial) {
  ShardingRule rule = ruleOf("%x: tensor<4x8xf32>, %w: tensor<8x6xf32>",
                             "%y = sc.linear %x, %w : (tensor<4x8xf32>, tensor<8x6xf32>) -> tensor<4x6xf32>");
  ShardingDecision d = decideShardings(rule, {src(S({{}, {"tp"}})), src(S({{"tp"}, {}}), kPlan, true)},
                                       {none(2)}, tp());
  ASSERT_EQ(d.results.size(), 1u);
  EXPECT_EQ(d.results[0], S({{}, {}}, {"tp"}, "sum"));
  EXPECT_EQ(d.operands[0], S({{}, {"tp"}}));
  EXPECT_EQ(d.operands[1], S({{"tp"}, {}}));
  EXPECT_EQ(d.priority, kPlan);
}

// Colwise: the weight's output features sharded; the result is sharded on its last dim and
// the activation is wanted whole.
TEST_F(Propagation, ColwiseWeightShardsTheOutputFeatures) {
  ShardingRule rule = ruleOf("%x: tensor<4x8xf32>, %w: tensor<6x8xf32>",
                             "%y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<6x8xf32>) -> tensor<4x6xf32>");
  ShardingDecision d = decideShardings(rule, {src(S({{}, {}}), kNone), src(S({{"tp"}, {}}), kPlan, true)},
                                       {none(2)}, tp());
  EXPECT_EQ(d.results[0], S({{}, {"tp"}}));
  EXPECT_EQ(d.operands[0], S({{}, {}}));
  EXPECT_EQ(d.operands[1], S({{"tp"}, {}}));
}

// With a bias the contraction stays whole (each partial sum would add the bias).
TEST_F(Propagation, BiasKeepsTheContractionWhole) {
  ShardingRule rule = ruleOf("%x: tensor<4x8xf32>, %w: tensor<8x6xf32>, %b: tensor<6xf32>",
                             "%y = sc.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x6xf32>, tensor<6xf32>) -> tensor<4x6xf32>");
  ShardingDecision d = decideShardings(
      rule, {src(S({{}, {"tp"}})), src(S({{"tp"}, {}}), kPlan, true), src(S({{}}), kNone)}, {none(2)}, tp());
  EXPECT_EQ(d.results[0], S({{}, {}}));
  EXPECT_FALSE(d.results[0].hasPartial());
  EXPECT_EQ(d.operands[0], S({{}, {}}));
  EXPECT_EQ(d.operands[1], S({{}, {}}));
}

// matmul [2, 4, 8] x [8, 16]: batch and contraction at once.
TEST_F(Propagation, MatmulBatchAndContraction) {
  ShardingRule rule = ruleOf("%a: tensor<2x4x8xf32>, %b: tensor<8x16xf32>",
                             "%y = sc.matmul %a, %b : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>");
  ShardingDecision d = decideShardings(rule, {src(S({{"dp_shard"}, {}, {"tp"}}), kBatch), src(S({{"tp"}, {}}))},
                                       {none(3)}, dpTp());
  EXPECT_EQ(d.results[0], S({{"dp_shard"}, {}, {}}, {"tp"}));
  EXPECT_EQ(d.operands[1], S({{"tp"}, {}}));
  EXPECT_EQ(d.priority, kBatch);
}

// add [4, 8] + [8]: the bias operand takes the sharding of the dim it broadcasts along; a
// size-1 dim takes none.
TEST_F(Propagation, ElementwiseBroadcast) {
  ShardingRule rule = ruleOf("%x: tensor<4x8xf32>, %b: tensor<8xf32>",
                             "%y = sc.add %x, %b : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>");
  ShardingDecision d = decideShardings(rule, {src(S({{}, {"tp"}})), src(S({{}}), kNone)}, {none(2)}, tp());
  EXPECT_EQ(d.results[0], S({{}, {"tp"}}));
  EXPECT_EQ(d.operands[1], S({{"tp"}}));

  ShardingRule one = ruleOf("%x: tensor<4x8xf32>, %b: tensor<1x8xf32>",
                            "%y = sc.mul %x, %b : (tensor<4x8xf32>, tensor<1x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision d1 = decideShardings(one, {src(S({{"dp_shard"}, {"tp"}})), src(S({{}, {}}), kNone)},
                                        {none(2)}, dpTp());
  EXPECT_EQ(d1.results[0], S({{"dp_shard"}, {"tp"}}));
  EXPECT_EQ(d1.operands[1], S({{}, {"tp"}}));
}

// reshape [2, 4, 8] -> [2, 4, 2, 4]: dim 2 is the compound factor 2 x 4. Its major factor
// (2) may carry tp = 2 onto the new dim 2; tp = 4 does not divide it and is dropped.
TEST_F(Propagation, ReshapeSplitsACompoundDim) {
  ShardingRule rule = ruleOf("%x: tensor<2x4x8xf32>",
                             "%y = sc.reshape %x : (tensor<2x4x8xf32>) -> tensor<2x4x2x4xf32>");
  ShardingDecision d = decideShardings(rule, {src(S({{}, {}, {"tp"}}))}, {none(4)}, tp());
  EXPECT_EQ(d.results[0], S({{}, {}, {"tp"}, {}}));
  ShardingDecision d4 = decideShardings(rule, {src(S({{}, {}, {"tp"}}))}, {none(4)}, tp(4));
  EXPECT_EQ(d4.results[0], S({{}, {}, {}, {}}));
  EXPECT_EQ(d4.operands[0], S({{}, {}, {}}));
}

// reshape [2, 4, 2, 4] -> [2, 4, 8]: a shard of the minor factor (4) would not be contiguous
// in the merged dim, so it stays whole; the major factor merges fine.
TEST_F(Propagation, ReshapeMergeKeepsOnlyTheMajorFactor) {
  ShardingRule rule = ruleOf("%x: tensor<2x4x2x4xf32>",
                             "%y = sc.reshape %x : (tensor<2x4x2x4xf32>) -> tensor<2x4x8xf32>");
  ShardingDecision minor = decideShardings(rule, {src(S({{}, {}, {}, {"tp"}}))}, {none(3)}, tp());
  EXPECT_EQ(minor.results[0], S({{}, {}, {}}));
  EXPECT_EQ(minor.operands[0], S({{}, {}, {}, {}}));
  ShardingDecision major = decideShardings(rule, {src(S({{}, {}, {"tp"}, {}}))}, {none(3)}, tp());
  EXPECT_EQ(major.results[0], S({{}, {}, {"tp"}}));
  // Partial flows through a reshape (Unary).
  ShardingDecision partial = decideShardings(rule, {src(S({{}, {}, {}, {}}, {"tp"}))}, {none(3)}, tp());
  EXPECT_EQ(partial.results[0], S({{}, {}, {}}, {"tp"}));
}

// add(Partial, Partial) stays Partial; add(Partial, Replicate) must reduce first (a rowwise
// bias); mul by a replicated value keeps the Partial.
TEST_F(Propagation, PartialFlow) {
  ShardingRule add = ruleOf("%x: tensor<4x8xf32>, %y: tensor<4x8xf32>",
                            "%z = sc.add %x, %y : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision both = decideShardings(add, {src(S({{}, {}}, {"tp"})), src(S({{}, {}}, {"tp"}))}, {none(2)}, tp());
  EXPECT_EQ(both.results[0], S({{}, {}}, {"tp"}));
  EXPECT_EQ(both.operands[0], S({{}, {}}, {"tp"}));
  ShardingDecision one = decideShardings(add, {src(S({{}, {}}, {"tp"})), src(S({{}, {}}), kNone)}, {none(2)}, tp());
  EXPECT_EQ(one.results[0], S({{}, {}}));
  EXPECT_EQ(one.operands[0], S({{}, {}})); // wanted reduced

  ShardingRule mul = ruleOf("%x: tensor<4x8xf32>, %y: tensor<4x8xf32>",
                            "%z = sc.mul %x, %y : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision scaled = decideShardings(mul, {src(S({{}, {}}, {"tp"})), src(S({{}, {}}), kNone)}, {none(2)}, tp());
  EXPECT_EQ(scaled.results[0], S({{}, {}}, {"tp"}));
  ShardingDecision squared = decideShardings(mul, {src(S({{}, {}}, {"tp"})), src(S({{}, {}}, {"tp"}))}, {none(2)}, tp());
  EXPECT_FALSE(squared.results[0].hasPartial());
  // A max reduction does not flow through an add.
  ShardingDecision maxes =
      decideShardings(add, {src(S({{}, {}}, {"tp"}, "max")), src(S({{}, {}}, {"tp"}, "max"))}, {none(2)}, tp());
  EXPECT_FALSE(maxes.results[0].hasPartial());
}

// Two operands want tp on different dims: the better source wins: plan over batch over
// derived, whatever the operand order.
TEST_F(Propagation, PrioritiesPlanBatchDerived) {
  ShardingRule add = ruleOf("%x: tensor<4x8xf32>, %y: tensor<4x8xf32>",
                            "%z = sc.add %x, %y : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision planWins = decideShardings(add, {src(S({{"tp"}, {}}), kBatch), src(S({{}, {"tp"}}), kPlan)},
                                              {none(2)}, tp());
  EXPECT_EQ(planWins.results[0], S({{}, {"tp"}}));
  EXPECT_EQ(planWins.operands[0], S({{}, {"tp"}}));
  EXPECT_EQ(planWins.priority, kPlan);

  ShardingDecision batchWins = decideShardings(add, {src(S({{}, {"tp"}}), kDerived), src(S({{"tp"}, {}}), kBatch)},
                                               {none(2)}, tp());
  EXPECT_EQ(batchWins.results[0], S({{"tp"}, {}}));
  EXPECT_EQ(batchWins.priority, kBatch);

  // At equal priority, a parameter first, then the most sharded.
  ShardingDecision paramWins = decideShardings(
      add, {src(S({{"tp"}, {}}), kPlan), src(S({{}, {"tp"}}), kPlan, /*param=*/true)}, {none(2)}, tp());
  EXPECT_EQ(paramWins.results[0], S({{}, {"tp"}}));
  ShardingDecision mostSharded = decideShardings(
      add, {src(S({{"tp"}, {}}), kDerived), src(S({{"dp_shard"}, {"tp"}}), kDerived)}, {none(2)}, dpTp());
  EXPECT_EQ(mostSharded.results[0], S({{"dp_shard"}, {"tp"}}));

  // Different axes from different sources combine.
  ShardingDecision both = decideShardings(add, {src(S({{"dp_shard"}, {}}), kBatch), src(S({{}, {"tp"}}), kPlan)},
                                          {none(2)}, dpTp());
  EXPECT_EQ(both.results[0], S({{"dp_shard"}, {"tp"}}));
  EXPECT_EQ(both.priority, kPlan);
}

// A result a user refined (backward propagation) is a source too, after the operands of
// better priority; its Partial is ignored.
TEST_F(Propagation, ResultsAreSources) {
  ShardingRule exp = ruleOf("%x: tensor<4x8xf32>", "%y = sc.exp %x : (tensor<4x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision asked = decideShardings(exp, {src(S({{}, {}}), kNone)}, {src(S({{}, {"tp"}}, {"tp"}), kDerived)}, tp());
  EXPECT_EQ(asked.operands[0], S({{}, {"tp"}}));
  EXPECT_EQ(asked.results[0], S({{}, {"tp"}}));
  EXPECT_EQ(asked.priority, kDerived);
  // A result without priority is no source.
  ShardingDecision ignored = decideShardings(exp, {src(S({{}, {}}), kNone)}, {{S({{}, {"tp"}}), kNone, false}}, tp());
  EXPECT_EQ(ignored.results[0], S({{}, {}}));
  EXPECT_EQ(ignored.priority, kNone);
}

// Axes that do not divide a factor are skipped; an axis is used once.
TEST_F(Propagation, DivisibilityAndAxisReuse) {
  ShardingRule exp = ruleOf("%x: tensor<3x8xf32>", "%y = sc.exp %x : (tensor<3x8xf32>) -> tensor<3x8xf32>");
  ShardingDecision undivided = decideShardings(exp, {src(S({{"tp"}, {}}))}, {none(2)}, tp());
  EXPECT_EQ(undivided.results[0], S({{}, {}}));
  ShardingRule add = ruleOf("%x: tensor<4x8xf32>, %y: tensor<4x8xf32>",
                            "%z = sc.add %x, %y : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>");
  ShardingDecision reuse = decideShardings(add, {src(S({{"tp"}, {}})), src(S({{}, {"tp"}}))}, {none(2)}, tp());
  EXPECT_EQ(reuse.results[0], S({{"tp"}, {}}));
  EXPECT_EQ(reuse.operands[1], S({{"tp"}, {}}));
}

// Normalisations keep their last dim whole.
TEST_F(Propagation, NormKeepsTheLastDimWhole) {
  ShardingRule norm = ruleOf("%x: tensor<4x8xf32>, %w: tensor<8xf32>",
                             "%y = sc.rms_norm %x, %w {epsilon = 1.0e-05 : f32} : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>");
  ShardingDecision d = decideShardings(norm, {src(S({{"dp_shard"}, {"tp"}})), src(S({{}}), kNone)}, {none(2)}, dpTp());
  EXPECT_EQ(d.results[0], S({{"dp_shard"}, {}}));
  EXPECT_EQ(d.operands[0], S({{"dp_shard"}, {}}));
}

// A layout constraint over some axes replaces their placement (and any pending reduction
// over them) and keeps every other axis where the operand has it.
TEST(ShardingConstraint, ConstrainedAxesMoveOthersStay) {
  // Sequence parallel after the embedding: tp onto the sequence, dp_shard stays on the batch.
  EXPECT_EQ(applyConstraint(S({{"dp_shard"}, {}, {}}), {"tp"}, S({{}, {"tp"}, {}})), S({{"dp_shard"}, {"tp"}, {}}));
  // A vocabulary-parallel embedding's partial sum: the constraint over tp ends it.
  EXPECT_EQ(applyConstraint(S({{}, {}, {}}, {"tp"}), {"tp"}, S({{}, {"tp"}, {}})), S({{}, {"tp"}, {}}));
  // Partial over another axis stays.
  EXPECT_EQ(applyConstraint(S({{}, {}}, {"dp_shard"}), {"tp"}, S({{}, {}})), S({{}, {}}, {"dp_shard"}));
  // Replicated over tp: tp leaves the dim it was on, behind cp.
  EXPECT_EQ(applyConstraint(S({{}, {"cp", "tp"}, {}}), {"tp"}, S({{}, {}, {}})), S({{}, {"cp"}, {}}));
  // Context parallel after sequence parallel: cp is appended (the inner axis).
  EXPECT_EQ(applyConstraint(S({{}, {"tp"}, {}}), {"cp"}, S({{}, {"cp"}, {}})), S({{}, {"tp", "cp"}, {}}));
}

} // namespace
} // namespace shardc
