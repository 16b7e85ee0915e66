// The sc dialect's discardable attributes: every `sc.*` name that the importer, the plan and
// the passes set on modules, ops, function arguments and results, with the attribute it must
// hold. An unknown `sc.*` name is an error, so a misspelt or stale attribute cannot be
// silently ignored by the pass that should have read it.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSwitch.h"

using namespace mlir;

namespace shardc::sc {
namespace {

// Where an attribute may appear.
enum class Scope { Module, Op, Arg, Result };

StringRef scopeName(Scope s) {
  switch (s) {
  case Scope::Module: return "a module attribute";
  case Scope::Op: return "an op attribute";
  case Scope::Arg: return "a function argument attribute";
  case Scope::Result: return "a function result attribute";
  }
  return "";
}

// A sharding of a value of type `type` (a ranked tensor when known).
LogicalResult verifySharding(function_ref<InFlightDiagnostic()> emitError, StringRef name, Attribute attr,
                             Type type, Operation *module) {
  auto s = dyn_cast<ShardingAttr>(attr);
  if (!s)
    return emitError() << "'" << name << "' expects #sc.sharding attributes, got " << attr;
  if (auto t = dyn_cast_if_present<RankedTensorType>(type); t && t.getRank() != (int64_t)s.getDims().size())
    return emitError() << "'" << name << "': " << attr << " has " << s.getDims().size()
                       << " dims for a value of rank " << t.getRank();
  if (llvm::any_of(s.getPartialKinds(), [&](ReduceKind k) { return k != s.getPartialKinds().front(); }))
    return emitError() << "'" << name << "': partial axes with different reduction kinds are not supported";
  // The axes are the module's mesh axes (where the module has its mesh yet).
  auto mesh = module ? module->getAttrOfType<ArrayAttr>("sc.mesh") : ArrayAttr();
  if (!mesh)
    return success();
  auto known = [&](StringAttr axis) {
    return llvm::any_of(mesh, [&](Attribute e) {
      auto pair = dyn_cast<ArrayAttr>(e);
      return pair && !pair.empty() && pair[0] == axis;
    });
  };
  SmallVector<StringAttr> axes(s.getPartialAxes());
  for (ArrayAttr d : s.getDims())
    for (Attribute a : d)
      axes.push_back(cast<StringAttr>(a));
  for (StringAttr a : axes)
    if (!known(a))
      return emitError() << "'" << name << "': '" << a.getValue() << "' is not an axis of the module's sc.mesh";
  return success();
}

// One sharding per value of `values` (an op's results or operands).
LogicalResult verifyShardings(Operation *op, StringRef name, Attribute attr, TypeRange types) {
  auto arr = dyn_cast<ArrayAttr>(attr);
  if (!arr)
    return op->emitOpError() << "'" << name << "' expects an array of #sc.sharding, got " << attr;
  if (arr.size() != types.size())
    return op->emitOpError() << "'" << name << "' has " << arr.size() << " shardings for " << types.size()
                             << " values";
  for (auto [a, t] : llvm::zip(arr, types))
    if (failed(verifySharding([&] { return op->emitOpError(); }, name, a, t, op->getParentOfType<ModuleOp>())))
      return failure();
  return success();
}

LogicalResult verifyMesh(Operation *op, StringRef name, Attribute attr) {
  auto arr = dyn_cast<ArrayAttr>(attr);
  auto bad = [&] {
    return op->emitError() << "'" << name << "' expects [[\"axis\", size >= 1], ...] (and [\"ep\" or "
                           << "\"ep_shard\", size, \"sub\"] sub-axes), got " << attr;
  };
  if (!arr)
    return bad();
  for (Attribute a : arr) {
    auto pair = dyn_cast<ArrayAttr>(a);
    if (!pair || pair.size() < 2 || pair.size() > 3 || !isa<StringAttr>(pair[0]) || !isa<IntegerAttr>(pair[1]) ||
        cast<IntegerAttr>(pair[1]).getInt() < 1)
      return bad();
    if (pair.size() == 3 && (!isa<StringAttr>(pair[2]) || cast<StringAttr>(pair[2]).getValue() != "sub" ||
                             (cast<StringAttr>(pair[0]).getValue() != "ep" && cast<StringAttr>(pair[0]).getValue() != "ep_shard")))
      return bad();
  }
  return success();
}

LogicalResult verifyMpPolicy(Operation *op, StringRef name, Attribute attr) {
  auto dict = dyn_cast<DictionaryAttr>(attr);
  if (!dict)
    return op->emitError() << "'" << name << "' expects a dictionary, got " << attr;
  for (NamedAttribute e : dict) {
    auto v = dyn_cast<StringAttr>(e.getValue());
    if (!llvm::is_contained({"param_dtype", "reduce_dtype", "output_dtype"}, e.getName().getValue()))
      return op->emitError() << "'" << name << "': unknown key '" << e.getName().getValue() << "'";
    // The dtype names themselves are sc-mixed-precision's to check.
    if (!v)
      return op->emitError() << "'" << name << "': " << e.getName().getValue() << " must be a dtype name string";
  }
  return success();
}

LogicalResult verifyTpStyles(Operation *op, StringRef name, Attribute attr) {
  auto dict = dyn_cast<DictionaryAttr>(attr);
  if (!dict)
    return op->emitError() << "'" << name << "' expects a dictionary of #sc.tp_style, got " << attr;
  for (NamedAttribute e : dict)
    if (!isa<TpStyleAttr>(e.getValue()))
      return op->emitError() << "'" << name << "': the style of '" << e.getName().getValue()
                             << "' must be a #sc.tp_style, got " << e.getValue();
  return success();
}

// sc.at_load: a step whose operands are all known at load (or a load-time source).
LogicalResult verifyAtLoad(Operation *op, StringRef name) {
  if (!isStepOp(op))
    return op->emitOpError() << "'" << name << "' is on an op that is not an artifact step";
  if (op->getNumOperands() == 0 && !op->hasTrait<LoadTimeSource>())
    return op->emitOpError() << "'" << name << "' is on an op without operands that is not a load-time source";
  for (auto [i, v] : llvm::enumerate(op->getOperands()))
    if (!isLoadTimeValue(v))
      return op->emitOpError() << "'" << name << "': operand #" << i
                               << " is not a parameter, a constant or a load-time result";
  return success();
}

// sc.arena_offsets / sc.persistent_offsets: one non-negative offset per result, persistent
// ones on load-time ops and training states only.
LogicalResult verifyOffsets(Operation *op, StringRef name, Attribute attr) {
  auto offsets = dyn_cast<DenseI64ArrayAttr>(attr);
  if (!offsets)
    return op->emitOpError() << "'" << name << "' expects an array<i64: ...>, got " << attr;
  if ((int64_t)offsets.size() != op->getNumResults())
    return op->emitOpError() << "'" << name << "' has " << offsets.size() << " offsets for "
                             << op->getNumResults() << " results";
  if (llvm::any_of(offsets.asArrayRef(), [](int64_t o) { return o < 0; }))
    return op->emitOpError() << "'" << name << "' has a negative offset";
  // A training state (sc.state) lives in the persistent block too, without being a load step.
  bool persistent = isAtLoad(op) || isa<StateOp>(op);
  if ((name == kPersistentOffsetsAttr) != persistent)
    return op->emitOpError() << "'" << name << "' is on an op " << (isAtLoad(op) ? "with" : "without")
                             << " '" << kAtLoadAttr << "'";
  return success();
}

// `type` is the value the attribute describes, where it describes one (arguments, results).
LogicalResult verifyAttr(Operation *op, Scope scope, NamedAttribute named, Type type) {
  StringRef name = named.getName().getValue();
  Attribute attr = named.getValue();
  auto expect = [&](bool ok, StringRef what) -> LogicalResult {
    if (ok)
      return success();
    return op->emitError() << "'" << name << "' expects " << what << ", got " << attr;
  };
  auto only = [&](std::initializer_list<Scope> scopes) -> LogicalResult {
    if (llvm::is_contained(scopes, scope))
      return success();
    return op->emitError() << "'" << name << "' is not " << scopeName(scope);
  };
  bool isModule = isa<ModuleOp>(op);
  if (scope == Scope::Op && isModule)
    scope = Scope::Module;

  // Module: the resolved plan and the source model.
  if (name == "sc.mesh")
    return failed(only({Scope::Module})) ? failure() : verifyMesh(op, name, attr);
  if (name == "sc.tp_styles")
    return failed(only({Scope::Module})) ? failure() : verifyTpStyles(op, name, attr);
  if (name == "sc.mp_policy")
    return failed(only({Scope::Module})) ? failure() : verifyMpPolicy(op, name, attr);
  if (name == "sc.plan")
    return failed(only({Scope::Module})) ? failure() : expect(isa<DictionaryAttr>(attr), "a dictionary");
  if (name == "sc.fsdp_prefetch" || name == "sc.sequence_parallel" || name == "sc.expert_tp")
    return failed(only({Scope::Module})) ? failure() : expect(isa<UnitAttr>(attr), "a unit attribute");
  if (name == "sc.train") {
    if (failed(only({Scope::Module})))
      return failure();
    auto dict = dyn_cast<DictionaryAttr>(attr);
    auto labels = dict ? dict.getAs<StringAttr>("labels") : StringAttr();
    bool ok = dict && labels && (labels.getValue() == "input_ids" || labels.getValue() == "input");
    for (NamedAttribute a : ok ? dict.getValue() : ArrayRef<NamedAttribute>()) {
      if (a.getName() == "labels")
        continue;
      if (a.getName() == "max_grad_norm" || a.getName() == "router_aux_loss_coef" ||
          a.getName() == "router_bias_update_speed") {
        ok &= isa<FloatAttr>(a.getValue());
      } else if (a.getName() == "gradient_accumulation_steps") {
        auto g = dyn_cast<IntegerAttr>(a.getValue());
        ok &= g && g.getInt() >= 1;
      } else if (a.getName() == "defer_fsdp_grad_sync" || a.getName() == "loss_parallel") {
        ok &= isa<BoolAttr>(a.getValue());
      } else if (a.getName() == "master_dtype") {
        auto s = dyn_cast<StringAttr>(a.getValue());
        ok &= s && (s.getValue() == "bf16" || s.getValue() == "fp32");
      } else if (a.getName() == "offload_policy") {
        auto s = dyn_cast<StringAttr>(a.getValue());
        ok &= s && s.getValue() == "cpu";
      } else if (a.getName() == "reshard_after_forward") {
        auto s = dyn_cast<StringAttr>(a.getValue());
        ok &= s && (s.getValue() == "true" || s.getValue() == "false" || s.getValue() == "auto");
      } else if (a.getName() == "activation_checkpointing") {
        auto s = dyn_cast<StringAttr>(a.getValue());
        ok &= s && (s.getValue() == "full" || s.getValue() == "selective");
      } else if (a.getName() == "lr_scheduler") {
        auto l = dyn_cast<DictionaryAttr>(a.getValue());
        ok &= l && l.size() == 3 && l.getAs<IntegerAttr>("warmup_steps") && l.getAs<IntegerAttr>("total_steps") &&
              l.getAs<FloatAttr>("min_lr");
      } else if (a.getName() == "optimizer") {
        auto o = dyn_cast<DictionaryAttr>(a.getValue());
        ok &= o && o.size() == 5;
        for (StringRef key : {"lr", "beta1", "beta2", "eps", "weight_decay"})
          ok &= o && bool(o.getAs<FloatAttr>(key));
      } else {
        ok = false;
      }
    }
    return expect(ok, "{labels = \"input_ids\" | \"input\", optimizer = {lr, beta1, beta2, eps, weight_decay} "
                      "(optional), lr_scheduler = {warmup_steps, total_steps, min_lr} (optional), max_grad_norm = <float> "
                      "(optional), activation_checkpointing = \"full\" | \"selective\" (optional), reshard_after_forward = \"true\" | \"false\" | \"auto\" (optional), "
                      "gradient_accumulation_steps = <int >= 1> (optional), defer_fsdp_grad_sync = <bool> (optional), "
                      "master_dtype = \"bf16\" | \"fp32\" (optional), loss_parallel = <bool> (optional), offload_policy = \"cpu\" (optional), "
                      "router_aux_loss_coef = <float> (optional), router_bias_update_speed = <float> (optional)}");
  }
  if (name == "sc.source")
    return failed(only({Scope::Module})) ? failure() : expect(isa<StringAttr>(attr), "a string");
  if (name == kArenaBytesAttr || name == kNaiveArenaBytesAttr || name == kPersistentBytesAttr ||
      name == kHostArenaBytesAttr || name == kHostPersistentBytesAttr)
    return failed(only({Scope::Module})) ? failure()
                                         : expect(isa<IntegerAttr>(attr) && cast<IntegerAttr>(attr).getInt() >= 0,
                                                  "a non-negative integer");

  // Values: shardings, names and global shapes.
  if (name == "sc.sharding") {
    if (failed(only({Scope::Op, Scope::Arg})))
      return failure();
    if (scope == Scope::Arg)
      return verifySharding([&] { return op->emitError(); }, name, attr, type, op->getParentOfType<ModuleOp>());
    return verifyShardings(op, name, attr, op->getResultTypes());
  }
  if (name == "sc.operand_shardings")
    return failed(only({Scope::Op})) ? failure() : verifyShardings(op, name, attr, op->getOperandTypes());
  if (name == "sc.storage_sharding")
    return failed(only({Scope::Op})) ? failure()
           : verifySharding([&] { return op->emitOpError(); }, name, attr,
                            op->getNumResults() == 1 ? op->getResult(0).getType() : Type(),
                            op->getParentOfType<ModuleOp>());
  if (name == "sc.name")
    return failed(only({Scope::Arg, Scope::Result})) ? failure() : expect(isa<StringAttr>(attr), "a string");
  if (name == "sc.global_shape")
    return failed(only({Scope::Op, Scope::Arg})) ? failure()
                                                 : expect(isa<DenseI64ArrayAttr>(attr), "an array<i64: ...>");

  // Ops: parameter file views, FSDP groups, propagation hints.
  if (name == "sc.file_shape" || name == "sc.file_start" || name == "sc.file_repeat")
    return failed(only({Scope::Op})) ? failure() : expect(isa<DenseI64ArrayAttr>(attr), "an array<i64: ...>");
  // A sliding window (sc-raise-attention): the attention's exact mask is its operand; this
  // width of the band of keys i - w < j <= i lets the kernels skip the keys outside it.
  if (name == "sc.window") {
    if (failed(only({Scope::Op})))
      return failure();
    auto w = dyn_cast<IntegerAttr>(attr);
    if (!w || w.getInt() < 1)
      return op->emitError() << "'sc.window' must be a positive integer";
    auto att = dyn_cast<AttentionOp>(op);
    if (!att || !att.getCausal() || !att.getMask())
      return op->emitError() << "'sc.window' is only valid on a causal sc.attention with a mask";
    return success();
  }
  if (name == "sc.fsdp_group")
    return failed(only({Scope::Op})) ? failure() : expect(isa<IntegerAttr>(attr), "an integer");
  // expert_tp: the gate and up halves of a fused expert stack, each split on I (docs/moe.md):
  // their concat, and in the backward the split of its gradient and the sc.moe_experts_grad
  // that reads the concat (through a layer's results, where its rule cannot see it).
  if (name == "sc.expert_halves") {
    if (failed(only({Scope::Op})) || failed(expect(isa<UnitAttr>(attr), "a unit attribute")))
      return failure();
    if (!isa<ConcatOp, SplitOp, MoeExpertsGradOp>(op))
      return op->emitError() << "'sc.expert_halves' is only valid on sc.concat, sc.split and sc.moe_experts_grad";
    return success();
  }
  if (name == "sc.replicate_operands")
    return failed(only({Scope::Op})) ? failure() : expect(isa<UnitAttr>(attr), "a unit attribute");
  // mode: train: the sc.param is a trainable parameter (docs/training.md).
  if (name == "sc.trainable") {
    if (failed(only({Scope::Op})) || failed(expect(isa<UnitAttr>(attr), "a unit attribute")))
      return failure();
    if (!isa<ParamOp>(op))
      return op->emitError() << "'sc.trainable' is only valid on sc.param";
    return success();
  }

  // CPU offload: the op runs on the host; a copy between the memories (ScOffload.h).
  if (name == kHostAttr)
    return failed(only({Scope::Op})) ? failure() : expect(isa<UnitAttr>(attr), "a unit attribute");
  if (name == kCopyToAttr) {
    if (failed(only({Scope::Op})))
      return failure();
    if (!isa<CopyOp>(op))
      return op->emitError() << "'" << name << "' is only valid on sc.copy";
    auto s = dyn_cast<StringAttr>(attr);
    return expect(s && (s.getValue() == "host" || s.getValue() == "device"), "\"host\" or \"device\"");
  }

  // Load steps and the memory plan (ScStorage.h).
  if (name == kAtLoadAttr) {
    if (failed(only({Scope::Op})) || failed(expect(isa<UnitAttr>(attr), "a unit attribute")))
      return failure();
    return verifyAtLoad(op, name);
  }
  if (name == kArenaOffsetsAttr || name == kPersistentOffsetsAttr)
    return failed(only({Scope::Op})) ? failure() : verifyOffsets(op, name, attr);
  if (name == kArenaOffsetAttr)
    return failed(only({Scope::Arg})) ? failure()
                                      : expect(isa<IntegerAttr>(attr) && cast<IntegerAttr>(attr).getInt() >= 0,
                                               "a non-negative integer");

  return op->emitError() << "unknown sc dialect attribute '" << name << "'";
}

} // namespace

LogicalResult ScDialect::verifyOperationAttribute(Operation *op, NamedAttribute attr) {
  return verifyAttr(op, Scope::Op, attr, Type());
}

LogicalResult ScDialect::verifyRegionArgAttribute(Operation *op, unsigned region, unsigned arg,
                                                  NamedAttribute attr) {
  Type type = op->getRegion(region).empty() ? Type() : op->getRegion(region).getArgument(arg).getType();
  return verifyAttr(op, Scope::Arg, attr, type);
}

LogicalResult ScDialect::verifyRegionResultAttribute(Operation *op, unsigned, unsigned, NamedAttribute attr) {
  return verifyAttr(op, Scope::Result, attr, Type());
}

} // namespace shardc::sc
