// ONNX scans and index ops as SIMT kernels, one source for the CUDA backend (nvcc,
// runtime/backends/cuda/SharedKernels.cu) and the CPU tests (the Simt.h emulator, against the
// CPU backend's kernels, runtime/kernels/cpu/IndexOps.cpp): cumsum, arg_max and scatter_nd on
// tensors of any dtype. One thread per line along the axis (cumsum, arg_max) or per element of
// an update slice (scatter_nd, which walks the index tuples in order, so later updates win as
// on the CPU). Floats are computed in double, integers in int64, as on the CPU.
#pragma once

#include "shardc/kernels/SelectKernels.h"

namespace shardc::kernels {

namespace scan_detail {
using select_detail::isFloat;
using select_detail::loadFloat;
using select_detail::loadInt;
SIMT_DEVICE void storeFloat(void *p, int64_t i, AnyType t, double v) {
  switch (t) {
  case AnyType::F32: static_cast<float *>(p)[i] = float(v); break;
  case AnyType::F64: static_cast<double *>(p)[i] = v; break;
  case AnyType::BF16: static_cast<unsigned short *>(p)[i] = sc_to_bf16(float(v)); break;
  default: static_cast<unsigned short *>(p)[i] = sc_to_f16(float(v)); break;
  }
}
SIMT_DEVICE void storeInt(void *p, int64_t i, AnyType t, int64_t v) {
  switch (t) {
  case AnyType::I64: static_cast<int64_t *>(p)[i] = v; break;
  case AnyType::I32: static_cast<int32_t *>(p)[i] = int32_t(uint32_t(uint64_t(v))); break;
  case AnyType::I8: static_cast<int8_t *>(p)[i] = int8_t(uint8_t(uint64_t(v))); break;
  case AnyType::Bool: static_cast<uint8_t *>(p)[i] = v != 0; break;
  default: static_cast<uint8_t *>(p)[i] = uint8_t(uint64_t(v)); break;
  }
}
} // namespace scan_detail

// Lines along an axis: outer x len x inner elements, one thread per (outer, inner).
struct AxisLinesParams {
  const void *x = nullptr;
  void *y = nullptr;
  AnyType type = AnyType::F32;
  int64_t outer = 1, len = 1, inner = 1;
  int exclusive = 0, reverse = 0, selectLast = 0; // cumsum: the first two; arg_max: the last
  int minimum = 0;                                  // arg_max: the smallest instead (arg_min)
};

SIMT_DEVICE void cumsumLines(const AxisLinesParams &p) {
  using namespace scan_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.outer * p.inner)
    return;
  const int64_t o = n / p.inner, i = n % p.inner;
  double facc = 0.0;
  uint64_t iacc = 0;
  const bool fl = isFloat(p.type);
  for (int64_t step = 0; step < p.len; ++step) {
    const int64_t k = p.reverse ? p.len - 1 - step : step;
    const int64_t at = (o * p.len + k) * p.inner + i;
    if (fl) {
      const double v = loadFloat(p.x, at, p.type);
      if (!p.exclusive)
        facc += v;
      storeFloat(p.y, at, p.type, facc);
      if (p.exclusive)
        facc += v;
    } else {
      const uint64_t v = uint64_t(loadInt(p.x, at, p.type));
      if (!p.exclusive)
        iacc += v;
      storeInt(p.y, at, p.type, int64_t(iacc));
      if (p.exclusive)
        iacc += v;
    }
  }
}

// y (i64, outer x inner) = the index of the largest (minimum: smallest) element of each line;
// the first NaN wins either way.
SIMT_DEVICE void argMaxLines(const AxisLinesParams &p) {
  using namespace scan_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.outer * p.inner)
    return;
  const int64_t o = n / p.inner, i = n % p.inner, base = o * p.len * p.inner + i;
  int64_t at = 0;
  if (isFloat(p.type)) {
    double best = loadFloat(p.x, base, p.type);
    for (int64_t k = 1; k < p.len && best == best; ++k) {
      const double v = loadFloat(p.x, base + k * p.inner, p.type);
      if (v != v || (p.minimum ? v < best : v > best) || (p.selectLast && v == best)) {
        best = v;
        at = k;
      }
    }
  } else {
    int64_t best = loadInt(p.x, base, p.type);
    for (int64_t k = 1; k < p.len; ++k) {
      const int64_t v = loadInt(p.x, base + k * p.inner, p.type);
      if ((p.minimum ? v < best : v > best) || (p.selectLast && v == best)) {
        best = v;
        at = k;
      }
    }
  }
  static_cast<int64_t *>(p.y)[n] = at;
}

