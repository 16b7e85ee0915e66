// The plan API (shardc/Plan/Plan.h) without a model: YAML text, module paths and the sc.plan
// attribute given directly. Every error message of the parser and the validators is here at
// least once, with the file:line:col it points at.
#include "shardc/Plan/Plan.h"

#include "shardc/Dialect/ScDialect.h"

#include "mlir/AsmParser/AsmParser.h"
#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/MLIRContext.h"
#include "mlir/Parser/Parser.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/raw_ostream.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace shardc {
namespace {

// The error of parsing `text` as "p.yaml" ("" and a failure when it parses).
std::string parseError(llvm::StringRef text, std::optional<int64_t> worldSize = std::nullopt) {
  llvm::Expected<Plan> plan = parsePlanText(text, "p.yaml", worldSize);
  if (plan) {
    ADD_FAILURE() << "parsed without error:\n" << text.str();
    return "";
  }
  return llvm::toString(plan.takeError());
}

Plan parse(llvm::StringRef text, std::optional<int64_t> worldSize = std::nullopt) {
  llvm::Expected<Plan> plan = parsePlanText(text, "p.yaml", worldSize);
  if (!plan) {
    ADD_FAILURE() << llvm::toString(plan.takeError()) << "\n" << text.str();
    return Plan();
  }
  return std::move(*plan);
}

template <typename T> std::string errorOf(llvm::Expected<T> e) {
  if (e) {
    ADD_FAILURE() << "no error";
    return "";
  }
  return llvm::toString(e.takeError());
}
std::string errorOf(llvm::Error e) { return e ? llvm::toString(std::move(e)) : std::string("(success)"); }

//===-- keys, with "did you mean" ------------------------------------------===//

TEST(PlanParse, UnknownKeys) {
  EXPECT_EQ(parseError("mesh: {tp: 2}\ntp_paln: auto\n"),
            "p.yaml:2:1: unknown key 'tp_paln' in the plan; did you mean 'tp_plan'?");
  EXPECT_EQ(parseError("mesh: {tp: 2}\nsequence_paralel: true\n"),
            "p.yaml:2:1: unknown key 'sequence_paralel' in the plan; did you mean 'sequence_parallel'?");
  EXPECT_EQ(parseError("mesh:\n  tp: 2\n  dp_shrad: 2\n"),
            "p.yaml:3:3: unknown key 'dp_shrad' in mesh; did you mean 'dp_shard'?");
  EXPECT_EQ(parseError("mp_policy: {param_dtype: bf16, reduce_dtyp: fp32}\n"),
            "p.yaml:1:32: unknown key 'reduce_dtyp' in mp_policy; did you mean 'reduce_dtype'?");
}

TEST(PlanParse, UnsupportedParallelisms) {
  EXPECT_EQ(parseError("mesh: {dp_shard: 2, pp: 2, tp: 2}\n"), "p.yaml:1:21: pipeline parallelism (pp) is not supported yet");
  EXPECT_EQ(parseError("pp_size: 2\n"), "p.yaml:1:1: pipeline parallelism (pp) is not supported yet");
  EXPECT_EQ(parseError("mesh: {etp: 2}\n"),
            "p.yaml:1:8: expert tensor parallelism is not a mesh axis (etp): it splits the experts over tp with "
            "expert_tp: true");
  EXPECT_EQ(parseError("mesh: {moe: 2}\n"),
            "p.yaml:1:8: expert parallelism is the mesh axis ep (carved out of dp_shard x cp), not moe");
}

// Expert parallelism: `ep` (or NeMo's ep_size) is carved out of dp_shard x cp.
TEST(PlanParse, ExpertParallel) {
  auto plan = parsePlanText("mesh: {dp_shard: 4, tp: 2, ep: 2}\n", "p.yaml");
  ASSERT_TRUE(static_cast<bool>(plan)) << llvm::toString(plan.takeError());
  EXPECT_EQ(plan->mesh.ep, 2);
  EXPECT_EQ(plan->mesh.worldSize(), 8);
  EXPECT_EQ(plan->mesh.size("ep"), 2);
  EXPECT_EQ(plan->mesh.size("ep_shard"), 2);
  EXPECT_EQ(plan->mesh.str(), "dp_replicate=1,dp_shard=4,cp=1,tp=2,ep=2");
  auto nemo = parsePlanText("dp_size: 2\ncp_size: 2\nep_size: 4\n", "p.yaml", 4);
  ASSERT_TRUE(static_cast<bool>(nemo)) << llvm::toString(nemo.takeError());
  EXPECT_EQ(nemo->mesh.size("ep"), 4);
  EXPECT_EQ(nemo->mesh.size("ep_shard"), 1);
  EXPECT_EQ(parseError("mesh: {dp_shard: 4, ep: 3}\n"),
            "p.yaml:1:1: ep = 3 does not divide dp_shard*cp = 4 (the expert-parallel ranks are carved out of "
            "dp_shard x cp)");
  EXPECT_EQ(parseError("mesh: {ep: 2}\nep_size: 2\n"), "p.yaml:2:1: ep_size and mesh.ep both given; keep one");
  EXPECT_EQ(parseError("mesh: {ep: 0}\n"), "p.yaml:1:8: mesh axis ep has size 0; sizes are positive");
  // The sc.plan attribute and the printed YAML keep it.
  mlir::MLIRContext ctx;
  auto back = planFromAttr(planToAttr(&ctx, *plan));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(back->mesh.ep, 2);
  EXPECT_NE(printPlanYaml(*plan, {}).find("tp: 2, ep: 2}"), std::string::npos);
  Plan p = defaultPlan();
  ASSERT_FALSE(static_cast<bool>(applyMeshOverride(p, "dp_shard=4,ep=2")));
  EXPECT_EQ(p.mesh.ep, 2);
}

TEST(PlanParse, ExpertTp) {
  EXPECT_FALSE(parse("mesh: {tp: 2}\n").expertTp);
  Plan p = parse("mesh: {tp: 2}\nexpert_tp: true\n");
  EXPECT_TRUE(p.expertTp);
  EXPECT_NE(printPlanYaml(p, {}).find("expert_tp: true"), std::string::npos);
  EXPECT_TRUE(parse(printPlanYaml(p, {})).expertTp);
  mlir::MLIRContext ctx;
  auto back = planFromAttr(planToAttr(&ctx, p));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  EXPECT_TRUE(back->expertTp);
  EXPECT_EQ(parseError("expert_tp: 3\n").find("p.yaml:1:12:"), 0u);
}

//===-- values -------------------------------------------------------------===//

TEST(PlanParse, UnknownStyleDtypeMode) {
  EXPECT_EQ(parseError("tp_plan:\n  \"layers.*.self_attn.q_proj\": colwize\n"),
            "p.yaml:2:32: unknown style 'colwize'; did you mean 'colwise'? (styles: colwise, rowwise, colwise_rep, "
            "rowwise_rep, packed_colwise, embedding_rowwise, sequence_parallel, replicate)");
  EXPECT_EQ(parseError("mp_policy: {param_dtype: bf32}\n"),
            "p.yaml:1:26: unknown dtype 'bf32'; did you mean 'bf16'? (dtypes: bf16, fp16, fp32)");
  EXPECT_EQ(parseError("mode: training\n"),
            "p.yaml:1:7: unknown mode 'training'; did you mean 'train'? (modes: inference, train)");
  EXPECT_EQ(parseError("sequence_parallel: maybe\n"), "p.yaml:1:20: invalid boolean");
}

TEST(PlanParse, Loss) {
  EXPECT_FALSE(parse("mode: train\n").lossLabelsInput);
  EXPECT_FALSE(parse("mode: train\nloss: {labels: input_ids}\n").lossLabelsInput);
  EXPECT_TRUE(parse("mode: train\nloss: {labels: input}\n").lossLabelsInput);
  EXPECT_EQ(parseError("mode: train\nloss: {labels: inputs}\n"),
            "p.yaml:2:1: unknown loss labels 'inputs'; did you mean 'input'? (labels: input_ids, the shifted token "
            "ids; input, a graph input `labels` [B, S])");
  EXPECT_EQ(parseError("loss: {labels: input}\n"), "p.yaml:1:1: loss: needs mode: train");
  EXPECT_EQ(parseError("mode: train\nloss: {label: input}\n"),
            "p.yaml:2:8: unknown key 'label' in loss; did you mean 'labels'?");
}

TEST(PlanParse, CastForwardInputsFalse) {
  EXPECT_EQ(parseError("mp_policy: {cast_forward_inputs: false}\n"),
            "p.yaml:1:13: cast_forward_inputs: false is not supported (inputs are always cast to param_dtype)");
  EXPECT_EQ(parse("mp_policy: {cast_forward_inputs: true, param_dtype: torch.float16}\n").mp.paramDtype, DType::FP16);
}

TEST(PlanParse, TpPlanShape) {
  EXPECT_EQ(parseError("tp_plan: autox\n"),
            "p.yaml:1:10: tp_plan is 'autox'; expected 'auto' or a map from module glob to style");
  EXPECT_EQ(parseError("custom_tp_plan: none\n"),
            "p.yaml:1:17: custom_tp_plan is 'none'; expected 'auto' or a map from module glob to style");
  EXPECT_EQ(parseError("tp_plan: [colwise]\n"), "p.yaml:1:1: tp_plan must be 'auto' or a map from module glob to style");
  EXPECT_EQ(parseError("tp_plan: {q_proj: colwise}\ncustom_tp_plan: {k_proj: colwise}\n"),
            "p.yaml:2:1: tp_plan and custom_tp_plan (its NeMo name) both given; keep one");
}

TEST(PlanParse, GlobSyntax) {
  EXPECT_EQ(parseError("tp_plan:\n  \"layers..q_proj\": colwise\n"),
            "p.yaml:2:3: module glob 'layers..q_proj' has an empty component");
  EXPECT_EQ(parseError("tp_plan:\n  q_proj: colwise\n  \"layers/0\": rowwise\n"),
            "p.yaml:3:3: module glob 'layers/0' has '/'; globs are module paths with '*' for a component");
  EXPECT_EQ(parseError("tp_plan:\n  \"\": colwise\n"), "p.yaml:2:3: empty module glob");
  EXPECT_EQ(parseError("tp_plan:\n  q_proj: colwise\n  q_proj: rowwise\n"), "p.yaml:3:3: duplicated mapping key 'q_proj'");
}

TEST(PlanParse, UseHfTpPlan) {
  EXPECT_EQ(parseError("tp_plan: {q_proj: colwise}\nuse_hf_tp_plan: true\n"),
            "p.yaml:2:1: use_hf_tp_plan: true contradicts the tp_plan map; keep one");
  EXPECT_EQ(parseError("use_hf_tp_plan: false\n"),
            "p.yaml:1:1: use_hf_tp_plan: false needs a tp_plan map (or tp_plan: auto)");
  EXPECT_TRUE(parse("use_hf_tp_plan: true\n").tpAuto);
}

TEST(PlanParse, Offload) {
  EXPECT_EQ(parseError("offload_policy: {pin_memory: true}\n"),
            "p.yaml:1:1: offload_policy is cpu (FSDP2's CPUOffloadPolicy) or null");
  EXPECT_EQ(parseError("offload_policy: gpu\n"),
            "p.yaml:1:1: offload_policy is cpu (FSDP2's CPUOffloadPolicy) or null, not 'gpu'");
  EXPECT_EQ(parseError("offload_policy: cpu\n"),
            "p.yaml:1:1: offload_policy: cpu needs mode: train and an optimizer (it keeps the masters, gradients "
            "and optimizer state in host memory)");
  EXPECT_EQ(parseError("mode: train\noffload_policy: cpu\n"),
            "p.yaml:2:1: offload_policy: cpu needs mode: train and an optimizer (it keeps the masters, gradients "
            "and optimizer state in host memory)");
  EXPECT_EQ(parse("offload_policy: null\n").mesh.worldSize(), 1);
  EXPECT_EQ(parse("offload_policy: ~\n").mesh.worldSize(), 1);
  EXPECT_FALSE(parse("offload_policy: null\n").cpuOffload);
  Plan p = parse("mode: train\noptimizer: {name: adamw}\noffload_policy: cpu\n");
  EXPECT_TRUE(p.cpuOffload);
  // The key survives the plan's printing and its IR attribute.
  EXPECT_TRUE(parse(printPlanYaml(p, {})).cpuOffload);
  mlir::MLIRContext ctx;
  auto back = planFromAttr(planToAttr(&ctx, p));
  ASSERT_TRUE(bool(back));
  EXPECT_TRUE(back->cpuOffload);
}

TEST(PlanParse, OneDocument) {
  EXPECT_EQ(parseError("mesh: {tp: 2}\n---\nmesh: {tp: 4}\n"),
            "p.yaml:3:1: a plan is one YAML document; this file has several (remove the '---' separators or "
            "split the file)");
  EXPECT_EQ(parse("---\nmesh: {tp: 2}\n").mesh.worldSize(), 2);
  EXPECT_EQ(parse("mesh: {tp: 2}\n---\n").mesh.worldSize(), 2);
}

TEST(PlanParse, YamlSyntaxAndShape) {
  EXPECT_EQ(parseError("mesh: {tp: 2\n"), "p.yaml:1:13: Unexpected token. Expected Key, Flow Entry, or Flow Mapping End.");
  EXPECT_EQ(parseError("mesh: [1, 2]\n"), "p.yaml:1:8: not a mapping");
  EXPECT_EQ(parseError("mesh: {tp: two}\n"), "p.yaml:1:12: invalid number");
}

//===-- the mesh -----------------------------------------------------------===//

TEST(PlanMesh, AxisSizes) {
  EXPECT_EQ(parseError("mesh: {tp: 0}\n"), "p.yaml:1:8: mesh axis tp has size 0; sizes are positive (dp_shard may be -1)");
  EXPECT_EQ(parseError("mesh: {tp: -1}\n"),
            "p.yaml:1:8: mesh axis tp is -1; only dp_shard may be -1 (inferred from the world size)");
  EXPECT_EQ(parseError("mesh: {cp: 2000000}\n"),
            "p.yaml:1:8: mesh axis cp has size 2000000; sizes are positive (dp_shard may be -1)");
  EXPECT_EQ(parseError("tp_size: -3\n"), "p.yaml:1:1: mesh axis tp has size -3; sizes are positive (dp_shard may be -1)");
  EXPECT_EQ(parseError("tp_size: 2\nmesh: {tp: 2}\n"), "p.yaml:1:1: tp_size and mesh.tp both given; keep one");
  EXPECT_EQ(parseError("dp_size: 2\nmesh: {dp_shard: 2}\n"), "p.yaml:1:1: dp_size and mesh.dp_shard both given; keep one");
}

TEST(PlanMesh, NemoAliases) {
  Plan p = parse("tp_size: 2\ndp_size: 2\ncp_size: 1\ndp_replicate_size: 1\n");
  EXPECT_EQ(p.mesh.str(), "dp_replicate=1,dp_shard=2,cp=1,tp=2");
}

TEST(PlanMesh, WorldSize) {
  EXPECT_EQ(parseError("mesh: {dp_shard: -1, tp: 2}\n", 7),
            "p.yaml:1:1: cannot infer dp_shard: world size 7 is not divisible by dp_replicate*cp*tp = 2");
  EXPECT_EQ(parseError("mesh: {dp_shard: 2, tp: 2}\n", 8),
            "p.yaml:1:1: mesh dp_replicate=1,dp_shard=2,cp=1,tp=2 has 4 devices but the world size is 8");
  EXPECT_EQ(parseError("mesh: {tp: 2}\n", 0), "p.yaml:1:1: world size 0 is out of range");
  // No `mesh:` key: the error points at the file.
  EXPECT_EQ(parseError("tp_size: 2\n", 4), "p.yaml: mesh dp_replicate=1,dp_shard=1,cp=1,tp=2 has 2 devices but the world size is 4");
  EXPECT_EQ(parse("mesh: {dp_shard: -1, tp: 2}\n", 8).mesh.str(), "dp_replicate=1,dp_shard=4,cp=1,tp=2");
  // Without a world size, dp_shard may stay -1.
  EXPECT_FALSE(parse("mesh: {dp_shard: -1}\n").mesh.isResolved());
}

TEST(PlanMesh, Override) {
  Plan p = defaultPlan();
  EXPECT_EQ(errorOf(applyMeshOverride(p, "")), "--mesh: empty; expected e.g. tp=2,dp_shard=2");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "tp=2,pp=2")), "--mesh: pipeline parallelism (pp) is not supported yet");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "ep=0")), "--mesh: 'ep=0' is not ep=<positive integer>");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "tpp=2")),
            "--mesh: unknown mesh axis 'tpp'; did you mean 'tp'? (axes: dp_replicate, dp_shard, cp, tp)");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "tp=two")), "--mesh: 'tp=two' is not axis=integer");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "tp")), "--mesh: 'tp' is not axis=integer");
  EXPECT_EQ(errorOf(applyMeshOverride(p, "cp=-1")),
            "--mesh: mesh axis cp is -1; only dp_shard may be -1 (inferred from the world size)");
  Plan q = defaultPlan();
  EXPECT_EQ(errorOf(applyMeshOverride(q, " dp_shard = 4 ,tp=2")), "(success)");
  EXPECT_EQ(q.mesh.str(), "dp_replicate=1,dp_shard=4,cp=1,tp=2");
}

