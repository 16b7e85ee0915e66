// The only file that includes cblas.h, so the BLAS vendor (OpenBLAS today) stays a
// one-file concern of the CPU backend. Dims pass as int, which every cblas.h accepts.
// Without OpenBLAS (SHARDC_HAVE_CBLAS unset: -DSHARDC_MINIMAL_DEPS=ON or no libopenblas),
// sgemm runs sgemmBlocked, a cache-blocked loop of this file.
#include "Sgemm.h"

#ifdef SHARDC_HAVE_CBLAS
#include <cblas.h>
#endif

#include <algorithm>
#include <vector>

namespace shardc::rt::cpu {

namespace {

// C = beta * C, with beta == 0 writing zeros (BLAS semantics: NaNs in C do not survive).
void scaleC(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  if (beta == 1.0f)
    return;
  for (int64_t i = 0; i < M; ++i) {
    float *c = C + i * ldc;
    for (int64_t j = 0; j < N; ++j)
      c[j] = beta == 0.0f ? 0.0f : beta * c[j];
  }
}

// Block sizes: a kc x nc panel of op(B) (256 x 512 floats = 512 KiB, the L2) is swept by
// mc x kc panels of op(A) (64 x 256 floats = 64 KiB); four rows of C (2 KiB each) stay in
// L1 while one row of the B panel streams past them.
constexpr int64_t kMc = 64, kKc = 256, kNc = 512;

// Packs op(A)[i0:i0+mc, p0:p0+kc] row-major into `a`, scaled by alpha.
void packA(bool transA, const float *A, int64_t lda, int64_t i0, int64_t p0, int64_t mc,
           int64_t kc, float alpha, float *a) {
  for (int64_t i = 0; i < mc; ++i)
    for (int64_t p = 0; p < kc; ++p)
      a[i * kc + p] = alpha * (transA ? A[(p0 + p) * lda + i0 + i] : A[(i0 + i) * lda + p0 + p]);
}

// Packs op(B)[p0:p0+kc, j0:j0+nc] row-major into `b`.
void packB(bool transB, const float *B, int64_t ldb, int64_t p0, int64_t j0, int64_t kc,
           int64_t nc, float *b) {
  if (!transB) {
    for (int64_t p = 0; p < kc; ++p)
      std::copy(B + (p0 + p) * ldb + j0, B + (p0 + p) * ldb + j0 + nc, b + p * nc);
    return;
  }
  // op(B)[p, j] = B[j, p]: rows of B become columns of the panel, in tiles of 8 columns
  // so that the reads of B stay within a few cache lines.
  for (int64_t j = 0; j < nc; j += 8) {
    int64_t jn = std::min<int64_t>(8, nc - j);
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t jj = 0; jj < jn; ++jj)
        b[p * nc + j + jj] = B[(j0 + j + jj) * ldb + p0 + p];
  }
}

// C[0:mc, 0:nc] += a (mc x kc) * b (kc x nc): four rows of C at a time, each B row loaded once
// for the four (the inner j loops vectorize).
void kernel(int64_t mc, int64_t nc, int64_t kc, const float *a, const float *b, float *C,
            int64_t ldc) {
  int64_t i = 0;
  for (; i + 4 <= mc; i += 4) {
    float *__restrict c0 = C + i * ldc, *__restrict c1 = c0 + ldc, *__restrict c2 = c1 + ldc,
                      *__restrict c3 = c2 + ldc;
    const float *a0 = a + i * kc, *a1 = a0 + kc, *a2 = a1 + kc, *a3 = a2 + kc;
    for (int64_t p = 0; p < kc; ++p) {
      const float *__restrict bp = b + p * nc;
      float x0 = a0[p], x1 = a1[p], x2 = a2[p], x3 = a3[p];
      for (int64_t j = 0; j < nc; ++j) {
        float v = bp[j];
        c0[j] += x0 * v;
        c1[j] += x1 * v;
        c2[j] += x2 * v;
        c3[j] += x3 * v;
      }
    }
  }
  for (; i < mc; ++i) {
    float *__restrict c = C + i * ldc;
    const float *ai = a + i * kc;
    for (int64_t p = 0; p < kc; ++p) {
      const float *__restrict bp = b + p * nc;
      float x = ai[p];
      for (int64_t j = 0; j < nc; ++j)
        c[j] += x * bp[j];
    }
  }
}

} // namespace

void sgemmBlocked(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha,
                  const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C,
                  int64_t ldc) {
  if (M <= 0 || N <= 0)
    return;
  scaleC(M, N, beta, C, ldc);
  if (K <= 0 || alpha == 0.0f)
    return;
  // Per thread: the rank threads of shardc-run call this side by side.
  thread_local std::vector<float> aPanel, bPanel;
  aPanel.resize(static_cast<size_t>(kMc * std::min(K, kKc)));
  bPanel.resize(static_cast<size_t>(std::min(K, kKc) * std::min(N, kNc)));
  for (int64_t j0 = 0; j0 < N; j0 += kNc) {
    int64_t nc = std::min(kNc, N - j0);
    for (int64_t p0 = 0; p0 < K; p0 += kKc) {
      int64_t kc = std::min(kKc, K - p0);
      packB(transB, B, ldb, p0, j0, kc, nc, bPanel.data());
      for (int64_t i0 = 0; i0 < M; i0 += kMc) {
        int64_t mc = std::min(kMc, M - i0);
        packA(transA, A, lda, i0, p0, mc, kc, alpha, aPanel.data());
        kernel(mc, nc, kc, aPanel.data(), bPanel.data(), C + i0 * ldc + j0, ldc);
      }
    }
  }
}

void sgemm(bool transA, bool transB, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
           int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
#ifdef SHARDC_HAVE_CBLAS
  if (M <= 0 || N <= 0)
    return;
  if (K <= 0) {
    scaleC(M, N, beta, C, ldc);
    return;
  }
  cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
              static_cast<int>(M), static_cast<int>(N), static_cast<int>(K), alpha, A,
              static_cast<int>(std::max<int64_t>(lda, 1)), B,
              static_cast<int>(std::max<int64_t>(ldb, 1)), beta, C,
              static_cast<int>(std::max<int64_t>(ldc, 1)));
#else
  sgemmBlocked(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

const char *sgemmImplementation() {
#ifdef SHARDC_HAVE_CBLAS
  return "OpenBLAS";
#else
  return "blocked fallback";
#endif
}

} // namespace shardc::rt::cpu
