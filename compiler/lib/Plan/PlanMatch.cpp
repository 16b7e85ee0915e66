// Module globs against the model's module paths, tied parameters, and choosePlan, which puts
// them together with the derived plan of tp_plan: auto (PlanDerive.cpp).
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
resolveTpPlan(const Plan &plan, llvm::ArrayRef<std::string> modulePaths) {
  std::vector<std::pair<std::string, TpStyle>> rules;
  if (!plan.tpAuto)
    rules = plan.tpPlan;
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
    if (!matched)
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
                                std::optional<int64_t> worldSize, TpDerivation *derivation) {
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
  if (plan.tpAuto) {
    TpDerivation d = deriveTpPlan(module, paths, plan.sequenceParallel, plan.mesh.size("tp"));
    if (d.attentionBlocks + d.mlpBlocks == 0 && plan.mesh.size("tp") > 1)
      return err("tp_plan: auto found no attention block (an sc.attention whose q, k and v come from linears) "
                 "and no MLP (linear -> activation -> linear) in this model; write tp_plan globs "
                 "(shardc plan --print --explain lists every linear)");
    if (d.attentionBlocks + d.mlpBlocks > 0) {
      plan.tpPlan = d.rules;
      plan.tpPlanLocs.assign(plan.tpPlan.size(), "");
      plan.tpAuto = false;
    }
    if (derivation)
      *derivation = std::move(d);
  }
  auto resolved = resolveTpPlan(plan, paths);
  if (!resolved)
    return resolved.takeError();
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
