// sc-apply-plan's context-parallel step: puts the sequence in the load-balanced order once
// (rank r holds chunks r and 2cp-1-r), so a contiguous split over cp balances causal work.
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/DenseSet.h"

namespace shardc {

using namespace mlir;

namespace {

// Context parallel's load-balanced order: permuted position p holds original position
// perm[p], and rank r's contiguous block of the permuted sequence is chunks r and 2cp-1-r,
// so every rank gets the same share of causal work.
std::vector<int64_t> loadBalancedOrder(int64_t seq, int64_t cp) {
  int64_t chunk = seq / (2 * cp);
  std::vector<int64_t> perm;
  for (int64_t r = 0; r < cp; ++r)
    for (int64_t c : {r, 2 * cp - 1 - r})
      for (int64_t i = 0; i < chunk; ++i)
        perm.push_back(c * chunk + i);
  return perm;
}

// A constant permuted along `dim` (new index p takes old index perm[p]).
DenseElementsAttr permuteConstant(DenseElementsAttr attr, int64_t dim, ArrayRef<int64_t> perm) {
  auto type = cast<RankedTensorType>(attr.getType());
  ArrayRef<int64_t> shape = type.getShape();
  int64_t inner = 1, outer = 1;
  for (int64_t d = dim + 1; d < (int64_t)shape.size(); ++d)
    inner *= shape[d];
  for (int64_t d = 0; d < dim; ++d)
    outer *= shape[d];
  SmallVector<Attribute> values(attr.getValues<Attribute>());
  SmallVector<Attribute> out(values.size());
  int64_t n = shape[dim];
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p = 0; p < n; ++p)
      for (int64_t i = 0; i < inner; ++i)
        out[(o * n + p) * inner + i] = values[(o * n + perm[p]) * inner + i];
  return DenseElementsAttr::get(type, out);
}

// Whether `v` is computed from a function argument (then it follows the permuted inputs).
bool dependsOnArguments(Value v) {
  SmallVector<Value> work{v};
  llvm::DenseSet<Value> seen;
  while (!work.empty()) {
    Value x = work.pop_back_val();
    if (!seen.insert(x).second)
      continue;
    if (isa<BlockArgument>(x))
      return true;
    for (Value operand : x.getDefiningOp()->getOperands())
      work.push_back(operand);
  }
  return false;
}

} // namespace

