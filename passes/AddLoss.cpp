// sc-add-loss: a `mode: train` plan's causal-LM loss, appended to the forward program before
// the plan is applied (Hugging Face's ForCausalLMLoss: shifted labels, ignore index -100,
// summed cross-entropy divided by the count of label tokens).
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"
#include "MoeRouting.h"


namespace shardc {
#define GEN_PASS_DEF_SCADDLOSS
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {

constexpr int64_t kIgnoreIndex = -100;

std::string shapeText(RankedTensorType t) {
  std::string s;
  llvm::raw_string_ostream os(s);
  os << "[";
  llvm::interleave(t.getShape(), os, ", ");
  os << "] " << t.getElementType();
  return s;
}

StringRef nameOf(func::FuncOp func, unsigned i, bool result) {
  auto n = result ? func.getResultAttrOfType<StringAttr>(i, "sc.name") : func.getArgAttrOfType<StringAttr>(i, "sc.name");
  return n ? n.getValue() : StringRef();
}

// The token ids: the int64 [B, S] argument named input_ids, else the only int64 [B, S] one.
FailureOr<BlockArgument> findInputIds(func::FuncOp func) {
  SmallVector<BlockArgument> candidates;
  for (BlockArgument arg : func.getArguments()) {
    auto t = cast<RankedTensorType>(arg.getType());
    if (t.getRank() == 2 && t.getElementType().isInteger(64)) {
      if (nameOf(func, arg.getArgNumber(), false) == "input_ids")
        return arg;
      candidates.push_back(arg);
    }
  }
  if (candidates.size() == 1)
    return candidates.front();
  func.emitError() << "sc-add-loss: mode: train needs the token ids, an int64 input [B, S] named input_ids; "
                   << (candidates.empty() ? "the graph has no int64 [B, S] input" : "several int64 [B, S] inputs, none named input_ids");
  return failure();
}

// The logits: a float [B, S, V] return value (the one named `logits` when several fit).
FailureOr<unsigned> findLogits(func::FuncOp func, func::ReturnOp ret, ArrayRef<int64_t> bs) {
  SmallVector<unsigned> fits;
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    auto t = cast<RankedTensorType>(v.getType());
    if (t.getRank() == 3 && isa<FloatType>(t.getElementType()) && t.getDimSize(0) == bs[0] && t.getDimSize(1) == bs[1]) {
      if (nameOf(func, i, true) == "logits")
        return i;
      fits.push_back(i);
    }
  }
  if (fits.size() == 1)
    return fits.front();
  InFlightDiagnostic d = func.emitError();
  d << "sc-add-loss: mode: train needs the logits, a float output [" << bs[0] << ", " << bs[1] << ", V]"
    << (fits.empty() ? "; the outputs are:" : ", and several fit with none named logits:");
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    d << (i ? "," : "") << " '" << nameOf(func, i, true) << "' " << shapeText(cast<RankedTensorType>(v.getType()));
    if (Operation *def = v.getDefiningOp())
      d << " from " << describeLoc(def->getLoc());
  }
  return failure();
}

// labels[b, s] = ids[b, s + 1]; the last position predicts nothing (-100).
Value shiftLeft(OpBuilder &b, Location loc, Value ids) {
  auto t = cast<RankedTensorType>(ids.getType());
  int64_t B = t.getDimSize(0), S = t.getDimSize(1);
  Type i64 = b.getI64Type();
  Value next = sc::SliceOp::create(b, loc, RankedTensorType::get({B, S - 1}, i64), ids, b.getDenseI64ArrayAttr({0, 1}),
                                   b.getDenseI64ArrayAttr({1, 1}));
  auto padType = RankedTensorType::get({B, 1}, i64);
  Value pad = sc::ConstantOp::create(b, loc, padType, DenseIntElementsAttr::get(padType, ArrayRef<int64_t>{kIgnoreIndex}));
  return sc::ConcatOp::create(b, loc, t, ValueRange{next, pad}, b.getI64IntegerAttr(1));
}

std::pair<Value, Value> tokenLoss(OpBuilder &b, Location loc, Value logits, Value labels) {
  auto scalar = RankedTensorType::get({}, b.getF32Type());
  auto loss = sc::TokenLossOp::create(b, loc, TypeRange{scalar, scalar}, logits, labels);
  return {loss.getSum(), loss.getCount()};
}

