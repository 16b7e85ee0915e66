// Row-major single-precision GEMM, safe for empty dims (BLAS rejects lda < 1 and leaves C
// untouched when K is 0, where the math says C = beta * C). OpenBLAS's cblas_sgemm where the
// build found it (SHARDC_HAVE_CBLAS), otherwise the cache-blocked loop below.
#pragma once

#include <cstdint>

namespace shardc::rt::cpu {

// C[M,N] = alpha * op(A) op(B) + beta * C, op = transpose when the flag is set; A is [M,K]
// (or [K,M]) with leading dimension lda, likewise B and C.
void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// The same contract without BLAS: panels of op(A) and op(B) packed contiguous, a 4-row
// register-blocked inner kernel, one thread. Built in every configuration (the fallback of
// builds without OpenBLAS, and unit-tested against references everywhere).
void sgemmBlocked(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc);

// "OpenBLAS" or "blocked fallback": what sgemm runs on in this build.
const char *sgemmImplementation();

} // namespace shardc::rt::cpu
