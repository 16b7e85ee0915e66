// The only file that includes cblas.h, so the BLAS vendor (OpenBLAS today) stays a
// one-file concern of the CPU backend. Dims pass as int, which every cblas.h accepts.
#include "Sgemm.h"

#include <cblas.h>

#include <algorithm>

namespace shardc::rt::cpu {

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (M <= 0 || N <= 0)
    return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j)
        C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(std::max<int64_t>(lda, 1)), B,
              static_cast<int>(std::max<int64_t>(ldb, 1)), beta, C,
              static_cast<int>(std::max<int64_t>(ldc, 1)));
}

} // namespace shardc::rt::cpu
