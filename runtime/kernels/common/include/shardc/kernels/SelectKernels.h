// Element selections and comparisons on tensors of any dtype as SIMT kernels, one source for
// the CUDA backend (nvcc, runtime/backends/cuda/SharedKernels.cu) and the CPU tests (the
// Simt.h emulator, against the CPU backend's kernels): where, equal, isnan (operands broadcast
// to the output, numpy rules), gather_elements and trilu. One element per thread; elements
// move as bytes, comparisons decode values (+0 == -0, NaN != NaN, as on the CPU).
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/IndexKernels.h"
#include "shardc/kernels/Simt.h"

#include <cstdint>

namespace shardc::kernels {

// The runtime's dtypes, in rt::DType's order (SharedKernels.cu checks it).
enum class AnyType : int { F32, F16, BF16, F64, I64, I32, I8, U8, Bool };

struct AnyOperand {
  const void *data = nullptr;
  AnyType type = AnyType::F32;
  int64_t stride[kIndexMaxRank] = {}; // element strides broadcast over the output's shape
};

enum class SelectOp : int { Where, Equal, IsNan, Less, LessEqual };

struct SelectParams {
  AnyOperand in[3]; // where: condition, a, b; equal: a, b; isnan: x
  void *y = nullptr;
  AnyType yType = AnyType::Bool;
  int64_t count = 0;
  int rank = 0;
  int64_t shape[kIndexMaxRank] = {};
  SelectOp op = SelectOp::Where;
};

namespace select_detail {
SIMT_HOST_DEVICE int sizeOf(AnyType t) {
  switch (t) {
  case AnyType::F64:
  case AnyType::I64: return 8;
  case AnyType::F32:
  case AnyType::I32: return 4;
  case AnyType::F16:
  case AnyType::BF16: return 2;
  default: return 1;
  }
}
SIMT_DEVICE bool isFloat(AnyType t) {
  return t == AnyType::F32 || t == AnyType::F16 || t == AnyType::BF16 || t == AnyType::F64;
}
SIMT_DEVICE double loadFloat(const void *p, int64_t i, AnyType t) {
  switch (t) {
  case AnyType::F32: return static_cast<const float *>(p)[i];
  case AnyType::F64: return static_cast<const double *>(p)[i];
  case AnyType::BF16: return sc_from_bf16(static_cast<const unsigned short *>(p)[i]);
  default: return sc_from_f16(static_cast<const unsigned short *>(p)[i]);
  }
}
SIMT_DEVICE int64_t loadInt(const void *p, int64_t i, AnyType t) {
  switch (t) {
  case AnyType::I64: return static_cast<const int64_t *>(p)[i];
  case AnyType::I32: return static_cast<const int32_t *>(p)[i];
  case AnyType::I8: return static_cast<const int8_t *>(p)[i];
  default: return static_cast<const uint8_t *>(p)[i]; // u8, bool
  }
}
SIMT_DEVICE void copyElement(void *dst, int64_t d, const void *src, int64_t s, int size) {
  switch (size) {
  case 1: static_cast<uint8_t *>(dst)[d] = static_cast<const uint8_t *>(src)[s]; break;
  case 2: static_cast<uint16_t *>(dst)[d] = static_cast<const uint16_t *>(src)[s]; break;
  case 4: static_cast<uint32_t *>(dst)[d] = static_cast<const uint32_t *>(src)[s]; break;
  default: static_cast<uint64_t *>(dst)[d] = static_cast<const uint64_t *>(src)[s]; break;
  }
}
SIMT_DEVICE void zeroElement(void *dst, int64_t d, int size) { // zero bytes are 0 in every dtype
  switch (size) {
  case 1: static_cast<uint8_t *>(dst)[d] = 0; break;
  case 2: static_cast<uint16_t *>(dst)[d] = 0; break;
  case 4: static_cast<uint32_t *>(dst)[d] = 0; break;
  default: static_cast<uint64_t *>(dst)[d] = 0; break;
  }
}
// Element n's offset over strides: IndexKernels.h's.
using index_detail::offsetOf;
} // namespace select_detail

SIMT_DEVICE void selectElements(const SelectParams &p) {
  using namespace select_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  const int64_t a = offsetOf(n, p.rank, p.shape, p.in[0].stride);
  if (p.op == SelectOp::Where) {
    const bool pick = static_cast<const uint8_t *>(p.in[0].data)[a] != 0;
    const AnyOperand &from = pick ? p.in[1] : p.in[2];
    copyElement(p.y, n, from.data, offsetOf(n, p.rank, p.shape, from.stride), sizeOf(p.yType));
    return;
  }
  bool out = false;
  const AnyType t = p.in[0].type;
  if (p.op == SelectOp::IsNan) {
    if (isFloat(t)) {
      const double v = loadFloat(p.in[0].data, a, t);
      out = v != v;
    }
  } else {
    const int64_t b = offsetOf(n, p.rank, p.shape, p.in[1].stride);
    if (isFloat(t)) {
      const double x = loadFloat(p.in[0].data, a, t), z = loadFloat(p.in[1].data, b, t);
      out = p.op == SelectOp::Equal ? x == z : p.op == SelectOp::Less ? x < z : x <= z;
    } else {
      const int64_t x = loadInt(p.in[0].data, a, t), z = loadInt(p.in[1].data, b, t);
      out = p.op == SelectOp::Equal ? x == z : p.op == SelectOp::Less ? x < z : x <= z;
    }
  }
  static_cast<uint8_t *>(p.y)[n] = out ? 1 : 0;
}

// y[c] = data[c with the axis coordinate replaced by indices[c]] over the indices' (= y's)
// coordinates c; negative indices count from the end; an index out of range gives zero (the
// CPU kernel reports it; a kernel on a stream cannot).
struct GatherElementsParams {
  const void *data = nullptr, *indices = nullptr;
  void *y = nullptr;
  int indices64 = 1, elemSize = 4, rank = 0;
  int64_t count = 0, axisLen = 0, axisStride = 0;
  int64_t shape[kIndexMaxRank] = {}, dataStride[kIndexMaxRank] = {}; // dataStride: 0 on the axis
};

SIMT_DEVICE void gatherElements(const GatherElementsParams &p) {
  using namespace select_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  int64_t index = p.indices64 ? static_cast<const int64_t *>(p.indices)[n] : static_cast<const int32_t *>(p.indices)[n];
  if (index < 0)
    index += p.axisLen;
  if (index < 0 || index >= p.axisLen) {
    zeroElement(p.y, n, p.elemSize);
    return;
  }
  copyElement(p.y, n, p.data, offsetOf(n, p.rank, p.shape, p.dataStride) + index * p.axisStride, p.elemSize);
}

// y = x with the elements off the band zeroed: kept where j - i >= k (upper) or j - i <= k
// (lower), (i, j) the element's place in its matrix (the last two dims).
struct TriluParams {
  const void *x = nullptr;
  void *y = nullptr;
  int elemSize = 4, upper = 1;
  int64_t count = 0, rows = 0, cols = 0, k = 0;
};

SIMT_DEVICE void triluElements(const TriluParams &p) {
  using namespace select_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  const int64_t j = n % p.cols, i = (n / p.cols) % p.rows;
  const bool keep = p.upper ? j - i >= p.k : j - i <= p.k;
  if (keep)
    copyElement(p.y, n, p.x, n, p.elemSize);
  else
    zeroElement(p.y, n, p.elemSize);
}

#if !defined(__CUDACC_RTC__)
// ---- Plans (host code): "" or a one-line error.
inline std::string planSelect(const std::vector<int64_t> &yShape, const std::vector<std::vector<int64_t>> &inShapes,
                              SelectParams &p) {
  if (yShape.size() > size_t(kIndexMaxRank) || inShapes.size() > 3)
    return "rank " + std::to_string(yShape.size()) + " exceeds the kernel's " + std::to_string(kIndexMaxRank);
  p.rank = int(yShape.size());
  p.count = 1;
  for (size_t d = 0; d < yShape.size(); ++d) {
    p.shape[d] = yShape[d];
    p.count *= yShape[d];
  }
  for (size_t i = 0; i < inShapes.size(); ++i) {
    const std::vector<int64_t> &s = inShapes[i];
    if (s.size() > yShape.size())
      return "an operand has more dims than the output";
    const std::vector<int64_t> dense = index_detail::denseStrides(s);
    const size_t lead = yShape.size() - s.size();
    for (size_t d = 0; d < yShape.size(); ++d)
      p.in[i].stride[d] = 0;
    for (size_t d = 0; d < s.size(); ++d) {
      if (s[d] != yShape[lead + d] && s[d] != 1)
        return "an operand does not broadcast to the output";
      p.in[i].stride[lead + d] = s[d] == 1 ? 0 : dense[d];
    }
  }
  return "";
}

inline std::string planGatherElements(const std::vector<int64_t> &dataShape, const std::vector<int64_t> &indexShape,
                                      int64_t axis, int elemSize, GatherElementsParams &p) {
  const int64_t rank = int64_t(dataShape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank || int64_t(indexShape.size()) != rank || rank > kIndexMaxRank)
    return "axis or ranks out of range (rank " + std::to_string(rank) + ")";
  const std::vector<int64_t> dense = index_detail::denseStrides(dataShape);
  p.rank = int(rank);
  p.elemSize = elemSize;
  p.count = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (d != axis && indexShape[size_t(d)] > dataShape[size_t(d)])
      return "the indices do not fit the data off the axis";
    p.shape[d] = indexShape[size_t(d)];
    p.dataStride[d] = d == axis ? 0 : dense[size_t(d)];
    p.count *= indexShape[size_t(d)];
  }
  p.axisLen = dataShape[size_t(axis)];
  p.axisStride = dense[size_t(axis)];
  return "";
}

inline std::string planTrilu(const std::vector<int64_t> &xShape, bool upper, int64_t k, int elemSize, TriluParams &p) {
  if (xShape.size() < 2)
    return "trilu needs rank >= 2";
  p.rows = xShape[xShape.size() - 2];
  p.cols = xShape.back();
  p.count = 1;
  for (int64_t d : xShape)
    p.count *= d;
  p.upper = upper;
  p.k = k;
  p.elemSize = elemSize;
  return "";
}
#endif

} // namespace shardc::kernels
