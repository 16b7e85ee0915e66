// Row-major single-precision GEMM over cblas, safe for empty dims (BLAS rejects lda < 1 and
// leaves C untouched when K is 0, where the math says C = beta * C).
#pragma once

#include <cstdint>

namespace shardc::rt::cpu {

// C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set; A is [M,K]
// (or [K,M]) with leading dimension lda, likewise B and C.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

} // namespace shardc::rt::cpu
