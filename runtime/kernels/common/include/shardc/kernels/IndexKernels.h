// Data movement and reductions as SIMT kernels, one source for the CUDA backend (nvcc,
// runtime/backends/cuda/SharedKernels.cu) and the CPU tests (the Simt.h emulator, against the
// CPU backend's kernels).
//
// stridedCopy: y[dstBase + sum_d c_d dstStride_d] = x[srcBase + sum_d c_d srcStride_d] over
// the coordinates c of `shape` (up to kIndexMaxRank dims, element strides, any element size),
// one element per thread. slice (steps as strides), concat (one launch per part, at its offset
// along the axis), transpose (permuted strides) and expand (broadcast strides of 0) are plans
// of it (plan* below: plain host code).
//
// reduceRows: one block per output element; the block's threads stride over the reduced
// elements accumulating in double, then combine in shared memory (a tree, so the order of the
// additions differs from the CPU's sequential one only in double's last bits); sum, mean or
// max (a NaN wins, as on the CPU) of f32, bf16 or f16, rounded once to the output's dtype.
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/Simt.h"

#include <cstdint>

#if !defined(__CUDACC_RTC__)
#include <string>
#include <vector>
#endif

namespace shardc::kernels {

constexpr int kIndexMaxRank = 8;
constexpr int kIndexThreads = 256; // threads per block of both kernels

struct StridedCopyParams {
  void *dst = nullptr;
  const void *src = nullptr;
  int64_t count = 0; // elements copied: the product of shape
  int rank = 0, elemSize = 4;
  int64_t shape[kIndexMaxRank] = {}, dstStride[kIndexMaxRank] = {}, srcStride[kIndexMaxRank] = {};
  int64_t dstBase = 0, srcBase = 0;
};

// Blocks of a launch over `count` elements (at least one).
SIMT_HOST_DEVICE int64_t indexBlocks(int64_t count) {
  return count < 1 ? 1 : (count + kIndexThreads - 1) / kIndexThreads;
}

SIMT_DEVICE void stridedCopy(const StridedCopyParams &p) {
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  int64_t rest = n, d = p.dstBase, s = p.srcBase;
  for (int k = p.rank - 1; k >= 0; --k) {
    const int64_t c = rest % p.shape[k];
    rest /= p.shape[k];
    d += c * p.dstStride[k];
    s += c * p.srcStride[k];
  }
  switch (p.elemSize) {
  case 1: static_cast<uint8_t *>(p.dst)[d] = static_cast<const uint8_t *>(p.src)[s]; break;
  case 2: static_cast<uint16_t *>(p.dst)[d] = static_cast<const uint16_t *>(p.src)[s]; break;
  case 4: static_cast<uint32_t *>(p.dst)[d] = static_cast<const uint32_t *>(p.src)[s]; break;
  default: static_cast<uint64_t *>(p.dst)[d] = static_cast<const uint64_t *>(p.src)[s]; break;
  }
}

enum class ReduceKind : int { Sum, Mean, Max };
enum class ReduceType : int { F32, BF16, F16 };

struct ReduceParams {
  const void *x = nullptr;
  void *y = nullptr;
  ReduceType type = ReduceType::F32;
  ReduceKind kind = ReduceKind::Sum;
  int64_t outputs = 0, count = 0; // output elements; input elements per output
  int keptRank = 0, reducedRank = 0;
  int64_t keptShape[kIndexMaxRank] = {}, keptStride[kIndexMaxRank] = {};
  int64_t reducedShape[kIndexMaxRank] = {}, reducedStride[kIndexMaxRank] = {};
};

namespace index_detail {
SIMT_DEVICE double load(const void *x, int64_t i, ReduceType t) {
  if (t == ReduceType::F32)
    return double(static_cast<const float *>(x)[i]);
  const unsigned short h = static_cast<const unsigned short *>(x)[i];
  return double(t == ReduceType::BF16 ? sc_from_bf16(h) : sc_from_f16(h));
}
SIMT_DEVICE double combine(ReduceKind kind, double a, double v) {
  if (kind != ReduceKind::Max)
    return a + v;
  if (v != v || a != a)
    return v != v ? v : a; // NaN wins
  return v > a ? v : a;
}
SIMT_DEVICE int64_t offsetOf(int64_t n, int rank, const int64_t *shape, const int64_t *stride) {
  int64_t at = 0;
  for (int k = rank - 1; k >= 0; --k) {
    at += (n % shape[k]) * stride[k];
    n /= shape[k];
  }
  return at;
}
} // namespace index_detail

// Output blockIdxX() (one block per output, kIndexThreads threads).
SIMT_DEVICE void reduceRows(const ReduceParams &p) {
  using namespace index_detail;
  SIMT_SHARED(double, partial, kIndexThreads);
  const int64_t out = simt::blockIdxX();
  const int t = simt::threadIdxX();
  const double init = p.kind == ReduceKind::Max ? -__builtin_huge_val() : 0.0;
  const int64_t base = offsetOf(out, p.keptRank, p.keptShape, p.keptStride);
  double acc = init;
  for (int64_t r = t; r < p.count; r += simt::blockDimX())
    acc = combine(p.kind, acc, load(p.x, base + offsetOf(r, p.reducedRank, p.reducedShape, p.reducedStride), p.type));
  partial[t] = acc;
  simt::syncThreads();
  for (int half = kIndexThreads / 2; half > 0; half /= 2) {
    if (t < half)
      partial[t] = combine(p.kind, partial[t], partial[t + half]);
    simt::syncThreads();
  }
  if (t != 0)
    return;
  double v = partial[0];
  if (p.kind == ReduceKind::Mean)
    v = v / double(p.count); // 0/0 = NaN for an empty reduction, as on the CPU
  const float f = float(v);
  if (p.type == ReduceType::F32)
    static_cast<float *>(p.y)[out] = f;
  else
    static_cast<unsigned short *>(p.y)[out] = p.type == ReduceType::BF16 ? sc_to_bf16(f) : sc_to_f16(f);
}

#if !defined(__CUDACC_RTC__)
// ---- Plans (host code): "" or a one-line error. Shapes are dense row-major; strides in
// elements.
namespace index_detail {
inline std::vector<int64_t> denseStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    s[d - 1] = s[d] * shape[d];
  return s;
}
inline std::string fill(StridedCopyParams &p, const std::vector<int64_t> &shape, const std::vector<int64_t> &dst,
                        const std::vector<int64_t> &src, int elemSize) {
  if (shape.size() > size_t(kIndexMaxRank))
    return "rank " + std::to_string(shape.size()) + " exceeds the kernel's " + std::to_string(kIndexMaxRank);
  p.rank = int(shape.size());
  p.elemSize = elemSize;
  p.count = 1;
  for (size_t d = 0; d < shape.size(); ++d) {
    p.shape[d] = shape[d];
    p.dstStride[d] = dst[d];
    p.srcStride[d] = src[d];
    p.count *= shape[d];
  }
  return elemSize == 1 || elemSize == 2 || elemSize == 4 || elemSize == 8
             ? ""
             : "elements of " + std::to_string(elemSize) + " bytes";
}
} // namespace index_detail

