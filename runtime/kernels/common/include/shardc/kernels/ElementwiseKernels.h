// The library steps that generated kernels normally absorb (what `shardc compile --no-fuse`
// leaves as steps): elementwise formulas, rotary, rms_norm and layer_norm, as SIMT kernels, one
// source for the CUDA backend (nvcc, runtime/backends/cuda/SharedKernels.cu) and the CPU tests
// (the Simt.h emulator, against the CPU backend's kernels).
//
//   formulaElements: y = sc_op_<formula>(a[, b]) (FusedPrelude.h's SC_ELEMENTWISE_FORMULAS,
//     the rows every backend computes; also pow and silu_mul), operands broadcast to y (numpy
//     rules), one element per thread, in f32 (16-bit values loaded into f32, y rounded once),
//     as the CPU kernels.
//   rotaryElements: y = x·cos + rotate_half(x)·sin, cos/sin broadcast to x, in f32.
//   softmaxRows: softmax or log_softmax along one axis, one block per row (the max-subtracted
//     exponentials summed in double), in f32 as the CPU kernel.
//   normRows: rms_norm or layer_norm over the trailing dims, one block per row, the row's
//     statistics summed in double (a tree over the block's threads), scale and bias broadcast
//     to the normalised dims; layer_norm's optional mean and inverse-std outputs.
// Each operand has its own dtype (f32, bf16 or f16).
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/IndexKernels.h"
#include "shardc/kernels/Simt.h"

#include <cstdint>

