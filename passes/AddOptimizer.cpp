// sc-add-optimizer: the optimizer step of a `mode: train` plan with `optimizer:`, after
// sc-autodiff. The trainable parameters become training state (sc.state, initialised from the
// weights at load), AdamW's moments and the step count are state too, and the program ends by
// assigning each state its updated value: one run is one training step, as
// torch.optim.AdamW.step() after clip_grad_norm_.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/BitVector.h"

#include <cmath>

namespace shardc {
#define GEN_PASS_DEF_SCADDOPTIMIZER
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {

struct AdamW {
  double lr, beta1, beta2, eps, weightDecay;
};
struct Schedule {
  int64_t warmup, total;
  double minLr;
};

struct Builder {
  OpBuilder &b;
  Location loc;
  RankedTensorType scalarType;

  Value scalar(double v) {
    return sc::ConstantOp::create(b, loc, scalarType, DenseElementsAttr::get(scalarType, b.getF32FloatAttr(float(v))));
  }
  Value add(Value x, Value y) { return sc::AddOp::create(b, loc, x.getType(), x, y); }
  Value sub(Value x, Value y) { return sc::SubOp::create(b, loc, x.getType(), x, y); }
  Value mul(Value x, Value y) { return sc::MulOp::create(b, loc, x.getType(), x, y); }
  Value div(Value x, Value y) { return sc::DivOp::create(b, loc, x.getType(), x, y); }
  Value sqrt(Value x) { return sc::SqrtOp::create(b, loc, x.getType(), x); }
  Value sumOfSquares(Value g) {
    int64_t rank = cast<RankedTensorType>(g.getType()).getRank();
    SmallVector<int64_t> axes;
    for (int64_t i = 0; i < rank; ++i)
      axes.push_back(i);
    return sc::ReduceSumOp::create(b, loc, scalarType, mul(g, g), b.getDenseI64ArrayAttr(axes), false);
  }
};

struct ScAddOptimizerPass : impl::ScAddOptimizerBase<ScAddOptimizerPass> {
  Type reduceType;
  bool masterBf16 = false;
  bool offload = false; // offload_policy: cpu
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
    auto opt = train ? train.getAs<DictionaryAttr>("optimizer") : DictionaryAttr();
    if (!opt)
      return;
    auto get = [&](StringRef key) { return opt.getAs<FloatAttr>(key).getValueAsDouble(); };
    AdamW adamw{get("lr"), get("beta1"), get("beta2"), get("eps"), get("weight_decay")};
    std::optional<double> maxNorm;
    if (auto clip = train.getAs<FloatAttr>("max_grad_norm"))
      maxNorm = clip.getValueAsDouble();
    std::optional<Schedule> schedule;
    if (auto l = train.getAs<DictionaryAttr>("lr_scheduler"))
      schedule = Schedule{l.getAs<IntegerAttr>("warmup_steps").getInt(), l.getAs<IntegerAttr>("total_steps").getInt(),
                          l.getAs<FloatAttr>("min_lr").getValueAsDouble()};
    // mp_policy.reduce_dtype: the dtype of the gradients' data-parallel reduction.
    reduceType = Float32Type::get(&getContext());
    if (auto mp = module->getAttrOfType<DictionaryAttr>("sc.mp_policy"))
      if (auto r = mp.getAs<StringAttr>("reduce_dtype")) {
        if (r.getValue() == "bf16")
          reduceType = BFloat16Type::get(&getContext());
        else if (r.getValue() == "fp16")
          reduceType = Float16Type::get(&getContext());
      }
    // mp_policy.master_dtype: bf16 keeps the masters and moments in bf16 (the update in f32).
    auto master = train.getAs<StringAttr>("master_dtype");
    masterBf16 = master && master.getValue() == "bf16";
    auto policy = train.getAs<StringAttr>("offload_policy");
    offload = policy && policy.getValue() == "cpu";
    module.walk([&](func::FuncOp func) {
      if (!func.isExternal() && failed(addOptimizer(func, adamw, maxNorm, schedule)))
        signalPassFailure();
    });
  }

  // This step's lr from the step number t (from 1): linear warmup lr·t/W, then the cosine from
  // lr to min_lr over [W, T]; min() of the two picks the branch (the warmup line lies below lr
  // up to W, the cosine at or below lr after).
  static Value scheduledLr(Builder &e, Value t, double lr, const Schedule &s) {
    Value p = e.div(e.sub(t, e.scalar(double(s.warmup))), e.scalar(double(s.total - s.warmup)));
    p = sc::MinOp::create(e.b, e.loc, e.scalarType, sc::MaxOp::create(e.b, e.loc, e.scalarType, p, e.scalar(0.0)),
                          e.scalar(1.0));
    Value cosine = sc::CosOp::create(e.b, e.loc, e.scalarType, e.mul(p, e.scalar(M_PI)));
    Value decayed = e.add(e.scalar(s.minLr), e.mul(e.scalar(0.5 * (lr - s.minLr)), e.add(e.scalar(1.0), cosine)));
    if (s.warmup == 0)
      return decayed;
    Value warm = e.mul(t, e.scalar(lr / double(s.warmup)));
    return sc::MinOp::create(e.b, e.loc, e.scalarType, warm, decayed);
  }

  LogicalResult addOptimizer(func::FuncOp func, const AdamW &o, std::optional<double> maxNorm,
                             std::optional<Schedule> schedule) {
    Block &entry = func.getBody().front();
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    // CPU offload: every op this pass adds runs on the host (sc.host, placed by sc-offload)
    // but the gradient's cast to reduce_dtype and its layout constraint (the reduce-scatter
    // stays on the device), a bf16 master's load-time cast and the constants.
    llvm::DenseSet<Operation *> existing, deviceSide;
    if (offload)
      func.walk([&](Operation *op) { existing.insert(op); });
    llvm::StringMap<unsigned> gradAt;
    llvm::BitVector gradResults(func.getNumResults());
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto n = func.getResultAttrOfType<StringAttr>(i, "sc.name"); n && n.getValue().starts_with("grad.")) {
        gradAt[n.getValue().drop_front(5)] = i;
        gradResults.set(i);
      }
    SmallVector<std::pair<sc::ParamOp, Value>> params;
    for (auto p : entry.getOps<sc::ParamOp>())
      if (p->hasAttr("sc.trainable")) {
        auto it = gradAt.find(p.getName());
        if (it == gradAt.end())
          return p.emitOpError() << "sc-add-optimizer: trainable parameter " << p.getName()
                                 << " has no gradient output (run sc-autodiff first)";
        params.push_back({p, ret.getOperand(it->second)});
      }
    if (params.empty())
      return func.emitError() << "sc-add-optimizer: no trainable parameter to update";

    MLIRContext *ctx = func.getContext();
    std::optional<MeshShape> mesh = MeshShape::fromModule(func->getParentOfType<ModuleOp>());
    if (!mesh)
      return func.emitError() << "sc-add-optimizer needs sc.mesh (run sc-apply-plan first)";
    SmallVector<StringRef> axes;
    for (auto &[name, size] : mesh->axes)
      axes.push_back(name);
    if (mesh->ep > 1) // expert parallelism's sub-axes of dp_shard x cp, where expert stacks are stored
      axes.append({"ep_shard", "ep"});
    auto loc = [&](StringRef what) { return makeBackwardLoc(NameLoc::get(StringAttr::get(ctx, what))); };
    auto f32 = RankedTensorType::get({}, Float32Type::get(ctx));
    OpBuilder top(ctx), end(ret);
    top.setInsertionPointToStart(&entry);
    Builder e{end, loc("optimizer"), f32};

    // The step count t (state, zero at load) and this step's t + 1.
    auto count = sc::StateOp::create(top, loc("optimizer.step"), f32, Value(), "optimizer.step");
    setSharding(count, Sharding::replicated(0));
    Value t = e.add(count, e.scalar(1.0));

    // Each parameter's master, moments and the layout-constrained gradient and master, first:
    // the norm reads the gradients in the stored layout, so each gradient is reduce-scattered
    // once (the update reads the same shard) and only the sums of squares are all-reduced, over
    // the axes that shard that parameter (clip_grad_norm_ on DTensors).
    struct Update {
      Location at;
      Value w, m, v, gs, ws;
      std::string shardAxes; // the mesh axes of the stored layout, in dim order
      int64_t copies;        // a view repeating each stored block (sc.file_repeat): its count
    };
    SmallVector<Update> updates;
    for (auto &[p, grad] : params) {
      auto type = cast<RankedTensorType>(p.getType());
      if (!type.getElementType().isF32())
        return p.emitOpError() << "sc-add-optimizer: AdamW keeps f32 parameters (or their bf16 copies) as state; "
                               << p.getName() << " is " << type.getElementType();
      top.setInsertionPointAfter(p);
      Location at = loc(("adamw " + p.getName()).str());
      // bf16 masters: the state starts as the weight cast to bf16 (at load); the forward's
      // cast to param_dtype (bf16) becomes the state itself.
      auto stateType = masterBf16 ? RankedTensorType::get(type.getShape(), BFloat16Type::get(ctx)) : type;
      Value init = p.getResult();
      if (masterBf16) {
        init = sc::CastOp::create(top, at, stateType, init);
        deviceSide.insert(init.getDefiningOp());
      }
      auto w = sc::StateOp::create(top, at, stateType, init, p.getName());
      if (masterBf16) {
        for (Operation *user : llvm::to_vector(p->getUsers()))
          if (auto c = dyn_cast<sc::CastOp>(user); c && c != init.getDefiningOp() && c.getType() == stateType) {
            c.getResult().replaceAllUsesWith(w.getResult());
            existing.erase(c); // its address may be reused by an op made below
            c->erase();
          }
        if (!p->hasOneUse())
          return p.emitOpError() << "sc-add-optimizer: master_dtype bf16 needs every read of " << p.getName()
                                 << " to be its cast to bf16 (param_dtype: bf16)";
      } else {
        p.getResult().replaceAllUsesExcept(w, w);
      }
      top.setInsertionPointAfter(w); // the erased cast may have been the insertion point
      auto m = sc::StateOp::create(top, at, stateType, Value(), ("adamw.exp_avg." + p.getName()).str());
      auto v = sc::StateOp::create(top, at, stateType, Value(), ("adamw.exp_avg_sq." + p.getName()).str());
      // FSDP2's layout: the state, its moments and the update live sharded as the parameter
      // is stored (sc-apply-plan's sc.storage_sharding: tp and the FSDP axes; the weights are
      // read already sharded, so the state's initial copy is local). The forward and backward
      // read the state in its compute layout (sc-insert-reshards all-gathers it like a stored
      // parameter); the update reads it, and the gradient, through layout constraints to the
      // stored layout: the gradient is reduce-scattered there, and the stored layout does not
      // leak into the backward's propagation.
      Sharding compute = getSharding(p.getResult()).value_or(Sharding::replicated(type.getRank()));
      Sharding stored = Sharding::fromAttr(p->getAttr("sc.storage_sharding")).value_or(compute);
      p->removeAttr("sc.storage_sharding");
      setSharding(p.getResult(), stored);
      if (masterBf16)
        setSharding(init, stored);
      setSharding(w.getResult(), compute);
      w->setAttr("sc.storage_sharding", stored.toAttr(ctx));
      setSharding(m.getResult(), stored);
      setSharding(v.getResult(), stored);
      auto constrain = [&](Value x) -> Value {
        return sc::ShardingConstraintOp::create(end, at, x.getType(), x, end.getStrArrayAttr(axes), stored.toAttr(ctx));
      };
      // The gradient's constraint right after the gradient: its reduce-scatter runs in the
      // backward, where FSDP2 runs it (after the layer's backward), and the unsharded gradient
      // dies there instead of living to the end of the step. It is reduced in reduce_dtype
      // (FSDP2's): cast before the reduce-scatter (the Partial gradient flows through the
      // cast), back to f32 after it.
      OpBuilder afterGrad(ctx);
      afterGrad.setInsertionPointAfterValue(grad);
      Value gs = grad;
      auto gradType = cast<RankedTensorType>(grad.getType());
      bool low = !reduceType.isF32() && gradType.getElementType().isF32();
      if (low) {
        gs = sc::CastOp::create(afterGrad, at, RankedTensorType::get(gradType.getShape(), reduceType), gs);
        deviceSide.insert(gs.getDefiningOp());
      }
      gs = sc::ShardingConstraintOp::create(afterGrad, at, gs.getType(), gs, afterGrad.getStrArrayAttr(axes),
                                            stored.toAttr(ctx));
      deviceSide.insert(gs.getDefiningOp());
      if (low)
        gs = sc::CastOp::create(afterGrad, at, gradType, gs);
      std::string shardAxes;
      for (auto &dimAxes : stored.dims)
        for (auto &a : dimAxes)
          shardAxes += a + ",";
      auto repeat = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_repeat");
      int64_t copies = repeat && repeat.size() == 3 ? repeat[2] : 1;
      updates.push_back({at, w, m, v, gs, constrain(w), shardAxes, copies});
    }

    // clip_grad_norm_: the global L2 norm (sums over shards become all-reductions), and the
    // factor min(1, max_norm / (norm + 1e-6)).
    // The local sums are added per set of axes that shard the parameters (their Partial axes)
    // before the groups are added: one all-reduce per set (tp and dp_shard, dp_shard alone, ...)
    // instead of one per parameter.
    SmallVector<std::pair<std::string, Value>> groupSums; // in order of first appearance
    for (const Update &up : updates) {
      Value sq = e.sumOfSquares(up.gs);
      // Each copy of a repeated view holds the stored block's whole gradient (sc-autodiff):
      // the norm counts the block once.
      if (up.copies > 1)
        sq = e.mul(sq, e.scalar(1.0 / double(up.copies)));
      auto group = llvm::find_if(groupSums, [&](auto &g) { return g.first == up.shardAxes; });
      if (group == groupSums.end())
        groupSums.push_back({up.shardAxes, sq});
      else
        group->second = e.add(group->second, sq);
    }
    Value sumsq;
    for (auto &[axesKey, group] : groupSums)
      sumsq = sumsq ? e.add(sumsq, group) : group;
    Value norm = e.sqrt(sumsq);
    Value coef;
    if (maxNorm)
      coef = sc::MinOp::create(end, e.loc, f32, e.scalar(1.0), e.div(e.scalar(*maxNorm), e.add(norm, e.scalar(1e-6))));

    // Bias corrections (PyTorch's: 1 - beta^t), the step size lr / bc1, and sqrt(bc2).
    auto pow = [&](double base) { return sc::PowOp::create(end, e.loc, f32, e.scalar(base), t).getResult(); };
    Value lr = schedule ? scheduledLr(e, t, o.lr, *schedule) : e.scalar(o.lr);
    Value stepSize = e.div(lr, e.sub(e.scalar(1.0), pow(o.beta1)));
    // Decoupled weight decay's factor 1 − lr·wd (a constant without a schedule).
    Value keep = schedule ? e.sub(e.scalar(1.0), e.mul(lr, e.scalar(o.weightDecay)))
                          : e.scalar(1.0 - o.lr * o.weightDecay);
    Value bc2Sqrt = e.sqrt(e.sub(e.scalar(1.0), pow(o.beta2)));

    for (const Update &up : updates) {
      Builder u{end, up.at, f32};
      // The update in f32 (bf16 masters and moments widened, the new values rounded back).
      auto wideType = cast<RankedTensorType>(up.gs.getType());
      auto wide = [&](Value x) -> Value {
        return x.getType() == wideType ? x : sc::CastOp::create(end, up.at, wideType, x).getResult();
      };
      auto narrow = [&](Value x, Value state) -> Value {
        return state.getType() == x.getType() ? x : sc::CastOp::create(end, up.at, state.getType(), x).getResult();
      };
      Value w = up.w, m = up.m, v = up.v, gs = up.gs, ws = wide(up.ws);
      Value g = coef ? u.mul(gs, coef) : gs;
      Value m1 = u.add(u.mul(wide(m), u.scalar(o.beta1)), u.mul(g, u.scalar(1.0 - o.beta1)));
      Value v1 = u.add(u.mul(wide(v), u.scalar(o.beta2)), u.mul(u.mul(g, g), u.scalar(1.0 - o.beta2)));
      Value denom = u.add(u.div(u.sqrt(v1), bc2Sqrt), u.scalar(o.eps));
      Value decayed = u.mul(ws, keep);
      Value w1 = u.sub(decayed, u.mul(u.div(m1, denom), stepSize));
      // Nothing reads this parameter's states after its update (the forward and backward read
      // them earlier; the norm reads gradients), so the new values are assigned at once and
      // die here: held until the end of the step they would be three more copies of the
      // masters in the arena.
      for (auto [value, state] : {std::pair{narrow(w1, w), w}, {narrow(m1, m), m}, {narrow(v1, v), v}})
        sc::AssignOp::create(end, value.getLoc(), value, state);
    }
    // The step count is read by every update's bias corrections: its assign comes last.
    sc::AssignOp::create(end, t.getLoc(), t, count);

    if (offload)
      func.walk([&](Operation *op) {
        if (!existing.contains(op) && !deviceSide.contains(op) && !isa<sc::ConstantOp, func::ReturnOp>(op))
          op->setAttr(sc::kHostAttr, UnitAttr::get(ctx));
      });
    // The outputs: the gradients go (they are consumed here), the pre-clip norm and this
    // step's lr come.
    ret->eraseOperands(gradResults);
    if (failed(func.eraseResults(gradResults)))
      return failure();
    for (auto [value, name] : {std::pair{norm, "grad_norm"}, {lr, "lr"}}) {
      ret->insertOperands(ret.getNumOperands(), value);
      auto attrs = end.getDictionaryAttr(end.getNamedAttr("sc.name", end.getStringAttr(name)));
      if (failed(func.insertResult(func.getNumResults(), f32, attrs)))
        return failure();
    }
    return success();
  }
};

} // namespace
} // namespace shardc
