// Importer converters for ONNX scans, index ops and padding: CumSum, ArgMax, ArgMin, ScatterND
// and ScatterElements (sc ops with kernels of their own), Tile (unsqueeze, expand, reshape) and Pad (slices and
// concatenations: constant, edge, reflect and wrap modes).
#include "ComposeHelpers.h"

namespace shardc::importer {

namespace {

// The axis operand of CumSum: a constant scalar (or one-element) integer tensor.
FailureOr<int64_t> constAxis(NodeCtx &n, unsigned i, int64_t rank, const char *op) {
  auto v = constOperand(n, i, std::string(op) + " axis");
  if (failed(v))
    return failure();
  int64_t axis = v->size() == 1 ? normAxis((*v)[0], rank) : -1;
  if (axis < 0 || axis >= rank) {
    (void)n.im.fail(std::string(op) + " axis must be one value in [-rank, rank) for rank " + llvm::Twine(rank));
    return failure();
  }
  return axis;
}

LogicalResult convertCumSum(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  if (n.elem(0).isInteger(1))
    return n.im.fail("CumSum of bool tensors is not supported");
  auto axis = constAxis(n, 1, n.shape(0).size(), "CumSum");
  if (failed(axis))
    return failure();
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<sc::CumSumOp>(n, n.type(0), n.in(0), b.getI64IntegerAttr(*axis),
                                               b.getBoolAttr(n.intAttr("exclusive", 0)),
                                               b.getBoolAttr(n.intAttr("reverse", 0))));
  return success();
}

// ArgMax and ArgMin (OpTy: sc::ArgMaxOp or sc::ArgMinOp).
template <typename OpTy>
LogicalResult convertArgExtremum(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  const char *name = std::is_same_v<OpTy, sc::ArgMaxOp> ? "ArgMax" : "ArgMin";
  int64_t rank = n.shape(0).size(), raw = n.intAttr("axis", 0), axis = normAxis(raw, rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail(llvm::Twine(name) + " axis " + llvm::Twine(raw) + " out of range for rank " + llvm::Twine(rank));
  if (n.shape(0)[axis] == 0)
    return n.im.fail(llvm::Twine(name) + " over an empty axis");
  bool keep = n.intAttr("keepdims", 1) != 0;
  SmallVector<int64_t> out;
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      out.push_back(n.shape(0)[d]);
    else if (keep)
      out.push_back(1);
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<OpTy>(n, n.tensor(out, b.getI64Type()), n.in(0), b.getI64IntegerAttr(axis),
                                       b.getBoolAttr(keep), b.getBoolAttr(n.intAttr("select_last_index", 0))));
  return success();
}

LogicalResult convertScatterND(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  if (!n.elem(1).isInteger(64))
    return n.im.fail("ScatterND indices must be int64");
  ArrayRef<int64_t> data = n.shape(0), idx = n.shape(1);
  if (idx.empty() || idx.back() > int64_t(data.size()))
    return n.im.fail("ScatterND indices " + shapeStr(idx) + " do not address data " + shapeStr(data));
  SmallVector<int64_t> want(idx.drop_back());
  llvm::append_range(want, data.drop_front(idx.back()));
  if (n.shape(2) != ArrayRef<int64_t>(want) || n.elem(2) != n.elem(0))
    return n.im.fail("ScatterND updates must be " + shapeStr(want) + " of the data's type");
  std::string reduction = n.strAttr("reduction", "none");
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    return n.im.fail("ScatterND reduction '" + reduction + "' is not supported");
  n.results.push_back(n.im.build<sc::ScatterNDOp>(n, n.type(0), n.in(0), n.in(1), n.in(2),
                                                  n.im.builder.getStringAttr(reduction)));
  return success();
}

// ScatterElements (aten.scatter): i32 indices are widened to i64.
LogicalResult convertScatterElements(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  ArrayRef<int64_t> data = n.shape(0), idx = n.shape(1);
  const int64_t rank = data.size(), raw = n.intAttr("axis", 0), axis = normAxis(raw, rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("ScatterElements axis " + llvm::Twine(raw) + " out of range for rank " + llvm::Twine(rank));
  if (!n.elem(1).isInteger(64) && !n.elem(1).isInteger(32))
    return n.im.fail("ScatterElements indices must be int32 or int64");
  bool fits = int64_t(idx.size()) == rank && n.shape(2) == idx && n.elem(2) == n.elem(0);
  for (int64_t d = 0; fits && d < rank; ++d)
    fits = idx[d] <= data[d];
  if (!fits)
    return n.im.fail("ScatterElements indices " + shapeStr(idx) + " and updates must share a shape within data " +
                     shapeStr(data) + ", updates of the data's type");
  std::string reduction = n.strAttr("reduction", "none");
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    return n.im.fail("ScatterElements reduction '" + reduction + "' is not supported");
  auto &b = n.im.builder;
  Value ids = n.in(1);
  if (!n.elem(1).isInteger(64))
    ids = n.im.build<sc::CastOp>(n, n.tensor(idx, b.getI64Type()), ids);
  n.results.push_back(n.im.build<sc::ScatterElementsOp>(n, n.type(0), n.in(0), ids, n.in(2), b.getI64IntegerAttr(axis),
                                                        b.getStringAttr(reduction)));
  return success();
}

// Tile: x [d0, …] with repeats [r0, …] is x unsqueezed to [1, d0, 1, d1, …], expanded to
// [r0, d0, r1, d1, …] and reshaped to [r0·d0, r1·d1, …].
LogicalResult convertTile(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto reps = constOperand(n, 1, "Tile repeats");
  if (failed(reps))
    return failure();
  ArrayRef<int64_t> in = n.shape(0);
  if (reps->size() != in.size())
    return n.im.fail("Tile repeats has " + llvm::Twine(reps->size()) + " values for rank " + llvm::Twine(in.size()));
  SmallVector<int64_t> axes, wide, big, out;
  for (size_t d = 0; d < in.size(); ++d) {
    if ((*reps)[d] < 0)
      return n.im.fail("Tile repeats must not be negative");
    axes.push_back(int64_t(2 * d));
    wide.append({1, in[d]});
    big.append({(*reps)[d], in[d]});
    out.push_back((*reps)[d] * in[d]);
  }
  if (ArrayRef<int64_t>(out) == in) {
    n.results.push_back(n.in(0));
    return success();
  }
  Value x = n.im.build<sc::UnsqueezeOp>(n, n.tensor(wide, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(axes));
  n.results.push_back(reshapeTo(n, expandTo(n, x, big), out));
  return success();
}

// Pad, one axis at a time (so corners follow numpy's sequential rule): a negative pad crops;
// a positive one adds a block before or after: the constant value expanded (constant), the
// edge slice expanded (edge), the mirrored slice without the edge (reflect) or the far end
// (wrap).
LogicalResult convertPad(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto pads = constOperand(n, 1, "Pad pads");
  if (failed(pads))
    return failure();
  const int64_t rank = n.shape(0).size();
  SmallVector<int64_t> axes;
  if (n.in(3)) {
    auto a = constOperand(n, 3, "Pad axes");
    if (failed(a))
      return failure();
    for (int64_t v : *a)
      axes.push_back(normAxis(v, rank));
  } else {
    for (int64_t d = 0; d < rank; ++d)
      axes.push_back(d);
  }
  const int64_t k = axes.size();
  if (int64_t(pads->size()) != 2 * k)
    return n.im.fail("Pad pads has " + llvm::Twine(pads->size()) + " values for " + llvm::Twine(k) + " axes");
  std::string mode = n.strAttr("mode", "constant");
  if (mode != "constant" && mode != "edge" && mode != "reflect" && mode != "wrap")
    return n.im.fail("Pad mode '" + mode + "' is not supported");
  Type et = n.elem(0);
  Value fill;
  if (mode == "constant") {
    fill = n.in(2) ? reshapeTo(n, n.in(2), {}) : Value();
    if (fill && typeOfValue(fill).getElementType() != et)
      return n.im.fail("Pad constant_value element type differs from the data's");
    if (!fill)
      fill = et.isInteger(1) ? n.im.constant(DenseElementsAttr::get(RankedTensorType::get({}, et), false))
                             : n.im.floatConst(0.0, et);
  }
  Value x = n.in(0);
  for (int64_t i = 0; i < k; ++i) {
    int64_t axis = axes[i], before = (*pads)[i], after = (*pads)[i + k];
    if (axis < 0 || axis >= rank)
      return n.im.fail("Pad axis out of range");
    int64_t len = shapeOfValue(x)[axis];
    if (before < 0 || after < 0) { // crop first
      int64_t from = before < 0 ? -before : 0, to = len - (after < 0 ? -after : 0);
      if (to < from)
        return n.im.fail("Pad crops more than dim " + llvm::Twine(axis) + " holds");
      x = sliceAxis(n, x, axis, from, to - from);
      len = to - from;
      before = std::max<int64_t>(before, 0);
      after = std::max<int64_t>(after, 0);
    }
    if (before == 0 && after == 0)
      continue;
    auto block = [&](int64_t size, bool front) -> FailureOr<Value> {
      SmallVector<int64_t> shape(shapeOfValue(x));
      shape[axis] = size;
      if (mode == "constant")
        return expandTo(n, fill, shape);
      const char *problem = len == 0                               ? "of an empty dim"
                            : mode == "reflect" && size >= len      ? "needs pads smaller than the dim"
                            : mode == "wrap" && size > len          ? "needs pads no larger than the dim"
                                                                    : nullptr;
      if (problem) {
        (void)n.im.fail("Pad mode '" + mode + "' " + problem);
        return failure();
      }
      if (mode == "edge")
        return expandTo(n, sliceAxis(n, x, axis, front ? 0 : len - 1, 1), shape);
      if (mode == "reflect")
        return front ? sliceAxis(n, x, axis, size, size, -1) : sliceAxis(n, x, axis, len - 2, size, -1);
      return front ? sliceAxis(n, x, axis, len - size, size) : sliceAxis(n, x, axis, 0, size);
    };
    SmallVector<Value> parts;
    for (auto [size, front] : {std::pair{before, true}, std::pair{after, false}}) {
      if (size == 0) {
        if (front)
          parts.push_back(x);
        continue;
      }
      auto part = block(size, front);
      if (failed(part))
        return failure();
      if (front) {
        parts.push_back(*part);
        parts.push_back(x);
      } else {
        parts.push_back(*part);
      }
    }
    x = concatAxis(n, parts, axis);
  }
  n.results.push_back(x);
  return success();
}

} // namespace

void registerIndexConverters(ConverterRegistry &r) {
  // Since-versions: CumSum's introduction (11), ArgMax's and ArgMin's select_last_index (12),
  // ScatterND's and ScatterElements' (11; `reduction` is read when present: add/mul from 16,
  // max/min from 18), Tile's repeats
  // input (6), Pad's inputs (11), its axes input (18) and wrap mode (19).
  r.onOp("CumSum", 11, convertCumSum);
  r.onOp("ArgMax", 12, convertArgExtremum<sc::ArgMaxOp>);
  r.onOp("ArgMin", 12, convertArgExtremum<sc::ArgMinOp>);
  r.onOp("ScatterElements", 11, convertScatterElements);
  r.onOp("ScatterND", 11, convertScatterND);
  r.onOp("Tile", 6, convertTile);
  r.onOp("Pad", 11, convertPad);
}

} // namespace shardc::importer
