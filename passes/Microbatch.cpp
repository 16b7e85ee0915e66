// Gradient accumulation (`gradient_accumulation_steps: g` of a `mode: train` plan) on the
// static global program:
//   sc-unroll-microbatches (before sc-autodiff) clones the forward and the loss once per
//     micro-batch, each on its slice of inputs that gain a leading dim g, and makes the loss
//     the step's summed cross-entropy over the step's count of label tokens (plus coef times
//     the mean of the micro-batches' MoE auxiliary losses), so that the gradients of the g
//     copies add up in sc-autodiff;
//   sc-schedule-microbatches (after sc-autodiff) orders the program forward 0, backward 0,
//     forward 1, ... so that micro-batches reuse activation memory, and, with
//     defer_fsdp_grad_sync false, reduce-scatters each micro-batch's gradient to the shard.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "shardc/Sharding/Sharding.h"

#include "mlir/IR/IRMapping.h"
#include "mlir/Interfaces/SideEffectInterfaces.h"
#include "llvm/ADT/BitVector.h"
#include "llvm/ADT/DenseSet.h"

#include <functional>
#include <queue>

namespace shardc {
#define GEN_PASS_DEF_SCUNROLLMICROBATCHES
#define GEN_PASS_DEF_SCSCHEDULEMICROBATCHES
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {

constexpr StringLiteral kGradSyncNode = "microbatch_grad_sync";

// g and defer_fsdp_grad_sync from sc.train (g = 1 without the key).
int64_t accumulationSteps(ModuleOp module, bool *defer = nullptr) {
  auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
  auto g = train ? train.getAs<IntegerAttr>("gradient_accumulation_steps") : IntegerAttr();
  if (defer) {
    auto d = train ? train.getAs<BoolAttr>("defer_fsdp_grad_sync") : BoolAttr();
    *defer = !d || d.getValue();
  }
  return g ? g.getInt() : 1;
}

Location inMicrobatch(Location loc, int64_t j) {
  OnnxLocInfo info = readOnnxLoc(loc);
  std::string prefix = "mb" + std::to_string(j);
  info.modulePath = info.modulePath.empty() ? prefix : prefix + "." + info.modulePath;
  // The node index (the file location's line) as it was.
  unsigned index = 0;
  Location inner = loc;
  if (auto fused = dyn_cast<FusedLoc>(inner); fused && !fused.getLocations().empty())
    inner = fused.getLocations().front();
  while (auto name = dyn_cast<NameLoc>(inner))
    inner = name.getChildLoc();
  if (auto file = dyn_cast<FileLineColLoc>(inner))
    index = file.getLine();
  Location out = makeOnnxLoc(loc.getContext(), info, index);
  return isBackwardLoc(loc) ? makeBackwardLoc(out) : out;
}

bool hasFloatResult(Operation *op) {
  return llvm::any_of(op->getResultTypes(), [](Type t) {
    auto rt = dyn_cast<RankedTensorType>(t);
    return rt && isa<FloatType>(rt.getElementType());
  });
}

StringRef resultName(func::FuncOp func, unsigned i) {
  auto n = func.getResultAttrOfType<StringAttr>(i, "sc.name");
  return n ? n.getValue() : StringRef();
}

// The op whose sum and count sc-add-loss divides (sc.token_loss, or sc.token_loss_combine of
// the vocabulary-parallel form), with its labels; null when the loss is not sum / count.
std::pair<Operation *, Value> lossOp(sc::DivOp div) {
  if (auto l = div.getLhs().getDefiningOp<sc::TokenLossOp>(); l && div.getRhs() == l.getCount())
    return {l, l.getLabels()};
  if (auto l = div.getLhs().getDefiningOp<sc::TokenLossCombineOp>(); l && div.getRhs() == l.getCount())
    return {l, l.getLabels()};
  return {};
}

struct Unroller {
  func::FuncOp func;
  int64_t g;
  bool defer;

  LogicalResult run() {
    Block &entry = func.getBody().front();
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    MLIRContext *ctx = func.getContext();
    // The loss sc-add-loss built: sum / count of one sc.token_loss.
    int64_t lossAt = -1;
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (resultName(func, i) == "loss")
        lossAt = i;
    // With router_aux_loss_coef sc-add-loss built loss = sum / count + c · aux, aux a result
    // of its own: each micro-batch computes its own aux (its routers' statistics, as Hugging
    // Face computes it per forward), and the step's aux is their mean (each micro-batch's aux
    // scaled by 1/g as its cross-entropy is by its share of the labels; Megatron's scaling).
    int64_t auxAt = -1;
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (resultName(func, i) == "aux")
        auxAt = i;
    Value lossValue = lossAt < 0 ? Value() : ret.getOperand(lossAt);
    SmallVector<Operation *> auxTerm; // the loss's add and the coefficient's mul
    Value auxCoef;
    if (auxAt >= 0 && lossValue) {
      auto add = lossValue.getDefiningOp<sc::AddOp>();
      auto mul = add ? add.getRhs().getDefiningOp<sc::MulOp>() : sc::MulOp();
      if (!mul || mul.getRhs() != ret.getOperand(auxAt))
        return func.emitError() << "sc-unroll-microbatches: expected sc-add-loss's loss + coef · aux";
      auxTerm = {add, mul};
      auxCoef = mul.getLhs();
      lossValue = add.getLhs();
    }
    auto lossDiv = lossValue ? lossValue.getDefiningOp<sc::DivOp>() : sc::DivOp();
    auto [tokenLoss, labelsOf] = lossDiv ? lossOp(lossDiv) : std::pair<Operation *, Value>{};
    if (!tokenLoss)
      return func.emitError() << "sc-unroll-microbatches: gradient_accumulation_steps needs the loss of "
                                 "sc-add-loss (sum / count of one sc.token_loss or sc.token_loss_combine)";

    // The batch inputs (rank >= 1: the data-parallel split is on their dim 0) and what
    // depends on them: the per-micro-batch ops.
    SmallVector<BlockArgument> batchArgs;
    llvm::DenseSet<Value> perBatch;
    for (BlockArgument arg : entry.getArguments())
      if (cast<RankedTensorType>(arg.getType()).getRank() >= 1) {
        batchArgs.push_back(arg);
        perBatch.insert(arg);
      }
    if (batchArgs.empty())
      return func.emitError() << "sc-unroll-microbatches: no batch input to split into micro-batches";
    SmallVector<Operation *> cloned;
    for (Operation &op : entry.without_terminator())
      if (llvm::any_of(op.getOperands(), [&](Value v) { return perBatch.contains(v); })) {
        if (op.getNumRegions())
          return op.emitOpError() << "sc-unroll-microbatches runs on the flat program";
        cloned.push_back(&op);
        perBatch.insert(op.result_begin(), op.result_end());
      }
    if (!perBatch.contains(lossDiv.getResult()))
      return func.emitError() << "sc-unroll-microbatches: the loss does not depend on the batch inputs";

    // The new inputs [g, ...], the data-parallel split one dim further in.
    OpBuilder top(ctx);
    top.setInsertionPointToStart(&entry);
    SmallVector<Value> newArgs;
    for (BlockArgument arg : batchArgs) {
      auto type = cast<RankedTensorType>(arg.getType());
      SmallVector<int64_t> shape{g};
      shape.append(type.getShape().begin(), type.getShape().end());
      unsigned n = func.getNumArguments();
      if (failed(func.insertArgument(n, RankedTensorType::get(shape, type.getElementType()),
                                     func.getArgAttrDict(arg.getArgNumber()), arg.getLoc())))
        return failure();
      if (std::optional<Sharding> s = getSharding(arg)) {
        s->dims.insert(s->dims.begin(), SmallVector<std::string, 2>());
        setSharding(func.getArgument(n), *s);
      }
      newArgs.push_back(func.getArgument(n));
    }

    // The step's label count: the labels of every micro-batch that are not -100, counted from
    // the labels alone (ops outside any micro-batch, so every backward can start when its own
    // forward ends).
    auto f32 = RankedTensorType::get({}, Float32Type::get(ctx));
    OpBuilder b(ret);
    Location lossLoc = lossDiv.getLoc();
    SmallVector<Value> sums, counts, auxes;
    // Trainable parameters, for the per-micro-batch constraints of defer_fsdp_grad_sync false.
    SmallVector<sc::ParamOp> trainable;
    for (auto p : entry.getOps<sc::ParamOp>())
      if (p->hasAttr("sc.trainable") && p->hasAttr("sc.storage_sharding"))
        trainable.push_back(p);
    SmallVector<StringRef> axes;
    auto mesh = MeshShape::fromModule(func->getParentOfType<ModuleOp>());
    if (mesh)
      for (auto &[name, size] : mesh->axes)
        axes.push_back(name);

    for (int64_t j = 0; j < g; ++j) {
      IRMapping map;
      b.setInsertionPoint(cloned.front());
      for (auto [old, whole] : llvm::zip(batchArgs, newArgs)) {
        auto type = cast<RankedTensorType>(whole.getType());
        SmallVector<int64_t> starts(type.getRank(), 0), steps(type.getRank(), 1), one(type.getShape());
        starts[0] = j;
        one[0] = 1;
        Location at = inMicrobatch(old.getLoc(), j);
        Value slice = sc::SliceOp::create(b, at, RankedTensorType::get(one, type.getElementType()), whole,
                                          b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(steps));
        map.map(old, sc::ReshapeOp::create(b, at, old.getType(), slice).getResult());
      }
      b.setInsertionPoint(ret);
      // defer_fsdp_grad_sync false: each micro-batch reads each FSDP-stored trainable parameter
      // through its own layout constraint (to the parameter's compute layout, nothing moves), placed before
      // its first reader in the micro-batch; sc-schedule-microbatches points the constraint's
      // backward at the storage layout.
      llvm::DenseMap<Operation *, SmallVector<sc::ParamOp>> aliasBefore;
      if (!defer)
        for (sc::ParamOp p : trainable) {
          Operation *first = nullptr;
          for (Operation *user : p->getUsers())
            if (llvm::is_contained(cloned, user) && (!first || user->isBeforeInBlock(first)))
              first = user;
          if (first)
            aliasBefore[first].push_back(p);
        }
      for (Operation *op : cloned) {
        if (op == lossDiv.getOperation() || llvm::is_contained(auxTerm, op))
          continue;
        if (auto it = aliasBefore.find(op); it != aliasBefore.end())
          for (sc::ParamOp p : it->second) {
            auto type = cast<RankedTensorType>(p.getType());
            Sharding compute = getSharding(p.getResult()).value_or(Sharding::replicated(type.getRank()));
            OnnxLocInfo info = readOnnxLoc(inMicrobatch(op->getLoc(), j));
            info.nodeName = (kGradSyncNode + "." + p.getName()).str();
            auto alias = sc::ShardingConstraintOp::create(b, makeOnnxLoc(ctx, info, 0), type, p.getResult(),
                                                          b.getStrArrayAttr(axes), compute.toAttr(ctx));
            map.map(p.getResult(), alias.getResult());
          }
        Operation *copy = b.clone(*op, map);
        // Float compute belongs to the micro-batch (its layers are layers of their own); the
        // integer label ops stay outside, so the step's label count needs no forward.
        if (hasFloatResult(op))
          copy->setLoc(inMicrobatch(op->getLoc(), j));
      }
      Operation *tl = map.lookup(tokenLoss->getResult(0)).getDefiningOp();
      sums.push_back(tl->getResult(0));
      counts.push_back(countLabels(b, lossLoc, map.lookupOrDefault(labelsOf)));
      if (auxAt >= 0)
        auxes.push_back(map.lookup(ret.getOperand(auxAt)));
    }
    Value sum = sums.front(), count = counts.front();
    for (int64_t j = 1; j < g; ++j) {
      sum = sc::AddOp::create(b, lossLoc, f32, sum, sums[j]);
      count = sc::AddOp::create(b, lossLoc, f32, count, counts[j]);
    }
    Value loss = sc::DivOp::create(b, lossLoc, f32, sum, count);
    Value auxMean;
    if (auxAt >= 0) {
      Location auxLoc = auxTerm.front()->getLoc();
      Value total = auxes.front();
      for (int64_t j = 1; j < g; ++j)
        total = sc::AddOp::create(b, auxLoc, f32, total, auxes[j]);
      Value inv = sc::ConstantOp::create(b, auxLoc, f32, DenseElementsAttr::get(f32, b.getF32FloatAttr(1.0f / float(g))));
      auxMean = sc::MulOp::create(b, auxLoc, f32, total, inv);
      loss = sc::AddOp::create(b, auxLoc, f32, loss, sc::MulOp::create(b, auxLoc, f32, auxCoef, auxMean));
    }

    // The outputs: the loss; the model's other outputs (g micro-batches' logits) go.
    llvm::BitVector drop(func.getNumResults());
    for (unsigned i = 0; i < func.getNumResults(); ++i)
      if (int64_t(i) != lossAt && int64_t(i) != auxAt && perBatch.contains(ret.getOperand(i)))
        drop.set(i);
    ret.setOperand(lossAt, loss);
    if (auxAt >= 0)
      ret.setOperand(auxAt, auxMean);
    ret->eraseOperands(drop);
    if (failed(func.eraseResults(drop)))
      return failure();
    for (Operation *op : llvm::reverse(cloned)) {
      if (!op->use_empty())
        return op->emitOpError() << "sc-unroll-microbatches: still read after the unroll";
      op->erase();
    }
    llvm::BitVector oldArgs(func.getNumArguments());
    for (BlockArgument arg : batchArgs)
      oldArgs.set(arg.getArgNumber());
    if (failed(func.eraseArguments(oldArgs)))
      return failure();
    // The micro-batches' own per-micro-batch quotients and unread counts go.
    SmallVector<Operation *> all;
    for (Operation &op : entry.without_terminator())
      all.push_back(&op);
    for (Operation *op : llvm::reverse(all))
      if (isOpTriviallyDead(op) && !isa<sc::ParamOp>(op))
        op->erase();
    return success();
  }

  // Σ (labels != -100) as f32: numel − Σ (labels == -100).
  Value countLabels(OpBuilder &b, Location loc, Value labels) {
    auto type = cast<RankedTensorType>(labels.getType());
    auto f32 = RankedTensorType::get({}, b.getF32Type());
    auto ignore = RankedTensorType::get({}, type.getElementType());
    Value minus100 = sc::ConstantOp::create(b, loc, ignore, DenseElementsAttr::get(ignore, b.getIntegerAttr(type.getElementType(), -100)));
    Value eq = sc::EqualOp::create(b, loc, RankedTensorType::get(type.getShape(), b.getI1Type()), labels, minus100);
    Value asF32 = sc::CastOp::create(b, loc, RankedTensorType::get(type.getShape(), b.getF32Type()), eq);
    SmallVector<int64_t> all;
    for (int64_t i = 0; i < type.getRank(); ++i)
      all.push_back(i);
    Value ignored = sc::ReduceSumOp::create(b, loc, f32, asF32, b.getDenseI64ArrayAttr(all), false);
    Value numel = sc::ConstantOp::create(b, loc, f32, DenseElementsAttr::get(f32, b.getF32FloatAttr(float(type.getNumElements()))));
    return sc::SubOp::create(b, loc, f32, numel, ignored);
  }
};

struct ScUnrollMicrobatchesPass : impl::ScUnrollMicrobatchesBase<ScUnrollMicrobatchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool defer = true;
    int64_t g = accumulationSteps(module, &defer);
    if (g <= 1)
      return;
    auto mp = module->getAttrOfType<DictionaryAttr>("sc.mp_policy");
    auto param = mp ? mp.getAs<StringAttr>("param_dtype") : StringAttr();
    if (!defer && param && param.getValue() != "fp32") {
      module.emitError() << "sc-unroll-microbatches: defer_fsdp_grad_sync: false with param_dtype "
                         << param.getValue() << " is not supported yet (use defer_fsdp_grad_sync: true)";
      return signalPassFailure();
    }
    module.walk([&](func::FuncOp func) {
      if (!func.isExternal() && failed(Unroller{func, g, defer}.run()))
        signalPassFailure();
    });
  }
};

