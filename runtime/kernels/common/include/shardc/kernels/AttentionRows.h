// Attention for training as straightforward SIMT kernels, one source for the CUDA backend
// (nvcc, runtime/backends/cuda/SharedKernels.cu) and the CPU tests (the Simt.h emulator,
// against the CPU backend's attention and attention_grad).
//
//   attentionRowsForward: y and lse [B, Hq, S] (f32: the log-sum-exp of the row's scaled,
//     masked, causal scores; -inf for a row with nothing to attend to), one block per query
//     row, its scores in shared memory.
//   attentionRowsGradQ: dq, one block per query row: the probabilities recomputed from lse,
//     ds_j = p_j (dout·v_j - dout·o), dq = scale Σ_j ds_j k_j.
//   attentionRowsGradKV: dk and dv, one block per key row of a kv head: over the query heads
//     that read it and every query row, p_i and ds_i again, dv = Σ p_i dout_i,
//     dk = scale Σ ds_i q_i.
// Shapes as the CPU kernels: q [B, Hq, S, D], k [B, Hkv, T, D], v and o/y [.., Dv]; GQA (query
// head h reads kv head h / (Hq / Hkv)); causal is upper-left aligned (query i sees keys
// j <= i); an optional mask broadcast over [B, Hq, S, T], bool (false masks out) or additive
// f32. Tensors are f32, bf16 or f16 (all alike; lse f32), computed in f32 with row sums in
// double, so results differ from the CPU's GEMM-based kernels in the last bits only.
#pragma once

#include "shardc/kernels/FusedPrelude.h"
#include "shardc/kernels/Simt.h"

#include <cstddef>
#include <cstdint>