// y = x[starts[d] + i * steps[d]] per dim (the CPU slice kernel's bounds are the compiler's).
inline std::string planSlice(const std::vector<int64_t> &xShape, const std::vector<int64_t> &yShape,
                             std::vector<int64_t> starts, std::vector<int64_t> steps, int elemSize,
                             StridedCopyParams &p) {
  const size_t rank = xShape.size();
  if (starts.empty())
    starts.assign(rank, 0);
  if (steps.empty())
    steps.assign(rank, 1);
  if (starts.size() != rank || steps.size() != rank || yShape.size() != rank)
    return "slice: starts, steps and y must have x's rank " + std::to_string(rank);
  const std::vector<int64_t> xs = index_detail::denseStrides(xShape);
  std::vector<int64_t> src(rank);
  p.srcBase = 0;
  for (size_t d = 0; d < rank; ++d) {
    const int64_t last = starts[d] + (yShape[d] - 1) * steps[d];
    if (yShape[d] > 0 && (starts[d] < 0 || starts[d] >= xShape[d] || last < 0 || last >= xShape[d]))
      return "slice: dim " + std::to_string(d) + " reads outside [0, " + std::to_string(xShape[d]) + ")";
    p.srcBase += starts[d] * xs[d];
    src[d] = steps[d] * xs[d];
  }
  p.dstBase = 0;
  return index_detail::fill(p, yShape, index_detail::denseStrides(yShape), src, elemSize);
}