// The order of the flat program: ops of micro-batch j's forward, then of its backward, then
// j + 1's; an op outside the micro-batches runs where its first reader's priority puts it
// (right before it; the parameters, constants and label counts early), one without readers
// where its operands allow. A topological sort by (priority, original position).
struct Scheduler {
  func::FuncOp func;
  int64_t g;
  // Ops that run as soon as they can within their priority (the gradient sums: each
  // contribution is added, and dies, right after it is computed).
  const llvm::DenseSet<Operation *> &eager;

  void run() {
    Block &entry = func.getBody().front();
    SmallVector<Operation *> ops;
    // Position in the program (0 for the eager ops), then the index: ties never fall to the
    // ops' addresses, so the order (and the memory plan) is the same from compile to compile.
    llvm::DenseMap<Operation *, std::pair<unsigned, unsigned>> position;
    for (Operation &op : entry.without_terminator()) {
      unsigned index = ops.size() + 1;
      position[&op] = {eager.contains(&op) ? 0 : index, index};
      ops.push_back(&op);
    }
    // Priority 2j (forward of j), 2j + 1 (its backward); 2g: after everything. An op that an
    // earlier priority reads takes that priority: the step's label count reads every
    // micro-batch's slice of the inputs, and every backward reads the count, so the last
    // micro-batch's input slice must not wait for the earlier micro-batches' forwards (it would
    // hold backward 0 until forward g-1 has run, and every activation with it).
    llvm::DenseMap<Operation *, int64_t> key;
    for (Operation *op : llvm::reverse(ops)) {
      int64_t j = microbatchOf(op->getLoc());
      int64_t k = j >= 0 ? 2 * j + (isBackwardLoc(op->getLoc()) ? 1 : 0) : 2 * g;
      for (Operation *user : op->getUsers())
        if (auto it = key.find(user); it != key.end())
          k = std::min(k, it->second);
      key[op] = k;
    }
    llvm::DenseMap<Operation *, unsigned> waiting;
    using Item = std::tuple<int64_t, std::pair<unsigned, unsigned>, Operation *>;
    std::priority_queue<Item, std::vector<Item>, std::greater<Item>> ready;
    for (Operation *op : ops) {
      llvm::SmallPtrSet<Operation *, 4> deps;
      for (Value v : op->getOperands())
        if (Operation *def = v.getDefiningOp(); def && def->getBlock() == &entry)
          deps.insert(def);
      waiting[op] = deps.size();
      if (deps.empty())
        ready.push({key[op], position[op], op});
    }
    Operation *terminator = entry.getTerminator();
    while (!ready.empty()) {
      Operation *op = std::get<2>(ready.top());
      ready.pop();
      op->moveBefore(terminator);
      llvm::SmallPtrSet<Operation *, 8> seen;
      for (Operation *user : op->getUsers())
        if (user->getBlock() == &entry && user != terminator && seen.insert(user).second)
          if (--waiting[user] == 0)
            ready.push({key[user], position[user], user});
    }
  }
};