TEST(PlanMesh, Resolve) {
  Mesh m;
  EXPECT_EQ(errorOf(resolveMesh(m, 2)), "mesh dp_replicate=1,dp_shard=1,cp=1,tp=1 has 1 devices but the world size is 2");
  Mesh bad;
  bad.axes[3].second = 0;
  EXPECT_EQ(errorOf(resolveMesh(bad, std::nullopt)), "mesh axis tp has size 0; sizes are positive (dp_shard may be -1)");
  Mesh infer;
  infer.axes[1].second = -1;
  EXPECT_EQ(errorOf(resolveMesh(infer, std::nullopt)), "mesh dp_shard: -1 needs the world size (--nproc) to be inferred");
  EXPECT_EQ(errorOf(resolveMesh(infer, 1 << 21)), "world size 2097152 is out of range");
  EXPECT_EQ(errorOf(resolveMesh(infer, 6)), "(success)");
  EXPECT_EQ(infer.size("dp_shard"), 6);
}

TEST(PlanParse, MissingFile) {
  std::string e = errorOf(parsePlanFile("/nonexistent/shardc-plan.yaml", std::nullopt));
  EXPECT_EQ(e.rfind("cannot read plan /nonexistent/shardc-plan.yaml: ", 0), 0u) << e;
}

