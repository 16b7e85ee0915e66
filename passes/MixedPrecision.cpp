// sc-mixed-precision: FSDP2's MixedPrecisionPolicy on an inference program: parameters cast
// to param_dtype as soon as they are bound, activations in param_dtype, outputs cast to
// output_dtype; rotary tables stay f32 and kernels keep statistics in f32.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"
#include "llvm/ADT/DenseSet.h"
#include "mlir/IR/Verifier.h"

namespace shardc {
#define GEN_PASS_DEF_SCMIXEDPRECISION
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

std::optional<Type> dtypeFromName(MLIRContext *ctx, StringRef name) {
  if (name == "bf16") return BFloat16Type::get(ctx);
  if (name == "fp16") return Float16Type::get(ctx);
  if (name == "fp32") return Float32Type::get(ctx);
  return std::nullopt;
}

RankedTensorType withElement(Type t, Type et) {
  auto rt = cast<RankedTensorType>(t);
  return RankedTensorType::get(rt.getShape(), et);
}

bool isF32Tensor(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt && rt.getElementType().isF32();
}

// Values that stay f32: rotary cos/sin tables and attention masks, with the ops that only
// compute them (autocast keeps both in f32; a padding mask built as (1 - m) * finfo.min
// would overflow to -inf in bf16 and turn 0 * -inf into NaN).
llvm::DenseSet<Value> keptInF32(func::FuncOp func) {
  llvm::DenseSet<Value> kept;
  SmallVector<Value> work;
  func.walk([&](Operation *op) {
    // The loss (sc.token_loss's sum and count, the vocabulary-parallel loss's row statistics,
    // and what is computed from them alone) stays f32, and is returned in f32 whatever output_dtype says.
    if (isa<sc::TokenLossOp, sc::TokenLossStatsOp>(op)) {
      SmallVector<Value> down(op->getResults());
      while (!down.empty()) {
        Value v = down.pop_back_val();
        if (!kept.insert(v).second)
          continue;
        for (Operation *user : v.getUsers())
          if (!isa<func::ReturnOp>(user))
            down.append(user->result_begin(), user->result_end());
      }
      return;
    }
    if (auto r = dyn_cast<sc::RotaryOp>(op)) {
      work.push_back(r.getCos());
      work.push_back(r.getSin());
    } else if (auto a = dyn_cast<sc::AttentionOp>(op)) {
      if (a.getMask())
        work.push_back(a.getMask());
    }
  });
  auto onlyFeedsKept = [&](Value v) {
    return llvm::all_of(v.getUsers(), [&](Operation *user) {
      if (isa<sc::RotaryOp, sc::AttentionOp>(user))
        return true; // checked by the seeds: only their table/mask operands start a walk
      return llvm::all_of(user->getResults(), [&](Value r) { return kept.contains(r); });
    });
  };
  while (!work.empty()) {
    Value v = work.pop_back_val();
    if (kept.contains(v) || !isF32Tensor(v.getType()))
      continue;
    kept.insert(v);
    if (Operation *def = v.getDefiningOp())
      for (Value operand : def->getOperands())
        if (onlyFeedsKept(operand))
          work.push_back(operand);
  }
  // A seed that also feeds ordinary compute (e.g. q used as a mask) must not stay f32.
  bool changed = true;
  while (changed) {
    changed = false;
    for (Value v : llvm::to_vector(kept))
      if (!onlyFeedsKept(v)) {
        kept.erase(v);
        changed = true;
      }
  }
  return kept;
}

struct ScMixedPrecisionPass : impl::ScMixedPrecisionBase<ScMixedPrecisionPass> {
  using Base::Base;
  void runOnOperation() override {
    ModuleOp module = getOperation();
    MLIRContext *ctx = &getContext();
    auto policy = module->getAttrOfType<DictionaryAttr>("sc.mp_policy");
    if (!policy)
      return;
    auto name = [&](StringRef key) {
      auto a = policy.getAs<StringAttr>(key);
      return a ? a.getValue() : StringRef("fp32");
    };
    auto param = dtypeFromName(ctx, name("param_dtype"));
    auto output = dtypeFromName(ctx, name("output_dtype"));
    if (!param || !output) {
      module.emitError() << "sc.mp_policy dtypes must be bf16, fp16 or fp32";
      return signalPassFailure();
    }
    if (param->isF32() || module->hasAttr("sc.train") != bool(train))
      return;
    Type low = *param;
    // A train program's reduce_dtype is sc-add-optimizer's: the gradients, cast back to the f32
    // parameters here, are cast to it before their data-parallel reduction.

    module.walk([&](func::FuncOp func) {
      llvm::DenseSet<Value> kept = keptInF32(func);
      OpBuilder b(ctx);
      Block &entry = func.getBody().front();
      // f32 inputs are cast on entry.
      b.setInsertionPointToStart(&entry);
      for (BlockArgument arg : entry.getArguments())
        if (isF32Tensor(arg.getType()) && !kept.contains(arg)) {
          auto c = sc::CastOp::create(b, func.getLoc(), withElement(arg.getType(), low), arg);
          arg.replaceAllUsesExcept(c, c);
        }
      func.walk([&](Operation *op) {
        if (auto p = dyn_cast<sc::ParamOp>(op)) {
          if (!isF32Tensor(p.getType()) || kept.contains(p.getResult()))
            return;
          b.setInsertionPointAfter(p);
          auto c = sc::CastOp::create(b, p.getLoc(), withElement(p.getType(), low), p);
          p.getResult().replaceAllUsesExcept(c, c);
          return;
        }
        if (auto k = dyn_cast<sc::ConstantOp>(op)) {
          if (!isF32Tensor(k.getType()) || kept.contains(k.getResult()))
            return;
          auto dense = dyn_cast<DenseElementsAttr>(k.getValue());
          if (!dense)
            return;
          auto lowType = withElement(k.getType(), low);
          auto converted = dense.mapValues(low, [&](const APFloat &v) {
            APFloat f = v;
            bool lost;
            f.convert(cast<FloatType>(low).getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
            return f.bitcastToAPInt();
          });
          k.setValueAttr(cast<ElementsAttr>(converted));
          k.getResult().setType(lowType);
          return;
        }
        // Every f32 result computes in param_dtype, the exporter's own casts (Cast(mask) ->
        // f32) included; the casts inserted above already produce param_dtype.
        if (isa<func::ReturnOp>(op))
          return;
        for (Value r : op->getResults())
          if (isF32Tensor(r.getType()) && !kept.contains(r))
            r.setType(withElement(r.getType(), low));
      });
      // Outputs in output_dtype.
      func.walk([&](func::ReturnOp ret) {
        b.setInsertionPoint(ret);
        for (OpOperand &o : ret->getOpOperands()) {
          auto rt = dyn_cast<RankedTensorType>(o.get().getType());
          if (!rt || !isa<FloatType>(rt.getElementType()) || rt.getElementType() == *output || kept.contains(o.get()))
            continue;
          auto c = sc::CastOp::create(b, ret.getLoc(), withElement(rt, *output), o.get());
          // Gather outputs before this cast, so the collective moves param_dtype bytes.
          c->setAttr("sc.replicate_operands", UnitAttr::get(ctx));
          o.set(c);
        }
        SmallVector<Type> results(ret.getOperandTypes());
        func.setType(FunctionType::get(ctx, func.getArgumentTypes(), results));
      });
    });
    if (failed(verify(module)))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
