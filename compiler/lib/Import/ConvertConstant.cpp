// Importer converters for ONNX ops that produce constants at import: Constant,
// ConstantOfShape, Shape (static shapes make it a constant) and Range.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"

#include <cmath>

namespace shardc::importer {

namespace {

LogicalResult convertConstant(NodeCtx &n) {
  auto &b = n.im.builder;
  for (const auto &a : n.node.attribute()) {
    if (a.name() == "value") {
      const auto &t = a.t();
      auto et = elementTypeOf(&n.im.ctx, t.data_type());
      if (!et)
        return n.im.fail("Constant of unsupported type");
      SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
      auto type = RankedTensorType::get(shape, *et);
      HostTensor h{type, {}};
      if (!t.raw_data().empty()) {
        int64_t w = byteWidth(*et);
        if ((int64_t)t.raw_data().size() != type.getNumElements() * w)
          return n.im.fail("Constant raw data size mismatch");
        if (et->isInteger(1)) {
          for (char c : t.raw_data()) h.values.push_back(c != 0);
          n.results.push_back(n.im.constant(h.toAttr()));
        } else {
          n.results.push_back(n.im.constant(DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(t.raw_data().data(), t.raw_data().size()))));
        }
        return success();
      }
      if (t.float_data_size()) for (float v : t.float_data()) h.values.push_back(v);
      else if (t.int64_data_size()) for (int64_t v : t.int64_data()) h.values.push_back((double)v);
      else if (t.int32_data_size()) for (int32_t v : t.int32_data()) h.values.push_back(v);
      else if (t.double_data_size()) for (double v : t.double_data()) h.values.push_back(v);
      if ((int64_t)h.values.size() != type.getNumElements())
        return n.im.fail("Constant value count mismatch");
      n.results.push_back(n.im.constant(h.toAttr()));
      return success();
    }
    if (a.name() == "value_float") {
      n.results.push_back(n.im.floatConst(a.f(), b.getF32Type()));
      return success();
    }
    if (a.name() == "value_int") {
      n.results.push_back(n.im.i64Const({a.i()}, {}));
      return success();
    }
    if (a.name() == "value_floats") {
      HostTensor h{RankedTensorType::get({(int64_t)a.floats_size()}, b.getF32Type()), {}};
      for (float f : a.floats()) h.values.push_back(f);
      n.results.push_back(n.im.constant(h.toAttr()));
      return success();
    }
    if (a.name() == "value_ints") {
      SmallVector<int64_t> v(a.ints().begin(), a.ints().end());
      n.results.push_back(n.im.i64Const(v, {(int64_t)v.size()}));
      return success();
    }
  }
  return n.im.fail("Constant without a supported value attribute");
}

LogicalResult convertConstantOfShape(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  auto shape = constOperand(n, 0, "the ConstantOfShape shape");
  if (failed(shape))
    return failure();
  auto &b = n.im.builder;
  Type et = b.getF32Type();
  double v = 0;
  if (auto *a = n.attr("value")) {
    auto t = elementTypeOf(&n.im.ctx, a->t().data_type());
    if (!t)
      return n.im.fail("ConstantOfShape value of unsupported type");
    et = *t;
    const auto &raw = a->t().raw_data();
    if (!raw.empty()) {
      if (et.isF32() && raw.size() == 4) { float f; memcpy(&f, raw.data(), 4); v = f; }
      else if (et.isInteger(64) && raw.size() == 8) { int64_t i; memcpy(&i, raw.data(), 8); v = (double)i; }
      else if (et.isInteger(32) && raw.size() == 4) { int32_t i; memcpy(&i, raw.data(), 4); v = i; }
      else if (et.isInteger(1) && raw.size() == 1) v = raw[0] != 0;
      else return n.im.fail("ConstantOfShape value encoding not supported");
    } else if (a->t().float_data_size()) v = a->t().float_data(0);
    else if (a->t().int64_data_size()) v = (double)a->t().int64_data(0);
    else if (a->t().int32_data_size()) v = a->t().int32_data(0);
  }
  for (int64_t d : *shape)
    if (d < 0) return n.im.fail("negative dim in ConstantOfShape");
  auto type = RankedTensorType::get(*shape, et);
  if (type.getNumElements() <= (1 << 16)) {
    HostTensor h{type, std::vector<double>(type.getNumElements(), v)};
    n.results.push_back(n.im.constant(h.toAttr()));
    return success();
  }
  HostTensor scalar{RankedTensorType::get({}, et), {v}};
  Attribute fill = cast<DenseElementsAttr>(scalar.toAttr()).getSplatValue<Attribute>();
  n.results.push_back(sc::ConstantOfShapeOp::create(b, n.loc, type, cast<TypedAttr>(fill)));
  return success();
}

LogicalResult convertShape(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t s = std::clamp<int64_t>(normAxis(n.intAttr("start", 0), rank), 0, rank);
  int64_t e = n.attr("end") ? std::clamp<int64_t>(normAxis(n.intAttr("end", rank), rank), 0, rank) : rank;
  SmallVector<int64_t> dims;
  for (int64_t i = s; i < e; ++i) dims.push_back(n.shape(0)[i]);
  n.results.push_back(n.im.i64Const(dims, {(int64_t)dims.size()}));
  return success();
}

LogicalResult convertRange(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  auto s = n.im.constTensor(n.in(0)), l = n.im.constTensor(n.in(1)), d = n.im.constTensor(n.in(2));
  if (!s || !l || !d)
    return n.im.fail("Range operands must be constants (shapes are static)");
  double start = s->values[0], limit = l->values[0], delta = d->values[0];
  if (delta == 0)
    return n.im.fail("Range delta is zero");
  int64_t count = std::max<int64_t>(0, (int64_t)std::ceil((limit - start) / delta));
  auto type = RankedTensorType::get({count}, n.elem(0));
  n.results.push_back(n.im.build<sc::RangeOp>(n, type, n.in(0), n.in(1), n.in(2)));
  return success();
}

} // namespace

void registerConstantConverters(ConverterRegistry &r) {
  r.onOp("Constant", 1, convertConstant); // value_float/ints/... (12) are read when present
  r.onOp("ConstantOfShape", 9, convertConstantOfShape);
  r.onOp("Shape", 1, convertShape); // start/end (15) are read when present
  r.onOp("Range", 11, convertRange);
}

} // namespace shardc::importer