// Part `part` of a concat along `axis` that starts at `offset` of the whole's axis (the same
// plan with src and dst swapped is a split).
inline std::string planConcatPart(const std::vector<int64_t> &wholeShape, const std::vector<int64_t> &partShape,
                                  int64_t axis, int64_t offset, int elemSize, StridedCopyParams &p) {
  if (partShape.size() != wholeShape.size() || axis < 0 || axis >= int64_t(wholeShape.size()))
    return "concat: a part of rank " + std::to_string(partShape.size()) + " in a whole of rank " +
           std::to_string(wholeShape.size());
  const std::vector<int64_t> ws = index_detail::denseStrides(wholeShape);
  p.dstBase = offset * ws[size_t(axis)];
  p.srcBase = 0;
  return index_detail::fill(p, partShape, ws, index_detail::denseStrides(partShape), elemSize);
}

// y = transpose(x, perm) (empty perm: the dims reversed).
inline std::string planTranspose(const std::vector<int64_t> &xShape, std::vector<int64_t> perm, int elemSize,
                                 StridedCopyParams &p) {
  const int64_t rank = int64_t(xShape.size());
  if (perm.empty())
    for (int64_t d = rank; d-- > 0;)
      perm.push_back(d);
  if (int64_t(perm.size()) != rank)
    return "transpose: perm is not a permutation of rank " + std::to_string(rank);
  const std::vector<int64_t> xs = index_detail::denseStrides(xShape);
  std::vector<int64_t> yShape, src;
  std::vector<bool> seen(size_t(rank), false);
  for (int64_t d : perm) {
    if (d < 0 || d >= rank || seen[size_t(d)])
      return "transpose: perm is not a permutation of rank " + std::to_string(rank);
    seen[size_t(d)] = true;
    yShape.push_back(xShape[size_t(d)]);
    src.push_back(xs[size_t(d)]);
  }
  p.dstBase = p.srcBase = 0;
  return index_detail::fill(p, yShape, index_detail::denseStrides(yShape), src, elemSize);
}

// y = x broadcast (numpy rules) to yShape.
inline std::string planExpand(const std::vector<int64_t> &xShape, const std::vector<int64_t> &yShape, int elemSize,
                              StridedCopyParams &p) {
  if (xShape.size() > yShape.size())
    return "expand: x has more dims than y";
  const std::vector<int64_t> xs = index_detail::denseStrides(xShape);
  std::vector<int64_t> src(yShape.size(), 0);
  const size_t lead = yShape.size() - xShape.size();
  for (size_t d = 0; d < xShape.size(); ++d) {
    if (xShape[d] != yShape[lead + d] && xShape[d] != 1)
      return "expand: x does not broadcast to y";
    src[lead + d] = xShape[d] == 1 ? 0 : xs[d];
  }
  p.dstBase = p.srcBase = 0;
  return index_detail::fill(p, yShape, index_detail::denseStrides(yShape), src, elemSize);
}

// reduce over `axes` of x (empty: all), as the CPU kernels: y has x's rank with reduced dims 1
// (keepdims) or without them; only the element count of y is checked here.
inline std::string planReduce(const std::vector<int64_t> &xShape, const std::vector<int64_t> &axes, int64_t yCount,
                              ReduceParams &p) {
  const int64_t rank = int64_t(xShape.size());
  if (rank > kIndexMaxRank)
    return "reduce: rank " + std::to_string(rank) + " exceeds the kernel's " + std::to_string(kIndexMaxRank);
  std::vector<bool> reduced(size_t(rank), axes.empty());
  for (int64_t a : axes) {
    const int64_t d = a < 0 ? a + rank : a;
    if (d < 0 || d >= rank || reduced[size_t(d)])
      return "reduce: axis " + std::to_string(a) + " out of range or listed twice";
    reduced[size_t(d)] = true;
  }
  const std::vector<int64_t> xs = index_detail::denseStrides(xShape);
  p.keptRank = p.reducedRank = 0;
  p.outputs = p.count = 1;
  for (int64_t d = 0; d < rank; ++d) {
    if (reduced[size_t(d)]) {
      p.reducedShape[p.reducedRank] = xShape[size_t(d)];
      p.reducedStride[p.reducedRank++] = xs[size_t(d)];
      p.count *= xShape[size_t(d)];
    } else {
      p.keptShape[p.keptRank] = xShape[size_t(d)];
      p.keptStride[p.keptRank++] = xs[size_t(d)];
      p.outputs *= xShape[size_t(d)];
    }
  }
  return p.outputs == yCount ? "" : "reduce: y has " + std::to_string(yCount) + " elements, not " +
                                        std::to_string(p.outputs);
}
#endif

} // namespace shardc::kernels
