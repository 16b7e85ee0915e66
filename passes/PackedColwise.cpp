// sc-apply-plan's packed_colwise step: a fused projection followed by an even split (GPT-2's
// c_attn) becomes one colwise linear per packed part.
#include "ApplyPlanSteps.h"

#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"

#include "llvm/ADT/DenseSet.h"

namespace shardc {

using namespace mlir;

// A parameter that is block `index` of `count` along `dim` of `p`: a view of the same stored
// bytes (sc.file_shape, sc.file_start), so that it can be sharded, and read, on its own.
static sc::ParamOp partOf(OpBuilder &b, sc::ParamOp p, int64_t dim, int64_t index, int64_t count) {
  auto t = cast<RankedTensorType>(p.getType());
  SmallVector<int64_t> shape(t.getShape()), start(t.getRank(), 0);
  shape[dim] = count;
  start[dim] = index * count;
  sc::ParamOp part = paramView(b, p, shape);
  part.setName((p.getName() + ".part" + llvm::Twine(index)).str());
  part->setAttr("sc.file_start", b.getDenseI64ArrayAttr(start));
  return part;
}

// packed_colwise: `split(reshape?(linear(x, W, b)))` into k equal parts along the last dim
// becomes k linears over column blocks of W (and b), each block split over tp on its output
// features. A parameter W (or b) becomes k parameters viewing its blocks, each stored split
// over tp like a colwise weight; any other W is sliced and then split locally.
LogicalResult unpackColwise(sc::LinearOp lin, ArrayRef<std::string> tp, int64_t tpSize) {
  std::string path = modulePathOf(lin->getLoc());
  Operation *user = lin->hasOneUse() ? *lin->getUsers().begin() : nullptr;
  auto reshape = dyn_cast_if_present<sc::ReshapeOp>(user);
  if (reshape)
    user = reshape->hasOneUse() ? *reshape->getUsers().begin() : nullptr;
  auto split = dyn_cast_if_present<sc::SplitOp>(user);
  auto outType = cast<RankedTensorType>(lin.getType());
  int64_t n = outType.getShape().back();
  if (!split)
    return lin.emitError() << path << " is packed_colwise but its output is not split into parts";
  auto splitIn = cast<RankedTensorType>(split.getInput().getType());
  int64_t parts = split.getNumResults();
  int64_t axis = (int64_t)split.getAxis() < 0 ? (int64_t)split.getAxis() + splitIn.getRank() : (int64_t)split.getAxis();
  if (axis != splitIn.getRank() - 1 || splitIn.getShape().back() != n || n % parts != 0)
    return lin.emitError() << path << " is packed_colwise but its output is not split evenly along the features";
  int64_t part = n / parts;
  if (part % tpSize != 0)
    return lin.emitError() << path << " (packed_colwise): each packed part has " << part
                           << " features, which do not divide over tp = " << tpSize;
  OpBuilder b(split);
  bool transposed = lin.getTransposeWeight();
  int64_t outDim = transposed ? 0 : 1;
  auto sliceOf = [&](Value v, int64_t dim, int64_t index, int64_t count) -> Value {
    if (auto p = v.getDefiningOp<sc::ParamOp>()) {
      OpBuilder::InsertionGuard guard(b);
      b.setInsertionPoint(p);
      sc::ParamOp part = partOf(b, p, dim, index, count);
      Sharding s = Sharding::replicated(cast<RankedTensorType>(part.getType()).getRank());
      s.dims[dim].assign(tp.begin(), tp.end());
      setSharding(part, s);
      return part;
    }
    auto t = cast<RankedTensorType>(v.getType());
    SmallVector<int64_t> shape(t.getShape()), starts(t.getRank(), 0), steps(t.getRank(), 1);
    shape[dim] = count;
    starts[dim] = index * count;
    Value sliced = sc::SliceOp::create(b, lin.getLoc(), RankedTensorType::get(shape, t.getElementType()), v,
                                       b.getDenseI64ArrayAttr(starts), b.getDenseI64ArrayAttr(steps));
    return constrainLayout(b, lin.getLoc(), sliced, tp, dim);
  };
  for (int64_t i = 0; i < parts; ++i) {
    Value w = sliceOf(lin.getWeight(), outDim, i, part);
    Value bias = lin.getBias() ? sliceOf(lin.getBias(), 0, i, part) : Value();
    SmallVector<int64_t> yShape(outType.getShape());
    yShape.back() = part;
    Value y = sc::LinearOp::create(b, lin.getLoc(), RankedTensorType::get(yShape, outType.getElementType()),
                                   lin.getInput(), w, bias, lin.getTransposeWeightAttr(), lin.getEpilogueAttr());
    if (reshape) {
      SmallVector<int64_t> rShape(splitIn.getShape());
      rShape.back() = part;
      y = sc::ReshapeOp::create(b, reshape.getLoc(), RankedTensorType::get(rShape, splitIn.getElementType()), y);
    }
    split.getResult(i).replaceAllUsesWith(y);
  }
  split.erase();
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
