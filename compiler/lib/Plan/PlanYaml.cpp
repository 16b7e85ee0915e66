// The plan's YAML: LLVM YAML I/O into raw structures, plus a located pre-pass that keeps what
// YAML I/O drops (every key's position, the order of tp_plan entries), then the Plan.
#include "shardc/Plan/Plan.h"

#include "PlanInternal.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"
#include "llvm/Support/YAMLTraits.h"

#include <tuple>

using namespace mlir;
using llvm::StringRef;

namespace shardc {
using namespace plan;

//===----------------------------------------------------------------------===//
// YAML: raw structures read by YAML I/O
//===----------------------------------------------------------------------===//

namespace {

using TpEntries = std::vector<std::pair<std::string, TpStyle>>;

struct RawMesh {
  std::optional<int64_t> dpReplicate, dpShard, cp, tp, ep;
};
struct RawMp {
  std::optional<DType> param, reduce, output, master;
  std::optional<bool> castForwardInputs;
};
// `tp_plan`: a scalar (auto) or a map glob -> style.
struct RawTpPlan {
  llvm::yaml::NodeKind kind = llvm::yaml::NodeKind::Map;
  std::string scalar;
  TpEntries entries;
  std::vector<std::string> sequence; // only to report a sequence as an error
};
// `loss: {labels: input_ids | input}`.
struct RawLoss {
  std::optional<std::string> labels;
};
// `optimizer: {name: adamw, lr: …, betas: [b1, b2], eps: …, weight_decay: …}`.
struct RawScheduler {
  std::optional<int64_t> warmupSteps, totalSteps;
  std::optional<double> minLr;
};
struct RawOptimizer {
  std::optional<std::string> name;
  std::optional<double> lr, eps, weightDecay;
  std::optional<std::vector<double>> betas;
};
struct RawPlan {
  std::optional<RawMesh> mesh;
  std::optional<RawTpPlan> tpPlan, customTpPlan;
  std::optional<Checkpointing> activationCheckpointing;
  std::optional<ReshardAfterForward> reshardAfterForward;
  std::optional<bool> sequenceParallel, deferFsdpGradSync, prefetch,
      useHfTpPlan, lossParallel, expertTp;
  std::optional<RawMp> mp;
  std::optional<Mode> mode;
  std::optional<RawLoss> loss;
  std::optional<RawOptimizer> optimizer;
  std::optional<RawScheduler> lrScheduler;
  std::optional<double> maxGradNorm, routerAuxLossCoef, routerBiasUpdateSpeed;
  std::optional<int64_t> gradientAccumulationSteps;
  std::optional<std::vector<std::string>> trainable, frozen;
  std::optional<std::string> offloadPolicy;
  // NeMo FSDP2Manager sizes, aliases of the mesh axes.
  std::optional<int64_t> tpSize, dpSize, cpSize, dpReplicateSize, epSize;
};

// Shared by the mapping traits (as the YAML I/O context) and the diagnostic handler:
// the keys of the mapping being closed, for "did you mean", and the first error.
struct ParseCtx {
  llvm::SmallVector<StringRef> knownKeys;
  StringRef where;
  std::string scratch; // storage of a message returned by ScalarTraits::input
  std::string firstError;
};

const StringRef kTopKeys[] = {"mesh",
                              "tp_plan",
                              "sequence_parallel",
                              "expert_tp",
                              "mp_policy",
                              "reshard_after_forward",
                              "activation_checkpointing",
                              "mode",
                              "loss",
                              "loss_parallel",
                              "router_aux_loss_coef",
                              "router_bias_update_speed",
                              "optimizer",
                              "lr_scheduler",
                              "max_grad_norm",
                              "gradient_accumulation_steps",
                              "trainable",
                              "frozen",
                              "defer_fsdp_grad_sync",
                              "enable_fsdp2_prefetch",
                              "offload_policy",
                              "custom_tp_plan",
                              "use_hf_tp_plan",
                              "tp_size",
                              "dp_size",
                              "cp_size",
                              "dp_replicate_size",
                              "ep_size"};
const StringRef kMpKeys[] = {"param_dtype", "reduce_dtype", "output_dtype", "master_dtype", "cast_forward_inputs"};

void onYamlDiag(const llvm::SMDiagnostic &d, void *c) {
  auto *ctx = static_cast<ParseCtx *>(c);
  if (!ctx->firstError.empty())
    return;
  std::string msg = d.getMessage().str();
  StringRef key(msg);
  if (key.consume_front("unknown key '") && key.consume_back("'")) {
    if (std::string r = rejectedAxisMessage(key); !r.empty())
      msg = r;
    else
      msg = ("unknown key '" + key + "' in " + ctx->where + didYouMean(key, ctx->knownKeys)).str();
  }
  ctx->firstError = llvm::formatv("{0}:{1}:{2}: {3}", d.getFilename(), d.getLineNo(), d.getColumnNo() + 1, msg).str();
}

} // namespace
} // namespace shardc

