// The parallelization plan: mesh, tensor-parallel plan, mixed precision and FSDP options,
// parsed from YAML (FSDP2/NeMo vocabulary), matched against module paths, kept in the IR.
#pragma once

#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/BuiltinAttributes.h"
#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <map>
#include <set>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mlir {
class MLIRContext;
class ModuleOp;
} // namespace mlir

namespace shardc {

// The device mesh. `axes` always holds the four supported axes in this order, outermost
// first: dp_replicate, dp_shard, cp, tp (size 1 when unused). dp_shard may be -1 until
// resolveMesh() infers it from the world size.
struct Mesh {
  std::vector<std::pair<std::string, int64_t>> axes{{"dp_replicate", 1}, {"dp_shard", 1}, {"cp", 1}, {"tp", 1}};
  // Expert parallelism (`ep`, NeMo's ep_size): not an axis of its own but the inner factor of
  // dp_shard x cp (torchtitan's carving); the outer factor is `ep_shard`. The world size does
  // not change. 1: no expert parallelism.
  int64_t ep = 1;
  // Size of a named axis (`ep` and `ep_shard` included); 1 for a name that is not an axis.
  int64_t size(llvm::StringRef axis) const;
  // Product of the axis sizes (-1 while dp_shard is still -1).
  int64_t worldSize() const;
  bool isResolved() const { return worldSize() > 0; }
  // "dp_replicate=1,dp_shard=2,cp=1,tp=2" (the --mesh syntax), ",ep=2" appended when ep > 1.
  std::string str() const;
};

// Hugging Face / DTensor tensor-parallel styles (base_model_tp_plan vocabulary): the
// dialect's enum (ScEnums.td, `#sc.tp_style<...>`), one definition for the plan and the IR.
//   colwise           Linear weight Shard(0) (out features); output sharded on the last dim
//   rowwise           Linear weight Shard(1) (in features); output Partial -> Replicate (SP: Shard(seq))
//   colwise_rep       colwise, output all-gathered to Replicate (HF lm_head)
//   rowwise_rep       rowwise, input Replicate (sliced locally), output Replicate
//   packed_colwise    colwise over a fused [q;k;v] weight: each packed part sharded (GPT-2 c_attn)
//   embedding_rowwise Embedding table Shard(0) (vocab rows); output Partial -> Replicate
//   sequence_parallel norms/dropout on Shard(seq) activations; replicated weight
//   replicate         explicitly unsharded
using TpStyle = sc::TpStyle;
using sc::stringifyTpStyle;
// Exact names as in the YAML.
inline std::optional<TpStyle> parseTpStyle(llvm::StringRef name) { return sc::symbolizeTpStyle(name); }
llvm::ArrayRef<llvm::StringRef> allTpStyleNames();

// Which dimension of the parameter's storage a style shards, in PyTorch's Linear layout
// [out, in] (an Embedding's [vocab, dim] counts as [out, in], as for a tied lm_head).
// Tied parameters must agree on this.
enum class StorageSplit { None, Out, OutPacked, In };
StorageSplit storageSplitOf(TpStyle style);

enum class DType { BF16, FP16, FP32 };
llvm::StringRef stringifyDType(DType d); // bf16 | fp16 | fp32

// FSDP2 MixedPrecisionPolicy; NeMo AutoModel's default.
struct MixedPrecision {
  DType paramDtype = DType::BF16;  // compute and FSDP all-gather dtype
  DType reduceDtype = DType::FP32; // gradient reductions
  DType outputDtype = DType::BF16; // model outputs
  DType masterDtype = DType::FP32; // train: master weights and AdamW moments (fp32 or bf16)
};

enum class Mode { Inference, Train };

// `activation_checkpointing` (train): false; true or full (every layer's forward recomputed in
// backward from its inputs); selective (GEMM and attention results kept, the rest recomputed).
enum class Checkpointing { None, Full, Selective };
llvm::StringRef stringifyCheckpointing(Checkpointing c); // "false", "full", "selective"

// `reshard_after_forward` (train), FSDP2's: true frees each layer's gathered parameters after
// its forward and gathers them again for its backward; false keeps them; unset (`auto`) does
// so for every decoder layer but the last. The root group (embeddings, final norm, lm_head)
// is never resharded, as FSDP2's root.
enum class ReshardAfterForward { Auto, Always, Never };
llvm::StringRef stringifyReshardAfterForward(ReshardAfterForward r); // "auto", "true", "false"

struct Plan {
  Mesh mesh;
  // Glob -> style in file order (tpAuto false); see docs/plan.md for glob matching.
  std::vector<std::pair<std::string, TpStyle>> tpPlan;
  // "file:line:col" of each tpPlan entry ("" when not from a file), for located errors.
  std::vector<std::string> tpPlanLocs;
  std::string meshLoc; // "file:line:col" of `mesh:` (the file name alone when absent)
  bool tpAuto = false; // `tp_plan: auto`: derived from the raised graph (deriveTpPlan)
  bool sequenceParallel = false;
  // `expert_tp:` (docs/moe.md): with tp > 1, each expert's MLP is split over tp (gate and up
  // on I, down on I; the output reduced over tp) instead of each tp rank taking 1/tp of the
  // tokens.
  bool expertTp = false;
  MixedPrecision mp;
  ReshardAfterForward reshardAfterForward = ReshardAfterForward::Auto;
  Checkpointing activationCheckpointing = Checkpointing::None;
  Mode mode = Mode::Inference;
  // `loss: {labels: input}` (train mode): the labels come from a graph input `labels` [B, S]
  // (ignore index -100) that shardc adds and shifts, instead of the shifted input ids.
  bool lossLabelsInput = false;
  // `loss_parallel:` (train mode; torchtitan's loss_parallel): the cross-entropy runs on the
  // vocabulary-split logits of a colwise lm_head, which are never gathered (sc-add-loss's
  // vocabulary-parallel form). Unset: on when tp > 1.
  std::optional<bool> lossParallel;
  // `router_aux_loss_coef:` (train mode, a model with raised MoE routers): Hugging Face's
  // load-balancing auxiliary loss over all routers on global statistics, times this
  // coefficient, added to the loss (docs/moe.md#training). Unset: no auxiliary loss.
  std::optional<double> routerAuxLossCoef;
  // `router_bias_update_speed:` (train mode, routers with a score bias: DeepSeek-V3): the
  // auxiliary-loss-free load balancing, each score bias moved by ±γ towards balance after
  // every step (sc-update-router-bias, docs/moe.md#training).
  std::optional<double> routerBiasUpdateSpeed;
  // `trainable:` / `frozen:` (train mode): globs over parameter names and module paths that
  // override the exporter's trainable set; frozen wins when both match (docs/plan.md).
  std::vector<std::string> trainableGlobs, frozenGlobs;
  // `optimizer:` (train mode): torch.optim.AdamW's update (decoupled weight decay, bias
  // correction) applied in the program, the parameters and moments kept as state across runs.
  // Absent: the program returns each trainable parameter's gradient instead.
  struct AdamW {
    double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weightDecay = 0.01; // PyTorch's defaults
  };
  std::optional<AdamW> optimizer;
  // `lr_scheduler:` (with an optimizer): linear warmup then cosine decay, by the step number t
  // (from 1): lr·t/warmup while t <= warmup_steps, then min_lr + (lr − min_lr)(1 + cos(π p))/2
  // with p = (t − warmup_steps)/(total_steps − warmup_steps) clamped to [0, 1].
  struct LrScheduler {
    int64_t warmupSteps = 0, totalSteps = 1;
    double minLr = 0.0;
  };
  std::optional<LrScheduler> lrScheduler;
  // `max_grad_norm:` (with an optimizer): clip_grad_norm_ on the global gradient norm first.
  std::optional<double> maxGradNorm;
  // `gradient_accumulation_steps:` (train mode): a step is g micro-batches of the export's
  // [B, S], read as input_ids [g, B, S]; their gradients add before the optimizer.
  int64_t gradientAccumulationSteps = 1;
  // NeMo FSDP2Config options: defer the gradient reduce-scatter to the last micro-batch
  // (true, NeMo's default: one reduce-scatter of the summed gradient; false: one per
  // micro-batch, the shards added) and prefetch the next layer's all-gather.
  bool deferFsdpGradSync = true;
  bool fsdpPrefetch = true;
  // `offload_policy: cpu` (train mode, with an optimizer), FSDP2's CPUOffloadPolicy: masters,
  // reduced gradient shards and optimizer state in host memory, the optimizer step on the host
  // (sc-offload, docs/training.md#cpu-offload).
  bool cpuOffload = false;
  // Module path -> style once resolved (resolveTpPlan), carried through sc.plan so that a
  // pass run on printed IR without locations still knows it. Empty until resolved.
  std::map<std::string, TpStyle> resolved;