// The vocabulary-parallel form (sc.token_loss_stats in ScOps.td): the rows' maxima, read
// without a gradient; each vocabulary slice's exponential sums and label logits; combined into
// sc.token_loss's sum and count. Split over the vocabulary, three [B, S] vectors are reduced
// across it (a max and two sums) and the logits stay where the lm_head made them.
std::pair<Value, Value> vocabParallelLoss(OpBuilder &b, Location loc, Value logits, Value labels) {
  auto lt = cast<RankedTensorType>(logits.getType());
  Type elem = lt.getElementType();
  auto maxType = RankedTensorType::get(lt.getShape().take_front(2), elem);
  Value max = sc::ReduceMaxOp::create(b, loc, maxType, logits, b.getDenseI64ArrayAttr({2}), false);
  max = sc::StopGradientOp::create(b, loc, maxType, max);
  Type rowElem = elem.isF64() ? elem : b.getF32Type();
  auto rowType = RankedTensorType::get(lt.getShape().take_front(2), rowElem);
  auto stats = sc::TokenLossStatsOp::create(b, loc, TypeRange{rowType, rowType}, logits, labels, max, Value());
  auto scalar = RankedTensorType::get({}, rowElem);
  auto combined = sc::TokenLossCombineOp::create(b, loc, TypeRange{scalar, scalar}, stats.getSumexp(),
                                                 stats.getPicked(), max, labels);
  Value sum = combined.getSum(), count = combined.getCount();
  if (!rowElem.isF32()) {
    auto f32 = RankedTensorType::get({}, b.getF32Type());
    sum = sc::CastOp::create(b, loc, f32, sum);
    count = sc::CastOp::create(b, loc, f32, count);
  }
  return {sum, count};
}

// Hugging Face's load_balancing_loss_func over every raised router (Mixtral, Qwen2-MoE): the
// routers' logits [T, E] stand for its concatenated gate logits, so with N the tokens of all
// routers together, C_e the (token, choice) pairs routed to expert e and P_e the sum of the
// softmax scores of e, aux = E · Σ_e (C_e / N)(P_e / N). The counts come from the integer
// choices (no gradient); the sums over the tokens are Partial when the batch is split and
// reduced like any other, so the statistics are global (over dp and cp). The router's own
// choice is the top-k that Hugging Face recomputes (softmax routers without a bias or groups).
FailureOr<Value> routerAuxLoss(OpBuilder &b, Location loc, func::FuncOp func) {
  SmallVector<sc::MoeRouterOp> routers;
  func.walk([&](sc::MoeRouterOp r) { routers.push_back(r); });
  if (routers.empty()) {
    func.emitError() << "sc-add-loss: router_aux_loss_coef needs a mixture-of-experts router, and sc-raise-moe "
                        "raised none in this graph";
    return failure();
  }
  auto f32 = b.getF32Type();
  auto scalar = RankedTensorType::get({}, f32);
  const int64_t E = cast<RankedTensorType>(routers.front().getLogits().getType()).getDimSize(1);
  Value counts, probs;
  int64_t tokens = 0;
  for (sc::MoeRouterOp r : routers) {
    auto lt = cast<RankedTensorType>(r.getLogits().getType());
    if (lt.getDimSize(1) != E || !lt.getElementType().isF32()) {
      r.emitError() << "sc-add-loss: router_aux_loss_coef needs f32 routers of one expert count (" << E << " first)";
      return failure();
    }
    tokens += lt.getDimSize(0);
    auto vecT = RankedTensorType::get({E}, f32);
    Value scores = sc::SoftmaxOp::create(b, loc, lt, r.getLogits(), b.getI64IntegerAttr(-1));
    Value p = sc::ReduceSumOp::create(b, loc, vecT, scores, b.getDenseI64ArrayAttr({0}), false);
    Value c = expertCounts(b, loc, r);
    counts = counts ? sc::AddOp::create(b, loc, vecT, counts, c).getResult() : c;
    probs = probs ? sc::AddOp::create(b, loc, vecT, probs, p).getResult() : p;
  }
  Value dot = sc::ReduceSumOp::create(b, loc, scalar, sc::MulOp::create(b, loc, counts.getType(), counts, probs),
                                      b.getDenseI64ArrayAttr({0}), false);
  const double n = double(tokens);
  Value factor = sc::ConstantOp::create(b, loc, scalar, DenseElementsAttr::get(scalar, b.getF32FloatAttr(float(E / (n * n)))));
  return sc::MulOp::create(b, loc, scalar, dot, factor).getResult();
}

