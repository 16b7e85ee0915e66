// sc-autodiff: reverse-mode differentiation of a `mode: train` program. From the loss that
// sc-add-loss returns, the gradients flow back through each op's VJP rule (VjpOpInterface,
// lib/Dialect/ScVjpRules.cpp) to the trainable parameters (sc.trainable), whose gradients the
// program returns. It runs on the global program, before the plan is applied, so the backward
// ops are sharded, partitioned and fused with the forward ones.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"

#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/DenseSet.h"

namespace shardc {
#define GEN_PASS_DEF_SCAUTODIFF
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {

bool isFloatTensor(Value v) {
  auto t = dyn_cast<RankedTensorType>(v.getType());
  return t && isa<FloatType>(t.getElementType());
}

struct Differentiator {
  func::FuncOp func;
  func::ReturnOp ret;
  Value loss;
  SmallVector<sc::ParamOp> params;     // trainable, in program order
  llvm::DenseSet<Value> active;        // depends on a trainable parameter
  llvm::DenseSet<Value> needed;        // the loss depends on it
  llvm::DenseMap<Value, Value> grads;  // d loss / d value, where one flows

  LogicalResult findLossAndParams() {
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (auto name = func.getResultAttrOfType<StringAttr>(i, "sc.name"); name && name.getValue() == "loss")
        loss = ret.getOperand(i);
    if (!loss)
      return func.emitError() << "sc-autodiff: mode: train differentiates the output `loss`, which the "
                                 "program lacks (sc-add-loss adds it)";
    for (Operation &op : func.getBody().front()) {
      if (op.getNumRegions() != 0)
        return op.emitOpError() << "sc-autodiff runs on the flat program, before sc-group-layers";
      if (auto p = dyn_cast<sc::ParamOp>(op); p && p->hasAttr("sc.trainable"))
        params.push_back(p);
    }
    if (params.empty())
      return func.emitError() << "sc-autodiff: mode: train has no trainable parameter (every sc.param is "
                                 "frozen: check the plan's trainable:/frozen: globs)";
    return success();
  }

  void markActiveAndNeeded() {
    for (sc::ParamOp p : params)
      active.insert(p.getResult());
    // sc.stop_gradient's result is a constant to the differentiation (torch's detach).
    for (Operation &op : func.getBody().front().without_terminator())
      if (!isa<sc::StopGradientOp>(op) && llvm::any_of(op.getOperands(), [&](Value v) { return active.contains(v); }))
        for (Value r : op.getResults())
          if (isFloatTensor(r))
            active.insert(r);
    needed.insert(loss);
    for (Operation &op : llvm::reverse(func.getBody().front().without_terminator()))
      if (llvm::any_of(op.getResults(), [&](Value v) { return needed.contains(v); }))
        for (Value v : op.getOperands())
          needed.insert(v);
  }

  void accumulate(OpBuilder &b, Value v, Value g) {
    auto [it, inserted] = grads.try_emplace(v, g);
    if (!inserted)
      it->second = sc::AddOp::create(b, makeBackwardLoc(g.getLoc()), g.getType(), it->second, g);
  }

  LogicalResult run() {
    if (failed(findLossAndParams()))
      return failure();
    markActiveAndNeeded();
    OpBuilder b(ret);
    auto f32 = RankedTensorType::get({}, b.getF32Type());
    if (loss.getType() != f32)
      return func.emitError() << "sc-autodiff: the loss must be an f32 scalar, got " << loss.getType();
    grads[loss] = sc::ConstantOp::create(b, makeBackwardLoc(loss.getLoc()), f32,
                                         DenseElementsAttr::get(f32, b.getF32FloatAttr(1.0f)));
    SmallVector<Operation *> forward;
    for (Operation &op : func.getBody().front().without_terminator())
      forward.push_back(&op);
    for (Operation *op : llvm::reverse(forward)) {
      SmallVector<Value> resultGrads;
      bool any = false;
      for (Value r : op->getResults()) {
        Value g = grads.lookup(r);
        resultGrads.push_back(g);
        any |= bool(g);
      }
      SmallVector<bool> wanted;
      bool anyWanted = false;
      for (Value v : op->getOperands()) {
        wanted.push_back(active.contains(v) && needed.contains(v) && isFloatTensor(v));
        anyWanted |= wanted.back();
      }
      if (!any || !anyWanted)
        continue;
      auto rule = dyn_cast<sc::VjpOpInterface>(op);
      if (!rule)
        return op->emitOpError() << "has no VJP rule, so sc-autodiff cannot differentiate the loss through it ("
                                 << describeLoc(op->getLoc()) << ")";
      Operation *before = ret->getPrevNode();
      SmallVector<Value> operandGrads(op->getNumOperands());
      if (failed(rule.buildVjp(b, resultGrads, wanted, operandGrads)))
        return failure();
      // Mark what the rule built (between `before` and the return) as the backward's.
      for (Operation *o = before ? before->getNextNode() : &func.getBody().front().front(); o != ret.getOperation();
           o = o->getNextNode())
        o->setLoc(makeBackwardLoc(o->getLoc()));
      for (auto [i, g] : llvm::enumerate(operandGrads))
        if (g && wanted[i])
          accumulate(b, op->getOperand(i), g);
    }
    return returnGradients(b);
  }

  // Parts `<base>.part0` … `<base>.part<n-1>` of one stored weight (their sc.file_start
  // differs in one dim) become one gradient of <base>, concatenated along that dim, where the
  // first part stood; anything else passes through.
  SmallVector<std::pair<std::string, Value>> joinPackedParts(OpBuilder &b,
                                                             ArrayRef<std::pair<std::string, Value>> in) {
    llvm::StringMap<SmallVector<std::pair<int64_t, size_t>>> groups; // base -> (part index, position)
    for (auto [i, entry] : llvm::enumerate(in)) {
      StringRef name(entry.first);
      size_t at = name.rfind(".part");
      int64_t index;
      if (at != StringRef::npos && !name.drop_front(at + 5).getAsInteger(10, index))
        groups[name.take_front(at)].push_back({index, i});
    }
    SmallVector<std::pair<std::string, Value>> out;
    llvm::DenseSet<size_t> joined;
    for (auto [i, entry] : llvm::enumerate(in)) {
      if (joined.contains(i))
        continue;
      StringRef name(entry.first);
      size_t at = name.rfind(".part");
      auto it = at == StringRef::npos ? groups.end() : groups.find(name.take_front(at));
      if (it == groups.end() || it->second.size() < 2) {
        out.push_back(entry);
        continue;
      }
      auto parts = it->second;
      llvm::sort(parts);
      bool whole = true;
      for (auto [k, part] : llvm::enumerate(parts))
        whole &= part.first == int64_t(k);
      auto startOf = [&](size_t pos) {
        return params[pos]->getAttrOfType<DenseI64ArrayAttr>("sc.file_start");
      };
      auto s1 = startOf(parts[1].second);
      int64_t dim = -1;
      for (int64_t d = 0; s1 && d < int64_t(s1.size()); ++d)
        if (s1[d] != 0)
          dim = d;
      if (!whole || dim < 0) {
        out.push_back(entry);
        continue;
      }
      SmallVector<Value> grads;
      auto type = cast<RankedTensorType>(in[parts[0].second].second.getType());
      SmallVector<int64_t> shape(type.getShape());
      shape[dim] = 0;
      for (auto &part : parts) {
        grads.push_back(in[part.second].second);
        shape[dim] += cast<RankedTensorType>(in[part.second].second.getType()).getDimSize(dim);
        joined.insert(part.second);
      }
      Value cat = sc::ConcatOp::create(b, makeBackwardLoc(grads.front().getLoc()),
                                       RankedTensorType::get(shape, type.getElementType()), grads,
                                       b.getI64IntegerAttr(dim));
      out.push_back({it->first().str(), cat});
    }
    return out;
  }

  // A view that repeats blocks of the stored parameter (sc.file_repeat {dim, block, times}:
  // kv heads fewer than tp, KvHeadReplication.cpp) is `times` copies of each block: the stored
  // block's gradient is the sum of its copies'. With an optimizer every copy gets that sum (so
  // the copies, one per rank, take the same step and stay equal); returned to the user, the
  // gradient has the stored parameter's shape.
  Value sumRepeats(OpBuilder &b, sc::ParamOp p, Value g, bool keepCopies) {
    auto r = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_repeat");
    if (!r || r.size() != 3)
      return g;
    int64_t dim = r[0], block = r[1], times = r[2];
    auto type = cast<RankedTensorType>(g.getType());
    ArrayRef<int64_t> shape = type.getShape();
    Type elt = type.getElementType();
    int64_t blocks = shape[dim] / (block * times);
    SmallVector<int64_t> split(shape.take_front(dim)), summed, stored(shape);
    split.append({blocks, times, block});
    split.append(shape.begin() + dim + 1, shape.end());
    summed = split;
    summed[dim + 1] = 1;
    stored[dim] = blocks * block;
    Location loc = makeBackwardLoc(p.getLoc());
    Value v = sc::ReshapeOp::create(b, loc, RankedTensorType::get(split, elt), g);
    v = sc::ReduceSumOp::create(b, loc, RankedTensorType::get(summed, elt), v, b.getDenseI64ArrayAttr({dim + 1}), true);
    if (!keepCopies)
      return sc::ReshapeOp::create(b, loc, RankedTensorType::get(stored, elt), v);
    v = sc::ExpandOp::create(b, loc, RankedTensorType::get(split, elt), v);
    return sc::ReshapeOp::create(b, loc, type, v);
  }

  // Uneven shards (PaddedShards.cpp): a parameter padded with zeros past its stored shape
  // (sc.file_shape, no start or repeat) returns the gradient of the stored part only.
  Value trimPadding(OpBuilder &b, sc::ParamOp p, Value g) {
    auto fileShape = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_shape");
    auto type = cast<RankedTensorType>(g.getType());
    if (!fileShape || p->hasAttr("sc.file_start") || p->hasAttr("sc.file_repeat") ||
        fileShape.asArrayRef() == type.getShape() || int64_t(fileShape.size()) != type.getRank())
      return g;
    for (auto [f, s] : llvm::zip(fileShape.asArrayRef(), type.getShape()))
      if (f > s)
        return g;
    SmallVector<int64_t> zeros(type.getRank(), 0), ones(type.getRank(), 1);
    return sc::SliceOp::create(b, makeBackwardLoc(p.getLoc()), RankedTensorType::get(fileShape, type.getElementType()),
                               g, b.getDenseI64ArrayAttr(zeros), b.getDenseI64ArrayAttr(ones));
  }

  // One output `grad.<parameter>` per trainable parameter, in the stored layout; a parameter
  // the loss does not read gets zeros.
  LogicalResult returnGradients(OpBuilder &b) {
    auto train = func->getParentOfType<ModuleOp>()->getAttrOfType<DictionaryAttr>("sc.train");
    bool optimizer = train && train.get("optimizer");
    SmallVector<std::pair<std::string, Value>> outputs;
    for (sc::ParamOp p : params) {
      Value g = grads.lookup(p.getResult());
      auto type = cast<RankedTensorType>(p.getType());
      if (!g)
        g = sc::ConstantOp::create(b, makeBackwardLoc(p.getLoc()), type,
                                   DenseElementsAttr::get(type, b.getFloatAttr(type.getElementType(), 0.0)));
      g = sumRepeats(b, p, g, optimizer);
      if (!optimizer)
        g = trimPadding(b, p, g);
      outputs.push_back({p.getName().str(), g});
    }
    // Returned to the user (no optimizer consumes them), the gradients of a packed projection's
    // parts (sc-apply-plan's packed_colwise: `<name>.part<i>`, views of one stored weight) are
    // concatenated back into the parameter's gradient.
    if (!optimizer)
      outputs = joinPackedParts(b, outputs);
    for (auto &[param, g] : outputs) {
      std::string name = "grad." + param;
      for (unsigned i = 0; i < func.getNumResults(); ++i)
        if (auto n = func.getResultAttrOfType<StringAttr>(i, "sc.name"); n && n.getValue() == name)
          return func.emitError() << "sc-autodiff: the graph already has an output named " << name;
      ret->insertOperands(ret.getNumOperands(), g);
      auto attrs = b.getDictionaryAttr(b.getNamedAttr("sc.name", b.getStringAttr(name)));
      if (failed(func.insertResult(func.getNumResults(), g.getType(), attrs)))
        return failure();
    }
    // What nothing reads now: forward ops a rule replaced (attention rebuilt with its
    // log-sum-exp) and gradients that reach no parameter (a label count's).
    for (Operation &op : llvm::make_early_inc_range(llvm::reverse(func.getBody().front())))
      if (isOpTriviallyDead(&op) && !isa<sc::ParamOp>(op))
        op.erase();
    return success();
  }
};

struct ScAutodiffPass : impl::ScAutodiffBase<ScAutodiffPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    if (!module->hasAttr("sc.train"))
      return;
    module.walk([&](func::FuncOp func) {
      if (func.isExternal())
        return;
      Differentiator d{func, cast<func::ReturnOp>(func.getBody().front().getTerminator()), Value(), {}, {}, {}, {}};
      if (failed(d.run()))
        signalPassFailure();
    });
  }
};

} // namespace
} // namespace shardc
