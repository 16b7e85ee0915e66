// The CPU's pieces of the MoE sequences of MoeKernels.h (runMoeExpertGroups): an expert GEMM
// through sgemm and the GLU as a loop of moeGluElement. Moe.cpp and MoeEp.cpp share them.
#pragma once

#include "Sgemm.h"

#include "shardc/kernels/MoeKernels.h"

#include <string>

namespace shardc::rt::cpu {

// C [M, N] = A [M, K] · B^T, B stored [N, K], packed row-major.
inline std::string cpuExpertGemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
  sgemm(false, true, M, N, K, 1.0f, A, K, B, K, 0.0f, C, N);
  return "";
}

// p's GLU over its first `rows` rows.
inline std::string cpuGlu(const kernels::MoeGluParams &p, int64_t rows) {
  for (int64_t n = 0; n < rows * p.I; ++n)
    kernels::moeGluElement(p, n);
  return "";
}

} // namespace shardc::rt::cpu