namespace shardc::kernels {

enum class ElemType : int { F32, BF16, F16 };

// The rows of SC_ELEMENTWISE_FORMULAS, numbered.
#define SC_SIMT_FORMULA_ID(name, ...) name,
enum class FormulaId : int { SC_ELEMENTWISE_FORMULAS(SC_SIMT_FORMULA_ID) Count };
#undef SC_SIMT_FORMULA_ID

struct ElemOperand {
  const void *data = nullptr;
  ElemType type = ElemType::F32;
  int64_t stride[kIndexMaxRank] = {}; // element strides broadcast over the output's shape
};

struct ElementwiseParams {
  ElemOperand in[3];
  int inputs = 0;
  void *y = nullptr;
  ElemType yType = ElemType::F32;
  int64_t count = 0; // output elements
  int rank = 0;
  int64_t shape[kIndexMaxRank] = {};
  FormulaId formula = FormulaId::add;
  int siluMul = 0; // silu_mul: y = sc_op_mul(sc_op_silu(a), b), the formula ignored
};

namespace elementwise_detail {
SIMT_DEVICE float load(const void *p, int64_t i, ElemType t) {
  if (t == ElemType::F32)
    return static_cast<const float *>(p)[i];
  const unsigned short h = static_cast<const unsigned short *>(p)[i];
  return t == ElemType::BF16 ? sc_from_bf16(h) : sc_from_f16(h);
}
SIMT_DEVICE void store(void *p, int64_t i, ElemType t, float f) {
  if (t == ElemType::F32)
    static_cast<float *>(p)[i] = f;
  else
    static_cast<unsigned short *>(p)[i] = t == ElemType::BF16 ? sc_to_bf16(f) : sc_to_f16(f);
}
// The offset of output element n in operand `o`, and (out) n's last coordinate.
SIMT_DEVICE int64_t offset(const ElementwiseParams &p, const ElemOperand &o, int64_t n) {
  int64_t at = 0;
  for (int k = p.rank - 1; k >= 0; --k) {
    at += (n % p.shape[k]) * o.stride[k];
    n /= p.shape[k];
  }
  return at;
}
#define SC_SIMT_FORMULA_ARGS_1 a
#define SC_SIMT_FORMULA_ARGS_2 a, b
#define SC_SIMT_FORMULA_CASE(name, arity, ...)                                                    \
  case FormulaId::name:                                                                            \
    return sc_op_##name<float>(SC_SIMT_FORMULA_ARGS_##arity);
SIMT_DEVICE float apply(FormulaId id, float a, float b) {
  switch (id) {
    SC_ELEMENTWISE_FORMULAS(SC_SIMT_FORMULA_CASE)
  default: break;
  }
  (void)b;
  return a;
}
#undef SC_SIMT_FORMULA_CASE
#undef SC_SIMT_FORMULA_ARGS_1
#undef SC_SIMT_FORMULA_ARGS_2
} // namespace elementwise_detail

SIMT_DEVICE void formulaElements(const ElementwiseParams &p) {
  using namespace elementwise_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  const float a = load(p.in[0].data, offset(p, p.in[0], n), p.in[0].type);
  const float b = p.inputs > 1 ? load(p.in[1].data, offset(p, p.in[1], n), p.in[1].type) : 0.0f;
  store(p.y, n, p.yType, p.siluMul ? sc_op_mul(sc_op_silu(a), b) : apply(p.formula, a, b));
}

// in[0] = x (dense, of the output's shape), in[1] = cos, in[2] = sin.
SIMT_DEVICE void rotaryElements(const ElementwiseParams &p) {
  using namespace elementwise_detail;
  const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (n >= p.count)
    return;
  const int64_t D = p.shape[p.rank - 1], half = D / 2, d = n % D;
  const float c = load(p.in[1].data, offset(p, p.in[1], n), p.in[1].type);
  const float s = load(p.in[2].data, offset(p, p.in[2], n), p.in[2].type);
  const float lo = load(p.in[0].data, d < half ? n : n - half, p.in[0].type);
  const float hi = load(p.in[0].data, d < half ? n + half : n, p.in[0].type);
  store(p.y, n, p.yType, d < half ? lo * c - hi * s : hi * c + lo * s);
}

struct NormParams {
  ElemOperand x, scale, bias; // scale/bias strides over the normalised dims (normRank of them)
  void *y = nullptr;
  ElemType yType = ElemType::F32;
  float *mean = nullptr, *invStd = nullptr; // layer_norm's optional statistics
  int64_t rows = 0, inner = 0;
  int normRank = 0;
  int64_t normShape[kIndexMaxRank] = {};
  double epsilon = 1e-5;
  int layer = 0; // 0 rms_norm, 1 layer_norm (with a bias when bias.data)
};

namespace elementwise_detail {
SIMT_DEVICE double rowSum(double v) {
  SIMT_SHARED(double, part, kIndexThreads);
  const int t = simt::threadIdxX();
  part[t] = v;
  simt::syncThreads();
  for (int half = kIndexThreads / 2; half > 0; half /= 2) {
    if (t < half)
      part[t] += part[t + half];
    simt::syncThreads();
  }
  const double out = part[0];
  simt::syncThreads();
  return out;
}
SIMT_DEVICE int64_t paramAt(const NormParams &p, const ElemOperand &o, int64_t i) {
  int64_t at = 0;
  for (int k = p.normRank - 1; k >= 0; --k) {
    at += (i % p.normShape[k]) * o.stride[k];
    i /= p.normShape[k];
  }
  return at;
}
} // namespace elementwise_detail

// Row blockIdxX(), kIndexThreads threads.
SIMT_DEVICE void normRows(const NormParams &p) {
  using namespace elementwise_detail;
  const int64_t r = simt::blockIdxX(), base = r * p.inner;
  const int t = simt::threadIdxX(), n = simt::blockDimX();
  float m = 0.0f, inv = 0.0f;
  if (p.layer) {
    double sum = 0.0;
    for (int64_t i = t; i < p.inner; i += n)
      sum += double(load(p.x.data, base + i, p.x.type));
    const double mean = rowSum(sum) / double(p.inner);
    double squares = 0.0; // two passes, as the CPU: no cancellation from E[x²] - E[x]²
    for (int64_t i = t; i < p.inner; i += n) {
      const double e = double(load(p.x.data, base + i, p.x.type)) - mean;
      squares += e * e;
    }
    const double invStd = 1.0 / sc_sqrt(rowSum(squares) / double(p.inner) + p.epsilon);
    m = float(mean);
    inv = float(invStd);
    if (t == 0 && p.mean)
      p.mean[r] = m;
    if (t == 0 && p.invStd)
      p.invStd[r] = inv;
  } else {
    double squares = 0.0;
    for (int64_t i = t; i < p.inner; i += n) {
      const float v = load(p.x.data, base + i, p.x.type);
      squares += double(v) * v;
    }
    inv = float(1.0 / sc_sqrt(rowSum(squares) / double(p.inner) + p.epsilon));
  }
  for (int64_t i = t; i < p.inner; i += n) {
    const float v = load(p.x.data, base + i, p.x.type);
    const float s = load(p.scale.data, paramAt(p, p.scale, i), p.scale.type);
    float out;
    if (p.layer)
      out = (v - m) * inv * s + (p.bias.data ? load(p.bias.data, paramAt(p, p.bias, i), p.bias.type) : 0.0f);
    else
      out = v * inv * s;
    store(p.y, base + i, p.yType, out);
  }
}

struct SoftmaxParams {
  ElemOperand x;
  void *y = nullptr;
  ElemType yType = ElemType::F32;
  int64_t outer = 0, n = 0, inner = 0; // x as [outer, n, inner], the axis in the middle
  int logarithm = 0;
};

namespace elementwise_detail {
SIMT_DEVICE float rowMax(float v) {
  SIMT_SHARED(float, part, kIndexThreads);
  const int t = simt::threadIdxX();
  part[t] = v;
  simt::syncThreads();
  for (int half = kIndexThreads / 2; half > 0; half /= 2) {
    if (t < half && part[t + half] > part[t]) // NaNs never win, as std::max on the CPU
      part[t] = part[t + half];
    simt::syncThreads();
  }
  const float out = part[0];
  simt::syncThreads();
  return out;
}
} // namespace elementwise_detail

// Row blockIdxX() of outer * inner rows, kIndexThreads threads.
SIMT_DEVICE void softmaxRows(const SoftmaxParams &p) {
  using namespace elementwise_detail;
  const int64_t r = simt::blockIdxX(), base = (r / p.inner) * p.n * p.inner + r % p.inner;
  const int t = simt::threadIdxX(), threads = simt::blockDimX();
  float localMax = -__builtin_huge_valf();
  for (int64_t j = t; j < p.n; j += threads) {
    const float v = load(p.x.data, base + j * p.inner, p.x.type);
    localMax = v > localMax ? v : localMax;
  }
  const float maxValue = rowMax(localMax);
  double sum = 0.0;
  for (int64_t j = t; j < p.n; j += threads)
    sum += sc_exp(load(p.x.data, base + j * p.inner, p.x.type) - maxValue);
  sum = rowSum(sum);
  const float logSum = float(sc_log(sum)), inv = float(1.0 / sum);
  for (int64_t j = t; j < p.n; j += threads) {
    const float v = load(p.x.data, base + j * p.inner, p.x.type);
    store(p.y, base + j * p.inner, p.yType, p.logarithm ? (v - maxValue) - logSum : sc_exp(v - maxValue) * inv);
  }
}

#if !defined(__CUDACC_RTC__)
// ---- Plans (host code): "" or a one-line error.
namespace elementwise_detail {
// Strides of a tensor of `shape` broadcast (numpy rules) over `to`.
inline std::string broadcast(const std::vector<int64_t> &shape, const std::vector<int64_t> &to, int64_t *stride) {
  if (shape.size() > to.size())
    return "an operand of rank " + std::to_string(shape.size()) + " does not broadcast to rank " +
           std::to_string(to.size());
  const std::vector<int64_t> dense = index_detail::denseStrides(shape);
  const size_t lead = to.size() - shape.size();
  for (size_t d = 0; d < to.size(); ++d)
    stride[d] = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] != to[lead + d] && shape[d] != 1)
      return "an operand does not broadcast to the output";
    stride[lead + d] = shape[d] == 1 ? 0 : dense[d];
  }
  return "";
}
} // namespace elementwise_detail

