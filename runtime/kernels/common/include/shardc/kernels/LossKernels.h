// The vocabulary-parallel loss (sc.token_loss_stats, its gradient sc.token_loss_stats_grad and
// sc.token_loss_combine) as SIMT kernels, one source for the CUDA backend (nvcc,
// runtime/backends/cuda/SharedKernels.cu) and the CPU backend (runtime/kernels/cpu/LossStats.cpp
// runs them in a loop). Logits of any float dtype are widened element by element; the row
// statistics are f32 (f64 for f64 logits) and accumulate in double. One thread per row
// (stats, combine) or per logit (the gradient).
#pragma once

#include "shardc/kernels/SelectKernels.h"

namespace shardc::kernels {

constexpr int64_t kLossIgnoreIndex = -100; // Hugging Face's ignore index

struct TokenLossStatsParams {
  const void *logits = nullptr; // [rows, vocab], a slice of the vocabulary from vocabStart
  AnyType type = AnyType::F32;
  const int64_t *labels = nullptr; // [rows]
  const void *max = nullptr;       // [rows], the logits' type
  void *sumexp = nullptr, *picked = nullptr; // [rows], f32 (f64 for f64 logits)
  void *dlogits = nullptr;                   // the gradient: [rows, vocab], the logits' type
  const void *dsumexp = nullptr, *dpicked = nullptr;
  const int64_t *vocabStart = nullptr; // one i64 (device memory on CUDA); null: 0
  int64_t rows = 0, vocab = 0;
};

namespace loss_detail {
using select_detail::loadFloat;
SIMT_DEVICE AnyType rowType(AnyType logits) { return logits == AnyType::F64 ? AnyType::F64 : AnyType::F32; }
SIMT_DEVICE void storeFloat(void *p, int64_t i, AnyType t, double v) {
  switch (t) {
  case AnyType::F32: static_cast<float *>(p)[i] = float(v); break;
  case AnyType::F64: static_cast<double *>(p)[i] = v; break;
  case AnyType::BF16: static_cast<unsigned short *>(p)[i] = sc_to_bf16(float(v)); break;
  default: static_cast<unsigned short *>(p)[i] = sc_to_f16(float(v)); break;
  }
}
// x − max in the logits' precision (f32 for the 16-bit types), then widened: the difference
// sc.token_loss's kernel takes.
SIMT_DEVICE double shifted(double x, double max, AnyType t) {
  return t == AnyType::F64 ? x - max : double(float(x) - float(max));
}
} // namespace loss_detail

SIMT_DEVICE void tokenLossStatsRow(const TokenLossStatsParams &p, int64_t r) {
  using namespace loss_detail;
  const double m = loadFloat(p.max, r, p.type);
  double sum = 0.0;
  for (int64_t j = 0; j < p.vocab; ++j)
    sum += sc_exp(shifted(loadFloat(p.logits, r * p.vocab + j, p.type), m, p.type));
  const int64_t local = p.labels[r] - (p.vocabStart ? *p.vocabStart : 0);
  const bool here = p.labels[r] != kLossIgnoreIndex && local >= 0 && local < p.vocab;
  const AnyType rt = rowType(p.type);
  storeFloat(p.sumexp, r, rt, sum);
  storeFloat(p.picked, r, rt, here ? loadFloat(p.logits, r * p.vocab + local, p.type) : 0.0);
}
SIMT_DEVICE void tokenLossStatsRows(const TokenLossStatsParams &p) {
  const int64_t r = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (r < p.rows)
    tokenLossStatsRow(p, r);
}

// dlogits = dsumexp · exp(x − max) + dpicked · [v + vocabStart == label].
SIMT_DEVICE void tokenLossStatsGradAt(const TokenLossStatsParams &p, int64_t i) {
  using namespace loss_detail;
  const int64_t r = i / p.vocab, v = i % p.vocab;
  const AnyType rt = rowType(p.type);
  double g = loadFloat(p.dsumexp, r, rt) *
             sc_exp(shifted(loadFloat(p.logits, i, p.type), loadFloat(p.max, r, p.type), p.type));
  if (v + (p.vocabStart ? *p.vocabStart : 0) == p.labels[r])
    g += loadFloat(p.dpicked, r, rt);
  storeFloat(p.dlogits, i, p.type, g);
}
SIMT_DEVICE void tokenLossStatsGradElements(const TokenLossStatsParams &p) {
  const int64_t i = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (i < p.rows * p.vocab)
    tokenLossStatsGradAt(p, i);
}

// sum = Σ_{label ≠ −100} log(sumexp) + max − picked, count = the number of those rows; one
// thread adds the rows in order (they are B·S, few), so every backend sums alike.
struct TokenLossCombineParams {
  const void *sumexp = nullptr, *picked = nullptr, *max = nullptr;
  AnyType rowType = AnyType::F32, maxType = AnyType::F32;
  const int64_t *labels = nullptr;
  void *sum = nullptr, *count = nullptr; // scalars of rowType
  int64_t rows = 0;
};
SIMT_DEVICE void tokenLossCombine(const TokenLossCombineParams &p) {
  using namespace loss_detail;
  double sum = 0.0, count = 0.0;
  for (int64_t r = 0; r < p.rows; ++r) {
    if (p.labels[r] == kLossIgnoreIndex)
      continue;
    sum += sc_log(loadFloat(p.sumexp, r, p.rowType)) + loadFloat(p.max, r, p.maxType) - loadFloat(p.picked, r, p.rowType);
    count += 1.0;
  }
  storeFloat(p.sum, 0, p.rowType, sum);
  storeFloat(p.count, 0, p.rowType, count);
}
SIMT_DEVICE void tokenLossCombineThread(const TokenLossCombineParams &p) {
  if (simt::blockIdxX() == 0 && simt::threadIdxX() == 0)
    tokenLossCombine(p);
}

} // namespace shardc::kernels
