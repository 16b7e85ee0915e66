// sc-update-router-bias: DeepSeek-V3's auxiliary-loss-free load balancing
// (`router_bias_update_speed: γ`, docs/moe.md#training). Each router's score bias (a frozen
// buffer, e_score_correction_bias: it only chooses experts) becomes training state, and after
// every step moves towards balance: with c_e the (token, choice) pairs routed to expert e over
// the step (every micro-batch, every data-parallel rank: the sums over the tokens are Partial
// and reduced like any other), bias_e += γ·sign(mean(c) − c_e), the update centred to a zero
// mean as torchtitan's load_balance_coeff does (the choice is invariant to a shift).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "MoeRouting.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/MapVector.h"


namespace shardc {
#define GEN_PASS_DEF_SCUPDATEROUTERBIAS
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {


struct ScUpdateRouterBiasPass : impl::ScUpdateRouterBiasBase<ScUpdateRouterBiasPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
    auto speed = train ? train.getAs<FloatAttr>("router_bias_update_speed") : FloatAttr();
    if (!speed)
      return;
    if (!train.get("optimizer")) {
      module.emitError() << "sc-update-router-bias: router_bias_update_speed needs an optimizer (it updates the "
                            "router biases once a step)";
      return signalPassFailure();
    }
    bool failed = false;
    module.walk([&](func::FuncOp func) {
      if (func.isExternal() || failed)
        return;
      // The routers of each bias (micro-batch copies share one).
      llvm::MapVector<sc::ParamOp, SmallVector<sc::MoeRouterOp>> byBias;
      func.walk([&](sc::MoeRouterOp r) {
        if (!r.getBias())
          return;
        auto p = r.getBias().getDefiningOp<sc::ParamOp>();
        if (!p || p->hasAttr("sc.trainable")) {
          r.emitError() << "sc-update-router-bias: the router's score bias must be a frozen parameter (a buffer such "
                           "as e_score_correction_bias) for router_bias_update_speed";
          failed = true;
          return;
        }
        byBias[p].push_back(r);
      });
      if (failed)
        return;
      if (byBias.empty()) {
        func.emitError() << "sc-update-router-bias: router_bias_update_speed needs routers with a score bias "
                            "(DeepSeek-V3's e_score_correction_bias); sc-raise-moe raised none";
        failed = true;
        return;
      }
      auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
      OpBuilder end(ret);
      for (auto &[p, routers] : byBias) {
        auto type = cast<RankedTensorType>(p.getType());
        if (!type.getElementType().isF32()) {
          p.emitError() << "sc-update-router-bias: an f32 score bias expected, got " << type;
          failed = true;
          return;
        }
        Location at = routers.front().getLoc();
        OpBuilder top(p);
        top.setInsertionPointAfter(p);
        auto state = sc::StateOp::create(top, at, type, p.getResult(), ("router_bias." + p.getName()).str());
        // Stored as sc-apply-plan stores the buffer (FSDP may shard it), read in its compute
        // layout, as sc-add-optimizer lays out the masters.
        Sharding compute = getSharding(p.getResult()).value_or(Sharding::replicated(1));
        Sharding stored = Sharding::fromAttr(p->getAttr("sc.storage_sharding")).value_or(compute);
        p->removeAttr("sc.storage_sharding");
        setSharding(p.getResult(), stored);
        setSharding(state.getResult(), compute);
        state->setAttr("sc.storage_sharding", stored.toAttr(p.getContext()));
        p.getResult().replaceAllUsesExcept(state, state);
        Value counts;
        for (sc::MoeRouterOp r : routers) {
          Value c = expertCounts(end, at, r);
          counts = counts ? sc::AddOp::create(end, at, type, counts, c).getResult() : c;
        }
        auto scalar = RankedTensorType::get({}, type.getElementType());
        auto axis0 = end.getDenseI64ArrayAttr({0});
        Value mean = sc::ReduceMeanOp::create(end, at, scalar, counts, axis0, false);
        Value dir = sc::SignOp::create(end, at, type, sc::SubOp::create(end, at, type, mean, counts));
        Value gamma = sc::ConstantOp::create(
            end, at, scalar, DenseElementsAttr::get(scalar, end.getF32FloatAttr(float(speed.getValueAsDouble()))));
        Value delta = sc::MulOp::create(end, at, type, dir, gamma);
        delta = sc::SubOp::create(end, at, type, delta, sc::ReduceMeanOp::create(end, at, scalar, delta, axis0, false));
        sc::AssignOp::create(end, at, sc::AddOp::create(end, at, type, state, delta), state);
      }
    });
    if (failed)
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