  // The style of one module: `resolved` when filled, else the first matching glob of
  // tpPlan (auto plans must be resolved first). None: the module is not TP-sharded.
  std::optional<TpStyle> styleFor(llvm::StringRef modulePath) const;
};

// All defaults with this mesh and `tp_plan: auto`.
Plan defaultPlan(const Mesh &mesh = Mesh());

// Parses a plan. Errors are one line: "<name>:<line>:<col>: <message>", with "did you mean
// 'X'?" for misspelt keys and styles. With a world size, the mesh is resolved and checked
// (resolveMesh); without, dp_shard may stay -1.
llvm::Expected<Plan> parsePlanText(llvm::StringRef text, llvm::StringRef name,
                                   std::optional<int64_t> worldSize = std::nullopt);
llvm::Expected<Plan> parsePlanFile(llvm::StringRef path, std::optional<int64_t> worldSize);

// `--mesh tp=2,dp_shard=2`: sets the named axes, leaves the others as the file has them.
llvm::Error applyMeshOverride(Plan &plan, llvm::StringRef spec);

// Infers dp_shard = -1 from the world size and checks that the product equals it. Without
// a world size the product is the world size (an error while dp_shard is -1).
llvm::Error resolveMesh(Mesh &mesh, std::optional<int64_t> worldSize);

// Module paths of an imported model: from op locations (modulePathOf) and sc.param names
// (the owning module of each parameter and of its tied names). Sorted, unique.
std::vector<std::string> collectModulePaths(mlir::ModuleOp module);

// `tp_plan: auto`, derived from the structure of a raised module (docs/plan.md): anchored on
// each sc.attention (q/k/v producers colwise, a fused projection packed or interleaved, the
// output projection rowwise) and each MLP (first linear(s) colwise, last rowwise); norms on
// the residual stream sequence_parallel when asked. Embeddings and lm_head stay whole.
struct TpDerivation {
  struct Entry {
    std::string path;              // module path ("" when the op has none)
    std::optional<TpStyle> style;  // none: not sharded
    std::string reason;
  };
  std::vector<std::pair<std::string, TpStyle>> rules; // globs, `*` for the layer index
  std::vector<Entry> linears;                         // every sc.linear, program order
  std::vector<Entry> norms;                           // every sc.rms_norm / sc.layer_norm
  std::vector<std::string> notes;                     // anchors that matched no pattern
  int attentionBlocks = 0, mlpBlocks = 0;
};
// `raised` must have been through the raise pipeline (buildRaisePipeline); `tp` words the
// reasons (kv heads fewer than tp) and decides the heads outside the layers by cost.
TpDerivation deriveTpPlan(mlir::ModuleOp raised, llvm::ArrayRef<std::string> modulePaths, bool sequenceParallel,
                          int64_t tp);
// Module path -> style as globs: `container.*.rest` where every layer agrees and the glob
// matches nothing else, else the shortest suffix naming the module alone, in input order.
std::vector<std::pair<std::string, TpStyle>> globsFor(const std::vector<std::pair<std::string, TpStyle>> &styled,
                                                      llvm::ArrayRef<std::string> modulePaths);
// The rules, every linear and norm with its style and reason, as YAML comments.
std::string printTpDerivation(const TpDerivation &d);

// Whether a glob matches a module path: its components match the path's last components
// ('*' is one whole component, or any run of characters inside one).
bool globMatches(llvm::StringRef glob, llvm::StringRef modulePath);

// Module path -> style for every module the plan shards (nothing for an `auto` plan not yet
// derived). Errors: a glob of the file that matches nothing (with the nearest paths), two
// globs giving one module different styles.
llvm::Expected<std::map<std::string, TpStyle>> resolveTpPlan(const Plan &plan,
                                                             llvm::ArrayRef<std::string> modulePaths);

// A tied parameter has one storage: the styles of the modules using it (plan.styleFor)
// must shard it the same way. `param` names it in the message.
llvm::Error checkTiedParam(const Plan &plan, llvm::StringRef param, llvm::ArrayRef<std::string> modulePaths);
// The same for every sc.param with `tied` names in the module.
llvm::Error checkTiedParams(const Plan &plan, mlir::ModuleOp module);

// Whether a `trainable:`/`frozen:` glob matches a parameter: its name (or a tied name), or
// a module path that contains it (`embed_tokens`, `model.layers.0`), by globMatches.
bool paramGlobMatches(llvm::StringRef glob, llvm::StringRef paramName);
// Whether a parameter trains: the exporter's answer, then `trainable:` globs make it
// trainable and `frozen:` globs frozen (frozen wins when both match).
bool isTrainable(const Plan &plan, llvm::ArrayRef<std::string> names, bool exporterTrainable);
// mode: train: sets the unit attribute sc.trainable on every sc.param that trains
// (isTrainable over its name, tied names and ONNX name; `exporterTrainable` holds the ONNX
// names the importer reported, ImportOptions::exporterTrainable). Returns how many.
int64_t markTrainableParams(mlir::ModuleOp module, const Plan &plan,
                            const std::set<std::string> &exporterTrainable);

// What `shardc plan` does, for any driver: the plan file (or defaultPlan() when `planPath`
// is empty), the `--mesh` override (when not empty), the mesh resolved against the world
// size, `auto` derived from the module (which must be raised; tpAuto false afterwards when
// an attention or MLP was found; an error when none was and tp > 1; the derivation is copied
// to `derivation` when given), `resolved` filled for the model's module paths and tied
// parameters checked.
llvm::Expected<Plan> choosePlan(mlir::ModuleOp module, llvm::StringRef planPath, llvm::StringRef meshSpec,
                                std::optional<int64_t> worldSize, TpDerivation *derivation = nullptr);

// The plan as YAML that parsePlanText reads back; `resolved` (may be empty) is appended
// as comments, one module per line.
std::string printPlanYaml(const Plan &plan, const std::map<std::string, TpStyle> &resolved);

// The plan as the `sc.plan` module attribute and back (see docs/plan.md for the schema).
inline constexpr llvm::StringLiteral kPlanAttrName = "sc.plan";
mlir::DictionaryAttr planToAttr(mlir::MLIRContext *ctx, const Plan &plan);
// The optimizer as sc.plan and sc.train carry it: {lr, beta1, beta2, eps, weight_decay} (f64);
// null without one.
mlir::DictionaryAttr optimizerAttr(mlir::Builder &b, const Plan &plan);
// The lr schedule as sc.plan and sc.train carry it: {warmup_steps, total_steps (i64), min_lr}.
mlir::DictionaryAttr lrSchedulerAttr(mlir::Builder &b, const Plan &plan);
llvm::Expected<Plan> planFromAttr(mlir::DictionaryAttr attr);

} // namespace shardc
