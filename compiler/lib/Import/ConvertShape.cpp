// Importer converters for ONNX ops that move data without arithmetic: Reshape, Transpose,
// Slice, Concat, Split, Gather, GatherElements, Expand, Squeeze, Unsqueeze, Trilu and
// Flatten. Shape operands must be constants; they become attributes.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"

namespace shardc::importer {

namespace {

using sc::broadcastShapes;

LogicalResult convertReshape(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto spec = constOperand(n, 1, "the shape operand");
  if (failed(spec))
    return failure();
  bool allowZero = n.intAttr("allowzero", 0);
  ArrayRef<int64_t> in = n.shape(0);
  int64_t total = n.type(0).getNumElements(), known = 1, inferAt = -1;
  SmallVector<int64_t> out;
  for (auto [i, d] : llvm::enumerate(*spec)) {
    if (d == 0 && !allowZero) {
      if (i >= in.size())
        return n.im.fail("shape entry 0 at " + llvm::Twine(i) + " copies a dim the input lacks");
      d = in[i];
    }
    if (d == -1) {
      if (inferAt >= 0)
        return n.im.fail("shape has more than one -1");
      inferAt = i;
      out.push_back(1);
      continue;
    }
    if (d < 0)
      return n.im.fail("negative shape entry " + llvm::Twine(d));
    known *= d;
    out.push_back(d);
  }
  if (inferAt >= 0) {
    if (known == 0 || total % known)
      return n.im.fail("cannot reshape " + shapeStr(in) + " with -1 in the target shape");
    out[inferAt] = total / known;
  }
  int64_t outTotal = 1;
  for (int64_t d : out) outTotal *= d;
  if (outTotal != total)
    return n.im.fail("cannot reshape " + shapeStr(in) + " to " + shapeStr(out));
  n.results.push_back(n.im.build<sc::ReshapeOp>(n, n.tensor(out, n.elem(0)), n.in(0)));
  return success();
}

// Flatten: the dims before `axis` into one, the rest into another (a reshape).
LogicalResult convertFlatten(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  ArrayRef<int64_t> in = n.shape(0);
  int64_t rank = in.size();
  int64_t axis = n.intAttr("axis", 1);
  if (axis < 0) axis += rank;
  if (axis < 0 || axis > rank)
    return n.im.fail("Flatten axis out of range for rank " + llvm::Twine(rank));
  int64_t outer = 1, inner = 1;
  for (int64_t i = 0; i < rank; ++i) (i < axis ? outer : inner) *= in[i];
  SmallVector<int64_t> out{outer, inner};
  n.results.push_back(n.im.build<sc::ReshapeOp>(n, n.tensor(out, n.elem(0)), n.in(0)));
  return success();
}

LogicalResult convertTranspose(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  SmallVector<int64_t> perm;
  if (auto p = n.intsAttr("perm"))
    perm = *p;
  else
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  if ((int64_t)perm.size() != rank)
    return n.im.fail("perm has " + llvm::Twine(perm.size()) + " entries for rank " + llvm::Twine(rank));
  SmallVector<int64_t> out;
  for (int64_t &p : perm) {
    p = normAxis(p, rank);
    if (p < 0 || p >= rank)
      return n.im.fail("perm entry out of range");
    out.push_back(n.shape(0)[p]);
  }
  n.results.push_back(n.im.build<sc::TransposeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(perm)));
  return success();
}

LogicalResult convertSlice(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  ArrayRef<int64_t> in = n.shape(0);
  int64_t rank = in.size();
  auto starts = constOperand(n, 1, "Slice starts");
  auto ends = constOperand(n, 2, "Slice ends");
  if (failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (n.in(3)) {
    auto a = constOperand(n, 3, "Slice axes");
    if (failed(a)) return failure();
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(i);
  }
  if (n.in(4)) {
    auto s = constOperand(n, 4, "Slice steps");
    if (failed(s)) return failure();
    steps = *s;
  } else {
    steps.assign(starts->size(), 1);
  }
  if (axes.size() != starts->size() || ends->size() != starts->size() || steps.size() != starts->size())
    return n.im.fail("Slice starts, ends, axes and steps differ in length");
  SmallVector<int64_t> st(rank, 0), sp(rank, 1), out(in.begin(), in.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t ax = normAxis(axes[i], rank);
    if (ax < 0 || ax >= rank)
      return n.im.fail("Slice axis " + llvm::Twine(axes[i]) + " out of range");
    int64_t dim = in[ax], step = steps[i], s = (*starts)[i], e = (*ends)[i];
    if (step == 0)
      return n.im.fail("Slice step is zero");
    if (s < 0) s += dim;
    if (e < 0 && e > INT64_MIN / 2) e += dim;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out[ax] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out[ax] = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    st[ax] = out[ax] ? s : 0;
    sp[ax] = step;
  }
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<sc::SliceOp>(n, n.tensor(out, n.elem(0)), n.in(0), b.getDenseI64ArrayAttr(st), b.getDenseI64ArrayAttr(sp)));
  return success();
}

LogicalResult convertConcat(NodeCtx &n) {
  if (n.inputs.empty())
    return n.im.fail("Concat needs inputs");
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("Concat axis out of range");
  SmallVector<int64_t> out(n.shape(0));
  out[axis] = 0;
  SmallVector<Value> ins;
  for (unsigned i = 0; i < n.inputs.size(); ++i) {
    if (!n.inputs[i] || (int64_t)n.shape(i).size() != rank)
      return n.im.fail("Concat inputs differ in rank");
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && n.shape(i)[d] != n.shape(0)[d])
        return n.im.fail("Concat input " + shapeStr(n.shape(i)) + " differs from " + shapeStr(n.shape(0)));
    out[axis] += n.shape(i)[axis];
    if (n.shape(i)[axis] > 0)
      ins.push_back(n.inputs[i]);
  }
  n.results.push_back(n.im.build<sc::ConcatOp>(n, n.tensor(out, n.elem(0)), ins, n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

// Where Split's sizes come from when there is no `split` input (an input since opset 13):
// equal parts, one per output, or the num_outputs attribute (opset 18), whose last part
// may be smaller.
enum class SplitSizes { InputOrEqual, InputOrNumOutputs };

Converter split(SplitSizes form) {
  return [form](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 1)))
      return failure();
    if (n.attr("split"))
      return n.im.fail("Split takes its sizes as an input at opset " + llvm::Twine(n.im.opset) +
                       ", not as an attribute");
    int64_t rank = n.shape(0).size();
    int64_t axis = normAxis(n.intAttr("axis", 0), rank);
    if (axis < 0 || axis >= rank)
      return n.im.fail("Split axis out of range");
    int64_t dim = n.shape(0)[axis], outs = n.node.output_size();
    SmallVector<int64_t> sizes;
    if (n.in(1)) {
      auto s = constOperand(n, 1, "Split sizes");
      if (failed(s)) return failure();
      sizes = *s;
    } else {
      int64_t parts = form == SplitSizes::InputOrNumOutputs ? n.intAttr("num_outputs", outs) : outs;
      if (parts <= 0 || parts != outs)
        return n.im.fail("Split into " + llvm::Twine(parts) + " parts with " + llvm::Twine(outs) + " outputs");
      int64_t chunk = (dim + parts - 1) / parts;
      for (int64_t i = 0; i < parts; ++i)
        sizes.push_back(std::min(chunk, dim - i * chunk));
    }
    int64_t total = 0;
    for (int64_t s : sizes) total += s;
    if ((int64_t)sizes.size() != outs || total != dim)
      return n.im.fail("Split sizes do not cover dim " + llvm::Twine(dim) + " with " + llvm::Twine(outs) + " outputs");
    SmallVector<Type> types;
    for (int64_t s : sizes) {
      SmallVector<int64_t> shp(n.shape(0));
      shp[axis] = s;
      types.push_back(n.tensor(shp, n.elem(0)));
    }
    auto op = sc::SplitOp::create(n.im.builder, n.loc, types, n.in(0), n.im.builder.getI64IntegerAttr(axis));
    for (Value r : op.getResults())
      n.results.push_back(r);
    return success();
  };
}