namespace llvm::yaml {
using namespace shardc;
using namespace shardc::plan;

template <> struct ScalarTraits<TpStyle> {
  static void output(const TpStyle &v, void *, raw_ostream &os) { os << stringifyTpStyle(v); }
  static StringRef input(StringRef s, void *c, TpStyle &v) {
    if (auto st = parseTpStyle(s)) {
      v = *st;
      return {};
    }
    auto *ctx = static_cast<ParseCtx *>(c);
    ctx->scratch =
        "unknown style '" + s.str() + "'" + didYouMean(s, allTpStyleNames()) + " (styles: " + joinNames(allTpStyleNames()) + ")";
    return ctx->scratch;
  }
  static QuotingType mustQuote(StringRef) { return QuotingType::None; }
};

template <> struct ScalarTraits<DType> {
  static void output(const DType &v, void *, raw_ostream &os) { os << stringifyDType(v); }
  static StringRef input(StringRef s, void *c, DType &v) {
    if (auto d = parseDType(s)) {
      v = *d;
      return {};
    }
    auto *ctx = static_cast<ParseCtx *>(c);
    ctx->scratch = "unknown dtype '" + s.str() + "'" + didYouMean(s, {"bf16", "fp16", "fp32"}) + " (dtypes: bf16, fp16, fp32)";
    return ctx->scratch;
  }
  static QuotingType mustQuote(StringRef) { return QuotingType::None; }
};

template <> struct ScalarTraits<ReshardAfterForward> {
  static void output(const ReshardAfterForward &v, void *, raw_ostream &os) { os << stringifyReshardAfterForward(v); }
  static StringRef input(StringRef s, void *c, ReshardAfterForward &v) {
    if (auto r = parseReshardAfterForward(s)) {
      v = *r;
      return {};
    }
    auto *ctx = static_cast<ParseCtx *>(c);
    ctx->scratch = "reshard_after_forward is true, false or auto (unset: every layer but the last), not '" + s.str() + "'";
    return ctx->scratch;
  }
  static QuotingType mustQuote(StringRef) { return QuotingType::None; }
};

template <> struct ScalarTraits<Checkpointing> {
  static void output(const Checkpointing &v, void *, raw_ostream &os) { os << stringifyCheckpointing(v); }
  static StringRef input(StringRef s, void *c, Checkpointing &v) {
    if (auto m = parseCheckpointing(s)) {
      v = *m;
      return {};
    }
    auto *ctx = static_cast<ParseCtx *>(c);
    ctx->scratch = "activation_checkpointing is true, false, full or selective, not '" + s.str() + "'" +
                   didYouMean(s, {"true", "false", "full", "selective"});
    return ctx->scratch;
  }
  static QuotingType mustQuote(StringRef) { return QuotingType::None; }
};

template <> struct ScalarTraits<Mode> {
  static void output(const Mode &v, void *, raw_ostream &os) { os << (v == Mode::Train ? "train" : "inference"); }
  static StringRef input(StringRef s, void *c, Mode &v) {
    if (auto m = parseMode(s)) {
      v = *m;
      return {};
    }
    auto *ctx = static_cast<ParseCtx *>(c);
    ctx->scratch = "unknown mode '" + s.str() + "'" + didYouMean(s, {"inference", "train"}) + " (modes: inference, train)";
    return ctx->scratch;
  }
  static QuotingType mustQuote(StringRef) { return QuotingType::None; }
};

// Keys are set after the members are mapped: YAML I/O checks for unknown keys when the
// mapping closes, after nested mappings have closed (and set their own).
template <> struct MappingTraits<RawMesh> {
  static void mapping(IO &io, RawMesh &m) {
    io.mapOptional("dp_replicate", m.dpReplicate);
    io.mapOptional("dp_shard", m.dpShard);
    io.mapOptional("cp", m.cp);
    io.mapOptional("tp", m.tp);
    io.mapOptional("ep", m.ep);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign(std::begin(kAxisNames), std::end(kAxisNames));
    ctx->knownKeys.push_back("ep");
    ctx->where = "mesh";
  }
};

template <> struct MappingTraits<RawMp> {
  static void mapping(IO &io, RawMp &m) {
    io.mapOptional("param_dtype", m.param);
    io.mapOptional("reduce_dtype", m.reduce);
    io.mapOptional("output_dtype", m.output);
    io.mapOptional("master_dtype", m.master);
    io.mapOptional("cast_forward_inputs", m.castForwardInputs);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign(std::begin(kMpKeys), std::end(kMpKeys));
    ctx->where = "mp_policy";
  }
};

template <> struct CustomMappingTraits<TpEntries> {
  static void inputOne(IO &io, StringRef key, TpEntries &entries) {
    TpStyle style = TpStyle::Replicate;
    io.mapRequired(key, style);
    entries.emplace_back(key.str(), style);
  }
  static void output(IO &io, TpEntries &entries) {
    for (auto &[glob, style] : entries)
      io.mapRequired(glob, style);
  }
};

template <> struct PolymorphicTraits<RawTpPlan> {
  static NodeKind getKind(const RawTpPlan &p) { return p.kind; }
  static std::string &getAsScalar(RawTpPlan &p) {
    p.kind = NodeKind::Scalar;
    return p.scalar;
  }
  static TpEntries &getAsMap(RawTpPlan &p) {
    p.kind = NodeKind::Map;
    return p.entries;
  }
  static std::vector<std::string> &getAsSequence(RawTpPlan &p) {
    p.kind = NodeKind::Sequence;
    return p.sequence;
  }
};

template <> struct MappingTraits<RawLoss> {
  static void mapping(IO &io, RawLoss &l) {
    io.mapOptional("labels", l.labels);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign({"labels"});
    ctx->where = "loss";
  }
};

template <> struct MappingTraits<RawOptimizer> {
  static void mapping(IO &io, RawOptimizer &o) {
    io.mapOptional("name", o.name);
    io.mapOptional("lr", o.lr);
    io.mapOptional("betas", o.betas);
    io.mapOptional("eps", o.eps);
    io.mapOptional("weight_decay", o.weightDecay);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign({"name", "lr", "betas", "eps", "weight_decay"});
    ctx->where = "optimizer";
  }
};

template <> struct MappingTraits<RawScheduler> {
  static void mapping(IO &io, RawScheduler &o) {
    io.mapOptional("warmup_steps", o.warmupSteps);
    io.mapOptional("total_steps", o.totalSteps);
    io.mapOptional("min_lr", o.minLr);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign({"warmup_steps", "total_steps", "min_lr"});
    ctx->where = "lr_scheduler";
  }
};

template <> struct MappingTraits<RawPlan> {
  static void mapping(IO &io, RawPlan &p) {
    io.mapOptional("mesh", p.mesh);
    io.mapOptional("tp_plan", p.tpPlan);
    io.mapOptional("sequence_parallel", p.sequenceParallel);
    io.mapOptional("expert_tp", p.expertTp);
    io.mapOptional("mp_policy", p.mp);
    io.mapOptional("reshard_after_forward", p.reshardAfterForward);
    io.mapOptional("activation_checkpointing", p.activationCheckpointing);
    io.mapOptional("mode", p.mode);
    io.mapOptional("loss", p.loss);
    io.mapOptional("loss_parallel", p.lossParallel);
    io.mapOptional("router_aux_loss_coef", p.routerAuxLossCoef);
    io.mapOptional("router_bias_update_speed", p.routerBiasUpdateSpeed);
    io.mapOptional("optimizer", p.optimizer);
    io.mapOptional("lr_scheduler", p.lrScheduler);
    io.mapOptional("max_grad_norm", p.maxGradNorm);
    io.mapOptional("gradient_accumulation_steps", p.gradientAccumulationSteps);
    io.mapOptional("trainable", p.trainable);
    io.mapOptional("frozen", p.frozen);
    io.mapOptional("defer_fsdp_grad_sync", p.deferFsdpGradSync);
    io.mapOptional("enable_fsdp2_prefetch", p.prefetch);
    io.mapOptional("offload_policy", p.offloadPolicy);
    io.mapOptional("custom_tp_plan", p.customTpPlan);
    io.mapOptional("use_hf_tp_plan", p.useHfTpPlan);
    io.mapOptional("tp_size", p.tpSize);
    io.mapOptional("ep_size", p.epSize);
    io.mapOptional("dp_size", p.dpSize);
    io.mapOptional("cp_size", p.cpSize);
    io.mapOptional("dp_replicate_size", p.dpReplicateSize);
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign(std::begin(kTopKeys), std::end(kTopKeys));
    ctx->where = "the plan";
  }
};

} // namespace llvm::yaml

