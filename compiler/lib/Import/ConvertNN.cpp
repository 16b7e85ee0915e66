// Importer converters for the neural-network ops: MatMul, Gemm, reductions (ReduceL2 composed
// of a multiply, a sum and a square root), Softmax, LogSoftmax, LayerNormalization,
// RMSNormalization and RotaryEmbedding (Attention is ConvertAttention.cpp's).
#include "ComposeHelpers.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScShapes.h"

#include <cmath>
#include <limits>

namespace shardc::importer {

namespace {

using sc::broadcastShapes;

LogicalResult convertMatMul(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  ArrayRef<int64_t> a = n.shape(0), b = n.shape(1);
  if (a.empty() || b.empty())
    return n.im.fail("MatMul operands must have rank >= 1");
  int64_t ka = a.back(), kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (ka != kb)
    return n.im.fail("contracting dims differ: " + shapeStr(a) + " . " + shapeStr(b));
  SmallVector<int64_t> batch;
  if (!broadcastShapes(a.size() > 2 ? a.drop_back(2) : ArrayRef<int64_t>(), b.size() > 2 ? b.drop_back(2) : ArrayRef<int64_t>(), batch))
    return n.im.fail("batch dims do not broadcast: " + shapeStr(a) + " . " + shapeStr(b));
  SmallVector<int64_t> out(batch);
  if (a.size() >= 2) out.push_back(a[a.size() - 2]);
  if (b.size() >= 2) out.push_back(b.back());
  if (n.elem(0) != n.elem(1))
    return n.im.fail("operand element types differ");
  n.results.push_back(n.im.build<sc::MatMulOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.in(1)));
  return success();
}

LogicalResult convertGemm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  bool ta = n.intAttr("transA", 0), tb = n.intAttr("transB", 0);
  ArrayRef<int64_t> a = n.shape(0), b = n.shape(1);
  if (a.size() != 2 || b.size() != 2)
    return n.im.fail("Gemm needs 2-D A and B");
  SmallVector<int64_t> out{ta ? a[1] : a[0], tb ? b[0] : b[1]};
  auto &bld = n.im.builder;
  auto op = sc::GemmOp::create(bld, n.loc, n.tensor(out, n.elem(0)), n.in(0), n.in(1), n.in(2),
                               bld.getF32FloatAttr(n.floatAttr("alpha", 1.0f)), bld.getF32FloatAttr(n.floatAttr("beta", 1.0f)),
                               bld.getBoolAttr(ta), bld.getBoolAttr(tb));
  n.results.push_back(op);
  return success();
}

// Where a reduction's axes come from: an attribute until ReduceSum-13 / ReduceMean-18 /
// ReduceMax-18, then an optional input. An empty list reduces every axis, unless
// noop_with_empty_axes (which came with the input form) says to pass the input through.
enum class ReduceAxes { Attribute, Input };

// The reduced axes (sorted, unique) and the result shape of a reduction node; `passThrough`
// when an empty axis list with noop_with_empty_axes makes the node its input.
struct ReduceForm {
  SmallVector<int64_t> axes, out;
  bool keep = true, passThrough = false;
};

FailureOr<ReduceForm> reduceForm(NodeCtx &n, ReduceAxes from) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  ReduceForm f;
  llvm::StringRef op(n.node.op_type());
  if (from == ReduceAxes::Input) {
    if (n.attr("axes"))
      return n.im.fail(op + " takes its axes as an input at opset " + llvm::Twine(n.im.opset) +
                       ", not as an attribute");
    if (n.in(1)) {
      auto a = constOperand(n, 1, "reduction axes");
      if (failed(a)) return failure();
      f.axes = *a;
    }
  } else {
    if (n.in(1))
      return n.im.fail(op + " takes its axes as an attribute at opset " + llvm::Twine(n.im.opset) +
                       ", not as an input");
    if (auto a = n.intsAttr("axes"))
      f.axes = *a;
  }
  if (f.axes.empty()) {
    if (n.intAttr("noop_with_empty_axes", 0)) {
      f.passThrough = true;
      return f;
    }
    for (int64_t i = 0; i < rank; ++i) f.axes.push_back(i);
  }
  for (int64_t &a : f.axes) {
    a = normAxis(a, rank);
    if (a < 0 || a >= rank)
      return n.im.fail("reduction axis out of range");
  }
  llvm::sort(f.axes);
  f.axes.erase(std::unique(f.axes.begin(), f.axes.end()), f.axes.end());
  f.keep = n.intAttr("keepdims", 1);
  for (int64_t i = 0; i < rank; ++i) {
    if (llvm::is_contained(f.axes, i)) {
      if (f.keep) f.out.push_back(1);
    } else {
      f.out.push_back(n.shape(0)[i]);
    }
  }
  return f;
}

template <typename OpTy> Converter reduce(ReduceAxes from) {
  return [from](NodeCtx &n) -> LogicalResult {
    auto f = reduceForm(n, from);
    if (failed(f))
      return failure();
    if (f->passThrough) {
      n.results.push_back(n.in(0));
      return success();
    }
    auto &b = n.im.builder;
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(f->out, n.elem(0)), n.in(0), b.getDenseI64ArrayAttr(f->axes),
                                         b.getBoolAttr(f->keep)));
    return success();
  };
}