LogicalResult convertGather(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("Gather axis out of range");
  if (!isa<IntegerType>(n.elem(1)))
    return n.im.fail("Gather indices must be integers");
  SmallVector<int64_t> out(n.shape(0).take_front(axis));
  llvm::append_range(out, n.shape(1));
  llvm::append_range(out, n.shape(0).drop_front(axis + 1));
  auto type = n.tensor(out, n.elem(0));
  // A Gather of a 2-D parameter along axis 0 is an embedding lookup.
  if (axis == 0 && rank == 2 && n.in(0).getDefiningOp<sc::ParamOp>()) {
    Value emb = n.im.build<sc::EmbeddingOp>(n, type, n.in(0), n.in(1));
    if (std::optional<int64_t> padding = embeddingPaddingIdx(n.node))
      if (auto e = emb.getDefiningOp<sc::EmbeddingOp>())
        e.setPaddingIdx(*padding);
    n.results.push_back(emb);
    return success();
  }
  n.results.push_back(n.im.build<sc::GatherOp>(n, type, n.in(0), n.in(1), n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult convertGatherElements(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank || (int64_t)n.shape(1).size() != rank)
    return n.im.fail("GatherElements axis or indices rank invalid");
  n.results.push_back(n.im.build<sc::GatherElementsOp>(n, n.tensor(n.shape(1), n.elem(0)), n.in(0), n.in(1),
                                                       n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult convertExpand(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto shape = constOperand(n, 1, "the Expand shape");
  if (failed(shape))
    return failure();
  SmallVector<int64_t> out;
  if (!broadcastShapes(n.shape(0), *shape, out))
    return n.im.fail("cannot expand " + shapeStr(n.shape(0)) + " to " + shapeStr(*shape));
  if (ArrayRef<int64_t>(out) == n.shape(0)) {
    n.results.push_back(n.in(0));
    return success();
  }
  n.results.push_back(n.im.build<sc::ExpandOp>(n, n.tensor(out, n.elem(0)), n.in(0)));
  return success();
}

// Axes are an input since opset 13 (an attribute before, below the importer's opsets).
LogicalResult convertUnsqueeze(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  if (n.attr("axes"))
    return n.im.fail("Unsqueeze takes its axes as an input at opset " + llvm::Twine(n.im.opset) +
                     ", not as an attribute");
  SmallVector<int64_t> axes;
  if (n.in(1)) {
    auto a = constOperand(n, 1, "Unsqueeze axes");
    if (failed(a)) return failure();
    axes = *a;
  }
  int64_t outRank = n.shape(0).size() + axes.size();
  for (int64_t &a : axes) {
    a = normAxis(a, outRank);
    if (a < 0 || a >= outRank)
      return n.im.fail("Unsqueeze axis out of range");
  }
  llvm::sort(axes);
  SmallVector<int64_t> out;
  unsigned j = 0;
  for (int64_t i = 0; i < outRank; ++i)
    out.push_back(llvm::is_contained(axes, i) ? 1 : n.shape(0)[j++]);
  n.results.push_back(n.im.build<sc::UnsqueezeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(axes)));
  return success();
}

// Axes are an input since opset 13 (an attribute before, below the importer's opsets).
LogicalResult convertSqueeze(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  if (n.attr("axes"))
    return n.im.fail("Squeeze takes its axes as an input at opset " + llvm::Twine(n.im.opset) +
                     ", not as an attribute");
  int64_t rank = n.shape(0).size();
  SmallVector<int64_t> axes;
  if (n.in(1)) {
    auto a = constOperand(n, 1, "Squeeze axes");
    if (failed(a)) return failure();
    axes = *a;
  } else {
    for (int64_t i = 0; i < rank; ++i)
      if (n.shape(0)[i] == 1) axes.push_back(i);
  }
  for (int64_t &a : axes) {
    a = normAxis(a, rank);
    if (a < 0 || a >= rank || n.shape(0)[a] != 1)
      return n.im.fail("cannot squeeze axis " + llvm::Twine(a) + " of " + shapeStr(n.shape(0)));
  }
  llvm::sort(axes);
  SmallVector<int64_t> out;
  for (int64_t i = 0; i < rank; ++i)
    if (!llvm::is_contained(axes, i)) out.push_back(n.shape(0)[i]);
  n.results.push_back(n.im.build<sc::SqueezeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(axes)));
  return success();
}

LogicalResult convertTrilu(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t k = 0;
  if (n.in(1)) {
    auto kv = constOperand(n, 1, "Trilu k");
    if (failed(kv)) return failure();
    k = (*kv)[0];
  }
  if (n.shape(0).size() < 2)
    return n.im.fail("Trilu needs rank >= 2");
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<sc::TriluOp>(n, n.type(0), n.in(0), b.getBoolAttr(n.intAttr("upper", 1)), b.getI64IntegerAttr(k)));
  return success();
}

} // namespace

void registerShapeConverters(ConverterRegistry &r) {
  // Forms from before opset 13 (axes and split sizes as attributes) are not registered: the
  // importer accepts opsets 13 to 25.
  r.onOp("Reshape", 5, convertReshape); // allowzero (14) is read when present
  r.onOp("Transpose", 1, convertTranspose);
  r.onOp("Slice", 10, convertSlice);
  r.onOp("Concat", 4, convertConcat);
  r.onOp("Split", 13, split(SplitSizes::InputOrEqual));
  r.onOp("Split", 18, split(SplitSizes::InputOrNumOutputs));
  r.onOp("Gather", 1, convertGather);
  r.onOp("GatherElements", 11, convertGatherElements);
  r.onOp("Expand", 8, convertExpand);
  r.onOp("Unsqueeze", 13, convertUnsqueeze);
  r.onOp("Squeeze", 13, convertSqueeze);
  r.onOp("Trilu", 14, convertTrilu);
  r.onOp("Flatten", 13, convertFlatten); // negative axis since 11, bf16 since 13
}

} // namespace shardc::importer