//===-- the TP plan against module paths ------------------------------------===//

const std::vector<std::string> kLlamaPaths = {
    "m.model.embed_tokens",           "m.model.layers.0.self_attn.q_proj", "m.model.layers.0.self_attn.k_proj",
    "m.model.layers.0.mlp.down_proj", "m.model.layers.1.self_attn.q_proj", "m.model.layers.1.self_attn.k_proj",
    "m.model.layers.1.mlp.down_proj", "m.lm_head"};

TEST(PlanResolve, GlobMatchesNothing) {
  Plan p = parse("mesh: {tp: 2}\ntp_plan:\n  \"layers.*.self_atn.q_proj\": colwise\n");
  EXPECT_EQ(errorOf(resolveTpPlan(p, kLlamaPaths)),
            "p.yaml:3:3: glob 'layers.*.self_atn.q_proj' matches no module; nearest: "
            "m.model.layers.0.self_attn.q_proj, m.model.layers.1.self_attn.q_proj, m.model.layers.0.self_attn.k_proj");
  EXPECT_EQ(errorOf(resolveTpPlan(p, {})),
            "p.yaml:3:3: glob 'layers.*.self_atn.q_proj' matches no module; nearest: (the model has no module paths)");
}

TEST(PlanResolve, Contradiction) {
  Plan p = parse("tp_plan:\n  \"layers.*.self_attn.q_proj\": colwise\n  \"q_proj\": rowwise\n");
  EXPECT_EQ(errorOf(resolveTpPlan(p, kLlamaPaths)),
            "p.yaml:3:3: module 'm.model.layers.0.self_attn.q_proj' gets style colwise from glob "
            "'layers.*.self_attn.q_proj' and rowwise from glob 'q_proj'");
  // The same style twice is no contradiction.
  Plan same = parse("tp_plan:\n  \"layers.*.self_attn.q_proj\": colwise\n  \"q_proj\": colwise\n");
  auto resolved = resolveTpPlan(same, kLlamaPaths);
  ASSERT_TRUE(static_cast<bool>(resolved)) << llvm::toString(resolved.takeError());
  EXPECT_EQ(resolved->size(), 2u);
}

