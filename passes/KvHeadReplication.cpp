// kv heads fewer than tp (GQA with tp > num_key_value_heads, as Megatron handles it): each
// kv head is repeated tp / kv_heads times so that the tp split of the heads hands each rank
// the kv head its query heads read. Where the key and value come straight from their
// projections (the exporter's Llama/Qwen2/Mistral graphs, or the parts of a packed
// projection once unpacked: Phi-3's qkv_proj, Falcon's multi-query query_key_value), the
// repeat is in the projections' weights: a view of the stored bytes, so each rank stores and computes its kv head only.
// Otherwise the projections are replicated and the heads repeated right before the
// attention (a local slice, no communication).
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"

using namespace mlir;

namespace shardc {

namespace {

// [B, kv, T, d] -> [B, kv * rep, T, d], head h of the result being head h / rep of `kv`.
Value repeatHeads(OpBuilder &b, Location loc, Value kv, int64_t rep) {
  auto t = cast<RankedTensorType>(kv.getType());
  ArrayRef<int64_t> s = t.getShape();
  Type elt = t.getElementType();
  auto split = RankedTensorType::get({s[0], s[1], 1, s[2], s[3]}, elt);
  auto expanded = RankedTensorType::get({s[0], s[1], rep, s[2], s[3]}, elt);
  auto merged = RankedTensorType::get({s[0], s[1] * rep, s[2], s[3]}, elt);
  Value v = sc::ReshapeOp::create(b, loc, split, kv);
  v = sc::ExpandOp::create(b, loc, expanded, v);
  return sc::ReshapeOp::create(b, loc, merged, v);
}

// The linear that produces `v` through head reshapes, transposes, rotary, casts and the
// plan's layout constraints, or null.
sc::LinearOp projectionOf(Value v) {
  for (int depth = 0; depth < 16 && v; ++depth) {
    Operation *def = v.getDefiningOp();
    if (!def)
      return nullptr;
    if (auto lin = dyn_cast<sc::LinearOp>(def))
      return lin;
    if (!isa<sc::ReshapeOp, sc::TransposeOp, sc::RotaryOp, sc::CastOp, sc::ShardingConstraintOp,
             sc::SqueezeOp, sc::UnsqueezeOp, sc::ExpandOp>(def))
      return nullptr;
    v = def->getOperand(0);
  }
  return nullptr;
}

// The ops from a projection's result to the attention operand, with the position of the
// head dim after each (-1 before the reshape that splits heads from the features).
struct HeadChain {
  sc::LinearOp lin;
  SmallVector<Operation *> ops;
  SmallVector<int64_t> headDim;
};

// The chain linear -> reshape [.., kv, d] -> (transpose | rotary | cast | plan constraint)* ->
// the attention's key or value, each op read once; nullopt for any other shape of graph.
std::optional<HeadChain> headChainOf(Value operand, int64_t kv) {
  HeadChain c;
  SmallVector<Operation *> reversed;
  Value v = operand;
  for (int depth = 0; depth < 16; ++depth) {
    Operation *def = v.getDefiningOp();
    if (!def || !v.hasOneUse())
      return std::nullopt;
    if (auto lin = dyn_cast<sc::LinearOp>(def)) {
      c.lin = lin;
      break;
    }
    if (!isa<sc::ReshapeOp, sc::TransposeOp, sc::RotaryOp, sc::CastOp, sc::ShardingConstraintOp>(def))
      return std::nullopt;
    reversed.push_back(def);
    v = def->getOperand(0);
  }
  if (!c.lin)
    return std::nullopt;
  c.ops.assign(reversed.rbegin(), reversed.rend());
  auto weight = c.lin.getWeight().getDefiningOp<sc::ParamOp>();
  Value bias = c.lin.getBias();
  if (!weight || !weight->hasOneUse() || (bias && (!bias.getDefiningOp<sc::ParamOp>() || !bias.hasOneUse())))
    return std::nullopt;
  int64_t f = -1;
  for (Operation *op : c.ops) {
    if (auto r = dyn_cast<sc::ReshapeOp>(op)) {
      ArrayRef<int64_t> in = cast<RankedTensorType>(r.getInput().getType()).getShape();
      ArrayRef<int64_t> out = cast<RankedTensorType>(r.getType()).getShape();
      int64_t last = in.size() - 1;
      if (f != -1 || out.size() != in.size() + 1 || !llvm::equal(in.take_front(last), out.take_front(last)) ||
          out[last] != kv || out[last] * out[last + 1] != in[last])
        return std::nullopt;
      f = last;
    } else if (auto t = dyn_cast<sc::TransposeOp>(op)) {
      if (f < 0)
        return std::nullopt;
      f = llvm::find(t.getPerm(), f) - t.getPerm().begin();
    } else if (auto c = dyn_cast<sc::ShardingConstraintOp>(op);
               c && f >= 0 && !Sharding::fromAttr(c.getSharding())->dims[f].empty()) {
      return std::nullopt; // the plan splits the head dim itself
    } else if (isa<sc::RotaryOp>(op) && f < 0) {
      return std::nullopt;
    }
    c.headDim.push_back(f);
  }
  if (f != 1)
    return std::nullopt;
  return c;
}

// `p` with `dim` repeated as whole blocks of `block` elements, each `times` over: a view of the
// same bytes (sc.file_shape, sc.file_repeat), so that every rank stores only its own block.
sc::ParamOp repeatedParam(OpBuilder &b, sc::ParamOp p, int64_t dim, int64_t block, int64_t times) {
  auto t = cast<RankedTensorType>(p.getType());
  SmallVector<int64_t> shape(t.getShape());
  shape[dim] *= times;
  sc::ParamOp q = paramView(b, p, shape);
  // A part of a packed projection (PackedColwise.cpp) already views a larger stored tensor
  // from its sc.file_start: the repeat is of that view, the stored tensor stays the file's.
  if (auto fileShape = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_shape"))
    q->setAttr("sc.file_shape", fileShape);
  q->setAttr("sc.file_repeat", b.getDenseI64ArrayAttr({dim, block, times}));
  return q;
}

// Repeats the kv heads in the projection's weight (and bias) instead of its output: the
// projection then has tp heads, split over tp like any colwise one, and each rank stores and
// computes only the kv head its query heads read.
void repeatInWeights(const HeadChain &c, int64_t kv, int64_t rep) {
  sc::LinearOp lin = c.lin;
  auto w = lin.getWeight().getDefiningOp<sc::ParamOp>();
  int64_t outDim = lin.getTransposeWeight() ? 0 : 1;
  auto wt = cast<RankedTensorType>(w.getType());
  int64_t d = wt.getDimSize(outDim) / kv;
  OpBuilder b(w);
  sc::ParamOp w2 = repeatedParam(b, w, outDim, d, rep);
  lin.getWeightMutable().assign(w2);
  w.erase();
  if (Value bias = lin.getBias()) {
    auto bp = bias.getDefiningOp<sc::ParamOp>();
    b.setInsertionPoint(bp);
    lin.getBiasMutable().assign(repeatedParam(b, bp, 0, d, rep).getResult());
    bp.erase();
  }
  auto widen = [](Value v, int64_t dim, int64_t times) {
    auto t = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape(t.getShape());
    shape[dim] *= times;
    v.setType(RankedTensorType::get(shape, t.getElementType()));
  };
  widen(lin.getResult(), cast<RankedTensorType>(lin.getType()).getRank() - 1, rep);
  for (auto [op, f] : llvm::zip(c.ops, c.headDim))
    widen(op->getResult(0), f, rep);
}

} // namespace

LogicalResult replicateKvHeads(sc::AttentionOp att, int64_t tpSize, llvm::SmallPtrSetImpl<Operation *> &replicated) {
  {
    int64_t kv = cast<RankedTensorType>(att.getKey().getType()).getDimSize(1), rep = tpSize / kv;
    auto keys = headChainOf(att.getKey(), kv), values = headChainOf(att.getValue(), kv);
    if (keys && values && keys->lin != values->lin) {
      repeatInWeights(*keys, kv, rep);
      repeatInWeights(*values, kv, rep);
      std::string kPath = modulePathOf(keys->lin->getLoc()), vPath = modulePathOf(values->lin->getLoc());
      att.emitRemark() << "kv heads (" << kv << ") fewer than tp (" << tpSize << "): each kv head of "
                       << (kPath == vPath ? "the k and v parts of " + kPath : kPath + " and " + vPath)
                       << " is repeated " << rep << " times in its weight, so that every rank stores and "
                       << "computes the one its query heads read";
      return success();
    }
  }
  auto k = cast<RankedTensorType>(att.getKey().getType());
  int64_t kvHeads = k.getDimSize(1);
  int64_t rep = tpSize / kvHeads;
  SmallVector<std::string> names;
  for (Value v : {att.getKey(), att.getValue()})
    if (sc::LinearOp lin = projectionOf(v); lin && replicated.insert(lin).second)
      names.push_back(modulePathOf(lin->getLoc()));
  OpBuilder b(att);
  att.getKeyMutable().assign(repeatHeads(b, att.getLoc(), att.getKey(), rep));
  att.getValueMutable().assign(repeatHeads(b, att.getLoc(), att.getValue(), rep));
  auto diag = att.emitRemark() << "kv heads (" << kvHeads << ") fewer than tp (" << tpSize
                               << "): each kv head is repeated " << rep
                               << " times so that every rank holds the one its query heads read";
  if (!names.empty()) {
    diag << "; replicated:";
    for (auto &n : names)
      diag << " " << n;
  }
  return success();
}

} // namespace shardc