// sc-autodiff adds a parameter's gradient contributions in the order it meets them, the last
// micro-batch's first: g_{g-1} + ... + g_0. Run forward and backward per micro-batch, that sum
// would hold every micro-batch's contribution until the last one's. Each gradient output's tree
// of adds (inner adds read once, no broadcast) is rebuilt as ((g_0 + g_1) + ...) in micro-batch
// order, so one running sum is kept.
void accumulateInOrder(func::FuncOp func, llvm::DenseSet<Operation *> &eager) {
  auto ret = cast<func::ReturnOp>(func.getBody().front().getTerminator());
  for (unsigned i = 0; i < func.getNumResults(); ++i) {
    if (!resultName(func, i).starts_with("grad."))
      continue;
    // With a low param_dtype the gradient output is cast(Σ bf16 contributions) to f32: the
    // contributions are widened first and added in f32 (FSDP2 accumulates in the reduce dtype).
    Value out = ret.getOperand(i);
    auto widen = out.getDefiningOp<sc::CastOp>();
    if (widen && widen->hasOneUse())
      out = widen.getInput();
    else
      widen = nullptr;
    auto root = out.getDefiningOp<sc::AddOp>();
    if (!root)
      continue;
    SmallVector<Value> leaves;
    SmallVector<sc::AddOp> inner;
    std::function<void(Value)> flatten = [&](Value v) {
      auto add = v.getDefiningOp<sc::AddOp>();
      bool tree = add && (add == root || add->hasOneUse()) && add.getLhs().getType() == add.getType() &&
                  add.getRhs().getType() == add.getType();
      if (!tree) {
        leaves.push_back(v);
        return;
      }
      inner.push_back(add);
      flatten(add.getLhs());
      flatten(add.getRhs());
    };
    flatten(root.getResult());
    auto mbOf = [](Value v) {
      Operation *def = v.getDefiningOp();
      return def ? microbatchOf(def->getLoc()) : int64_t(-1);
    };
    llvm::stable_sort(leaves, [&](Value a, Value b) { return mbOf(a) < mbOf(b); });
    OpBuilder b(ret);
    Type sumType = widen ? widen.getType() : root.getType();
    auto asSum = [&](Value leaf, Location at) -> Value {
      return widen ? sc::CastOp::create(b, at, sumType, leaf).getResult() : leaf;
    };
    auto locOf = [&](Value leaf) {
      return makeBackwardLoc(leaf.getDefiningOp() ? leaf.getDefiningOp()->getLoc() : root.getLoc());
    };
    Value sum = asSum(leaves.front(), locOf(leaves.front()));
    if (sum != leaves.front())
      eager.insert(sum.getDefiningOp());
    for (auto [k, leaf] : llvm::enumerate(ArrayRef<Value>(leaves).drop_front())) {
      Location at = locOf(leaf);
      // A running sum that another micro-batch adds to is copied into a buffer of its own:
      // otherwise sc-fuse-elementwise makes the whole chain one kernel at its end, which would
      // hold every micro-batch's contribution until the last.
      if (k > 0 && mbOf(leaf) != mbOf(leaves[k])) {
        sum = sc::CopyOp::create(b, at, sum.getType(), sum);
        eager.insert(sum.getDefiningOp());
      }
      Value term = asSum(leaf, at);
      if (term != leaf)
        eager.insert(term.getDefiningOp());
      sum = sc::AddOp::create(b, at, sumType, sum, term);
      eager.insert(sum.getDefiningOp());
    }
    ret.setOperand(i, sum);
    if (widen)
      widen->erase();
    for (sc::AddOp add : inner) // from the root down: each is read by none now
      if (add->use_empty())
        add->erase();
  }
}