TEST(PlanResolve, AutoNotYetDerivedShardsNothing) {
  // `auto` is derived by choosePlan from the raised module; resolved alone it is empty.
  Plan p = defaultPlan();
  p.mesh.axes[3].second = 2;
  auto none = resolveTpPlan(p, {"net.fc1", "net.fc2"});
  ASSERT_TRUE(static_cast<bool>(none));
  EXPECT_TRUE(none->empty());
}

TEST(PlanResolve, GlobsForDerivedStyles) {
  std::vector<std::string> paths = {"m.model.layers.0.self_attn.q_proj", "m.model.layers.1.self_attn.q_proj",
                                    "m.model.layers.0.mlp.down_proj",    "m.model.layers.1.mlp.down_proj",
                                    "m.model.norm",                      "m.model.layers.0.self_attn.q_norm"};
  using Rules = std::vector<std::pair<std::string, TpStyle>>;
  // Every layer agrees: one glob with `*` for the layer index; a module outside the layers
  // gets the shortest suffix of two components or more that names it alone.
  Rules all = {{"m.model.layers.0.self_attn.q_proj", TpStyle::Colwise},
               {"m.model.layers.1.self_attn.q_proj", TpStyle::Colwise},
               {"m.model.norm", TpStyle::SequenceParallel}};
  EXPECT_EQ(globsFor(all, paths),
            (Rules{{"layers.*.self_attn.q_proj", TpStyle::Colwise}, {"model.norm", TpStyle::SequenceParallel}}));
  // Layers that disagree are named one by one.
  Rules split = {{"m.model.layers.0.mlp.down_proj", TpStyle::Rowwise},
                 {"m.model.layers.1.mlp.down_proj", TpStyle::Colwise}};
  EXPECT_EQ(globsFor(split, paths), (Rules{{"layers.0.mlp.down_proj", TpStyle::Rowwise},
                                           {"layers.1.mlp.down_proj", TpStyle::Colwise}}));
  // One layer only: the glob would also take layer 1's module, so layer 0 is named.
  Rules one = {{"m.model.layers.0.self_attn.q_proj", TpStyle::Colwise}};
  EXPECT_EQ(globsFor(one, paths), (Rules{{"layers.0.self_attn.q_proj", TpStyle::Colwise}}));
  // Two numeric components (a sentence-transformers export: the Sequential's index, then the
  // layer's): the `*` goes where it covers every layer, not on the Sequential's index.
  std::vector<std::string> st = {"model.model.0.auto_model.encoder.layer.0.attention.self.query",
                                 "model.model.0.auto_model.encoder.layer.1.attention.self.query",
                                 "model.model.0.auto_model.encoder.layer.0.output.dense",
                                 "model.model.0.auto_model.encoder.layer.1.output.dense"};
  Rules stRules = {{st[0], TpStyle::Colwise}, {st[1], TpStyle::Colwise}, {st[2], TpStyle::Rowwise},
                   {st[3], TpStyle::Rowwise}};
  EXPECT_EQ(globsFor(stRules, st), (Rules{{"layer.*.attention.self.query", TpStyle::Colwise},
                                          {"layer.*.output.dense", TpStyle::Rowwise}}));
}

TEST(PlanResolve, TiedParameters) {
  Plan p = parse("tp_plan:\n  lm_head: colwise_rep\n");
  EXPECT_EQ(errorOf(checkTiedParam(p, "m.lm_head.weight", {"m.lm_head", "m.model.embed_tokens"})),
            "tied parameter 'm.lm_head.weight' has one storage but module 'm.lm_head' (colwise_rep) and module "
            "'m.model.embed_tokens' (not sharded) shard it differently (e.g. embedding_rowwise goes with "
            "colwise/colwise_rep)");
  Plan ok = parse("tp_plan:\n  lm_head: colwise_rep\n  embed_tokens: embedding_rowwise\n");
  EXPECT_EQ(errorOf(checkTiedParam(ok, "m.lm_head.weight", {"m.lm_head", "m.model.embed_tokens"})), "(success)");
  Plan gpt2 = parse("tp_plan:\n  wte: rowwise\n  lm_head: colwise_rep\n");
  EXPECT_NE(errorOf(checkTiedParam(gpt2, "transformer.wte.weight", {"transformer.wte", "lm_head"}))
                .find("module 'transformer.wte' (rowwise) and module 'lm_head' (colwise_rep)"),
            std::string::npos);
}

