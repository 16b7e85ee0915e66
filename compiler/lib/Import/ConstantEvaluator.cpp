// Host evaluation of sc ops on small constants, used by the importer to fold the shape and
// mask subgraphs that exporters leave in graphs with static shapes.
#include "shardc/Import/ConstantEvaluator.h"

#include "llvm/ADT/APFloat.h"
#include "llvm/ADT/STLExtras.h"

#include <cmath>

using namespace mlir;

namespace shardc {

namespace {

std::vector<int64_t> stridesOf(ArrayRef<int64_t> shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (int i = (int)shape.size() - 2; i >= 0; --i)
    s[i] = s[i + 1] * shape[i + 1];
  return s;
}

// Linear index of `out` coordinates into an operand broadcast to the output shape.
int64_t broadcastIndex(ArrayRef<int64_t> outIdx, ArrayRef<int64_t> inShape) {
  int64_t off = outIdx.size() - inShape.size(), idx = 0;
  for (size_t i = 0; i < inShape.size(); ++i)
    idx = idx * inShape[i] + (inShape[i] == 1 ? 0 : outIdx[i + off]);
  return idx;
}

void unravel(int64_t flat, ArrayRef<int64_t> shape, SmallVectorImpl<int64_t> &idx) {
  idx.assign(shape.size(), 0);
  for (int i = (int)shape.size() - 1; i >= 0; --i) {
    idx[i] = shape[i] ? flat % shape[i] : 0;
    flat = shape[i] ? flat / shape[i] : 0;
  }
}

double castTo(Type t, double v) {
  if (t.isInteger(1))
    return v != 0.0 ? 1.0 : 0.0;
  if (isa<IntegerType>(t))
    return std::trunc(v);
  if (t.isF32())
    return (double)(float)v;
  if (auto ft = dyn_cast<FloatType>(t)) {
    bool lost;
    APFloat f(v);
    f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
    return f.convertToDouble();
  }
  return v;
}

} // namespace

static int64_t saturatingInt(double v);

std::optional<HostTensor> HostTensor::fromAttr(ElementsAttr attr) {
  auto dense = dyn_cast<DenseElementsAttr>(attr);
  auto type = dyn_cast<RankedTensorType>(attr.getType());
  if (!dense || !type)
    return std::nullopt;
  HostTensor t{type, {}};
  Type et = type.getElementType();
  t.values.reserve(type.getNumElements());
  if (isa<FloatType>(et)) {
    for (APFloat v : dense.getValues<APFloat>())
      t.values.push_back(v.convertToDouble());
  } else if (auto it = dyn_cast<IntegerType>(et)) {
    for (APInt v : dense.getValues<APInt>())
      t.values.push_back(it.getWidth() == 1 || it.isUnsigned() ? (double)v.getZExtValue()
                                                               : (double)v.getSExtValue());
  } else {
    return std::nullopt;
  }
  return t;
}

DenseElementsAttr HostTensor::toAttr() const {
  Type et = type.getElementType();
  if (auto ft = dyn_cast<FloatType>(et)) {
    SmallVector<APFloat> vals;
    for (double v : values) {
      bool lost;
      APFloat f(v);
      f.convert(ft.getFloatSemantics(), APFloat::rmNearestTiesToEven, &lost);
      vals.push_back(f);
    }
    return DenseElementsAttr::get(type, vals);
  }
  auto it = cast<IntegerType>(et);
  SmallVector<APInt> vals;
  for (double v : values)
    vals.push_back(APInt(it.getWidth(), (uint64_t)saturatingInt(v), /*isSigned=*/!it.isUnsigned(), /*implicitTrunc=*/true));
  return DenseElementsAttr::get(type, vals);
}

// Doubles hold int64 exactly up to 2^53; the INT64_MAX/MIN sentinels ONNX uses for
// "to the end" in Slice round to ±2^63 and must saturate instead of overflowing.
static int64_t saturatingInt(double v) {
  if (v >= 9.2e18)
    return INT64_MAX;
  if (v <= -9.2e18)
    return INT64_MIN;
  return (int64_t)v;
}

std::vector<int64_t> HostTensor::asInts() const {
  std::vector<int64_t> r;
  for (double v : values)
    r.push_back(saturatingInt(v));
  return r;
}

std::optional<HostTensor> evaluateOnHost(StringRef op, ArrayRef<HostTensor> in,
                                         RankedTensorType rt, DictionaryAttr attrs) {
  HostTensor out{rt, std::vector<double>(rt.getNumElements())};
  ArrayRef<int64_t> os = rt.getShape();
  Type et = rt.getElementType();
  SmallVector<int64_t> idx;
  auto i64Array = [&](StringRef name) -> SmallVector<int64_t> {
    if (auto a = attrs ? attrs.getAs<DenseI64ArrayAttr>(name) : nullptr)
      return SmallVector<int64_t>(a.asArrayRef());
    return {};
  };
  auto i64Attr = [&](StringRef name) -> int64_t {
    auto a = attrs ? attrs.getAs<IntegerAttr>(name) : nullptr;
    return a ? a.getInt() : 0;
  };

  auto elementwise = [&](auto fn) -> std::optional<HostTensor> {
    for (int64_t f = 0; f < (int64_t)out.values.size(); ++f) {
      unravel(f, os, idx);
      SmallVector<double, 3> args;
      for (const HostTensor &t : in)
        args.push_back(t.values[broadcastIndex(idx, t.type.getShape())]);
      out.values[f] = castTo(et, fn(args));
    }
    return out;
  };
  bool isInt = isa<IntegerType>(in.empty() ? et : in[0].type.getElementType());

  if (op == "add") return elementwise([](auto a) { return a[0] + a[1]; });
  if (op == "sub") return elementwise([](auto a) { return a[0] - a[1]; });
  if (op == "mul") return elementwise([](auto a) { return a[0] * a[1]; });
  if (op == "div")
    return elementwise([&](auto a) {
      if (isInt)
        return a[1] == 0 ? 0.0 : std::trunc(a[0] / a[1]);
      return a[0] / a[1];
    });
  if (op == "pow") return elementwise([](auto a) { return std::pow(a[0], a[1]); });
  if (op == "equal") return elementwise([](auto a) { return a[0] == a[1] ? 1.0 : 0.0; });
  if (op == "where") return elementwise([](auto a) { return a[0] != 0 ? a[1] : a[2]; });
  if (op == "neg") return elementwise([](auto a) { return -a[0]; });
  if (op == "sqrt") return elementwise([](auto a) { return std::sqrt(a[0]); });
  if (op == "reciprocal") return elementwise([](auto a) { return 1.0 / a[0]; });
  if (op == "exp") return elementwise([](auto a) { return std::exp(a[0]); });
  if (op == "cos") return elementwise([](auto a) { return std::cos(a[0]); });
  if (op == "sin") return elementwise([](auto a) { return std::sin(a[0]); });
  if (op == "cast" || op == "expand") return elementwise([](auto a) { return a[0]; });
  if (op == "reshape" || op == "unsqueeze" || op == "squeeze") {
    for (size_t i = 0; i < out.values.size(); ++i)
      out.values[i] = castTo(et, in[0].values[i]);
    return out;
  }
  if (op == "transpose") {
    SmallVector<int64_t> perm = i64Array("perm");
    auto is = in[0].type.getShape();
    std::vector<int64_t> st = stridesOf(is);
    for (int64_t f = 0; f < (int64_t)out.values.size(); ++f) {
      unravel(f, os, idx);
      int64_t src = 0;
      for (size_t d = 0; d < perm.size(); ++d)
        src += idx[d] * st[perm[d]];
      out.values[f] = in[0].values[src];
    }
    return out;
  }
  if (op == "slice") {
    SmallVector<int64_t> starts = i64Array("starts"), steps = i64Array("steps");
    std::vector<int64_t> st = stridesOf(in[0].type.getShape());
    for (int64_t f = 0; f < (int64_t)out.values.size(); ++f) {
      unravel(f, os, idx);
      int64_t src = 0;
      for (size_t d = 0; d < idx.size(); ++d)
        src += (starts[d] + idx[d] * steps[d]) * st[d];
      out.values[f] = in[0].values[src];
    }
    return out;
  }
  if (op == "concat") {
    int64_t axis = i64Attr("axis");
    if (axis < 0)
      axis += os.size();
    std::vector<int64_t> ost = stridesOf(os);
    int64_t base = 0;
    for (const HostTensor &t : in) {
      ArrayRef<int64_t> ts = t.type.getShape();
      for (int64_t f = 0; f < t.numel(); ++f) {
        unravel(f, ts, idx);
        idx[axis] += base;
        int64_t dst = 0;
        for (size_t d = 0; d < idx.size(); ++d)
          dst += idx[d] * ost[d];
        out.values[dst] = t.values[f];
      }
      base += ts[axis];
    }
    return out;
  }
  if (op == "gather") {
    ArrayRef<int64_t> ds = in[0].type.getShape();
    int64_t axis = i64Attr("axis");
    if (axis < 0)
      axis += ds.size();
    std::vector<int64_t> dst = stridesOf(ds);
    int64_t irank = in[1].type.getRank();
    for (int64_t f = 0; f < (int64_t)out.values.size(); ++f) {
      unravel(f, os, idx);
      int64_t flatIdx = 0;
      for (int64_t k = 0; k < irank; ++k)
        flatIdx = flatIdx * in[1].type.getShape()[k] + idx[axis + k];
      int64_t g = (int64_t)in[1].values[flatIdx];
      if (g < 0)
        g += ds[axis];
      if (g < 0 || g >= ds[axis])
        return std::nullopt;
      int64_t src = g * dst[axis];
      for (int64_t d = 0; d < axis; ++d)
        src += idx[d] * dst[d];
      for (int64_t d = axis + 1; d < (int64_t)ds.size(); ++d)
        src += idx[d - 1 + irank] * dst[d];
      out.values[f] = in[0].values[src];
    }
    return out;
  }
  if (op == "range") {
    double start = in[0].values[0], delta = in[2].values[0];
    for (size_t i = 0; i < out.values.size(); ++i)
      out.values[i] = castTo(et, start + delta * (double)i);
    return out;
  }
  return std::nullopt;
}

} // namespace shardc
