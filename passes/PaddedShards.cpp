// Uneven shards (torch.chunk semantics): a parameter dim that does not divide over its mesh
// axes is padded with zeros to the next multiple, so every rank holds an equal chunk and the
// last ranks' chunks end in padding (or are all padding). The artifact records the file's own
// shape; the runtime reads the part inside it and leaves the rest zero.
#include "ApplyPlanSteps.h"

using namespace mlir;

namespace shardc {

sc::ParamOp paramView(OpBuilder &b, sc::ParamOp p, ArrayRef<int64_t> shape) {
  auto type = cast<RankedTensorType>(p.getType());
  auto view = cast<sc::ParamOp>(b.clone(*p));
  view.getResult().setType(RankedTensorType::get(shape, type.getElementType()));
  view->setAttr("sc.file_shape", b.getDenseI64ArrayAttr(type.getShape()));
  return view;
}

sc::ParamOp padParameter(sc::ParamOp p, int64_t dim, int64_t size) {
  auto type = cast<RankedTensorType>(p.getType());
  SmallVector<int64_t> shape(type.getShape());
  shape[dim] = size;
  OpBuilder b(p);
  sc::ParamOp padded = paramView(b, p, shape);

  // A slice of `v` back to the unpadded `like`.
  auto trim = [&](Value v, RankedTensorType like) {
    SmallVector<int64_t> zeros(like.getRank(), 0), ones(like.getRank(), 1);
    return sc::SliceOp::create(b, v.getLoc(), like, v, b.getDenseI64ArrayAttr(zeros), b.getDenseI64ArrayAttr(ones));
  };
  Value whole; // the slice other users read, made on first need
  for (OpOperand &use : llvm::make_early_inc_range(p.getResult().getUses())) {
    Operation *user = use.getOwner();
    // The table's padded rows are never looked up: ids are below the vocabulary size.
    if (auto emb = dyn_cast<sc::EmbeddingOp>(user); emb && &use == &emb.getTableMutable() && dim == 0) {
      use.set(padded);
      continue;
    }
    // Padded output features: padded outputs, trimmed after the linear.
    if (auto lin = dyn_cast<sc::LinearOp>(user);
        lin && &use == &lin.getWeightMutable() && !lin.getBias() && dim == (lin.getTransposeWeight() ? 0 : 1)) {
      auto resultType = cast<RankedTensorType>(lin.getType());
      SmallVector<int64_t> out(resultType.getShape());
      out.back() = size;
      use.set(padded);
      lin.getResult().setType(RankedTensorType::get(out, resultType.getElementType()));
      b.setInsertionPointAfter(lin);
      auto sliced = trim(lin.getResult(), resultType);
      lin.getResult().replaceAllUsesExcept(sliced, sliced);
      continue;
    }
    if (!whole) {
      b.setInsertionPointAfter(padded);
      whole = trim(padded, type);
    }
    use.set(whole);
  }
  p.erase();
  return padded;
}

} // namespace shardc
