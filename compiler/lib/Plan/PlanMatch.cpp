// Module globs against the model's module paths, the model family and its built-in
// tensor-parallel plan (tp_plan: auto), tied parameters, and choosePlan, which puts them together.
#include "shardc/Plan/Plan.h"

#include "PlanInternal.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"

#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

#include <set>

using namespace mlir;
using llvm::StringRef;

namespace shardc {
using namespace plan;

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

} // namespace shardc

namespace shardc {

bool paramGlobMatches(StringRef glob, StringRef paramName) {
  // The name itself, then each module path that contains it (drop trailing components).
  for (StringRef p = paramName; !p.empty(); p = p.rsplit('.').first) {
    if (globMatches(glob, p))
      return true;
    if (!p.contains('.'))
      break;
  }
  return false;
}

bool isTrainable(const Plan &plan, llvm::ArrayRef<std::string> names, bool exporterTrainable) {
  auto any = [&](const std::vector<std::string> &globs) {
    return llvm::any_of(globs, [&](const std::string &g) {
      return llvm::any_of(names, [&](const std::string &n) { return paramGlobMatches(g, n); });
    });
  };
  if (any(plan.frozenGlobs))
    return false;
  return exporterTrainable || any(plan.trainableGlobs);
}

int64_t markTrainableParams(ModuleOp module, const Plan &plan, const std::set<std::string> &exporterTrainable) {
  int64_t count = 0;
  module.walk([&](sc::ParamOp p) {
    std::vector<std::string> names{p.getName().str(), p.getOnnxName().str()};
    for (StringRef t : p.getTied().getAsValueRange<StringAttr>())
      names.push_back(t.str());
    if (isTrainable(plan, names, exporterTrainable.count(p.getOnnxName().str()))) {
      p->setAttr("sc.trainable", UnitAttr::get(p.getContext()));
      ++count;
    } else {
      p->removeAttr("sc.trainable");
    }
  });
  return count;
}

} // namespace shardc