// ReduceL2 = sqrt(ReduceSum(x * x)) (torch's vector_norm / F.normalize export to it). An empty
// axis list with noop_with_empty_axes passes the input through, as ONNX's reference does.
Converter reduceL2(ReduceAxes from) {
  return [from](NodeCtx &n) -> LogicalResult {
    auto f = reduceForm(n, from);
    if (failed(f))
      return failure();
    if (f->passThrough) {
      n.results.push_back(n.in(0));
      return success();
    }
    auto &b = n.im.builder;
    Value sq = n.im.build<sc::MulOp>(n, n.type(0), n.in(0), n.in(0));
    auto outTy = n.tensor(f->out, n.elem(0));
    Value sum = n.im.build<sc::ReduceSumOp>(n, outTy, sq, b.getDenseI64ArrayAttr(f->axes), b.getBoolAttr(f->keep));
    n.results.push_back(n.im.build<sc::SqrtOp>(n, outTy, sum));
    return success();
  };
}

template <bool log> LogicalResult convertSoftmax(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("softmax axis out of range");
  auto t = n.type(0);
  auto ax = n.im.builder.getI64IntegerAttr(axis);
  if constexpr (log)
    n.results.push_back(n.im.build<sc::LogSoftmaxOp>(n, t, n.in(0), ax));
  else
    n.results.push_back(n.im.build<sc::SoftmaxOp>(n, t, n.in(0), ax));
  return success();
}

LogicalResult convertLayerNorm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("LayerNormalization axis out of range");
  auto &b = n.im.builder;
  float eps = n.floatAttr("epsilon", 1e-5f);
  n.results.push_back(sc::LayerNormOp::create(b, n.loc, n.type(0), n.in(0), n.in(1), n.in(2), b.getI64IntegerAttr(axis),
                                              b.getF32FloatAttr(eps)));
  bool stats = false;
  for (int i = 1; i < n.node.output_size() && i < 3; ++i)
    stats |= !n.node.output(i).empty();
  if (!stats)
    return success();
  // The optional Mean and InvStdDev outputs (stash_type: f32), over the normalized dims
  // [axis, rank) kept as 1: composed of existing ops, computed beside the normalization.
  if (n.intAttr("stash_type", 1) != 1)
    return n.im.fail("LayerNormalization's stash_type other than float is not supported");
  Type f32 = b.getF32Type();
  SmallVector<int64_t> statShape(n.shape(0));
  SmallVector<int64_t> axes;
  for (int64_t d = axis; d < rank; ++d) {
    statShape[d] = 1;
    axes.push_back(d);
  }
  Value x = n.in(0);
  if (n.elem(0) != f32)
    x = n.im.build<sc::CastOp>(n, n.tensor(n.shape(0), f32), x);
  auto full = n.tensor(n.shape(0), f32), stat = n.tensor(statShape, f32);
  auto axesAttr = b.getDenseI64ArrayAttr(axes);
  Value mean = n.im.build<sc::ReduceMeanOp>(n, stat, x, axesAttr, b.getBoolAttr(true));
  Value centered = n.im.build<sc::SubOp>(n, full, x, mean);
  Value var = n.im.build<sc::ReduceMeanOp>(n, stat, n.im.build<sc::MulOp>(n, full, centered, centered), axesAttr,
                                           b.getBoolAttr(true));
  Value inv = n.im.build<sc::ReciprocalOp>(
      n, stat, n.im.build<sc::SqrtOp>(n, stat, n.im.build<sc::AddOp>(n, stat, var, n.im.floatConst(eps, f32))));
  n.results.push_back(mean);
  if (n.node.output_size() > 2)
    n.results.push_back(inv);
  return success();
}

LogicalResult convertRmsNorm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  auto &b = n.im.builder;
  n.results.push_back(sc::RmsNormOp::create(b, n.loc, n.type(0), n.in(0), n.in(1), b.getI64IntegerAttr(axis),
                                            b.getF32FloatAttr(n.floatAttr("epsilon", 1e-5f))));
  return success();
}

