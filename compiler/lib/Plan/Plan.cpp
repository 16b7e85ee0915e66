// The plan: YAML parsing (LLVM YAML I/O plus a located pre-pass), mesh resolution, glob
// matching, the built-in tensor-parallel plans, printing and the sc.plan attribute.
#include "shardc/Plan/Plan.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/SourceMgr.h"
#include "llvm/Support/YAMLParser.h"
#include "llvm/Support/YAMLTraits.h"

#include <set>

using namespace mlir;
using llvm::StringRef;

namespace shardc {

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

namespace {

constexpr StringRef kStyleNames[] = {"colwise",         "rowwise",          "colwise_rep",       "rowwise_rep",
                                     "packed_colwise", "embedding_rowwise", "sequence_parallel", "replicate"};
constexpr StringRef kAxisNames[] = {"dp_replicate", "dp_shard", "cp", "tp"};
constexpr int64_t kMaxAxisSize = 1 << 20; // keeps products far from overflow

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

} // namespace

StringRef stringifyTpStyle(TpStyle style) { return kStyleNames[static_cast<int>(style)]; }

std::optional<TpStyle> parseTpStyle(StringRef name) {
  for (auto [i, n] : llvm::enumerate(kStyleNames))
    if (n == name)
      return static_cast<TpStyle>(i);
  return std::nullopt;
}

llvm::ArrayRef<StringRef> allTpStyleNames() { return kStyleNames; }

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

static std::optional<DType> parseDType(StringRef s) {
  s.consume_front("torch.");
  if (s == "bf16" || s == "bfloat16")
    return DType::BF16;
  if (s == "fp16" || s == "float16" || s == "half")
    return DType::FP16;
  if (s == "fp32" || s == "float32" || s == "float")
    return DType::FP32;
  return std::nullopt;
}

static std::optional<Mode> parseMode(StringRef s) {
  if (s == "inference")
    return Mode::Inference;
  if (s == "train")
    return Mode::Train;
  return std::nullopt;
}

static StringRef stringifyMode(Mode m) { return m == Mode::Train ? "train" : "inference"; }

StringRef stringifyModelFamily(ModelFamily f) {
  switch (f) {
  case ModelFamily::Llama:
    return "llama";
  case ModelFamily::GPT2:
    return "gpt2";
  case ModelFamily::Bert:
    return "bert";
  case ModelFamily::Unknown:
    return "unknown";
  }
  return "unknown";
}

//===----------------------------------------------------------------------===//
// Mesh
//===----------------------------------------------------------------------===//

int64_t Mesh::size(StringRef axis) const {
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
  return s;
}

static llvm::Error checkAxisSize(StringRef axis, int64_t size) {
  if (size == -1 && axis != "dp_shard")
    return err("mesh axis " + axis + " is -1; only dp_shard may be -1 (inferred from the world size)");
  if (size == 0 || size < -1 || size > kMaxAxisSize)
    return err(llvm::formatv("mesh axis {0} has size {1}; sizes are positive (dp_shard may be -1)", axis, size).str());
  return llvm::Error::success();
}

static void setAxis(Mesh &mesh, StringRef axis, int64_t size) {
  for (auto &a : mesh.axes)
    if (a.first == axis)
      a.second = size;
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
  if (worldSize && mesh.worldSize() != *worldSize)
    return err(llvm::formatv("mesh {0} has {1} devices but the world size is {2}", mesh.str(), mesh.worldSize(),
                             *worldSize)
                   .str());
  return llvm::Error::success();
}

static std::string rejectedAxisMessage(StringRef axis) {
  if (axis == "pp" || axis == "pp_size")
    return "pipeline parallelism (pp) is not supported yet";
  if (axis == "ep" || axis == "ep_size" || axis == "etp" || axis == "expert" || axis == "moe")
    return "expert parallelism (" + axis.str() + ") is not supported yet";
  return "";
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

//===----------------------------------------------------------------------===//
// YAML: raw structures read by YAML I/O
//===----------------------------------------------------------------------===//

namespace {

using TpEntries = std::vector<std::pair<std::string, TpStyle>>;

struct RawMesh {
  std::optional<int64_t> dpReplicate, dpShard, cp, tp;
};
struct RawMp {
  std::optional<DType> param, reduce, output;
  std::optional<bool> castForwardInputs;
};
// `tp_plan`: a scalar (auto) or a map glob -> style.
struct RawTpPlan {
  llvm::yaml::NodeKind kind = llvm::yaml::NodeKind::Map;
  std::string scalar;
  TpEntries entries;
  std::vector<std::string> sequence; // only to report a sequence as an error
};
struct RawPlan {
  std::optional<RawMesh> mesh;
  std::optional<RawTpPlan> tpPlan, customTpPlan;
  std::optional<bool> sequenceParallel, reshardAfterForward, activationCheckpointing, deferFsdpGradSync, prefetch,
      useHfTpPlan;
  std::optional<RawMp> mp;
  std::optional<Mode> mode;
  std::optional<std::string> offloadPolicy;
  // NeMo FSDP2Manager sizes, aliases of the mesh axes.
  std::optional<int64_t> tpSize, dpSize, cpSize, dpReplicateSize;
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
                              "mp_policy",
                              "reshard_after_forward",
                              "activation_checkpointing",
                              "mode",
                              "defer_fsdp_grad_sync",
                              "enable_fsdp2_prefetch",
                              "offload_policy",
                              "custom_tp_plan",
                              "use_hf_tp_plan",
                              "tp_size",
                              "dp_size",
                              "cp_size",
                              "dp_replicate_size"};
const StringRef kMpKeys[] = {"param_dtype", "reduce_dtype", "output_dtype", "cast_forward_inputs"};

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
    auto *ctx = static_cast<ParseCtx *>(io.getContext());
    ctx->knownKeys.assign(std::begin(kAxisNames), std::end(kAxisNames));
    ctx->where = "mesh";
  }
};

template <> struct MappingTraits<RawMp> {
  static void mapping(IO &io, RawMp &m) {
    io.mapOptional("param_dtype", m.param);
    io.mapOptional("reduce_dtype", m.reduce);
    io.mapOptional("output_dtype", m.output);
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

template <> struct MappingTraits<RawPlan> {
  static void mapping(IO &io, RawPlan &p) {
    io.mapOptional("mesh", p.mesh);
    io.mapOptional("tp_plan", p.tpPlan);
    io.mapOptional("sequence_parallel", p.sequenceParallel);
    io.mapOptional("mp_policy", p.mp);
    io.mapOptional("reshard_after_forward", p.reshardAfterForward);
    io.mapOptional("activation_checkpointing", p.activationCheckpointing);
    io.mapOptional("mode", p.mode);
    io.mapOptional("defer_fsdp_grad_sync", p.deferFsdpGradSync);
    io.mapOptional("enable_fsdp2_prefetch", p.prefetch);
    io.mapOptional("offload_policy", p.offloadPolicy);
    io.mapOptional("custom_tp_plan", p.customTpPlan);
    io.mapOptional("use_hf_tp_plan", p.useHfTpPlan);
    io.mapOptional("tp_size", p.tpSize);
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
      if (!isNullScalar(v) && out.error.empty())
        out.error = out.loc[key] + ": CPU offload (offload_policy) is not supported; remove it or set it to null";
    }
    v->skip();
  }
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
  if (raw.mp) {
    plan.mp.paramDtype = raw.mp->param.value_or(plan.mp.paramDtype);
    plan.mp.reduceDtype = raw.mp->reduce.value_or(plan.mp.reduceDtype);
    plan.mp.outputDtype = raw.mp->output.value_or(plan.mp.outputDtype);
    // FSDP2 casts floating inputs to param_dtype; shardc always does (the graph is typed).
    if (raw.mp->castForwardInputs && !*raw.mp->castForwardInputs)
      return err(at("mp_policy.cast_forward_inputs") +
                 "cast_forward_inputs: false is not supported (inputs are always cast to param_dtype)");
  }
  plan.reshardAfterForward = raw.reshardAfterForward.value_or(true);
  plan.activationCheckpointing = raw.activationCheckpointing.value_or(false);
  plan.mode = raw.mode.value_or(Mode::Inference);
  plan.deferFsdpGradSync = raw.deferFsdpGradSync.value_or(false);
  plan.fsdpPrefetch = raw.prefetch.value_or(true);
  return plan;
}

llvm::Expected<Plan> parsePlanFile(StringRef path, std::optional<int64_t> worldSize) {
  auto buf = llvm::MemoryBuffer::getFile(path, /*IsText=*/true);
  if (!buf)
    return err("cannot read plan " + path + ": " + buf.getError().message());
  return parsePlanText((*buf)->getBuffer(), path, worldSize);
}

//===----------------------------------------------------------------------===//
// Matching
//===----------------------------------------------------------------------===//

// '*' any run, '?' one character, inside one path component.
static bool wildcardMatch(StringRef pat, StringRef s) {
  if (pat.empty())
    return s.empty();
  if (pat[0] == '*') {
    for (size_t i = 0; i <= s.size(); ++i)
      if (wildcardMatch(pat.drop_front(), s.drop_front(i)))
        return true;
    return false;
  }
  if (s.empty() || (pat[0] != '?' && pat[0] != s[0]))
    return false;
  return wildcardMatch(pat.drop_front(), s.drop_front());
}

bool globMatches(StringRef glob, StringRef modulePath) {
  llvm::SmallVector<StringRef> g, p;
  glob.split(g, '.');
  modulePath.split(p, '.');
  if (glob.empty() || g.size() > p.size())
    return false;
  size_t off = p.size() - g.size();
  for (size_t i = 0; i < g.size(); ++i)
    if (!wildcardMatch(g[i], p[off + i]))
      return false;
  return true;
}

std::optional<TpStyle> Plan::styleFor(StringRef modulePath) const {
  if (!resolved.empty()) {
    auto it = resolved.find(modulePath.str());
    if (it == resolved.end())
      return std::nullopt;
    return it->second;
  }
  for (const auto &[glob, style] : tpPlan)
    if (globMatches(glob, modulePath))
      return style;
  return std::nullopt;
}

std::vector<std::string> collectModulePaths(ModuleOp module) {
  std::set<std::string> paths;
  auto addParam = [&](StringRef paramName) {
    size_t dot = paramName.rfind('.');
    if (dot != StringRef::npos && dot > 0)
      paths.insert(paramName.substr(0, dot).str());
  };
  module->walk([&](Operation *op) {
    std::string p = modulePathOf(op->getLoc());
    if (!p.empty())
      paths.insert(p);
    if (auto param = dyn_cast<sc::ParamOp>(op)) {
      addParam(param.getName());
      for (StringRef t : param.getTied().getAsValueRange<StringAttr>())
        addParam(t);
    }
  });
  return {paths.begin(), paths.end()};
}

static bool anyEndsWith(llvm::ArrayRef<std::string> paths, StringRef suffix) {
  return llvm::any_of(paths, [&](const std::string &p) { return globMatches(suffix, p); });
}

ModelFamily detectModelFamily(llvm::ArrayRef<std::string> paths) {
  if (anyEndsWith(paths, "self_attn.q_proj") || anyEndsWith(paths, "mlp.gate_proj"))
    return ModelFamily::Llama;
  if (anyEndsWith(paths, "attn.c_attn") || anyEndsWith(paths, "mlp.c_fc"))
    return ModelFamily::GPT2;
  if (anyEndsWith(paths, "attention.self.query"))
    return ModelFamily::Bert;
  return ModelFamily::Unknown;
}

std::vector<std::pair<std::string, TpStyle>> autoTpPlan(ModelFamily family, bool sp) {
  using S = TpStyle;
  std::vector<std::pair<std::string, TpStyle>> r;
  switch (family) {
  case ModelFamily::Llama: // Hugging Face's base_model_tp_plan of Llama, Qwen2 and Mistral
    r = {{"layers.*.self_attn.q_proj", S::Colwise}, {"layers.*.self_attn.k_proj", S::Colwise},
         {"layers.*.self_attn.v_proj", S::Colwise}, {"layers.*.self_attn.o_proj", S::Rowwise},
         {"layers.*.mlp.gate_proj", S::Colwise},    {"layers.*.mlp.up_proj", S::Colwise},
         {"layers.*.mlp.down_proj", S::Rowwise}};
    if (sp)
      r.insert(r.end(), {{"layers.*.input_layernorm", S::SequenceParallel},
                         {"layers.*.post_attention_layernorm", S::SequenceParallel},
                         {"model.norm", S::SequenceParallel}});
    break;
  case ModelFamily::GPT2: // c_attn holds [q;k;v] in one Conv1D: each part is split
    r = {{"h.*.attn.c_attn", S::PackedColwise},
         {"h.*.attn.c_proj", S::Rowwise},
         {"h.*.mlp.c_fc", S::Colwise},
         {"h.*.mlp.c_proj", S::Rowwise}};
    if (sp)
      r.insert(r.end(), {{"h.*.ln_1", S::SequenceParallel}, {"h.*.ln_2", S::SequenceParallel},
                         {"ln_f", S::SequenceParallel}});
    break;
  case ModelFamily::Bert:
    r = {{"layer.*.attention.self.query", S::Colwise}, {"layer.*.attention.self.key", S::Colwise},
         {"layer.*.attention.self.value", S::Colwise}, {"layer.*.attention.output.dense", S::Rowwise},
         {"layer.*.intermediate.dense", S::Colwise},   {"layer.*.output.dense", S::Rowwise}};
    if (sp) // the residual stream is sequence-sharded from the embeddings' norm on
      r.insert(r.end(), {{"embeddings.LayerNorm", S::SequenceParallel},
                         {"layer.*.attention.output.LayerNorm", S::SequenceParallel},
                         {"layer.*.output.LayerNorm", S::SequenceParallel}});
    break;
  case ModelFamily::Unknown:
    break;
  }
  return r;
}

// The paths most like a glob: each path's last components (as many as the glob has, with
// the glob's '*' components copied over) compared by edit distance.
static std::string nearestPaths(StringRef glob, llvm::ArrayRef<std::string> paths) {
  llvm::SmallVector<StringRef> g;
  glob.split(g, '.');
  std::vector<std::pair<unsigned, std::string>> scored;
  for (const std::string &path : paths) {
    llvm::SmallVector<StringRef> p;
    StringRef(path).split(p, '.');
    size_t n = std::min(p.size(), g.size());
    std::string suffix;
    for (size_t i = 0; i < n; ++i) {
      StringRef gi = g[g.size() - n + i];
      suffix += (i ? "." : "") + (gi == "*" ? std::string("*") : p[p.size() - n + i].str());
    }
    scored.emplace_back(glob.edit_distance(suffix), path);
  }
  llvm::sort(scored);
  std::string out;
  for (size_t i = 0; i < scored.size() && i < 3; ++i)
    out += (i ? ", " : "") + scored[i].second;
  return out.empty() ? "(the model has no module paths)" : out;
}

llvm::Expected<std::map<std::string, TpStyle>>
resolveTpPlan(const Plan &plan, llvm::ArrayRef<std::string> modulePaths, ModelFamily family) {
  std::vector<std::pair<std::string, TpStyle>> rules = plan.tpPlan;
  if (plan.tpAuto) {
    if (family == ModelFamily::Unknown && plan.mesh.size("tp") > 1)
      return err("tp_plan: auto does not recognise this model (no module of Llama/Qwen2/Mistral "
                 "self_attn.q_proj, GPT-2 attn.c_attn or BERT attention.self.query); write tp_plan globs");
    rules = autoTpPlan(family, plan.sequenceParallel);
  }
  auto locOf = [&](size_t i) {
    return !plan.tpAuto && i < plan.tpPlanLocs.size() && !plan.tpPlanLocs[i].empty() ? plan.tpPlanLocs[i] + ": "
                                                                                       : std::string();
  };
  std::map<std::string, std::pair<TpStyle, size_t>> chosen;
  for (auto [i, rule] : llvm::enumerate(rules)) {
    bool matched = false;
    for (const std::string &path : modulePaths) {
      if (!globMatches(rule.first, path))
        continue;
      matched = true;
      auto [it, inserted] = chosen.try_emplace(path, rule.second, i);
      if (!inserted && it->second.first != rule.second)
        return err(llvm::formatv("{0}module '{1}' gets style {2} from glob '{3}' and {4} from glob '{5}'", locOf(i), path,
                                 stringifyTpStyle(it->second.first), rules[it->second.second].first,
                                 stringifyTpStyle(rule.second), rule.first)
                       .str());
    }
    // Built-in globs may name modules a variant lacks; a user's glob must match.
    if (!matched && !plan.tpAuto)
      return err(locOf(i) + "glob '" + rule.first + "' matches no module; nearest: " +
                 nearestPaths(rule.first, modulePaths));
  }
  std::map<std::string, TpStyle> out;
  for (auto &[path, sc] : chosen)
    out[path] = sc.first;
  return out;
}

static std::string styleWords(std::optional<TpStyle> s) {
  return s ? stringifyTpStyle(*s).str() : std::string("not sharded");
}

llvm::Error checkTiedParam(const Plan &plan, StringRef param, llvm::ArrayRef<std::string> modulePaths) {
  if (modulePaths.empty())
    return llvm::Error::success();
  std::optional<TpStyle> first = plan.styleFor(modulePaths.front());
  StorageSplit split = first ? storageSplitOf(*first) : StorageSplit::None;
  for (const std::string &path : modulePaths.drop_front()) {
    std::optional<TpStyle> s = plan.styleFor(path);
    if ((s ? storageSplitOf(*s) : StorageSplit::None) != split)
      return err(llvm::formatv("tied parameter '{0}' has one storage but module '{1}' ({2}) and module '{3}' ({4}) "
                               "shard it differently (e.g. embedding_rowwise goes with colwise/colwise_rep)",
                               param, modulePaths.front(), styleWords(first), path, styleWords(s))
                     .str());
  }
  return llvm::Error::success();
}

llvm::Error checkTiedParams(const Plan &plan, ModuleOp module) {
  llvm::Error result = llvm::Error::success();
  auto ownerOf = [](StringRef name) { return name.substr(0, name.rfind('.')).str(); };
  module->walk([&](sc::ParamOp p) {
    if (p.getTied().empty())
      return WalkResult::advance();
    std::vector<std::string> mods{ownerOf(p.getName())};
    for (StringRef t : p.getTied().getAsValueRange<StringAttr>())
      mods.push_back(ownerOf(t));
    if (auto e = checkTiedParam(plan, p.getName(), mods)) {
      result = std::move(e);
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  return result;
}

llvm::Expected<Plan> choosePlan(ModuleOp module, StringRef planPath, StringRef meshSpec,
                                std::optional<int64_t> worldSize) {
  Plan plan = defaultPlan();
  if (!planPath.empty()) {
    // The mesh is checked against the world size after the override, not before.
    auto parsed = parsePlanFile(planPath, std::nullopt);
    if (!parsed)
      return parsed.takeError();
    plan = std::move(*parsed);
  }
  if (!meshSpec.empty())
    if (auto e = applyMeshOverride(plan, meshSpec))
      return std::move(e);
  if (auto e = resolveMesh(plan.mesh, worldSize)) {
    std::string where = !meshSpec.empty() ? "--mesh " + meshSpec.str() : plan.meshLoc;
    return err((where.empty() ? "" : where + ": ") + llvm::toString(std::move(e)));
  }
  std::vector<std::string> paths = collectModulePaths(module);
  ModelFamily family = detectModelFamily(paths);
  auto resolved = resolveTpPlan(plan, paths, family);
  if (!resolved)
    return resolved.takeError();
  if (plan.tpAuto && family != ModelFamily::Unknown) {
    plan.tpPlan = autoTpPlan(family, plan.sequenceParallel);
    plan.tpPlanLocs.assign(plan.tpPlan.size(), "");
    plan.tpAuto = false;
  }
  plan.resolved = std::move(*resolved);
  if (auto e = checkTiedParams(plan, module))
    return std::move(e);
  return plan;
}

//===----------------------------------------------------------------------===//
// Printing and the IR attribute
//===----------------------------------------------------------------------===//

static std::string yamlQuote(StringRef s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      q += '\\';
    q += c;
  }
  return q + "\"";
}

static StringRef yamlBool(bool b) { return b ? "true" : "false"; }

std::string printPlanYaml(const Plan &plan, const std::map<std::string, TpStyle> &resolved) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "# shardc plan (docs/plan.md); outermost mesh axis first\n";
  os << "mesh: {";
  for (auto [i, a] : llvm::enumerate(plan.mesh.axes))
    os << (i ? ", " : "") << a.first << ": " << a.second;
  os << "}";
  if (plan.mesh.isResolved())
    os << "   # world size " << plan.mesh.worldSize();
  os << "\n";
  if (plan.tpAuto) {
    os << "tp_plan: auto\n";
  } else if (plan.tpPlan.empty()) {
    os << "tp_plan: {}\n";
  } else {
    os << "tp_plan:\n";
    for (const auto &[glob, style] : plan.tpPlan)
      os << "  " << yamlQuote(glob) << ": " << stringifyTpStyle(style) << "\n";
  }
  os << "sequence_parallel: " << yamlBool(plan.sequenceParallel) << "\n";
  os << "mp_policy: {param_dtype: " << stringifyDType(plan.mp.paramDtype)
     << ", reduce_dtype: " << stringifyDType(plan.mp.reduceDtype)
     << ", output_dtype: " << stringifyDType(plan.mp.outputDtype) << "}\n";
  os << "reshard_after_forward: " << yamlBool(plan.reshardAfterForward) << "\n";
  os << "activation_checkpointing: " << yamlBool(plan.activationCheckpointing) << "\n";
  os << "mode: " << stringifyMode(plan.mode) << "\n";
  os << "defer_fsdp_grad_sync: " << yamlBool(plan.deferFsdpGradSync) << "\n";
  os << "enable_fsdp2_prefetch: " << yamlBool(plan.fsdpPrefetch) << "\n";
  if (!resolved.empty()) {
    os << "# resolved: " << resolved.size() << " modules\n";
    for (const auto &[path, style] : resolved)
      os << "#   " << path << ": " << stringifyTpStyle(style) << "\n";
  }
  return s;
}

DictionaryAttr planToAttr(MLIRContext *ctx, const Plan &plan) {
  Builder b(ctx);
  SmallVector<Attribute> axisNames;
  SmallVector<int64_t> shape;
  for (const auto &[name, size] : plan.mesh.axes) {
    axisNames.push_back(b.getStringAttr(name));
    shape.push_back(size);
  }
  SmallVector<NamedAttribute> attrs{
      b.getNamedAttr("mesh_axes", b.getArrayAttr(axisNames)),
      b.getNamedAttr("mesh_shape", b.getDenseI64ArrayAttr(shape)),
      b.getNamedAttr("sequence_parallel", b.getBoolAttr(plan.sequenceParallel)),
      b.getNamedAttr("mp_policy", b.getDictionaryAttr({
                                      b.getNamedAttr("param_dtype", b.getStringAttr(stringifyDType(plan.mp.paramDtype))),
                                      b.getNamedAttr("reduce_dtype", b.getStringAttr(stringifyDType(plan.mp.reduceDtype))),
                                      b.getNamedAttr("output_dtype", b.getStringAttr(stringifyDType(plan.mp.outputDtype))),
                                  })),
      b.getNamedAttr("reshard_after_forward", b.getBoolAttr(plan.reshardAfterForward)),
      b.getNamedAttr("activation_checkpointing", b.getBoolAttr(plan.activationCheckpointing)),
      b.getNamedAttr("mode", b.getStringAttr(stringifyMode(plan.mode))),
      b.getNamedAttr("defer_fsdp_grad_sync", b.getBoolAttr(plan.deferFsdpGradSync)),
      b.getNamedAttr("enable_fsdp2_prefetch", b.getBoolAttr(plan.fsdpPrefetch)),
  };
  if (plan.tpAuto) {
    attrs.push_back(b.getNamedAttr("tp_plan", b.getStringAttr("auto")));
  } else {
    SmallVector<Attribute> rules;
    for (const auto &[glob, style] : plan.tpPlan)
      rules.push_back(b.getStrArrayAttr({glob, stringifyTpStyle(style)}));
    attrs.push_back(b.getNamedAttr("tp_plan", b.getArrayAttr(rules)));
  }
  if (!plan.resolved.empty()) {
    SmallVector<NamedAttribute> res;
    for (const auto &[path, style] : plan.resolved)
      res.push_back(b.getNamedAttr(path, b.getStringAttr(stringifyTpStyle(style))));
    attrs.push_back(b.getNamedAttr("resolved", b.getDictionaryAttr(res)));
  }
  return b.getDictionaryAttr(attrs);
}

llvm::Expected<Plan> planFromAttr(DictionaryAttr attr) {
  if (!attr)
    return err("sc.plan: missing");
  auto bad = [](const llvm::Twine &what) { return err("sc.plan: " + what); };
  Plan plan;
  auto names = attr.getAs<ArrayAttr>("mesh_axes");
  auto shape = attr.getAs<DenseI64ArrayAttr>("mesh_shape");
  if (!names || !shape || names.size() != static_cast<size_t>(shape.size()))
    return bad("mesh_axes and mesh_shape must be an array of names and an array<i64> of the same length");
  Mesh mesh;
  mesh.axes.clear();
  for (auto [n, size] : llvm::zip(names, shape.asArrayRef())) {
    auto name = dyn_cast<StringAttr>(n);
    if (!name || !llvm::is_contained(kAxisNames, name.getValue()))
      return bad("unknown mesh axis in mesh_axes");
    if (auto e = checkAxisSize(name.getValue(), size))
      return bad(llvm::toString(std::move(e)));
    mesh.axes.emplace_back(name.getValue().str(), size);
  }
  if (mesh.axes.size() != std::size(kAxisNames) ||
      !llvm::all_of(llvm::enumerate(mesh.axes), [](auto a) { return a.value().first == kAxisNames[a.index()]; }))
    return bad("mesh_axes must be [dp_replicate, dp_shard, cp, tp]");
  plan.mesh = mesh;

  auto getBool = [&](StringRef key, bool &out) -> llvm::Error {
    if (auto a = attr.get(key)) {
      auto b = dyn_cast<BoolAttr>(a);
      if (!b)
        return bad(key + " must be a bool");
      out = b.getValue();
    }
    return llvm::Error::success();
  };
  for (auto [key, field] : {std::pair<StringRef, bool *>{"sequence_parallel", &plan.sequenceParallel},
                            {"reshard_after_forward", &plan.reshardAfterForward},
                            {"activation_checkpointing", &plan.activationCheckpointing},
                            {"defer_fsdp_grad_sync", &plan.deferFsdpGradSync},
                            {"enable_fsdp2_prefetch", &plan.fsdpPrefetch}})
    if (auto e = getBool(key, *field))
      return std::move(e);
  if (auto mode = attr.getAs<StringAttr>("mode")) {
    auto m = parseMode(mode.getValue());
    if (!m)
      return bad("unknown mode '" + mode.getValue() + "'");
    plan.mode = *m;
  }
  if (auto mp = attr.getAs<DictionaryAttr>("mp_policy")) {
    for (auto [key, field] : {std::pair<StringRef, DType *>{"param_dtype", &plan.mp.paramDtype},
                              {"reduce_dtype", &plan.mp.reduceDtype},
                              {"output_dtype", &plan.mp.outputDtype}}) {
      auto s = mp.getAs<StringAttr>(key);
      auto d = s ? parseDType(s.getValue()) : std::nullopt;
      if (!d)
        return bad("mp_policy." + key + " must be bf16, fp16 or fp32");
      *field = *d;
    }
  }
  Attribute tp = attr.get("tp_plan");
  if (auto s = dyn_cast_or_null<StringAttr>(tp)) {
    if (s.getValue() != "auto")
      return bad("tp_plan must be \"auto\" or [[glob, style], ...]");
    plan.tpAuto = true;
  } else if (auto rules = dyn_cast_or_null<ArrayAttr>(tp)) {
    for (Attribute r : rules) {
      auto pair = dyn_cast<ArrayAttr>(r);
      auto glob = pair && pair.size() == 2 ? dyn_cast<StringAttr>(pair[0]) : StringAttr();
      auto style = pair && pair.size() == 2 ? dyn_cast<StringAttr>(pair[1]) : StringAttr();
      auto st = style ? parseTpStyle(style.getValue()) : std::nullopt;
      if (!glob || !st)
        return bad("tp_plan entries must be [glob, style] with a known style");
      plan.tpPlan.emplace_back(glob.getValue().str(), *st);
    }
  } else {
    return bad("tp_plan must be \"auto\" or [[glob, style], ...]");
  }
  if (auto res = attr.getAs<DictionaryAttr>("resolved")) {
    for (NamedAttribute na : res) {
      auto style = dyn_cast<StringAttr>(na.getValue());
      auto st = style ? parseTpStyle(style.getValue()) : std::nullopt;
      if (!st)
        return bad("resolved['" + na.getName().getValue() + "'] is not a style");
      plan.resolved[na.getName().getValue().str()] = *st;
    }
  }
  return plan;
}

} // namespace shardc
