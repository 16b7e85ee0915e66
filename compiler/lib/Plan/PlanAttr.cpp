// The plan printed as YAML (shardc plan --print) and carried in the IR as the sc.plan attribute.
#include "shardc/Plan/Plan.h"

#include "PlanInternal.h"

#include "shardc/Dialect/ScDialect.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/STLExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mlir;
using llvm::StringRef;

namespace shardc {
using namespace plan;

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
  if (plan.mesh.ep != 1)
    os << ", ep: " << plan.mesh.ep;
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
  if (plan.expertTp)
    os << "expert_tp: true\n";
  os << "mp_policy: {param_dtype: " << stringifyDType(plan.mp.paramDtype)
     << ", reduce_dtype: " << stringifyDType(plan.mp.reduceDtype)
     << ", output_dtype: " << stringifyDType(plan.mp.outputDtype)
     << (plan.mp.masterDtype == DType::FP32 ? "" : ", master_dtype: " + stringifyDType(plan.mp.masterDtype).str()) << "}\n";
  os << "reshard_after_forward: " << stringifyReshardAfterForward(plan.reshardAfterForward) << "\n";
  os << "activation_checkpointing: " << stringifyCheckpointing(plan.activationCheckpointing) << "\n";
  os << "mode: " << stringifyMode(plan.mode) << "\n";
  if (plan.lossLabelsInput)
    os << "loss: {labels: input}\n";
  if (plan.lossParallel)
    os << "loss_parallel: " << yamlBool(*plan.lossParallel) << "\n";
  if (plan.routerAuxLossCoef)
    os << "router_aux_loss_coef: " << *plan.routerAuxLossCoef << "\n";
  if (plan.routerBiasUpdateSpeed)
    os << "router_bias_update_speed: " << *plan.routerBiasUpdateSpeed << "\n";
  if (const auto &o = plan.optimizer)
    os << "optimizer: {name: adamw, lr: " << o->lr << ", betas: [" << o->beta1 << ", " << o->beta2
       << "], eps: " << o->eps << ", weight_decay: " << o->weightDecay << "}\n";
  if (const auto &l = plan.lrScheduler)
    os << "lr_scheduler: {warmup_steps: " << l->warmupSteps << ", total_steps: " << l->totalSteps
       << ", min_lr: " << l->minLr << "}\n";
  if (plan.maxGradNorm)
    os << "max_grad_norm: " << *plan.maxGradNorm << "\n";
  for (auto [key, globs] : {std::pair{"trainable", &plan.trainableGlobs}, {"frozen", &plan.frozenGlobs}}) {
    if (globs->empty())
      continue;
    os << key << ":";
    for (const std::string &g : *globs)
      os << "\n  - " << yamlQuote(g);
    os << "\n";
  }
  if (plan.gradientAccumulationSteps != 1)
    os << "gradient_accumulation_steps: " << plan.gradientAccumulationSteps << "\n";
  os << "defer_fsdp_grad_sync: " << yamlBool(plan.deferFsdpGradSync) << "\n";
  os << "enable_fsdp2_prefetch: " << yamlBool(plan.fsdpPrefetch) << "\n";
  if (plan.cpuOffload)
    os << "offload_policy: cpu\n";
  if (!resolved.empty()) {
    os << "# resolved: " << resolved.size() << " modules\n";
    for (const auto &[path, style] : resolved)
      os << "#   " << path << ": " << stringifyTpStyle(style) << "\n";
  }
  return s;
}

DictionaryAttr optimizerAttr(Builder &b, const Plan &plan) {
  if (!plan.optimizer)
    return {};
  const Plan::AdamW &o = *plan.optimizer;
  return b.getDictionaryAttr({b.getNamedAttr("lr", b.getF64FloatAttr(o.lr)),
                              b.getNamedAttr("beta1", b.getF64FloatAttr(o.beta1)),
                              b.getNamedAttr("beta2", b.getF64FloatAttr(o.beta2)),
                              b.getNamedAttr("eps", b.getF64FloatAttr(o.eps)),
                              b.getNamedAttr("weight_decay", b.getF64FloatAttr(o.weightDecay))});
}