// ONNX RotaryEmbedding (opset 23), composed of slices, multiplies and concatenations in X's
// own layout ([B, H, S, D], or [B, S, H, D] for the 3-D form's [B, S, H·D]): the first
// rotary_embedding_dim dims of each head are rotated, as halves or interleaved pairs, by the
// cos/sin rows that position_ids select (or the [B, S, R/2] caches themselves); the rest pass.
LogicalResult convertRotaryEmbedding(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  ArrayRef<int64_t> xs = n.shape(0);
  Type et = n.elem(0);
  if (n.elem(1) != et || n.elem(2) != et)
    return n.im.fail("RotaryEmbedding caches must have X's element type");
  if (!isa<FloatType>(et))
    return n.im.fail("RotaryEmbedding takes float tensors");
  Value x = n.in(0);
  int64_t heads = n.intAttr("num_heads", 0), headAxis = 1;
  if (xs.size() == 3) {
    if (heads <= 0 || xs[2] % heads != 0)
      return n.im.fail("RotaryEmbedding of a 3-D input needs num_heads dividing the hidden size");
    x = reshapeTo(n, x, {xs[0], xs[1], heads, xs[2] / heads});
    headAxis = 2;
  } else if (xs.size() != 4) {
    return n.im.fail("RotaryEmbedding takes a 3-D or 4-D input, got " + shapeStr(xs));
  }
  ArrayRef<int64_t> x4 = shapeOfValue(x);
  const int64_t D = x4[3], R = n.intAttr("rotary_embedding_dim", 0) ? n.intAttr("rotary_embedding_dim", 0) : D;
  if (R > D || R % 2 != 0)
    return n.im.fail("RotaryEmbedding rotary_embedding_dim must be even and at most the head size");
  const int64_t B = x4[0], S = headAxis == 1 ? x4[2] : x4[1], H = R / 2;
  Value caches[2] = {n.in(1), n.in(2)};
  for (Value &c : caches) {
    if (Value pos = n.in(3)) {
      if (typeOfValue(c).getRank() != 2 || shapeOfValue(c)[1] != H)
        return n.im.fail("RotaryEmbedding caches must be [positions, rotary_dim / 2] with position_ids");
      if (n.shape(3) != ArrayRef<int64_t>{B, S})
        return n.im.fail("RotaryEmbedding position_ids must be [batch, sequence]");
      c = n.im.build<sc::GatherOp>(n, n.tensor({B, S, H}, et), c, pos, n.im.builder.getI64IntegerAttr(0));
    } else if (shapeOfValue(c) != ArrayRef<int64_t>{B, S, H}) {
      return n.im.fail("RotaryEmbedding caches must be [batch, sequence, rotary_dim / 2] without position_ids");
    }
    c = reshapeTo(n, c, headAxis == 1 ? SmallVector<int64_t>{B, 1, S, H} : SmallVector<int64_t>{B, S, 1, H});
  }
  const bool interleaved = n.intAttr("interleaved", 0) != 0;
  Value rot = R == D ? x : sliceAxis(n, x, 3, 0, R);
  Value x1 = interleaved ? sliceAxis(n, rot, 3, 0, H, 2) : sliceAxis(n, rot, 3, 0, H);
  Value x2 = interleaved ? sliceAxis(n, rot, 3, 1, H, 2) : sliceAxis(n, rot, 3, H, H);
  auto half = n.tensor({x4[0], x4[1], x4[2], H}, et);
  Value cos = caches[0], sin = caches[1];
  Value real = n.im.build<sc::SubOp>(n, half, n.im.build<sc::MulOp>(n, half, x1, cos),
                                     n.im.build<sc::MulOp>(n, half, x2, sin));
  Value imag = n.im.build<sc::AddOp>(n, half, n.im.build<sc::MulOp>(n, half, x1, sin),
                                     n.im.build<sc::MulOp>(n, half, x2, cos));
  Value y;
  if (interleaved) {
    auto pair = n.tensor({x4[0], x4[1], x4[2], H, 1}, et);
    Value r = reshapeTo(n, real, pair.getShape()), i = reshapeTo(n, imag, pair.getShape());
    y = reshapeTo(n, concatAxis(n, {r, i}, 4), {x4[0], x4[1], x4[2], R});
  } else {
    y = concatAxis(n, {real, imag}, 3);
  }
  if (R != D)
    y = concatAxis(n, {y, sliceAxis(n, x, 3, R, D - R)}, 3);
  n.results.push_back(reshapeTo(n, y, xs));
  return success();
}

} // namespace

void registerNNConverters(ConverterRegistry &r) {
  r.onOp("MatMul", 1, convertMatMul);
  r.onOp("Gemm", 11, convertGemm); // C optional since 11
  r.onOp("Softmax", 13, convertSoftmax</*log=*/false>); // one axis, default -1, since 13
  r.onOp("LogSoftmax", 13, convertSoftmax</*log=*/true>);
  r.onOp("LayerNormalization", 17, convertLayerNorm);
  r.onOp("RMSNormalization", 23, convertRmsNorm);
  r.onOp("RotaryEmbedding", 23, convertRotaryEmbedding);
  // The reduction axes moved from an attribute to an input: ReduceSum in opset 13, the
  // others in 18. ReduceSum's attribute form (before 13) is below the importer's opsets.
  r.onOp("ReduceSum", 13, reduce<sc::ReduceSumOp>(ReduceAxes::Input));
  r.onOp("ReduceMean", 1, reduce<sc::ReduceMeanOp>(ReduceAxes::Attribute));
  r.onOp("ReduceMean", 18, reduce<sc::ReduceMeanOp>(ReduceAxes::Input));
  r.onOp("ReduceMax", 1, reduce<sc::ReduceMaxOp>(ReduceAxes::Attribute));
  r.onOp("ReduceMax", 18, reduce<sc::ReduceMaxOp>(ReduceAxes::Input));
  r.onOp("ReduceL2", 13, reduceL2(ReduceAxes::Attribute));
  r.onOp("ReduceL2", 18, reduceL2(ReduceAxes::Input));
}

} // namespace shardc::importer
