// Naive row-major GEMM references for the cuBLASLt GEMM tests (GemmPlanTest on the CPU,
// CublasLtGemmGpuTest on a GPU), in double, with the shared activation formula.
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/GemmPlan.h"

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace gemmref {

using shardc::kernels::GemmEpilogue;
using shardc::kernels::GemmProblem;

inline std::vector<double> randomValues(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  std::vector<double> v(n);
  for (double &x : v)
    x = dist(rng);
  return v;
}

inline double applyEpilogue(GemmEpilogue e, double v, double bias) {
  if (e == GemmEpilogue::None)
    return v;
  v += bias;
  return e == GemmEpilogue::GeluTanhBias ? sc_op_gelu_tanh(v) : v;
}

// D = epilogue(alpha · op(A) · op(B) + beta · C) over the problem's row-major storage, element
// offsets added to A, B and C/D (a matmul launch). C is read only when beta != 0; D's elements
// outside the matrices are left as they are.
inline void rowMajorGemm(const GemmProblem &p, const std::vector<double> &A, const std::vector<double> &B,
                         const std::vector<double> &bias, std::vector<double> &D, int64_t offA = 0,
                         int64_t offB = 0, int64_t offC = 0, const std::vector<double> *C = nullptr) {
  const int64_t lda = p.lda ? p.lda : (p.transposeA ? p.M : p.K);
  const int64_t ldb = p.ldb ? p.ldb : (p.transposeB ? p.K : p.N);
  const int64_t ldc = p.ldc ? p.ldc : p.N;
  const std::vector<double> &Cin = C ? *C : D;
  for (int64_t b = 0; b < p.batch; ++b)
    for (int64_t i = 0; i < p.M; ++i)
      for (int64_t j = 0; j < p.N; ++j) {
        double s = 0;
        for (int64_t l = 0; l < p.K; ++l) {
          const double a = A.at(offA + b * p.strideA + (p.transposeA ? l * lda + i : i * lda + l));
          const double w = B.at(offB + b * p.strideB + (p.transposeB ? j * ldb + l : l * ldb + j));
          s += a * w;
        }
        const int64_t at = offC + b * p.strideC + i * ldc + j;
        double v = p.alpha * s;
        if (p.beta != 0)
          v += p.beta * Cin.at(at);
        D.at(at) = applyEpilogue(p.epilogue, v, p.epilogue == GemmEpilogue::None ? 0.0 : bias.at(j));
      }
}

// The runtime's linear on tensors: y[r, n] = Σ_k x[r, k] · (W[n, k] or W[k, n]) (+ bias[n]).
inline std::vector<double> linearReference(const std::vector<double> &x, const std::vector<double> &w,
                                           const std::vector<double> &bias, int64_t rows, int64_t N, int64_t K,
                                           bool transposeWeight, GemmEpilogue epilogue) {
  std::vector<double> y(static_cast<size_t>(rows * N));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t n = 0; n < N; ++n) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += x[r * K + k] * (transposeWeight ? w[n * K + k] : w[k * N + n]);
      y[r * N + n] = applyEpilogue(epilogue, s, epilogue == GemmEpilogue::None ? 0.0 : bias[n]);
    }
  return y;
}

// The runtime's matmul on tensors (ONNX MatMul), indexing each output batch element back into
// A and B numpy-style. Returns y, shaped as `outShape`.
inline std::vector<double> matmulReference(const std::vector<double> &A, const std::vector<int64_t> &aShape,
                                           const std::vector<double> &B, const std::vector<int64_t> &bShape,
                                           std::vector<int64_t> &outShape) {
  std::vector<int64_t> a = aShape, b = bShape;
  const bool promoteA = a.size() == 1, promoteB = b.size() == 1;
  if (promoteA)
    a.insert(a.begin(), 1);
  if (promoteB)
    b.push_back(1);
  const int64_t M = a[a.size() - 2], K = a.back(), N = b.back();
  const size_t rank = std::max(a.size(), b.size()) - 2;
  std::vector<int64_t> ba(rank, 1), bb(rank, 1), batch(rank);
  std::copy(a.begin(), a.end() - 2, ba.end() - (a.size() - 2));
  std::copy(b.begin(), b.end() - 2, bb.end() - (b.size() - 2));
  int64_t total = 1;
  for (size_t i = 0; i < rank; ++i)
    total *= (batch[i] = ba[i] == 1 ? bb[i] : ba[i]);
  outShape = batch;
  if (!promoteA)
    outShape.push_back(M);
  if (!promoteB)
    outShape.push_back(N);
  std::vector<double> y(static_cast<size_t>(total * M * N));
  for (int64_t t = 0; t < total; ++t) {
    int64_t ia = 0, ib = 0, rest = t;
    std::vector<int64_t> idx(rank);
    for (size_t i = rank; i-- > 0;) {
      idx[i] = rest % batch[i];
      rest /= batch[i];
    }
    for (size_t i = 0; i < rank; ++i) {
      ia = ia * ba[i] + (ba[i] == 1 ? 0 : idx[i]);
      ib = ib * bb[i] + (bb[i] == 1 ? 0 : idx[i]);
    }
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        double s = 0;
        for (int64_t l = 0; l < K; ++l)
          s += A[ia * M * K + i * K + l] * B[ib * K * N + l * N + j];
        y[t * M * N + i * N + j] = s;
      }
  }
  return y;
}

} // namespace gemmref