namespace shardc::kernels {

constexpr int kAttentionRowThreads = 128;
enum class AttentionType : int { F32, BF16, F16 };

struct AttentionRowsParams {
  const void *q = nullptr, *k = nullptr, *v = nullptr, *mask = nullptr;
  void *y = nullptr;         // forward output
  float *lse = nullptr;      // forward output
  const void *o = nullptr, *dout = nullptr; // grad inputs (o: the forward's y)
  const float *lseIn = nullptr;
  void *dq = nullptr, *dk = nullptr, *dv = nullptr; // grad outputs
  int64_t B = 0, Hq = 0, Hkv = 0, S = 0, T = 0, D = 0, Dv = 0;
  int64_t maskStride[4] = {0, 0, 0, 0};
  int maskKind = 0; // 0 none, 1 bool, 2 additive f32
  AttentionType type = AttentionType::F32;
  float scale = 1.0f;
  int causal = 0;
};

// Dynamic shared memory of each kernel's launch.
constexpr size_t attentionRowsForwardShared(int64_t T) { return size_t(T) * sizeof(float); }
constexpr size_t attentionRowsGradQShared(int64_t T) { return size_t(T) * sizeof(float); }
constexpr size_t attentionRowsGradKVShared(int64_t S, int64_t D, int64_t Dv) {
  return size_t(2 * S + D + Dv) * sizeof(float);
}

namespace attention_rows_detail {

SIMT_DEVICE float load(const void *p, int64_t i, AttentionType t) {
  if (t == AttentionType::F32)
    return static_cast<const float *>(p)[i];
  const unsigned short h = static_cast<const unsigned short *>(p)[i];
  return t == AttentionType::BF16 ? sc_from_bf16(h) : sc_from_f16(h);
}
SIMT_DEVICE void store(void *p, int64_t i, AttentionType t, float f) {
  if (t == AttentionType::F32)
    static_cast<float *>(p)[i] = f;
  else
    static_cast<unsigned short *>(p)[i] = t == AttentionType::BF16 ? sc_to_bf16(f) : sc_to_f16(f);
}
SIMT_DEVICE float negInf() { return -__builtin_huge_valf(); }

// Block-wide sum (double) or max (float) through shared memory; every thread gets the result.
SIMT_DEVICE double blockSum(double v) {
  SIMT_SHARED(double, part, kAttentionRowThreads);
  const int t = simt::threadIdxX();
  part[t] = v;
  simt::syncThreads();
  for (int half = kAttentionRowThreads / 2; half > 0; half /= 2) {
    if (t < half)
      part[t] += part[t + half];
    simt::syncThreads();
  }
  const double out = part[0];
  simt::syncThreads(); // part may be reused by the next call
  return out;
}
SIMT_DEVICE float blockMax(float v) {
  SIMT_SHARED(float, part, kAttentionRowThreads);
  const int t = simt::threadIdxX();
  part[t] = v;
  simt::syncThreads();
  for (int half = kAttentionRowThreads / 2; half > 0; half /= 2) {
    if (t < half && part[t + half] > part[t])
      part[t] = part[t + half];
    simt::syncThreads();
  }
  const float out = part[0];
  simt::syncThreads();
  return out;
}

// The scaled, masked, causal score of query row i of head h (batch b) against key j, or -inf.
SIMT_DEVICE float score(const AttentionRowsParams &p, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (p.causal && j > i)
    return negInf();
  const int64_t kvHead = h / (p.Hq / p.Hkv);
  const int64_t qAt = ((b * p.Hq + h) * p.S + i) * p.D, kAt = ((b * p.Hkv + kvHead) * p.T + j) * p.D;
  float acc = 0.0f;
  for (int64_t e = 0; e < p.D; ++e)
    acc += load(p.q, qAt + e, p.type) * load(p.k, kAt + e, p.type);
  float s = acc * p.scale;
  const int64_t m = b * p.maskStride[0] + h * p.maskStride[1] + i * p.maskStride[2] + j * p.maskStride[3];
  if (p.maskKind == 1 && !static_cast<const uint8_t *>(p.mask)[m])
    return negInf();
  if (p.maskKind == 2)
    s += static_cast<const float *>(p.mask)[m];
  return s;
}

// dot(a row of x at xAt, a row of y at yAt) over n elements.
SIMT_DEVICE float dot(const void *x, int64_t xAt, const void *y, int64_t yAt, int64_t n, AttentionType t) {
  float acc = 0.0f;
  for (int64_t e = 0; e < n; ++e)
    acc += load(x, xAt + e, t) * load(y, yAt + e, t);
  return acc;
}

// ds_ij of query row i against key j, and p_ij (the probability from lse), given rowD = dout_i·o_i.
SIMT_DEVICE void gradTerms(const AttentionRowsParams &p, int64_t b, int64_t h, int64_t i, int64_t j, double rowD,
                           float &prob, float &ds) {
  const int64_t row = (b * p.Hq + h) * p.S + i, kvHead = h / (p.Hq / p.Hkv);
  const float s = score(p, b, h, i, j);
  const float rowLse = p.lseIn[row];
  if (s == negInf() || rowLse == negInf()) {
    prob = ds = 0.0f;
    return;
  }
  prob = float(sc_exp(double(s) - double(rowLse)));
  const float dp = dot(p.dout, row * p.Dv, p.v, ((b * p.Hkv + kvHead) * p.T + j) * p.Dv, p.Dv, p.type);
  ds = float(double(prob) * (double(dp) - rowD));
}

SIMT_DEVICE double rowDelta(const AttentionRowsParams &p, int64_t row) {
  double acc = 0.0;
  for (int64_t e = 0; e < p.Dv; ++e)
    acc += double(load(p.dout, row * p.Dv + e, p.type)) * double(load(p.o, row * p.Dv + e, p.type));
  return acc;
}

} // namespace attention_rows_detail

// Block blockIdxX() = query row (b, h, i) over B * Hq * S rows.
SIMT_DEVICE void attentionRowsForward(const AttentionRowsParams &p) {
  using namespace attention_rows_detail;
  SIMT_DYNAMIC_SHARED(float, scores);
  const int64_t row = simt::blockIdxX(), i = row % p.S, h = (row / p.S) % p.Hq, b = row / (p.S * p.Hq);
  const int64_t kvHead = h / (p.Hq / p.Hkv), keys = p.causal ? (i + 1 < p.T ? i + 1 : p.T) : p.T;
  const int t = simt::threadIdxX(), n = simt::blockDimX();
  float localMax = negInf();
  for (int64_t j = t; j < p.T; j += n) {
    const float s = j < keys ? score(p, b, h, i, j) : negInf();
    scores[j] = s;
    localMax = s > localMax ? s : localMax;
  }
  const float rowMax = blockMax(localMax);
  if (rowMax == negInf()) { // nothing to attend to: zeros, as the CPU kernel writes
    for (int64_t e = t; e < p.Dv; e += n)
      store(p.y, row * p.Dv + e, p.type, 0.0f);
    if (t == 0)
      p.lse[row] = negInf();
    return;
  }
  double localSum = 0.0;
  for (int64_t j = t; j < p.T; j += n) {
    const float e = scores[j] == negInf() ? 0.0f : sc_exp(scores[j] - rowMax);
    scores[j] = e;
    localSum += e;
  }
  const double sum = blockSum(localSum); // also the barrier before scores are read across threads
  if (t == 0)
    p.lse[row] = float(double(rowMax) + sc_log(sum));
  const float inv = float(1.0 / sum);
  const int64_t vAt = (b * p.Hkv + kvHead) * p.T * p.Dv;
  for (int64_t e = t; e < p.Dv; e += n) {
    float acc = 0.0f;
    for (int64_t j = 0; j < keys; ++j)
      acc += (scores[j] * inv) * load(p.v, vAt + j * p.Dv + e, p.type);
    store(p.y, row * p.Dv + e, p.type, acc);
  }
}

// Block blockIdxX() = query row (b, h, i): dq of that row.
SIMT_DEVICE void attentionRowsGradQ(const AttentionRowsParams &p) {
  using namespace attention_rows_detail;
  SIMT_DYNAMIC_SHARED(float, dsRow);
  const int64_t row = simt::blockIdxX(), i = row % p.S, h = (row / p.S) % p.Hq, b = row / (p.S * p.Hq);
  const int64_t kvHead = h / (p.Hq / p.Hkv), keys = p.causal ? (i + 1 < p.T ? i + 1 : p.T) : p.T;
  const int t = simt::threadIdxX(), n = simt::blockDimX();
  const double rowD = rowDelta(p, row); // every thread: no barrier needed
  for (int64_t j = t; j < keys; j += n) {
    float prob = 0.0f, ds = 0.0f;
    gradTerms(p, b, h, i, j, rowD, prob, ds);
    dsRow[j] = ds;
  }
  simt::syncThreads();
  const int64_t kAt = (b * p.Hkv + kvHead) * p.T * p.D;
  for (int64_t e = t; e < p.D; e += n) {
    float acc = 0.0f;
    for (int64_t j = 0; j < keys; ++j)
      acc += dsRow[j] * load(p.k, kAt + j * p.D + e, p.type);
    store(p.dq, row * p.D + e, p.type, p.scale * acc);
  }
}

// Block blockIdxX() = key row (b, kv head, j) over B * Hkv * T rows: dk and dv of that row.
SIMT_DEVICE void attentionRowsGradKV(const AttentionRowsParams &p) {
  using namespace attention_rows_detail;
  SIMT_DYNAMIC_SHARED(float, shared);
  float *probs = shared, *dss = shared + p.S, *accK = shared + 2 * p.S, *accV = accK + p.D;
  const int64_t key = simt::blockIdxX(), j = key % p.T, kvHead = (key / p.T) % p.Hkv, b = key / (p.T * p.Hkv);
  const int t = simt::threadIdxX(), n = simt::blockDimX();
  const int64_t group = p.Hq / p.Hkv;
  for (int64_t e = t; e < p.D; e += n)
    accK[e] = 0.0f;
  for (int64_t e = t; e < p.Dv; e += n)
    accV[e] = 0.0f;
  for (int64_t h = kvHead * group; h < (kvHead + 1) * group; ++h) {
    const int64_t head = (b * p.Hq + h) * p.S;
    for (int64_t i = t; i < p.S; i += n) {
      float prob = 0.0f, ds = 0.0f;
      if (!(p.causal && j > i) && j < p.T)
        gradTerms(p, b, h, i, j, rowDelta(p, head + i), prob, ds);
      probs[i] = prob;
      dss[i] = ds;
    }
    simt::syncThreads();
    for (int64_t e = t; e < p.D; e += n) {
      float acc = 0.0f;
      for (int64_t i = 0; i < p.S; ++i)
        acc += dss[i] * load(p.q, (head + i) * p.D + e, p.type);
      accK[e] += p.scale * acc;
    }
    for (int64_t e = t; e < p.Dv; e += n) {
      float acc = 0.0f;
      for (int64_t i = 0; i < p.S; ++i)
        acc += probs[i] * load(p.dout, (head + i) * p.Dv + e, p.type);
      accV[e] += acc;
    }
    simt::syncThreads(); // probs and dss are refilled for the next head
  }
  for (int64_t e = t; e < p.D; e += n)
    store(p.dk, key * p.D + e, p.type, accK[e]);
  for (int64_t e = t; e < p.Dv; e += n)
    store(p.dv, key * p.Dv + e, p.type, accV[e]);
}

} // namespace shardc::kernels