// The output's shape and the inputs' shapes (their data and types are the caller's to set).
inline std::string planElementwise(const std::vector<int64_t> &yShape, const std::vector<std::vector<int64_t>> &inShapes,
                                   ElementwiseParams &p) {
  if (yShape.size() > size_t(kIndexMaxRank) || inShapes.size() > 3)
    return "rank " + std::to_string(yShape.size()) + " or " + std::to_string(inShapes.size()) +
           " inputs exceed the kernel's";
  p.rank = int(yShape.size());
  p.inputs = int(inShapes.size());
  p.count = 1;
  for (size_t d = 0; d < yShape.size(); ++d) {
    p.shape[d] = yShape[d];
    p.count *= yShape[d];
  }
  for (size_t i = 0; i < inShapes.size(); ++i)
    if (std::string err = elementwise_detail::broadcast(inShapes[i], yShape, p.in[i].stride); !err.empty())
      return err;
  return "";
}

// The row of SC_ELEMENTWISE_FORMULAS named `name` and its arity, or false.
inline bool findFormula(const std::string &name, FormulaId &id, int &arity) {
#define SC_SIMT_FORMULA_FIND(row, rowArity, ...)                                                  \
  if (name == #row) {                                                                              \
    id = FormulaId::row;                                                                           \
    arity = rowArity;                                                                              \
    return true;                                                                                   \
  }
  SC_ELEMENTWISE_FORMULAS(SC_SIMT_FORMULA_FIND)
#undef SC_SIMT_FORMULA_FIND
  return false;
}