namespace shardc {

//===----------------------------------------------------------------------===//
// YAML: located pre-pass and assembly
//===----------------------------------------------------------------------===//

namespace {

// What YAML I/O does not keep: the position of every key (for errors found after
// parsing) and the order of the tp_plan entries (its maps are unordered).
struct KeyLocs {
  llvm::StringMap<std::string> loc;              // "mesh", "mesh.tp", "tp_plan", ... -> file:line:col
  std::vector<std::pair<std::string, std::string>> tpOrder; // (glob, file:line:col) in file order
  std::string error;                             // a shape error found here
};

std::string locOf(llvm::SourceMgr &sm, StringRef name, llvm::yaml::Node *n) {
  auto [line, col] = sm.getLineAndColumn(n->getSourceRange().Start);
  return llvm::formatv("{0}:{1}:{2}", name, line, col).str();
}

bool isNullScalar(llvm::yaml::Node *n) {
  if (llvm::isa<llvm::yaml::NullNode>(n))
    return true;
  auto *s = llvm::dyn_cast<llvm::yaml::ScalarNode>(n);
  if (!s)
    return false;
  llvm::SmallString<16> storage;
  StringRef v = s->getValue(storage);
  return v == "null" || v == "~" || v == "none" || v == "None" || v.empty();
}

KeyLocs prePass(StringRef text, StringRef name) {
  KeyLocs out;
  llvm::SourceMgr sm;
  sm.setDiagHandler([](const llvm::SMDiagnostic &, void *) {}); // YAML I/O reports syntax errors
  llvm::yaml::Stream stream(llvm::MemoryBufferRef(text, name), sm);
  auto doc = stream.begin();
  if (doc == stream.end())
    return out;
  auto *top = llvm::dyn_cast_or_null<llvm::yaml::MappingNode>(doc->getRoot());
  if (!top)
    return out;
  for (llvm::yaml::KeyValueNode &kv : *top) {
    auto *k = llvm::dyn_cast_or_null<llvm::yaml::ScalarNode>(kv.getKey());
    if (!k)
      continue;
    llvm::SmallString<32> ks;
    std::string key = k->getValue(ks).str();
    out.loc[key] = locOf(sm, name, k);
    llvm::yaml::Node *v = kv.getValue();
    if (!v)
      continue;
    if (key == "tp_plan" || key == "custom_tp_plan") {
      if (auto *m = llvm::dyn_cast<llvm::yaml::MappingNode>(v)) {
        for (llvm::yaml::KeyValueNode &e : *m) {
          if (auto *g = llvm::dyn_cast_or_null<llvm::yaml::ScalarNode>(e.getKey())) {
            llvm::SmallString<32> gs;
            out.tpOrder.emplace_back(g->getValue(gs).str(), locOf(sm, name, g));
          }
          e.skip();
        }
      } else if (auto *s = llvm::dyn_cast<llvm::yaml::ScalarNode>(v)) {
        llvm::SmallString<16> vs;
        StringRef value = s->getValue(vs);
        if (value != "auto" && out.error.empty())
          out.error = locOf(sm, name, v) + ": " + key + " is '" + value.str() +
                      "'; expected 'auto' or a map from module glob to style";
      } else if (out.error.empty()) {
        out.error = out.loc[key] + ": " + key + " must be 'auto' or a map from module glob to style";
      }
    } else if (key == "mesh" || key == "mp_policy") {
      if (auto *m = llvm::dyn_cast<llvm::yaml::MappingNode>(v))
        for (llvm::yaml::KeyValueNode &e : *m) {
          if (auto *a = llvm::dyn_cast_or_null<llvm::yaml::ScalarNode>(e.getKey())) {
            llvm::SmallString<32> as;
            out.loc[key + "." + a->getValue(as).str()] = locOf(sm, name, a);
          }
          e.skip();
        }
    } else if (key == "offload_policy") {
      if (!isNullScalar(v) && !llvm::isa<llvm::yaml::ScalarNode>(v) && out.error.empty())
        out.error = out.loc[key] + ": offload_policy is cpu (FSDP2's CPUOffloadPolicy) or null";
    }
    v->skip();
  }
  // One plan per file: the YAML reader would silently use the first of several documents.
  ++doc;
  if (doc != stream.end() && out.error.empty())
    if (llvm::yaml::Node *second = doc->getRoot(); second && !llvm::isa<llvm::yaml::NullNode>(second))
      out.error = locOf(sm, name, second) + ": a plan is one YAML document; this file has several "
                                            "(remove the '---' separators or split the file)";
  return out;
}

// Module globs: dot-separated, non-empty components of [A-Za-z0-9_*?-].
std::string checkGlob(StringRef glob) {
  if (glob.empty())
    return "empty module glob";
  llvm::SmallVector<StringRef> parts;
  glob.split(parts, '.');
  for (StringRef p : parts) {
    if (p.empty())
      return "module glob '" + glob.str() + "' has an empty component";
    for (char c : p)
      if (!llvm::isAlnum(c) && c != '_' && c != '*' && c != '?' && c != '-')
        return "module glob '" + glob.str() + "' has '" + std::string(1, c) +
               "'; globs are module paths with '*' for a component";
  }
  return "";
}

} // namespace

llvm::Expected<Plan> parsePlanText(StringRef text, StringRef name, std::optional<int64_t> worldSize) {
  KeyLocs locs = prePass(text, name);
  if (!locs.error.empty()) // shape errors YAML I/O would word less clearly
    return err(locs.error);
  ParseCtx ctx;
  ctx.where = "the plan";
  RawPlan raw;
  {
    llvm::yaml::Input yin(llvm::MemoryBufferRef(text, name), &ctx, onYamlDiag, &ctx);
    yin >> raw;
    if (yin.error()) {
      if (ctx.firstError.empty())
        ctx.firstError = (name + ": malformed plan").str();
      return err(ctx.firstError);
    }
  }
  auto at = [&](StringRef key) {
    auto it = locs.loc.find(key);
    return (it == locs.loc.end() ? name.str() : it->second) + ": ";
  };

  Plan plan = defaultPlan();
  // The mesh: `mesh:` or NeMo's *_size keys, not both for one axis.
  struct AxisSource {
    StringRef axis, alias;
    std::optional<int64_t> fromMesh, fromAlias;
  };
  RawMesh m = raw.mesh.value_or(RawMesh{});
  AxisSource sources[] = {{"dp_replicate", "dp_replicate_size", m.dpReplicate, raw.dpReplicateSize},
                          {"dp_shard", "dp_size", m.dpShard, raw.dpSize},
                          {"cp", "cp_size", m.cp, raw.cpSize},
                          {"tp", "tp_size", m.tp, raw.tpSize}};
  for (const AxisSource &s : sources) {
    if (s.fromMesh && s.fromAlias)
      return err(at(s.alias) + s.alias + " and mesh." + s.axis + " both given; keep one");
    std::optional<int64_t> v = s.fromMesh ? s.fromMesh : s.fromAlias;
    if (!v)
      continue;
    std::string key = s.fromMesh ? ("mesh." + s.axis).str() : s.alias.str();
    if (auto e = checkAxisSize(s.axis, *v))
      return err(at(key) + llvm::toString(std::move(e)));
    setAxis(plan.mesh, s.axis, *v);
  }
  // ep: the inner factor of dp_shard x cp (resolveMesh checks that it divides).
  if (m.ep && raw.epSize)
    return err(at("ep_size") + "ep_size and mesh.ep both given; keep one");
  if (std::optional<int64_t> ep = m.ep ? m.ep : raw.epSize) {
    StringRef key = m.ep ? "mesh.ep" : "ep_size";
    if (*ep < 1 || *ep > kMaxAxisSize)
      return err(at(key) + llvm::formatv("mesh axis ep has size {0}; sizes are positive", *ep).str());
    plan.mesh.ep = *ep;
  }
  plan.meshLoc = locs.loc.count("mesh") ? locs.loc["mesh"] : name.str();
  if (worldSize || plan.mesh.isResolved())
    if (auto e = resolveMesh(plan.mesh, worldSize))
      return err(plan.meshLoc + ": " + llvm::toString(std::move(e)));

  // The TP plan: absent means auto (NeMo and HF use the model's plan by default).
  if (raw.tpPlan && raw.customTpPlan)
    return err(at("custom_tp_plan") + "tp_plan and custom_tp_plan (its NeMo name) both given; keep one");
  std::optional<RawTpPlan> tp = raw.tpPlan ? raw.tpPlan : raw.customTpPlan;
  if (tp && tp->kind == llvm::yaml::NodeKind::Map) {
    plan.tpAuto = false;
    for (const auto &[glob, gloc] : locs.tpOrder) {
      auto it = llvm::find_if(tp->entries, [&](const auto &e) { return e.first == glob; });
      if (it == tp->entries.end())
        continue;
      if (std::string g = checkGlob(glob); !g.empty())
        return err(gloc + ": " + g);
      plan.tpPlan.push_back(*it);
      plan.tpPlanLocs.push_back(gloc);
    }
  }
  if (raw.useHfTpPlan) {
    if (*raw.useHfTpPlan && tp && tp->kind == llvm::yaml::NodeKind::Map)
      return err(at("use_hf_tp_plan") + "use_hf_tp_plan: true contradicts the tp_plan map; keep one");
    if (!*raw.useHfTpPlan && (!tp || tp->kind != llvm::yaml::NodeKind::Map))
      return err(at("use_hf_tp_plan") + "use_hf_tp_plan: false needs a tp_plan map (or tp_plan: auto)");
  }

  plan.sequenceParallel = raw.sequenceParallel.value_or(false);
  plan.expertTp = raw.expertTp.value_or(false);
  if (raw.mp) {
    plan.mp.paramDtype = raw.mp->param.value_or(plan.mp.paramDtype);
    plan.mp.reduceDtype = raw.mp->reduce.value_or(plan.mp.reduceDtype);
    plan.mp.outputDtype = raw.mp->output.value_or(plan.mp.outputDtype);
    plan.mp.masterDtype = raw.mp->master.value_or(plan.mp.masterDtype);
    if (plan.mp.masterDtype == DType::FP16)
      return err(at("mp_policy.master_dtype") + "master_dtype: fp32 or bf16");
    // FSDP2 casts floating inputs to param_dtype; shardc always does (the graph is typed).
    if (raw.mp->castForwardInputs && !*raw.mp->castForwardInputs)
      return err(at("mp_policy.cast_forward_inputs") +
                 "cast_forward_inputs: false is not supported (inputs are always cast to param_dtype)");
  }
  plan.reshardAfterForward = raw.reshardAfterForward.value_or(ReshardAfterForward::Auto);
  plan.activationCheckpointing = raw.activationCheckpointing.value_or(Checkpointing::None);
  plan.mode = raw.mode.value_or(Mode::Inference);
  if (raw.loss && raw.loss->labels) {
    StringRef labels = *raw.loss->labels;
    if (labels != "input" && labels != "input_ids")
      return err(at("loss") + "unknown loss labels '" + labels + "'" + didYouMean(labels, {"input_ids", "input"}) +
                 " (labels: input_ids, the shifted token ids; input, a graph input `labels` [B, S])");
    plan.lossLabelsInput = labels == "input";
  }
  if (raw.loss && plan.mode != Mode::Train)
    return err(at("loss") + "loss: needs mode: train");
  if (raw.optimizer) {
    if (plan.mode != Mode::Train)
      return err(at("optimizer") + "optimizer: needs mode: train");
    StringRef name = raw.optimizer->name.value_or("adamw");
    if (name != "adamw")
      return err(at("optimizer") + "unknown optimizer '" + name + "'" + didYouMean(name, {"adamw"}) +
                 " (optimizers: adamw)");
    Plan::AdamW o;
    o.lr = raw.optimizer->lr.value_or(o.lr);
    o.eps = raw.optimizer->eps.value_or(o.eps);
    o.weightDecay = raw.optimizer->weightDecay.value_or(o.weightDecay);
    if (auto &betas = raw.optimizer->betas) {
      if (betas->size() != 2)
        return err(at("optimizer") + "optimizer.betas: two values [beta1, beta2], got " + std::to_string(betas->size()));
      o.beta1 = (*betas)[0];
      o.beta2 = (*betas)[1];
    }
    if (!(o.lr >= 0) || !(o.eps > 0) || !(o.weightDecay >= 0) || !(o.beta1 >= 0 && o.beta1 < 1) ||
        !(o.beta2 >= 0 && o.beta2 < 1))
      return err(at("optimizer") + "optimizer: lr and weight_decay must be >= 0, eps > 0, betas in [0, 1)");
    plan.optimizer = o;
  }
  if (raw.lrScheduler) {
    if (!plan.optimizer)
      return err(at("lr_scheduler") + "lr_scheduler: needs an optimizer (it sets the optimizer's lr per step)");
    if (!raw.lrScheduler->totalSteps)
      return err(at("lr_scheduler") + "lr_scheduler: needs total_steps (the step at which the cosine reaches min_lr)");
    Plan::LrScheduler sch;
    sch.warmupSteps = raw.lrScheduler->warmupSteps.value_or(0);
    sch.totalSteps = *raw.lrScheduler->totalSteps;
    sch.minLr = raw.lrScheduler->minLr.value_or(0.0);
    if (sch.warmupSteps < 0 || sch.totalSteps <= sch.warmupSteps || !(sch.minLr >= 0) || sch.minLr > plan.optimizer->lr)
      return err(at("lr_scheduler") + "lr_scheduler: needs 0 <= warmup_steps < total_steps and 0 <= min_lr <= lr");
    plan.lrScheduler = sch;
  }
  if (raw.maxGradNorm) {
    if (!plan.optimizer)
      return err(at("max_grad_norm") + "max_grad_norm: needs an optimizer (it clips the gradients before the update)");
    if (!(*raw.maxGradNorm > 0))
      return err(at("max_grad_norm") + "max_grad_norm: must be > 0");
    plan.maxGradNorm = *raw.maxGradNorm;
  }
  for (auto [key, raw, out] : {std::tuple{"trainable", &raw.trainable, &plan.trainableGlobs},
                                {"frozen", &raw.frozen, &plan.frozenGlobs}}) {
    if (!*raw)
      continue;
    if (plan.mode != Mode::Train)
      return err(at(key) + key + ": needs mode: train");
    for (const std::string &g : **raw)
      if (g.empty())
        return err(at(key) + key + ": an empty glob");
    *out = **raw;
  }
  if (plan.mp.masterDtype == DType::BF16 && (plan.mode != Mode::Train || plan.mp.paramDtype != DType::BF16))
    return err(at("mp_policy.master_dtype") +
               "master_dtype: bf16 keeps bf16 master weights of a bf16 model: it needs mode: train and param_dtype: bf16");
  if (auto g = raw.gradientAccumulationSteps) {
    if (plan.mode != Mode::Train)
      return err(at("gradient_accumulation_steps") + "gradient_accumulation_steps: needs mode: train");
    if (*g < 1)
      return err(at("gradient_accumulation_steps") + "gradient_accumulation_steps: must be >= 1");
    plan.gradientAccumulationSteps = *g;
  }
  // YAML's null (null, ~) reaches the string as its spelling: no offload, as `none`.
  if (raw.offloadPolicy && !llvm::is_contained({"none", "null", "Null", "NULL", "~", ""}, *raw.offloadPolicy)) {
    if (*raw.offloadPolicy != "cpu")
      return err(at("offload_policy") + "offload_policy is cpu (FSDP2's CPUOffloadPolicy) or null, not '" +
                 *raw.offloadPolicy + "'");
    if (plan.mode != Mode::Train || !plan.optimizer)
      return err(at("offload_policy") + "offload_policy: cpu needs mode: train and an optimizer (it keeps the "
                                        "masters, gradients and optimizer state in host memory)");
    plan.cpuOffload = true;
  }
  plan.deferFsdpGradSync = raw.deferFsdpGradSync.value_or(true);
  plan.fsdpPrefetch = raw.prefetch.value_or(true);
  if (raw.lossParallel) {
    if (plan.mode != Mode::Train)
      return err(at("loss_parallel") + "loss_parallel: needs mode: train (it shards the training loss)");
    plan.lossParallel = raw.lossParallel;
  }
  if (raw.routerAuxLossCoef) {
    if (plan.mode != Mode::Train)
      return err(at("router_aux_loss_coef") + "router_aux_loss_coef: needs mode: train (it adds to the training loss)");
    if (!(*raw.routerAuxLossCoef >= 0))
      return err(at("router_aux_loss_coef") + "router_aux_loss_coef: must be >= 0");
    plan.routerAuxLossCoef = *raw.routerAuxLossCoef;
  }
  if (raw.routerBiasUpdateSpeed) {
    if (plan.mode != Mode::Train || !plan.optimizer)
      return err(at("router_bias_update_speed") + "router_bias_update_speed: needs mode: train and an optimizer (the "
                                                  "biases move once a step)");
    if (!(*raw.routerBiasUpdateSpeed > 0))
      return err(at("router_bias_update_speed") + "router_bias_update_speed: must be > 0");
    plan.routerBiasUpdateSpeed = *raw.routerBiasUpdateSpeed;
  }
  return plan;
}

llvm::Expected<Plan> parsePlanFile(StringRef path, std::optional<int64_t> worldSize) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return err("cannot read plan " + path + ": " + buf.getError().message());
  return parsePlanText((*buf)->getBuffer(), path, worldSize);
}

} // namespace shardc