DictionaryAttr lrSchedulerAttr(Builder &b, const Plan &plan) {
  if (!plan.lrScheduler)
    return {};
  const Plan::LrScheduler &l = *plan.lrScheduler;
  return b.getDictionaryAttr({b.getNamedAttr("warmup_steps", b.getI64IntegerAttr(l.warmupSteps)),
                              b.getNamedAttr("total_steps", b.getI64IntegerAttr(l.totalSteps)),
                              b.getNamedAttr("min_lr", b.getF64FloatAttr(l.minLr))});
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
      b.getNamedAttr("reshard_after_forward", b.getStringAttr(stringifyReshardAfterForward(plan.reshardAfterForward))),
      b.getNamedAttr("activation_checkpointing", b.getStringAttr(stringifyCheckpointing(plan.activationCheckpointing))),
      b.getNamedAttr("mode", b.getStringAttr(stringifyMode(plan.mode))),
      b.getNamedAttr("defer_fsdp_grad_sync", b.getBoolAttr(plan.deferFsdpGradSync)),
      b.getNamedAttr("enable_fsdp2_prefetch", b.getBoolAttr(plan.fsdpPrefetch)),
  };
  if (plan.mesh.ep != 1) // expert parallelism: the sub-axis of dp_shard x cp (absent: 1)
    attrs.push_back(b.getNamedAttr("ep", b.getI64IntegerAttr(plan.mesh.ep)));
  if (plan.expertTp)
    attrs.push_back(b.getNamedAttr("expert_tp", b.getBoolAttr(true)));
  if (plan.lossLabelsInput)
    attrs.push_back(b.getNamedAttr("loss_labels", b.getStringAttr("input")));
  if (plan.lossParallel)
    attrs.push_back(b.getNamedAttr("loss_parallel", b.getBoolAttr(*plan.lossParallel)));
  if (plan.routerAuxLossCoef)
    attrs.push_back(b.getNamedAttr("router_aux_loss_coef", b.getF64FloatAttr(*plan.routerAuxLossCoef)));
  if (plan.routerBiasUpdateSpeed)
    attrs.push_back(b.getNamedAttr("router_bias_update_speed", b.getF64FloatAttr(*plan.routerBiasUpdateSpeed)));
  if (DictionaryAttr o = optimizerAttr(b, plan))
    attrs.push_back(b.getNamedAttr("optimizer", o));
  if (DictionaryAttr l = lrSchedulerAttr(b, plan))
    attrs.push_back(b.getNamedAttr("lr_scheduler", l));
  if (plan.maxGradNorm)
    attrs.push_back(b.getNamedAttr("max_grad_norm", b.getF64FloatAttr(*plan.maxGradNorm)));
  if (plan.gradientAccumulationSteps != 1)
    attrs.push_back(b.getNamedAttr("gradient_accumulation_steps", b.getI64IntegerAttr(plan.gradientAccumulationSteps)));
  if (plan.mp.masterDtype != DType::FP32)
    attrs.push_back(b.getNamedAttr("master_dtype", b.getStringAttr(stringifyDType(plan.mp.masterDtype))));
  if (plan.cpuOffload)
    attrs.push_back(b.getNamedAttr("offload_policy", b.getStringAttr("cpu")));
  if (!plan.trainableGlobs.empty())
    attrs.push_back(b.getNamedAttr("trainable", b.getStrArrayAttr(SmallVector<StringRef>(plan.trainableGlobs.begin(), plan.trainableGlobs.end()))));
  if (!plan.frozenGlobs.empty())
    attrs.push_back(b.getNamedAttr("frozen", b.getStrArrayAttr(SmallVector<StringRef>(plan.frozenGlobs.begin(), plan.frozenGlobs.end()))));
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
  if (auto ep = attr.getAs<IntegerAttr>("ep")) {
    if (ep.getInt() < 1)
      return bad("ep must be positive");
    mesh.ep = ep.getInt();
  }
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
                            {"expert_tp", &plan.expertTp},
                            {"defer_fsdp_grad_sync", &plan.deferFsdpGradSync},
                            {"enable_fsdp2_prefetch", &plan.fsdpPrefetch}})
    if (auto e = getBool(key, *field))
      return std::move(e);
  if (auto a = attr.get("reshard_after_forward")) {
    auto s = dyn_cast<StringAttr>(a);
    auto r = s ? parseReshardAfterForward(s.getValue()) : std::nullopt;
    if (!r)
      return bad("reshard_after_forward must be \"true\", \"false\" or \"auto\"");
    plan.reshardAfterForward = *r;
  }
  if (auto a = attr.get("activation_checkpointing")) {
    auto s = dyn_cast<StringAttr>(a);
    auto c = s ? parseCheckpointing(s.getValue()) : std::nullopt;
    if (!c)
      return bad("activation_checkpointing must be \"false\", \"full\" or \"selective\"");
    plan.activationCheckpointing = *c;
  }
  if (auto mode = attr.getAs<StringAttr>("mode")) {
    auto m = parseMode(mode.getValue());
    if (!m)
      return bad("unknown mode '" + mode.getValue() + "'");
    plan.mode = *m;
  }
  if (auto labels = attr.getAs<StringAttr>("loss_labels"))
    plan.lossLabelsInput = labels.getValue() == "input";
  if (auto lp = attr.get("loss_parallel")) {
    auto b = dyn_cast<BoolAttr>(lp);
    if (!b)
      return bad("loss_parallel must be a bool");
    plan.lossParallel = b.getValue();
  }
  if (auto o = attr.getAs<DictionaryAttr>("optimizer")) {
    Plan::AdamW adamw;
    for (auto [key, field] : {std::pair<StringRef, double *>{"lr", &adamw.lr}, {"beta1", &adamw.beta1},
                              {"beta2", &adamw.beta2}, {"eps", &adamw.eps}, {"weight_decay", &adamw.weightDecay}}) {
      auto f = o.getAs<FloatAttr>(key);
      if (!f)
        return bad("optimizer." + key + " must be a float");
      *field = f.getValueAsDouble();
    }
    plan.optimizer = adamw;
  }
  if (auto l = attr.getAs<DictionaryAttr>("lr_scheduler")) {
    auto w = l.getAs<IntegerAttr>("warmup_steps"), t = l.getAs<IntegerAttr>("total_steps");
    auto m = l.getAs<FloatAttr>("min_lr");
    if (!w || !t || !m)
      return bad("lr_scheduler needs warmup_steps, total_steps (integers) and min_lr (float)");
    plan.lrScheduler = Plan::LrScheduler{w.getInt(), t.getInt(), m.getValueAsDouble()};
  }
  if (auto coef = attr.getAs<FloatAttr>("router_aux_loss_coef"))
    plan.routerAuxLossCoef = coef.getValueAsDouble();
  if (auto speed = attr.getAs<FloatAttr>("router_bias_update_speed"))
    plan.routerBiasUpdateSpeed = speed.getValueAsDouble();
  if (auto clip = attr.getAs<FloatAttr>("max_grad_norm"))
    plan.maxGradNorm = clip.getValueAsDouble();
  if (auto g = attr.getAs<IntegerAttr>("gradient_accumulation_steps"))
    plan.gradientAccumulationSteps = g.getInt();
  if (auto o = attr.get("offload_policy")) {
    auto s = dyn_cast<StringAttr>(o);
    if (!s || s.getValue() != "cpu")
      return bad("offload_policy must be \"cpu\"");
    plan.cpuOffload = true;
  }
  if (auto m = attr.getAs<StringAttr>("master_dtype")) {
    auto d = parseDType(m.getValue());
    if (!d)
      return bad("master_dtype must be bf16 or fp32");
    plan.mp.masterDtype = *d;
  }
  for (auto [key, out] : {std::pair{"trainable", &plan.trainableGlobs}, {"frozen", &plan.frozenGlobs}})
    if (auto globs = attr.getAs<ArrayAttr>(key))
      for (Attribute g : globs)
        if (auto s = dyn_cast<StringAttr>(g))
          out->push_back(s.getValue().str());
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