// x's shape, the normalised dims from `axis` on, scale's and bias's shapes (bias empty: none).
inline std::string planNorm(const std::vector<int64_t> &xShape, int64_t axis, const std::vector<int64_t> &scaleShape,
                            const std::vector<int64_t> *biasShape, NormParams &p) {
  const int64_t rank = int64_t(xShape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return "axis out of range for rank " + std::to_string(rank);
  const std::vector<int64_t> normalized(xShape.begin() + axis, xShape.end());
  if (normalized.size() > size_t(kIndexMaxRank))
    return "more normalised dims than the kernel's " + std::to_string(kIndexMaxRank);
  p.normRank = int(normalized.size());
  p.rows = p.inner = 1;
  for (int64_t d = 0; d < rank; ++d)
    (d < axis ? p.rows : p.inner) *= xShape[size_t(d)];
  for (size_t d = 0; d < normalized.size(); ++d)
    p.normShape[d] = normalized[d];
  if (std::string err = elementwise_detail::broadcast(scaleShape, normalized, p.scale.stride); !err.empty())
    return "scale: " + err;
  if (biasShape)
    if (std::string err = elementwise_detail::broadcast(*biasShape, normalized, p.bias.stride); !err.empty())
      return "bias: " + err;
  return "";
}

// x's shape and the softmax axis (negative counts from the end).
inline std::string planSoftmax(const std::vector<int64_t> &xShape, int64_t axis, SoftmaxParams &p) {
  const int64_t rank = int64_t(xShape.size());
  if (axis < 0)
    axis += rank;
  if (axis < 0 || axis >= rank)
    return "axis out of range for rank " + std::to_string(rank);
  p.outer = p.inner = 1;
  p.n = xShape[size_t(axis)];
  for (int64_t d = 0; d < rank; ++d)
    if (d != axis)
      (d < axis ? p.outer : p.inner) *= xShape[size_t(d)];
  return "";
}
#endif

} // namespace shardc::kernels