TEST(PlanResolve, Globs) {
  EXPECT_TRUE(globMatches("layers.*.self_attn.q_proj", "m.model.layers.3.self_attn.q_proj"));
  EXPECT_TRUE(globMatches("q_proj", "m.model.layers.3.self_attn.q_proj"));
  EXPECT_TRUE(globMatches("*_proj", "m.model.layers.3.mlp.up_proj"));
  EXPECT_FALSE(globMatches("layers.*.q_proj", "m.model.layers.3.self_attn.q_proj"));
  EXPECT_FALSE(globMatches("q_pro", "m.model.layers.3.self_attn.q_proj"));
}

//===-- choosePlan: what `shardc plan` does, on a module without weights -----===//

// A raised Llama-shaped layer: attention (q, k, v, o) and a gated MLP (gate, up, down)
// between a tied embedding and lm_head, hidden 8, 2 heads.
constexpr const char *kTinyLlama = R"mlir(
#q = loc("node_q"("m.model.layers.0.self_attn.q_proj"("t.onnx":1:0)))
#k = loc("node_k"("m.model.layers.0.self_attn.k_proj"("t.onnx":2:0)))
#v = loc("node_v"("m.model.layers.0.self_attn.v_proj"("t.onnx":3:0)))
#a = loc("node_sdpa"("m.model.layers.0.self_attn"("t.onnx":4:0)))
#o = loc("node_o"("m.model.layers.0.self_attn.o_proj"("t.onnx":5:0)))
#g = loc("node_g"("m.model.layers.0.mlp.gate_proj"("t.onnx":6:0)))
#u = loc("node_u"("m.model.layers.0.mlp.up_proj"("t.onnx":7:0)))
#d = loc("node_d"("m.model.layers.0.mlp.down_proj"("t.onnx":8:0)))
#h = loc("node_h"("m.lm_head"("t.onnx":9:0)))
func.func @main(%ids: tensor<1x4xi64>) -> tensor<1x4x16xf32> {
  %e = sc.param "m.model.embed_tokens.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
  %wq = sc.param "m.model.layers.0.self_attn.q_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wk = sc.param "m.model.layers.0.self_attn.k_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "k", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wv = sc.param "m.model.layers.0.self_attn.v_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "v", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wo = sc.param "m.model.layers.0.self_attn.o_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "o", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wg = sc.param "m.model.layers.0.mlp.gate_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "g", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
  %wu = sc.param "m.model.layers.0.mlp.up_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "u", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
  %wd = sc.param "m.model.layers.0.mlp.down_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "d", tied = [], transform = #sc.transform<none>} : tensor<8x16xf32>
  %wh = sc.param "m.lm_head.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = ["m.model.embed_tokens.weight"], transform = #sc.transform<none>} : tensor<16x8xf32>
  %x = sc.embedding %e, %ids : (tensor<16x8xf32>, tensor<1x4xi64>) -> tensor<1x4x8xf32>
  %q = sc.linear %x, %wq {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#q)
  %k = sc.linear %x, %wk {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#k)
  %v = sc.linear %x, %wv {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#v)
  %q4 = sc.reshape %q : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %k4 = sc.reshape %k : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %v4 = sc.reshape %v : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %qt = sc.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %kt = sc.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %vt = sc.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %a = sc.attention %qt, %kt, %vt {causal = true, scale = 0.5 : f32} : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#a)
  %at = sc.transpose %a {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x2x4x4xf32>) -> tensor<1x4x2x4xf32>
  %am = sc.reshape %at : (tensor<1x4x2x4xf32>) -> tensor<1x4x8xf32>
  %o = sc.linear %am, %wo {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#o)
  %r = sc.add %x, %o : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
  %g = sc.linear %r, %wg {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32> loc(#g)
  %s = sc.silu %g : (tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  %u = sc.linear %r, %wu {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32> loc(#u)
  %p = sc.mul %s, %u : (tensor<1x4x16xf32>, tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  %d = sc.linear %p, %wd {transpose_weight = true} : (tensor<1x4x16xf32>, tensor<8x16xf32>) -> tensor<1x4x8xf32> loc(#d)
  %y = sc.add %r, %d : (tensor<1x4x8xf32>, tensor<1x4x8xf32>) -> tensor<1x4x8xf32>
  %l = sc.linear %y, %wh {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<16x8xf32>) -> tensor<1x4x16xf32> loc(#h)
  return %l : tensor<1x4x16xf32>
}
)mlir";

class ChoosePlan : public ::testing::Test {
protected:
  ChoosePlan() {
    ctx.loadDialect<sc::ScDialect, mlir::func::FuncDialect>();
    module = mlir::parseSourceString<mlir::ModuleOp>(kTinyLlama, &ctx);
  }
  ~ChoosePlan() override {
    for (const std::string &f : files)
      llvm::sys::fs::remove(f);
  }
  // A plan file holding `text`.
  std::string planFile(llvm::StringRef text) {
    llvm::SmallString<128> path;
    int fd;
    if (llvm::sys::fs::createTemporaryFile("shardc-plan", "yaml", fd, path)) {
      ADD_FAILURE() << "cannot create a temporary file";
      return "";
    }
    llvm::raw_fd_ostream os(fd, /*shouldClose=*/true);
    os << text;
    files.push_back(path.str().str());
    return files.back();
  }
  mlir::MLIRContext ctx;
  mlir::OwningOpRef<mlir::ModuleOp> module;
  std::vector<std::string> files;
};

TEST_F(ChoosePlan, AutoPlanDerivedFromTheGraph) {
  ASSERT_TRUE(module);
  TpDerivation d;
  auto plan = choosePlan(*module, "", "tp=2", std::nullopt, &d);
  ASSERT_TRUE(static_cast<bool>(plan)) << llvm::toString(plan.takeError());
  EXPECT_FALSE(plan->tpAuto);
  using Rules = std::vector<std::pair<std::string, TpStyle>>;
  EXPECT_EQ(plan->tpPlan, (Rules{{"layers.*.self_attn.q_proj", TpStyle::Colwise},
                                 {"layers.*.self_attn.k_proj", TpStyle::Colwise},
                                 {"layers.*.self_attn.v_proj", TpStyle::Colwise},
                                 {"layers.*.self_attn.o_proj", TpStyle::Rowwise},
                                 {"layers.*.mlp.gate_proj", TpStyle::Colwise},
                                 {"layers.*.mlp.up_proj", TpStyle::Colwise},
                                 {"layers.*.mlp.down_proj", TpStyle::Rowwise}}));
  EXPECT_EQ(plan->resolved.size(), 7u);
  EXPECT_EQ(plan->resolved.count("m.lm_head"), 0u); // embeddings and lm_head stay whole
  EXPECT_EQ(d.attentionBlocks, 1);
  EXPECT_EQ(d.mlpBlocks, 1);
  ASSERT_EQ(d.linears.size(), 8u);
  EXPECT_EQ(d.linears[0].reason, "q projection of attention at m.model.layers.0.self_attn");
  EXPECT_EQ(d.linears[6].reason, "second MLP linear: consumes the gated product");
  EXPECT_FALSE(d.linears[7].style.has_value());
}

TEST_F(ChoosePlan, AutoAnchorsOnUnraisedAttention) {
  // Attention the raising does not recognise (unscaled, with an additive bias, as a T5
  // encoder's): softmax(q·kᵀ + bias)·v between the projections and the head merge.
  constexpr const char *kUnraised = R"mlir(
#q = loc("node_q"("enc.block.0.attn.q"("t.onnx":1:0)))
#k = loc("node_k"("enc.block.0.attn.k"("t.onnx":2:0)))
#v = loc("node_v"("enc.block.0.attn.v"("t.onnx":3:0)))
#s = loc("node_s"("enc.block.0.attn"("t.onnx":4:0)))
#o = loc("node_o"("enc.block.0.attn.o"("t.onnx":5:0)))
func.func @main(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  %wq = sc.param "enc.block.0.attn.q.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wk = sc.param "enc.block.0.attn.k.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "k", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wv = sc.param "enc.block.0.attn.v.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "v", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %wo = sc.param "enc.block.0.attn.o.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "o", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %bias = sc.param "enc.block.0.attn.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<1x2x4x4xf32>
  %q = sc.linear %x, %wq {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#q)
  %k = sc.linear %x, %wk {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#k)
  %v = sc.linear %x, %wv {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#v)
  %q4 = sc.reshape %q : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %k4 = sc.reshape %k : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %v4 = sc.reshape %v : (tensor<1x4x8xf32>) -> tensor<1x4x2x4xf32>
  %qt = sc.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %kt = sc.transpose %k4 {perm = array<i64: 0, 2, 3, 1>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %vt = sc.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x4xf32>) -> tensor<1x2x4x4xf32>
  %sc = sc.matmul %qt, %kt : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#s)
  %sb = sc.add %sc, %bias : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#s)
  %p = sc.softmax %sb {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#s)
  %a = sc.matmul %p, %vt : (tensor<1x2x4x4xf32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32> loc(#s)
  %at = sc.transpose %a {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x2x4x4xf32>) -> tensor<1x4x2x4xf32>
  %am = sc.reshape %at : (tensor<1x4x2x4xf32>) -> tensor<1x4x8xf32>
  %o = sc.linear %am, %wo {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32> loc(#o)
  return %o : tensor<1x4x8xf32>
}
)mlir";
  auto m = mlir::parseSourceString<mlir::ModuleOp>(kUnraised, &ctx);
  ASSERT_TRUE(m);
  TpDerivation d;
  auto plan = choosePlan(*m, "", "tp=2", std::nullopt, &d);
  ASSERT_TRUE(static_cast<bool>(plan)) << llvm::toString(plan.takeError());
  EXPECT_EQ(d.attentionBlocks, 1);
  EXPECT_EQ(plan->resolved.at("enc.block.0.attn.q"), TpStyle::Colwise);
  EXPECT_EQ(plan->resolved.at("enc.block.0.attn.k"), TpStyle::Colwise);
  EXPECT_EQ(plan->resolved.at("enc.block.0.attn.v"), TpStyle::Colwise);
  EXPECT_EQ(plan->resolved.at("enc.block.0.attn.o"), TpStyle::Rowwise);
  ASSERT_EQ(d.linears.size(), 4u);
  EXPECT_EQ(d.linears[2].reason, "v projection of the attention at enc.block.0.attn (not raised: softmax(q·kᵀ)·v "
                                 "matched as dataflow)");
}

TEST_F(ChoosePlan, AutoWithoutPatternsIsAnErrorUnderTp) {
  constexpr const char *kNoPattern = R"mlir(
func.func @main(%x: tensor<1x4x8xf32>) -> tensor<1x4x8xf32> {
  %w = sc.param "net.fc.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %y = sc.linear %x, %w {transpose_weight = true} : (tensor<1x4x8xf32>, tensor<8x8xf32>) -> tensor<1x4x8xf32>
  return %y : tensor<1x4x8xf32>
}
)mlir";
  auto plain = mlir::parseSourceString<mlir::ModuleOp>(kNoPattern, &ctx);
  ASSERT_TRUE(plain);
  EXPECT_EQ(errorOf(choosePlan(*plain, "", "tp=2", std::nullopt)).rfind("tp_plan: auto found no attention block", 0),
            0u);
  auto single = choosePlan(*plain, "", "dp_shard=2", std::nullopt); // tp = 1: nothing to shard, no error
  ASSERT_TRUE(static_cast<bool>(single)) << llvm::toString(single.takeError());
  EXPECT_TRUE(single->tpAuto);
  EXPECT_TRUE(single->resolved.empty());
}

TEST_F(ChoosePlan, MeshErrorsNameTheirSource) {
  std::string infer = planFile("mesh: {dp_shard: -1, tp: 2}\n");
  EXPECT_EQ(errorOf(choosePlan(*module, infer, "", std::nullopt)),
            infer + ":1:1: mesh dp_shard: -1 needs the world size (--nproc) to be inferred");
  std::string square = planFile("mesh: {dp_shard: 2, tp: 2}\n");
  EXPECT_EQ(errorOf(choosePlan(*module, square, "dp_shard=3", 8)),
            "--mesh dp_shard=3: mesh dp_replicate=1,dp_shard=3,cp=1,tp=2 has 6 devices but the world size is 8");
  EXPECT_EQ(errorOf(choosePlan(*module, square, "tpp=2", 8)),
            "--mesh: unknown mesh axis 'tpp'; did you mean 'tp'? (axes: dp_replicate, dp_shard, cp, tp)");
  auto ok = choosePlan(*module, square, "dp_shard=-1", 16);
  ASSERT_TRUE(static_cast<bool>(ok)) << llvm::toString(ok.takeError());
  EXPECT_EQ(ok->mesh.str(), "dp_replicate=1,dp_shard=8,cp=1,tp=2");
}

TEST_F(ChoosePlan, PlanFileErrors) {
  std::string typo = planFile("mesh: {tp: 2}\ntp_paln: auto\n");
  EXPECT_EQ(errorOf(choosePlan(*module, typo, "", std::nullopt)),
            typo + ":2:1: unknown key 'tp_paln' in the plan; did you mean 'tp_plan'?");
  std::string nothing = planFile("tp_plan:\n  \"layers.*.self_atn.q_proj\": colwise\n");
  EXPECT_EQ(errorOf(choosePlan(*module, nothing, "tp=2", std::nullopt)).rfind(
                nothing + ":2:3: glob 'layers.*.self_atn.q_proj' matches no module; nearest: "
                          "m.model.layers.0.self_attn.q_proj",
                0),
            0u);
  std::string missing = (files.empty() ? std::string("/tmp/x") : files.front()) + ".missing";
  EXPECT_EQ(errorOf(choosePlan(*module, missing, "", std::nullopt)).rfind("cannot read plan " + missing + ": ", 0), 0u);
}

TEST_F(ChoosePlan, TiedParameters) {
  std::string headOnly = planFile("mesh: {tp: 2}\ntp_plan:\n  lm_head: colwise_rep\n");
  EXPECT_EQ(errorOf(choosePlan(*module, headOnly, "", std::nullopt)),
            "tied parameter 'm.lm_head.weight' has one storage but module 'm.lm_head' (colwise_rep) and module "
            "'m.model.embed_tokens' (not sharded) shard it differently (e.g. embedding_rowwise goes with "
            "colwise/colwise_rep)");
  std::string both = planFile("mesh: {tp: 2}\ntp_plan:\n  lm_head: colwise_rep\n  embed_tokens: embedding_rowwise\n");
  auto ok = choosePlan(*module, both, "", std::nullopt);
  ASSERT_TRUE(static_cast<bool>(ok)) << llvm::toString(ok.takeError());
  EXPECT_EQ(ok->resolved.size(), 2u);
  EXPECT_EQ(errorOf(checkTiedParams(*ok, *module)), "(success)");
}

//===-- round trips ---------------------------------------------------------===//

TEST(PlanRoundTrip, YamlPrintParses) {
  Plan p = parse("mesh: {dp_shard: 2, tp: 2}\ntp_plan:\n  \"layers.*.self_attn.q_proj\": colwise\n  \"*.down_proj\": rowwise\n"
                 "sequence_parallel: true\nmp_policy: {param_dtype: fp16, output_dtype: fp32}\nmode: train\n"
                 "enable_fsdp2_prefetch: false\nloss: {labels: input}\n");
  std::string yaml = printPlanYaml(p, {});
  Plan q = parse(yaml);
  EXPECT_EQ(q.mesh.str(), p.mesh.str());
  EXPECT_EQ(q.tpPlan, p.tpPlan);
  EXPECT_TRUE(q.sequenceParallel);
  EXPECT_EQ(q.mp.paramDtype, DType::FP16);
  EXPECT_EQ(q.mp.outputDtype, DType::FP32);
  EXPECT_EQ(q.mode, Mode::Train);
  EXPECT_TRUE(q.lossLabelsInput);
  EXPECT_FALSE(q.fsdpPrefetch);
  EXPECT_EQ(printPlanYaml(q, {}), yaml);
}

class PlanAttr : public ::testing::Test {
protected:
  std::string fromAttrError(llvm::StringRef text) {
    auto attr = llvm::dyn_cast_or_null<mlir::DictionaryAttr>(mlir::parseAttribute(text, &ctx));
    EXPECT_TRUE(attr) << text.str();
    return errorOf(planFromAttr(attr));
  }
  mlir::MLIRContext ctx;
};

constexpr const char *kMesh = "mesh_axes = [\"dp_replicate\", \"dp_shard\", \"cp\", \"tp\"], mesh_shape = array<i64: 1, 1, 1, 2>";

TEST_F(PlanAttr, RoundTrip) {
  Plan p = parse("mesh: {tp: 2}\ntp_plan: {q_proj: colwise}\nmode: train\nloss: {labels: input}\n");
  p.resolved["m.q_proj"] = TpStyle::Colwise;
  auto back = planFromAttr(planToAttr(&ctx, p));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(back->mesh.str(), p.mesh.str());
  EXPECT_EQ(back->tpPlan, p.tpPlan);
  EXPECT_EQ(back->resolved, p.resolved);
  EXPECT_EQ(back->mode, Mode::Train);
  EXPECT_TRUE(back->lossLabelsInput);
}

TEST_F(PlanAttr, Errors) {
  EXPECT_EQ(errorOf(planFromAttr(mlir::DictionaryAttr())), "sc.plan: missing");
  EXPECT_EQ(fromAttrError("{mesh_axes = [\"tp\"], mesh_shape = array<i64: 1, 2>}"),
            "sc.plan: mesh_axes and mesh_shape must be an array of names and an array<i64> of the same length");
  EXPECT_EQ(fromAttrError("{mesh_axes = [\"pp\"], mesh_shape = array<i64: 2>}"), "sc.plan: unknown mesh axis in mesh_axes");
  EXPECT_EQ(fromAttrError("{mesh_axes = [\"tp\"], mesh_shape = array<i64: 0>}"),
            "sc.plan: mesh axis tp has size 0; sizes are positive (dp_shard may be -1)");
  EXPECT_EQ(fromAttrError("{mesh_axes = [\"tp\", \"cp\"], mesh_shape = array<i64: 2, 1>}"),
            "sc.plan: mesh_axes must be [dp_replicate, dp_shard, cp, tp]");
  std::string m = kMesh;
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = \"auto\", sequence_parallel = 1 : i64}"),
            "sc.plan: sequence_parallel must be a bool");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = \"auto\", mode = \"training\"}"), "sc.plan: unknown mode 'training'");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = \"auto\", mp_policy = {param_dtype = \"bf16\", reduce_dtype = \"fp32\"}}"),
            "sc.plan: mp_policy.output_dtype must be bf16, fp16 or fp32");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = \"all\"}"), "sc.plan: tp_plan must be \"auto\" or [[glob, style], ...]");
  EXPECT_EQ(fromAttrError("{" + m + "}"), "sc.plan: tp_plan must be \"auto\" or [[glob, style], ...]");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = [[\"q_proj\", \"colwize\"]]}"),
            "sc.plan: tp_plan entries must be [glob, style] with a known style");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = [[\"q_proj\"]]}"),
            "sc.plan: tp_plan entries must be [glob, style] with a known style");
  EXPECT_EQ(fromAttrError("{" + m + ", tp_plan = \"auto\", resolved = {\"m.q_proj\" = \"sideways\"}}"),
            "sc.plan: resolved['m.q_proj'] is not a style");
}

} // namespace
} // namespace shardc

namespace shardc {
namespace {

//===-- trainable: / frozen: globs ------------------------------------------===//

TEST(PlanTrainable, ParsesGlobs) {
  Plan p = parse("mode: train\ntrainable: [\"*.q_proj\", embed_tokens]\nfrozen:\n  - \"model.layers.0\"\n");
  EXPECT_EQ(p.trainableGlobs, (std::vector<std::string>{"*.q_proj", "embed_tokens"}));
  EXPECT_EQ(p.frozenGlobs, (std::vector<std::string>{"model.layers.0"}));
  Plan q = parse(printPlanYaml(p, {}));
  EXPECT_EQ(q.trainableGlobs, p.trainableGlobs);
  EXPECT_EQ(q.frozenGlobs, p.frozenGlobs);
  EXPECT_TRUE(parse("mode: train\n").trainableGlobs.empty());
}

TEST(PlanTrainable, Errors) {
  EXPECT_EQ(parseError("trainable: [q_proj]\n"), "p.yaml:1:1: trainable: needs mode: train");
  EXPECT_EQ(parseError("mode: inference\nfrozen: [q_proj]\n"), "p.yaml:2:1: frozen: needs mode: train");
  EXPECT_EQ(parseError("mode: train\nfrozen: [\"\"]\n"), "p.yaml:2:1: frozen: an empty glob");
  EXPECT_NE(parseError("mode: train\nfrozn: [q_proj]\n").find("did you mean 'frozen'?"), std::string::npos);
}

TEST(PlanTrainable, GlobsMatchNamesAndModulePaths) {
  // The parameter name, or any module path that contains it (last components, as tp_plan).
  EXPECT_TRUE(paramGlobMatches("q_proj", "m.model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(paramGlobMatches("q_proj.weight", "m.model.layers.0.self_attn.q_proj.weight"));
  EXPECT_TRUE(paramGlobMatches("*.weight", "m.model.norm.weight"));
  EXPECT_TRUE(paramGlobMatches("model.layers.0", "m.model.layers.0.mlp.up_proj.weight"));
  EXPECT_TRUE(paramGlobMatches("layers.*.self_attn", "m.model.layers.3.self_attn.k_proj.bias"));
  EXPECT_TRUE(paramGlobMatches("*_proj.bias", "m.model.layers.3.self_attn.k_proj.bias"));
  EXPECT_FALSE(paramGlobMatches("model.layers.1", "m.model.layers.10.mlp.up_proj.weight"));
  EXPECT_FALSE(paramGlobMatches("q_proj", "m.model.layers.0.self_attn.k_proj.weight"));
  EXPECT_FALSE(paramGlobMatches("*.bias", "m.model.norm.weight"));
}

TEST(PlanTrainable, FrozenWinsOverTrainable) {
  Plan p = parse("mode: train\ntrainable: [\"model.layers.0.mlp\", rotary_emb]\nfrozen: [\"model.layers.0\"]\n");
  std::vector<std::string> up{"m.model.layers.0.mlp.up_proj.weight"}, q{"m.model.layers.0.self_attn.q_proj.weight"},
      other{"m.model.layers.1.mlp.up_proj.weight"}, rot{"m.model.rotary_emb.inv_freq"};
  EXPECT_FALSE(isTrainable(p, up, /*exporterTrainable=*/true));
  EXPECT_FALSE(isTrainable(p, q, true));
  EXPECT_TRUE(isTrainable(p, other, true));
  EXPECT_FALSE(isTrainable(p, other, false)); // no glob: the exporter's answer
  EXPECT_TRUE(isTrainable(p, rot, false));    // trainable: makes a buffer train
  // A tied parameter is frozen when any of its names matches a frozen glob.
  Plan t = parse("mode: train\nfrozen: [embed_tokens]\n");
  EXPECT_FALSE(isTrainable(t, {"m.lm_head.weight", "m.model.embed_tokens.weight"}, true));
  EXPECT_TRUE(isTrainable(t, {"m.lm_head.weight"}, true));
}

TEST(PlanTrainable, AttrRoundTrip) {
  mlir::MLIRContext ctx;
  Plan p = parse("mode: train\ntrainable: [q_proj]\nfrozen: [embed_tokens, \"*.bias\"]\n");
  auto back = planFromAttr(planToAttr(&ctx, p));
  ASSERT_TRUE(static_cast<bool>(back)) << llvm::toString(back.takeError());
  EXPECT_EQ(back->trainableGlobs, p.trainableGlobs);
  EXPECT_EQ(back->frozenGlobs, p.frozenGlobs);
}

} // namespace
} // namespace shardc