enum class ScatterReduction : int { None, Add, Mul, Max, Min };

// y[at] = updates[from], or combined with it by `red` (floats in double, integers in int64,
// wrapping): the element update of scatter_nd and scatter_elements.
SIMT_DEVICE void scatterUpdate(void *y, int64_t at, const void *updates, int64_t from, AnyType type, bool fl,
                               ScatterReduction red) {
  using namespace scan_detail;
  if (fl) {
    const double u = loadFloat(updates, from, type), c = loadFloat(y, at, type);
    const double v = red == ScatterReduction::Add   ? c + u
                     : red == ScatterReduction::Mul ? c * u
                     : red == ScatterReduction::Max ? (u > c ? u : c)
                     : red == ScatterReduction::Min ? (u < c ? u : c)
                                                    : u;
    storeFloat(y, at, type, v);
  } else {
    const int64_t u = loadInt(updates, from, type), c = loadInt(y, at, type);
    const int64_t v = red == ScatterReduction::Add   ? int64_t(uint64_t(c) + uint64_t(u))
                      : red == ScatterReduction::Mul ? int64_t(uint64_t(c) * uint64_t(u))
                      : red == ScatterReduction::Max ? (u > c ? u : c)
                      : red == ScatterReduction::Min ? (u < c ? u : c)
                                                     : u;
    storeInt(y, at, type, v);
  }
}

// y (already a copy of data) gets updates[t, j] at slice offset(indices[t]) + j, tuple by tuple;
// an index out of range is skipped (the CPU kernel reports it; a kernel on a stream cannot).
struct ScatterNdParams {
  const int64_t *indices = nullptr;
  const void *updates = nullptr;
  void *y = nullptr;
  AnyType type = AnyType::F32;
  int64_t tuples = 0, k = 0, slice = 1;
  int64_t dims[kIndexMaxRank] = {};
  ScatterReduction reduction = ScatterReduction::None;
};

SIMT_DEVICE void scatterNdSlices(const ScatterNdParams &p) {
  using namespace scan_detail;
  const int64_t j = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (j >= p.slice)
    return;
  const bool fl = isFloat(p.type);
  for (int64_t t = 0; t < p.tuples; ++t) {
    int64_t offset = 0;
    bool inside = true;
    for (int64_t d = 0; d < p.k; ++d) {
      int64_t i = p.indices[t * p.k + d];
      if (i < 0)
        i += p.dims[d];
      inside = inside && i >= 0 && i < p.dims[d];
      offset = offset * p.dims[d] + i;
    }
    if (!inside)
      continue;
    const int64_t at = offset * p.slice + j, from = t * p.slice + j;
    scatterUpdate(p.y, at, p.updates, from, p.type, fl, p.reduction);
  }
}

// scatter_elements along an axis: y (already a copy of data) gets updates[p] at p with p[axis]
// replaced by indices[p] (i64; negative from the end; out of range skipped, as scatter_nd). One
// thread per line of the indices along the axis, walking it in order: two updates of one element
// lie on one line, so later ones win (or combine in order) as in a row-major loop.
struct ScatterElementsParams {
  const int64_t *indices = nullptr;
  const void *updates = nullptr;
  void *y = nullptr;
  AnyType type = AnyType::F32;
  int rank = 0, axis = 0;
  int64_t lines = 0, axisLen = 0; // axisLen: data's extent along the axis
  int64_t idxDims[kIndexMaxRank] = {}, dataStrides[kIndexMaxRank] = {};
  ScatterReduction reduction = ScatterReduction::None;
};

SIMT_DEVICE void scatterElementsLine(const ScatterElementsParams &p, int64_t line) {
  using namespace scan_detail;
  // The line's coordinates off the axis (row-major over the indices' other dims).
  int64_t rest = line, base = 0, idxBase = 0, idxStride = 1, axisIdxStride = 1;
  for (int d = p.rank - 1; d >= 0; --d) {
    if (d == p.axis) {
      axisIdxStride = idxStride;
    } else {
      const int64_t c = rest % p.idxDims[d];
      rest /= p.idxDims[d];
      base += c * p.dataStrides[d];
      idxBase += c * idxStride;
    }
    idxStride *= p.idxDims[d];
  }
  const bool fl = isFloat(p.type);
  for (int64_t j = 0; j < p.idxDims[p.axis]; ++j) {
    const int64_t from = idxBase + j * axisIdxStride;
    int64_t i = p.indices[from];
    if (i < 0)
      i += p.axisLen;
    if (i < 0 || i >= p.axisLen)
      continue;
    const int64_t at = base + i * p.dataStrides[p.axis];
    scatterUpdate(p.y, at, p.updates, from, p.type, fl, p.reduction);
  }
}