// Context parallel: the sequence is put in the load-balanced order once, here — token and
// mask inputs are permuted on entry, position-id constants and rotary tables at compile
// time, causal attention gets the matching explicit mask — and the token stream is split
// over cp after the embedding; outputs are put back in order before they are returned.
// Keys and values are then all-gathered over cp by the reshard planner (after rotary).
LogicalResult applyContextParallel(func::FuncOp func, int64_t cp) {
  int64_t seq = -1;
  WalkResult walk = func.walk([&](sc::AttentionOp att) {
    auto q = cast<RankedTensorType>(att.getQuery().getType());
    auto k = cast<RankedTensorType>(att.getKey().getType());
    if (seq >= 0 && q.getDimSize(2) != seq) {
      att.emitError() << "context parallel needs one sequence length, found " << seq << " and " << q.getDimSize(2);
      return WalkResult::interrupt();
    }
    seq = q.getDimSize(2);
    if (k.getDimSize(2) != seq) {
      att.emitError() << "context parallel needs self-attention (query and key lengths " << seq << " and "
                      << k.getDimSize(2) << " differ)";
      return WalkResult::interrupt();
    }
    return WalkResult::advance();
  });
  if (walk.wasInterrupted())
    return failure();
  if (seq < 0)
    return func.emitError() << "context parallel (cp = " << cp << ") needs attention in the model";
  if (seq % (2 * cp) != 0)
    return func.emitError() << "context parallel needs the sequence (" << seq << ") to divide by 2 * cp = " << 2 * cp;
  std::vector<int64_t> perm = loadBalancedOrder(seq, cp), inverse(seq);
  for (int64_t p = 0; p < seq; ++p)
    inverse[perm[p]] = p;
  OpBuilder b(func.getContext());
  // The two index vectors, once, at the top of the function.
  Block &entry = func.getBody().front();
  b.setInsertionPointToStart(&entry);
  auto indexType = RankedTensorType::get({seq}, b.getI64Type());
  Value permIndices = sc::ConstantOp::create(b, func.getLoc(), indexType, DenseIntElementsAttr::get(indexType, ArrayRef<int64_t>(perm)));
  Value inverseIndices = sc::ConstantOp::create(b, func.getLoc(), indexType, DenseIntElementsAttr::get(indexType, ArrayRef<int64_t>(inverse)));
  auto indexConst = [&](ArrayRef<int64_t> idx) { return idx.data() == perm.data() ? permIndices : inverseIndices; };

  // A training loss's labels were shifted in the original order (sc-add-loss): the ops that
  // compute them keep reading the inputs as given, and the shifted labels are permuted like
  // the logits they are compared with.
  OpBuilder::InsertPoint afterIndices = b.saveInsertionPoint();
  llvm::DenseSet<Operation *> labelOps;
  // The labels operand of each loss op (sc.token_loss, or the vocabulary-parallel loss's stats
  // and combine, which read one labels value: it is permuted once).
  SmallVector<OpOperand *> labelUses;
  func.walk([&](Operation *op) {
    if (auto l = dyn_cast<sc::TokenLossOp>(op))
      labelUses.push_back(&l.getLabelsMutable());
    else if (auto l = dyn_cast<sc::TokenLossStatsOp>(op))
      labelUses.push_back(&l.getLabelsMutable());
    else if (auto l = dyn_cast<sc::TokenLossCombineOp>(op))
      labelUses.push_back(&l.getLabelsMutable());
  });
  llvm::DenseMap<Value, Value> permutedLabels;
  for (OpOperand *use : labelUses) {
    Value labels = use->get();
    Value &permuted = permutedLabels[labels];
    if (!permuted) {
      SmallVector<Value> work{labels};
      while (!work.empty())
        if (Operation *def = work.pop_back_val().getDefiningOp(); def && labelOps.insert(def).second)
          work.append(def->operand_begin(), def->operand_end());
      b.setInsertionPoint(use->getOwner());
      permuted = sc::GatherOp::create(b, use->getOwner()->getLoc(), labels.getType(), labels, indexConst(perm),
                                      b.getI64IntegerAttr(1));
    }
    use->set(permuted);
  }
  b.restoreInsertionPoint(afterIndices);
  // Inputs with a sequence dim (token ids, padding masks) are permuted on entry.
  for (BlockArgument arg : entry.getArguments()) {
    auto t = cast<RankedTensorType>(arg.getType());
    if (t.getRank() < 2 || t.getDimSize(1) != seq)
      continue;
    auto g = sc::GatherOp::create(b, func.getLoc(), t, arg, indexConst(perm), b.getI64IntegerAttr(1));
    arg.replaceUsesWithIf(g, [&](OpOperand &use) { return use.getOwner() != g && !labelOps.contains(use.getOwner()); });
  }
  LogicalResult result = success();
  // A positional operand (rotary tables, learned position ids) in the permuted order: a constant
  // permuted at compile time; a value the program computes (a dynamic-shape export's tables,
  // cos/sin of its position ids) or takes as an input gathered along `dim` once it exists, once
  // per value.
  llvm::DenseMap<std::pair<Value, int64_t>, Value> gathered;
  auto permuteOperand = [&](Operation *user, unsigned operand, int64_t dim) {
    Value v = user->getOperand(operand);
    auto c = v.getDefiningOp<sc::ConstantOp>();
    if (auto dense = c ? dyn_cast<DenseElementsAttr>(c.getValue()) : nullptr) {
      b.setInsertionPoint(user);
      auto permuted = sc::ConstantOp::create(b, c.getLoc(), c.getType(), permuteConstant(dense, dim, perm));
      user->setOperand(operand, permuted);
      return;
    }
    Value &g = gathered[{v, dim}];
    if (!g) {
      if (isa<BlockArgument>(v)) // a table given as an input: after the index constants
        b.restoreInsertionPoint(afterIndices);
      else
        b.setInsertionPointAfterValue(v);
      g = sc::GatherOp::create(b, user->getLoc(), v.getType(), v, indexConst(perm), b.getI64IntegerAttr(dim));
    }
    user->setOperand(operand, g);
  };
  func.walk([&](Operation *op) {
    if (auto r = dyn_cast<sc::RotaryOp>(op)) {
      // The tables' position dim is their one dim of the sequence's length ([S, D] tables
      // broadcast against [B, H, S, D] or [B, S, H, D] alike).
      for (unsigned i : {1u, 2u}) {
        auto t = cast<RankedTensorType>(op->getOperand(i).getType());
        SmallVector<int64_t> dims;
        for (int64_t d = 0; d < t.getRank(); ++d)
          if (t.getDimSize(d) == seq)
            dims.push_back(d);
        // The last dim pairs with the head dim of x: with S == head dim ([1, 1, 32, 32] at
        // S = 32) the position dim is the other one.
        if (dims.size() > 1 && dims.back() == t.getRank() - 1)
          dims.pop_back();
        if (dims.size() != 1) {
          op->emitError() << "context parallel: cannot tell the position dim of the rotary table " << t;
          result = failure();
          return;
        }
        permuteOperand(op, i, dims.front());
      }
    } else if (auto e = dyn_cast<sc::EmbeddingOp>(op)) {
      // Position ids are constants over the sequence (learned position embeddings).
      auto ids = cast<RankedTensorType>(e.getIds().getType());
      if (e.getIds().getDefiningOp<sc::ConstantOp>() && ids.getRank() >= 1 && ids.getDimSize(ids.getRank() - 1) == seq)
        permuteOperand(op, 1, ids.getRank() - 1);
    } else if (auto att = dyn_cast<sc::AttentionOp>(op)) {
      if (att->hasAttr("sc.window")) {
        // A sliding window's mask is exact on its own (causal included): permuted below like
        // any fixed mask; the upper-left causal flag and the band would not hold in the new order.
        att->removeAttr("sc.window");
        att.setCausal(false);
      }
      if (Value mask = att.getMask(); mask && !att.getCausal() && !dependsOnArguments(mask)) {
        // A mask fixed at export time (a constant or parameter) is in the original order:
        // permute its query and key dims like everything else.
        auto t = cast<RankedTensorType>(mask.getType());
        b.setInsertionPoint(att);
        Value permuted = mask;
        for (int64_t d = std::max<int64_t>(0, t.getRank() - 2); d < t.getRank(); ++d)
          if (t.getDimSize(d) == seq)
            permuted = sc::GatherOp::create(b, att.getLoc(), t, permuted, indexConst(perm), b.getI64IntegerAttr(d));
        att.getMaskMutable().assign(permuted);
        return;
      }
      if (!att.getCausal())
        return;
      if (att.getMask()) {
        att.emitError() << "context parallel: causal attention with an extra mask is not supported yet";
        result = failure();
        return;
      }
      // Causal in the permuted order: key j is visible to query i when perm[j] <= perm[i].
      Type et = cast<RankedTensorType>(att.getQuery().getType()).getElementType();
      auto t = RankedTensorType::get({1, 1, seq, seq}, et);
      SmallVector<APFloat> vals;
      const auto &sem = cast<FloatType>(et).getFloatSemantics();
      for (int64_t i = 0; i < seq; ++i)
        for (int64_t j = 0; j < seq; ++j)
          vals.push_back(perm[j] <= perm[i] ? APFloat::getZero(sem) : APFloat::getInf(sem, /*Negative=*/true));
      b.setInsertionPoint(att);
      auto mask = sc::ConstantOp::create(b, att.getLoc(), t, DenseElementsAttr::get(t, vals));
      att.getMaskMutable().assign(mask);
      att.setCausal(false);
    }
  });
  if (failed(result))
    return failure();
  // The token stream is split over cp after each embedding (sequence = dim 1).
  func.walk([&](sc::EmbeddingOp e) {
    auto t = cast<RankedTensorType>(e.getType());
    if (t.getRank() < 3 || t.getDimSize(1) != seq)
      return;
    b.setInsertionPointAfter(e);
    Value split = constrainLayout(b, e.getLoc(), e.getResult(), {"cp"}, 1);
    e.getResult().replaceAllUsesExcept(split, split.getDefiningOp());
  });
  // Outputs go back to the original order.
  func.walk([&](func::ReturnOp ret) {
    b.setInsertionPoint(ret);
    for (OpOperand &o : ret->getOpOperands()) {
      auto t = cast<RankedTensorType>(o.get().getType());
      if (t.getRank() >= 2 && t.getDimSize(1) == seq)
        o.set(sc::GatherOp::create(b, ret.getLoc(), t, o.get(), indexConst(inverse), b.getI64IntegerAttr(1)));
    }
  });
  return success();
}

} // namespace shardc