struct ScScheduleMicrobatchesPass : impl::ScScheduleMicrobatchesBase<ScScheduleMicrobatchesPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    bool defer = true;
    int64_t g = accumulationSteps(module, &defer);
    if (g <= 1)
      return;
    module.walk([&](func::FuncOp func) {
      if (func.isExternal())
        return;
      llvm::DenseSet<Operation *> eager;
      accumulateInOrder(func, eager);
      Scheduler{func, g, eager}.run();
      if (defer)
        return;
      // The backward of each micro-batch's parameter constraint: to the storage layout, so
      // that micro-batch's gradient is reduce-scattered there and the shards add.
      Type reduceType;
      if (auto mp = module->getAttrOfType<DictionaryAttr>("sc.mp_policy"))
        if (auto r = mp.getAs<StringAttr>("reduce_dtype"); r && r.getValue() != "fp32")
          reduceType = r.getValue() == "bf16" ? Type(BFloat16Type::get(module.getContext()))
                                              : Type(Float16Type::get(module.getContext()));
      llvm::StringMap<Attribute> storage;
      func.walk([&](sc::ParamOp p) {
        if (Attribute s = p->getAttr("sc.storage_sharding"))
          storage[p.getName()] = s;
      });
      SmallVector<sc::ShardingConstraintOp> forwardAliases;
      func.walk([&](sc::ShardingConstraintOp c) {
        std::string name = readOnnxLoc(c.getLoc()).nodeName;
        StringRef node(name);
        if (!node.consume_front(kGradSyncNode) || !node.consume_front("."))
          return;
        if (!isBackwardLoc(c.getLoc())) {
          forwardAliases.push_back(c);
          return;
        }
        auto it = storage.find(node);
        if (it == storage.end())
          return;
        c.setShardingAttr(cast<sc::ShardingAttr>(it->second));
        // In reduce_dtype: cast before the reduce-scatter, back to f32 after it.
        auto type = cast<RankedTensorType>(c.getType());
        if (!reduceType || !type.getElementType().isF32())
          return;
        OpBuilder b(c);
        auto lowType = RankedTensorType::get(type.getShape(), reduceType);
        Value low = sc::CastOp::create(b, c.getLoc(), lowType, c.getInput());
        auto reduced = sc::ShardingConstraintOp::create(b, c.getLoc(), lowType, low, c.getAxes(), c.getSharding());
        Value back = sc::CastOp::create(b, c.getLoc(), type, reduced);
        c.getResult().replaceAllUsesWith(back);
        c.erase();
      });
      // The forward constraints move nothing (the parameter's compute layout) and have done
      // their part (the backward's constraints above): the micro-batch's ops read the parameter
      // itself, so sc-insert-reshards gathers it per micro-batch as reshard_after_forward says
      // (through the constraint, the backward would read the forward's gathered copies).
      for (sc::ShardingConstraintOp c : forwardAliases) {
        c.getResult().replaceAllUsesWith(c.getInput());
        c.erase();
      }
    });
  }
};

} // namespace
} // namespace shardc