SIMT_DEVICE void scatterElementsLines(const ScatterElementsParams &p) {
  const int64_t line = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (line < p.lines)
    scatterElementsLine(p, line);
}

#if !defined(__CUDACC_RTC__)
// ---- Plans (host code): "" or a one-line error.
inline std::string planAxisLines(const std::vector<int64_t> &shape, int64_t axis, AxisLinesParams &p) {
  const int64_t rank = int64_t(shape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return "axis out of range for rank " + std::to_string(rank);
  p.outer = p.len = p.inner = 1;
  for (int64_t d = 0; d < rank; ++d)
    (d < axis ? p.outer : d == axis ? p.len : p.inner) *= shape[size_t(d)];
  return "";
}

inline std::string scatterReductionOf(const std::string &reduction, ScatterReduction &r) {
  if (reduction == "none")
    r = ScatterReduction::None;
  else if (reduction == "add")
    r = ScatterReduction::Add;
  else if (reduction == "mul")
    r = ScatterReduction::Mul;
  else if (reduction == "max")
    r = ScatterReduction::Max;
  else if (reduction == "min")
    r = ScatterReduction::Min;
  else
    return "reduction '" + reduction + "' is not none, add, mul, max or min";
  return "";
}

inline std::string planScatterElements(const std::vector<int64_t> &dataShape, const std::vector<int64_t> &indexShape,
                                       const std::vector<int64_t> &updateShape, int64_t axis,
                                       const std::string &reduction, ScatterElementsParams &p) {
  const int64_t rank = int64_t(dataShape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || rank > kIndexMaxRank)
    return "axis out of range for rank " + std::to_string(rank) + " (at most " + std::to_string(kIndexMaxRank) + ")";
  if (int64_t(indexShape.size()) != rank || updateShape != indexShape)
    return "indices and updates must share one shape of the data's rank";
  p.rank = int(rank);
  p.axis = int(axis);
  p.axisLen = dataShape[size_t(axis)];
  p.lines = 1;
  int64_t stride = 1;
  for (int64_t d = rank - 1; d >= 0; --d) {
    if (indexShape[size_t(d)] > dataShape[size_t(d)])
      return "indices are larger than the data in dim " + std::to_string(d);
    p.idxDims[d] = indexShape[size_t(d)];
    p.dataStrides[d] = stride;
    stride *= dataShape[size_t(d)];
    if (d != axis)
      p.lines *= indexShape[size_t(d)];
  }
  if (indexShape[size_t(axis)] == 0)
    p.lines = 0;
  return scatterReductionOf(reduction, p.reduction);
}

inline std::string planScatterNd(const std::vector<int64_t> &dataShape, const std::vector<int64_t> &indexShape,
                                 const std::string &reduction, ScatterNdParams &p) {
  if (indexShape.empty() || indexShape.back() > int64_t(dataShape.size()) || indexShape.back() > kIndexMaxRank)
    return "indices must be [..., K] with K <= rank(data) and K <= " + std::to_string(kIndexMaxRank);
  p.k = indexShape.back();
  p.tuples = 1;
  for (size_t d = 0; d + 1 < indexShape.size(); ++d)
    p.tuples *= indexShape[d];
  if (p.k == 0)
    p.tuples = 0;
  p.slice = 1;
  for (size_t d = 0; d < dataShape.size(); ++d) {
    if (int64_t(d) < p.k)
      p.dims[d] = dataShape[d];
    else
      p.slice *= dataShape[d];
  }
  if (reduction == "none")
    p.reduction = ScatterReduction::None;
  else if (reduction == "add")
    p.reduction = ScatterReduction::Add;
  else if (reduction == "mul")
    p.reduction = ScatterReduction::Mul;
  else if (reduction == "max")
    p.reduction = ScatterReduction::Max;
  else if (reduction == "min")
    p.reduction = ScatterReduction::Min;
  else
    return "reduction '" + reduction + "' is not none, add, mul, max or min";
  return "";
}
#endif

} // namespace shardc::kernels