struct ScAddLossPass : impl::ScAddLossBase<ScAddLossPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
    if (!train)
      return;
    auto labelsFrom = train.getAs<StringAttr>("labels");
    bool labelsInput = labelsFrom && labelsFrom.getValue() == "input";
    // loss_parallel: as the plan says, else on when the mesh has tp > 1.
    bool lossParallel = false;
    if (auto lp = train.getAs<BoolAttr>("loss_parallel"))
      lossParallel = lp.getValue();
    else if (auto mesh = MeshShape::fromModule(module))
      lossParallel = mesh->size("tp") > 1;
    bool failed = false;
    module.walk([&](func::FuncOp func) {
      if (func.isExternal() || failed)
        return;
      auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
      FailureOr<BlockArgument> ids = findInputIds(func);
      if (mlir::failed(ids)) {
        failed = true;
        return;
      }
      auto idsType = cast<RankedTensorType>(ids->getType());
      if (idsType.getDimSize(1) < 2) {
        func.emitError() << "sc-add-loss: a sequence of " << idsType.getDimSize(1) << " token predicts nothing";
        failed = true;
        return;
      }
      FailureOr<unsigned> logitsAt = findLogits(func, ret, idsType.getShape());
      if (mlir::failed(logitsAt)) {
        failed = true;
        return;
      }
      // The names the pass adds must be free (the runtime binds inputs and outputs by name).
      for (unsigned i = 0; i < func.getNumResults(); ++i)
        for (StringRef name : {"loss", "aux"})
          if (nameOf(func, i, true) == name && (name == "loss" || train.get("router_aux_loss_coef"))) {
            func.emitError() << "sc-add-loss: the graph already has an output named " << name;
            failed = true;
          }
      for (unsigned i = 0; labelsInput && i < func.getNumArguments(); ++i)
        if (nameOf(func, i, false) == "labels") {
          func.emitError() << "sc-add-loss: loss: {labels: input} adds an input named labels, and the graph "
                              "already has one";
          failed = true;
        }
      if (failed)
        return;
      Value logits = ret.getOperand(*logitsAt);
      // Node "loss", no module path, in the model's file (the logits' node's file).
      OnnxLocInfo src = logits.getDefiningOp() ? readOnnxLoc(logits.getDefiningOp()->getLoc()) : OnnxLocInfo{};
      Location loc = makeOnnxLoc(&getContext(), OnnxLocInfo{src.file, "loss", ""}, 0);
      OpBuilder b(ret);
      Value unshifted = *ids;
      if (labelsInput) {
        unsigned n = func.getNumArguments();
        auto attrs = b.getDictionaryAttr(b.getNamedAttr("sc.name", b.getStringAttr("labels")));
        if (mlir::failed(func.insertArgument(n, idsType, attrs, func.getLoc()))) {
          failed = true;
          return;
        }
        unshifted = func.getArgument(n);
      }
      Value labels = shiftLeft(b, loc, unshifted);
      auto scalar = RankedTensorType::get({}, b.getF32Type());
      auto [sum, count] = lossParallel ? vocabParallelLoss(b, loc, logits, labels) : tokenLoss(b, loc, logits, labels);
      Value mean = sc::DivOp::create(b, loc, scalar, sum, count);
      // router_aux_loss_coef: loss = cross-entropy + coef · aux, and aux an output of its own.
      Value aux;
      // With gradient_accumulation_steps sc-unroll-microbatches computes aux per micro-batch
      // and makes the step's aux their mean (docs/moe.md#training).
      if (auto coef = train.getAs<FloatAttr>("router_aux_loss_coef")) {
        FailureOr<Value> a = routerAuxLoss(b, loc, func);
        if (mlir::failed(a)) {
          failed = true;
          return;
        }
        aux = *a;
        Value c = sc::ConstantOp::create(b, loc, scalar,
                                         DenseElementsAttr::get(scalar, b.getF32FloatAttr(float(coef.getValueAsDouble()))));
        mean = sc::AddOp::create(b, loc, scalar, mean, sc::MulOp::create(b, loc, scalar, c, aux));
      }
      // A training step (an optimizer) returns the loss alone: the model's outputs (the
      // logits) would be gathered for nobody.
      if (train.get("optimizer")) {
        ret->eraseOperands(0, ret.getNumOperands());
        if (mlir::failed(func.eraseResults(llvm::BitVector(func.getNumResults(), true)))) {
          failed = true;
          return;
        }
      }
      ret->insertOperands(ret.getNumOperands(), mean);
      auto attrs = b.getDictionaryAttr(b.getNamedAttr("sc.name", b.getStringAttr("loss")));
      if (mlir::failed(func.insertResult(func.getNumResults(), scalar, attrs)))
        failed = true;
      if (aux) {
        ret->insertOperands(ret.getNumOperands(), aux);
        auto auxAttrs = b.getDictionaryAttr(b.getNamedAttr("sc.name", b.getStringAttr("aux")));
        if (mlir::failed(func.insertResult(func.getNumResults(), scalar, auxAttrs)))
          failed = true;
      }
    });
    if (failed)
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
