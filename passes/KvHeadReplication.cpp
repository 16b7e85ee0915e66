// kv heads fewer than tp (GQA with tp > num_key_value_heads, as Megatron handles it): the
// key/value projections are replicated, and each kv head is repeated tp / kv_heads times
// right before the attention, so the tp split of the heads hands each rank the kv head its
// query heads read (a local slice, no communication).
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScLocation.h"

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
// context-parallel gathers, or null.
sc::LinearOp projectionOf(Value v) {
  for (int depth = 0; depth < 16 && v; ++depth) {
    Operation *def = v.getDefiningOp();
    if (!def)
      return nullptr;
    if (auto lin = dyn_cast<sc::LinearOp>(def))
      return lin;
    if (!isa<sc::ReshapeOp, sc::TransposeOp, sc::RotaryOp, sc::CastOp, sc::AllGatherOp, sc::ShardSliceOp,
             sc::SqueezeOp, sc::UnsqueezeOp, sc::ExpandOp>(def))
      return nullptr;
    v = def->getOperand(0);
  }
  return nullptr;
}

} // namespace

LogicalResult replicateKvHeads(sc::AttentionOp att, int64_t tpSize, llvm::SmallPtrSetImpl<Operation *> &replicated) {
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
