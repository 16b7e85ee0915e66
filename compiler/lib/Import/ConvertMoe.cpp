// Importer converters for the routing ops of exported mixture-of-experts graphs: TopK (the
// router's expert choice) and GatherND (the experts' stacked weights gathered per token, as
// PyTorch's exporter writes transformers' "batched_mm" experts). docs/moe.md.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"

namespace shardc::importer {

namespace {

int64_t normAxis(int64_t axis, int64_t rank) { return axis < 0 ? axis + rank : axis; }

// TopK(X, K) -> Values, Indices (i64); attributes axis (-1), largest (1), sorted (1). K must
// be a constant. The outputs are always sorted (what `sorted = 0` allows too), ties to the
// lower index.
LogicalResult convertTopK(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("TopK axis out of range");
  auto k = constOperand(n, 1, "TopK K");
  if (failed(k))
    return failure();
  if (k->size() != 1 || (*k)[0] < 0 || (*k)[0] > n.shape(0)[axis])
    return n.im.fail("TopK K must be one value in [0, " + llvm::Twine(n.shape(0)[axis]) + "]");
  SmallVector<int64_t> shape(n.shape(0));
  shape[axis] = (*k)[0];
  auto &b = n.im.builder;
  auto op = sc::TopKOp::create(b, n.loc, n.tensor(shape, n.elem(0)), n.tensor(shape, b.getI64Type()), n.in(0),
                               b.getI64IntegerAttr(axis), b.getBoolAttr(n.intAttr("largest", 1) != 0));
  n.results.push_back(op.getValues());
  n.results.push_back(op.getIndices());
  return success();
}

// GatherND(data, indices) with attribute batch_dims (0).
LogicalResult convertGatherND(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  ArrayRef<int64_t> data = n.shape(0), idx = n.shape(1);
  int64_t b = n.intAttr("batch_dims", 0);
  if (!isa<IntegerType>(n.elem(1)))
    return n.im.fail("GatherND indices must be integers");
  if (idx.empty() || b < 0 || b >= (int64_t)idx.size() || b >= (int64_t)data.size())
    return n.im.fail("GatherND batch_dims " + llvm::Twine(b) + " does not fit the ranks");
  int64_t q = idx.back();
  if (q < 1 || b + q > (int64_t)data.size())
    return n.im.fail("GatherND indices' last dim " + llvm::Twine(q) + " does not fit data of rank " +
                     llvm::Twine(data.size()));
  for (int64_t d = 0; d < b; ++d)
    if (data[d] != idx[d])
      return n.im.fail("GatherND batch dims of data and indices differ");
  SmallVector<int64_t> out(idx.drop_back());
  llvm::append_range(out, data.drop_front(b + q));
  n.results.push_back(n.im.build<sc::GatherNdOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.in(1),
                                                 n.im.builder.getI64IntegerAttr(b)));
  return success();
}

} // namespace

void registerMoeConverters(ConverterRegistry &r) {
  r.onOp("TopK", 11, convertTopK);
  r.onOp("GatherND", 12, convertGatherND);
}

} // namespace shardc::importer
