// Internal to the ONNX importer: small builders for converters that compose an ONNX op of
// several sc ops (Pad, Tile, Einsum, Conv). Each builds through Importer::build, so an op on
// constants folds at once.
#pragma once

#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"

namespace shardc::importer {

inline RankedTensorType typeOfValue(Value v) { return cast<RankedTensorType>(v.getType()); }
inline ArrayRef<int64_t> shapeOfValue(Value v) { return typeOfValue(v).getShape(); }

// `count` elements of `x` along `axis` from `start`, `step` apart (step may be negative).
inline Value sliceAxis(NodeCtx &n, Value x, int64_t axis, int64_t start, int64_t count, int64_t step = 1) {
  auto t = typeOfValue(x);
  SmallVector<int64_t> starts(t.getRank(), 0), steps(t.getRank(), 1), out(t.getShape());
  starts[axis] = start;
  steps[axis] = step;
  out[axis] = count;
  auto &b = n.im.builder;
  return n.im.build<sc::SliceOp>(n, n.tensor(out, t.getElementType()), x, b.getDenseI64ArrayAttr(starts),
                                 b.getDenseI64ArrayAttr(steps));
}

// The parts joined along `axis` (parts of size 0 along it are dropped; one part is itself).
inline Value concatAxis(NodeCtx &n, ArrayRef<Value> parts, int64_t axis) {
  SmallVector<Value> kept;
  for (Value v : parts)
    if (shapeOfValue(v)[axis] != 0)
      kept.push_back(v);
  if (kept.empty())
    return parts.front();
  if (kept.size() == 1)
    return kept.front();
  SmallVector<int64_t> out(shapeOfValue(kept.front()));
  out[axis] = 0;
  for (Value v : kept)
    out[axis] += shapeOfValue(v)[axis];
  return n.im.build<sc::ConcatOp>(n, n.tensor(out, typeOfValue(kept.front()).getElementType()), ValueRange(kept),
                                  n.im.builder.getI64IntegerAttr(axis));
}

inline Value reshapeTo(NodeCtx &n, Value x, ArrayRef<int64_t> shape) {
  if (shapeOfValue(x) == shape)
    return x;
  return n.im.build<sc::ReshapeOp>(n, n.tensor(shape, typeOfValue(x).getElementType()), x);
}

inline Value expandTo(NodeCtx &n, Value x, ArrayRef<int64_t> shape) {
  if (shapeOfValue(x) == shape)
    return x;
  return n.im.build<sc::ExpandOp>(n, n.tensor(shape, typeOfValue(x).getElementType()), x);
}

inline Value transposeBy(NodeCtx &n, Value x, ArrayRef<int64_t> perm) {
  bool identity = true;
  for (size_t i = 0; i < perm.size(); ++i)
    identity = identity && perm[i] == int64_t(i);
  if (identity)
    return x;
  SmallVector<int64_t> out;
  for (int64_t p : perm)
    out.push_back(shapeOfValue(x)[p]);
  return n.im.build<sc::TransposeOp>(n, n.tensor(out, typeOfValue(x).getElementType()), x,
                                     n.im.builder.getDenseI64ArrayAttr(perm));
}

} // namespace shardc::importer
