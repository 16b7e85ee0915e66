// sc-apply-plan's packed_colwise step: a fused projection cut into parts along its features
// (GPT-2's c_attn by a split, Phi-3's qkv_proj by slices, Falcon's multi-query
// query_key_value by a split along its heads) becomes one colwise linear per part. A kv part
// with fewer heads than tp is then a projection of its own, which sc-apply-plan's kv-head
// replication repeats in its weight (KvHeadReplication.cpp).
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/DenseSet.h"

namespace shardc {

using namespace mlir;

// A parameter that is rows (or columns) [start, start + size) along `dim` of `p`: a view of
// the same stored bytes (sc.file_shape, sc.file_start), so that it can be sharded, and read,
// on its own.
static sc::ParamOp partOf(OpBuilder &b, sc::ParamOp p, int64_t dim, int64_t index, int64_t start, int64_t size) {
  auto t = cast<RankedTensorType>(p.getType());
  SmallVector<int64_t> shape(t.getShape()), first(t.getRank(), 0);
  shape[dim] = size;
  first[dim] = start;
  sc::ParamOp part = paramView(b, p, shape);
  part.setName((p.getName() + ".part" + llvm::Twine(index)).str());
  part->setAttr("sc.file_start", b.getDenseI64ArrayAttr(first));
  return part;
}

namespace {
// One packed part: features [start, start + size) of the projection, and the value (a split
// result or a slice) that held them.
struct Part {
  int64_t start, size;
  Value value;
};
} // namespace

// packed_colwise: `reshape?(linear(x, W, b))` cut along its features into parts, by one
// split (GPT-2's c_attn, equal or not) or by slices that tile the features (Phi-3's qkv_proj,
// [q; k; v] of different sizes), along the last axis or along an axis of the reshaped
// features (Falcon's [.., 4 q heads + 1 k + 1 v, head_dim] split along the heads), becomes one linear per part over column blocks of W (and b),
// each block split over tp on its output features. A parameter W (or b) becomes parameters
// viewing its blocks, each stored split over tp like a colwise weight; any other W is sliced
// and then split locally.
LogicalResult unpackColwise(sc::LinearOp lin, ArrayRef<std::string> tp, int64_t tpSize) {
  std::string path = modulePathOf(lin->getLoc());
  Operation *user = lin->hasOneUse() ? *lin->getUsers().begin() : nullptr;
  auto reshape = dyn_cast_if_present<sc::ReshapeOp>(user);
  Value cut = reshape ? reshape.getResult() : lin.getResult();
  auto outType = cast<RankedTensorType>(lin.getType());
  auto cutType = cast<RankedTensorType>(cut.getType());
  ArrayRef<int64_t> cutShape = cutType.getShape();
  int64_t n = outType.getShape().back(), rank = cutType.getRank();
  // The axis the cutters cut (a split's, or the one dim each slice narrows). The features
  // are the dims from it on (Falcon's [.., q heads + 2, head_dim] cut along the heads: a
  // unit of the axis is one head of head_dim features), so a part of `k` units along it is
  // `k · unit` contiguous features of the projection.
  if (cut.use_empty())
    return lin.emitError() << path << " is packed_colwise but its output is not split into parts";
  SmallVector<Part> parts;
  SmallVector<Operation *> cutters;
  int64_t axis = -1;
  if (auto split = cut.hasOneUse() ? dyn_cast<sc::SplitOp>(*cut.getUsers().begin()) : sc::SplitOp()) {
    axis = split.getAxis() < 0 ? split.getAxis() + rank : split.getAxis();
    int64_t start = 0;
    for (Value r : split.getResults()) {
      int64_t size = cast<RankedTensorType>(r.getType()).getDimSize(axis);
      parts.push_back({start, size, r});
      start += size;
    }
    cutters.push_back(split);
  } else {
    for (Operation *u : cut.getUsers()) {
      auto slice = dyn_cast<sc::SliceOp>(u);
      auto rt = slice ? cast<RankedTensorType>(slice.getType()) : RankedTensorType();
      bool oneAxis = slice && llvm::all_of(slice.getSteps(), [](int64_t st) { return st == 1; });
      int64_t a = -1;
      for (int64_t d = 0; oneAxis && d < rank; ++d)
        if (slice.getStarts()[d] != 0 || rt.getShape()[d] != cutShape[d]) {
          oneAxis = a < 0 && (axis < 0 || axis == d);
          a = d;
        }
      if (!oneAxis || a < 0)
        return lin.emitError() << path << " is packed_colwise but its output is not split into parts (one split, "
                               << "or slices along one axis of the features)";
      axis = a;
      parts.push_back({slice.getStarts()[a], rt.getShape()[a], slice.getResult()});
      cutters.push_back(slice);
    }
    llvm::sort(parts, [](const Part &a, const Part &b) { return a.start < b.start; });
    int64_t next = 0;
    for (const Part &p : parts) {
      if (p.start != next)
        return lin.emitError() << path << " is packed_colwise but its slices do not tile its " << n << " features";
      next += p.size;
    }
    if (next != cutShape[axis])
      return lin.emitError() << path << " is packed_colwise but its slices do not tile its " << n << " features";
  }
  int64_t unit = 1;
  for (int64_t d = axis + 1; d < rank; ++d)
    unit *= cutShape[d];
  if (unit * cutShape[axis] != n)
    return lin.emitError() << path << " is packed_colwise but its output is not split evenly along the features";
  for (Part &p : parts) {
    p.start *= unit;
    p.size *= unit;
  }
  for (const Part &p : parts)
    if (p.size % tpSize != 0)
      return lin.emitError() << path << " (packed_colwise): each packed part has " << p.size
                             << " features, which do not divide over tp = " << tpSize;
  OpBuilder b(lin->getContext()); // before every cutter: right after the value they cut
  b.setInsertionPointAfterValue(cut);
  bool transposed = lin.getTransposeWeight();
  int64_t outDim = transposed ? 0 : 1;
  auto sliceOf = [&](Value v, int64_t dim, int64_t index, int64_t start, int64_t size) -> Value {
    if (auto p = v.getDefiningOp<sc::ParamOp>()) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(p);
      sc::ParamOp part = partOf(b, p, dim, index, start, size);
      Sharding s = Sharding::replicated(cast<RankedTensorType>(part.getType()).getRank());
      s.dims[dim].assign(tp.begin(), tp.end());
      setSharding(part, s);
      return part;
    }
    auto t = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape(t.getShape()), starts(t.getRank(), 0), steps(t.getRank(), 1);
    shape[dim] = size;
    starts[dim] = start;
    Value sliced = sc::SliceOp::create(b, lin.getLoc(), RankedTensorType::get(shape, t.getElementType()), v,
                                       b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(steps));
    return constrainLayout(b, lin.getLoc(), sliced, tp, dim);
  };
  for (auto [i, part] : llvm::enumerate(parts)) {
    Value w = sliceOf(lin.getWeight(), outDim, i, part.start, part.size);
    Value bias = lin.getBias() ? sliceOf(lin.getBias(), 0, i, part.start, part.size) : Value();
    SmallVector<int64_t> yShape(outType.getShape());
    yShape.back() = part.size;
    Value y = sc::LinearOp::create(b, lin.getLoc(), RankedTensorType::get(yShape, outType.getElementType()),
                                   lin.getInput(), w, bias, lin.getTransposeWeightAttr(), lin.getEpilogueAttr());
    if (reshape) {
      SmallVector<int64_t> rShape(cutShape);
      rShape[axis] = part.size / unit;
      y = sc::ReshapeOp::create(b, reshape.getLoc(), RankedTensorType::get(rShape, cutType.getElementType()), y);
    }
    part.value.replaceAllUsesWith(y);
  }
  for (Operation *c : cutters)
    c->erase();
  if (reshape)
    reshape.erase();
  Value w = lin.getWeight(), bias = lin.getBias();
  lin.erase();
  for (Value v : {w, bias})
    if (auto p = dyn_cast_if_present<sc::ParamOp>(v ? v.getDefiningOp() : nullptr); p && p->use_empty())
      p.erase();
  return success();
}

} // namespace shardc
