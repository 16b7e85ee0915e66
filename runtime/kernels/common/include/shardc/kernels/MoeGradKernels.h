// The backward of the raised mixture-of-experts ops (sc.moe_experts_grad, sc.moe_router_grad;
// docs/moe.md#training). One source for the CUDA backend (runtime/backends/cuda/SharedKernels.cu
// launches the element functions) and the CPU: the CPU runs moe_experts_grad as grouped sgemms
// (runtime/kernels/cpu/MoeGrad.cpp) and these element functions only in the unit tests, which
// check both against finite differences; moe_router_grad runs this source on both.
#pragma once

#include "shardc/kernels/MoeKernels.h"

#include <cstdint>

namespace shardc::kernels {

// d act(g) / dg of the experts' gate activation (the formulas of FusedPrelude.h).
SIMT_DEVICE float moeActivateGrad(MoeActivation a, float g) {
  return a == MoeActivation::GeluTanh  ? sc_op_gelu_tanh_grad<float>(g, 1.0f)
         : a == MoeActivation::GeluErf ? sc_op_gelu_erf_grad<float>(g, 1.0f)
                                       : sc_op_silu_grad<float>(g, 1.0f);
}

// moe_experts_grad in f32, element by element (x [T, H], ids [T, k], weights [T, k], gate_up
// [E, 2I, H], down [E, H, I], dy [T, H]). work [T·k, 3I] holds per row r = t·k + j the gate and
// up gradients [dg; du] (2I) and the activation h (I). An expert id outside [0, E) contributes
// nothing (the CPU kernel reports it).
struct MoeExpertsGradParams {
  const float *x = nullptr, *weights = nullptr, *gateUp = nullptr, *down = nullptr, *dy = nullptr;
  const int64_t *ids = nullptr;
  float *dx = nullptr, *dweights = nullptr, *dgateUp = nullptr, *ddown = nullptr, *work = nullptr;
  int64_t T = 0, H = 0, k = 0, E = 0, I = 0;
  MoeActivation activation = MoeActivation::Silu;
  // moe_grouped_gemm_grad (expert parallelism): no ids; the rows (k = 1) are the received ones,
  // laid out by recvCounts [segments] (source-major, local expert s % E); rows past the
  // received total belong to no expert.
  const int64_t *recvCounts = nullptr;
  int64_t segments = 0;
};

// The expert of row r: ids[r], or from the received counts (-1 past the total).
SIMT_DEVICE int64_t moeGradExpertOf(const MoeExpertsGradParams &p, int64_t r) {
  if (!p.recvCounts)
    return p.ids[r];
  int64_t first = 0;
  for (int64_t s = 0; s < p.segments; ++s) {
    first += p.recvCounts[s];
    if (r < first)
      return s % p.E;
  }
  return -1;
}

// 1. n over T·k·I: row r, column c: recompute g, u; dh = weights[r] · Σ_h dy[t, h] down[e][h, c].
SIMT_DEVICE void moeGradRowElement(const MoeExpertsGradParams &p, int64_t n) {
  const int64_t r = n / p.I, c = n % p.I, e = moeGradExpertOf(p, r);
  float *w = p.work + r * 3 * p.I;
  if (e < 0 || e >= p.E) {
    w[c] = w[p.I + c] = w[2 * p.I + c] = 0.0f;
    return;
  }
  const int64_t t = r / p.k;
  const float *xt = p.x + t * p.H, *g = p.gateUp + (e * 2 * p.I + c) * p.H, *u = g + p.I * p.H;
  const float *dyt = p.dy + t * p.H, *d = p.down + e * p.H * p.I + c;
  float gate = 0.0f, up = 0.0f, dh = 0.0f;
  for (int64_t h = 0; h < p.H; ++h) {
    gate += g[h] * xt[h];
    up += u[h] * xt[h];
    dh += dyt[h] * d[h * p.I];
  }
  dh *= p.weights[r];
  const float a = moeActivate(p.activation, gate);
  w[c] = dh * up * moeActivateGrad(p.activation, gate);
  w[p.I + c] = dh * a;
  w[2 * p.I + c] = a * up;
}

// 2. n over T·k: dweights[r] = dy[t] · down[e] h_r.
SIMT_DEVICE void moeGradWeightsElement(const MoeExpertsGradParams &p, int64_t r) {
  const int64_t e = moeGradExpertOf(p, r), t = r / p.k;
  if (e < 0 || e >= p.E) {
    p.dweights[r] = 0.0f;
    return;
  }
  const float *hr = p.work + r * 3 * p.I + 2 * p.I, *dyt = p.dy + t * p.H;
  float acc = 0.0f;
  for (int64_t h = 0; h < p.H; ++h) {
    const float *d = p.down + (e * p.H + h) * p.I;
    float o = 0.0f;
    for (int64_t i = 0; i < p.I; ++i)
      o += d[i] * hr[i];
    acc += dyt[h] * o;
  }
  p.dweights[r] = acc;
}

// 3. n over T·H: dx[t, h] = Σ_j Σ_c [dg; du]_r[c] gate_up[e][c, h], in j order.
SIMT_DEVICE void moeGradXElement(const MoeExpertsGradParams &p, int64_t n) {
  const int64_t t = n / p.H, h = n % p.H;
  float acc = 0.0f;
  for (int64_t j = 0; j < p.k; ++j) {
    const int64_t r = t * p.k + j, e = moeGradExpertOf(p, r);
    if (e < 0 || e >= p.E)
      continue;
    const float *wr = p.work + r * 3 * p.I, *gu = p.gateUp + e * 2 * p.I * p.H + h;
    for (int64_t c = 0; c < 2 * p.I; ++c)
      acc += wr[c] * gu[c * p.H];
  }
  p.dx[n] = acc;
}

// 4. n over E·2I·H: dgate_up[e][c, h] = Σ over the rows r of expert e (in row order) of
// [dg; du]_r[c] x[t, h].
SIMT_DEVICE void moeGradGateUpElement(const MoeExpertsGradParams &p, int64_t n) {
  const int64_t e = n / (2 * p.I * p.H), c = (n / p.H) % (2 * p.I), h = n % p.H;
  float acc = 0.0f;
  for (int64_t r = 0; r < p.T * p.k; ++r)
    if (moeGradExpertOf(p, r) == e)
      acc += p.work[r * 3 * p.I + c] * p.x[(r / p.k) * p.H + h];
  p.dgateUp[n] = acc;
}

// 5. n over E·H·I: ddown[e][h, c] = Σ over the rows r of expert e of weights[r] dy[t, h] h_r[c].
SIMT_DEVICE void moeGradDownElement(const MoeExpertsGradParams &p, int64_t n) {
  const int64_t e = n / (p.H * p.I), h = (n / p.I) % p.H, c = n % p.I;
  float acc = 0.0f;
  for (int64_t r = 0; r < p.T * p.k; ++r)
    if (moeGradExpertOf(p, r) == e)
      acc += p.weights[r] * p.dy[(r / p.k) * p.H + h] * p.work[r * 3 * p.I + 2 * p.I + c];
  p.ddown[n] = acc;
}

#define SHARDC_MOE_GRAD_GRID(fn, count)                                                 \
  SIMT_DEVICE void fn##s(const MoeExpertsGradParams &p) {                               \
    const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX(); \
    if (n < (count))                                                                     \
      fn(p, n);                                                                          \
  }
SHARDC_MOE_GRAD_GRID(moeGradRowElement, p.T * p.k * p.I)
SHARDC_MOE_GRAD_GRID(moeGradWeightsElement, p.T * p.k)
SHARDC_MOE_GRAD_GRID(moeGradXElement, p.T * p.H)
SHARDC_MOE_GRAD_GRID(moeGradGateUpElement, p.E * 2 * p.I * p.H)
SHARDC_MOE_GRAD_GRID(moeGradDownElement, p.E * p.H * p.I)
#undef SHARDC_MOE_GRAD_GRID

// moe_router_grad, one token per thread (f32 logits [T, E], ids and dweights [T, k], dlogits
// [T, E]): the scores recomputed as the router computes them; the choices are fixed.
struct MoeRouterGradParams {
  const float *logits = nullptr, *dweights = nullptr;
  const int64_t *ids = nullptr;
  float *dlogits = nullptr;
  int64_t T = 0, E = 0, k = 0;
  int sigmoid = 0, normalize = 0;
  float normEpsilon = 0.0f, scale = 1.0f;
};

SIMT_DEVICE void moeRouterGradToken(const MoeRouterGradParams &p, int64_t t) {
  const float *l = p.logits + t * p.E, *dw = p.dweights + t * p.k;
  const int64_t *id = p.ids + t * p.k;
  float m = 0.0f, inv = 1.0f;
  if (!p.sigmoid) {
    m = -__builtin_huge_valf();
    for (int64_t e = 0; e < p.E; ++e)
      m = l[e] > m ? l[e] : m;
    double sum = 0.0;
    for (int64_t e = 0; e < p.E; ++e)
      sum += sc_exp(l[e] - m);
    inv = float(1.0 / sum);
  }
  auto score = [&](int64_t e) { return p.sigmoid ? 1.0f / (1.0f + sc_exp(-l[e])) : sc_exp(l[e] - m) * inv; };
  auto valid = [&](int64_t e) { return e >= 0 && e < p.E; };
  // S = Σ_j s_j + ε and Σ_j dweights_j s_j over the chosen.
  float S = p.normEpsilon, dot = 0.0f;
  for (int64_t j = 0; j < p.k; ++j)
    if (valid(id[j])) {
      const float s = score(id[j]);
      S += s;
      dot += dw[j] * s;
    }
  auto dsOf = [&](int64_t j) { return p.normalize ? p.scale * (dw[j] / S - dot / (S * S)) : p.scale * dw[j]; };
  // Σ_e ds_e s_e: only the chosen carry ds.
  float q = 0.0f;
  for (int64_t j = 0; j < p.k; ++j)
    if (valid(id[j]))
      q += dsOf(j) * score(id[j]);
  for (int64_t e = 0; e < p.E; ++e) {
    float ds = 0.0f;
    for (int64_t j = 0; j < p.k; ++j)
      if (id[j] == e)
        ds += dsOf(j);
    const float s = score(e);
    p.dlogits[t * p.E + e] = p.sigmoid ? ds * s * (1.0f - s) : s * (ds - q);
  }
}

SIMT_DEVICE void moeRouterGradTokens(const MoeRouterGradParams &p) {
  const int64_t t = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX();
  if (t < p.T)
    moeRouterGradToken(p, t);
}

#if !defined(__CUDACC_RTC__)
inline std::string planMoeExpertsGrad(const std::vector<int64_t> &x, const std::vector<int64_t> &ids,
                                      const std::vector<int64_t> &weights, const std::vector<int64_t> &gateUp,
                                      const std::vector<int64_t> &down, const std::vector<int64_t> &dy,
                                      MoeExpertsGradParams &p) {
  MoeExpertsParams f;
  if (std::string err = planMoeExperts(x, ids, weights, gateUp, down, f); !err.empty())
    return err;
  if (dy != x)
    return "dy must have x's shape";
  p.T = f.T, p.H = f.H, p.k = f.k, p.E = f.E, p.I = f.I;
  return "";
}
// moe_grouped_gemm_grad: recv_x and recv_dy [R, H], recv_w [R, 1], recv_counts [G·El], gate_up
// [El, 2I, H], down [El, H, I]: T = R rows, k = 1, E = El local experts (recvCounts set by the caller).
inline std::string planMoeGroupedGemmGrad(const std::vector<int64_t> &x, const std::vector<int64_t> &dy,
                                          const std::vector<int64_t> &w, const std::vector<int64_t> &counts,
                                          const std::vector<int64_t> &gateUp, const std::vector<int64_t> &down,
                                          MoeExpertsGradParams &p) {
  if (x.size() != 2 || dy != x || w != std::vector<int64_t>{x[0], 1} || counts.size() != 1 || gateUp.size() != 3 ||
      down.size() != 3 || gateUp[0] < 1 || down[0] != gateUp[0] || counts[0] % gateUp[0] != 0 ||
      gateUp[1] != 2 * down[2] || gateUp[2] != x[1] || down[1] != x[1])
    return "recv_x and recv_dy [R, H], recv_w [R, 1], recv_counts [G*El], gate_up [El, 2I, H], down [El, H, I] "
           "expected";
  p.T = x[0], p.k = 1, p.H = x[1], p.E = gateUp[0], p.I = down[2], p.segments = counts[0];
  return "";
}
inline std::string planMoeRouterGrad(const std::vector<int64_t> &logits, const std::vector<int64_t> &ids,
                                     const std::vector<int64_t> &dweights, const std::vector<int64_t> &dlogits,
                                     MoeRouterGradParams &p) {
  if (logits.size() != 2 || ids.size() != 2 || ids[0] != logits[0] || dweights != ids || dlogits != logits ||
      ids[1] < 1 || ids[1] > logits[1])
    return "logits [T, E], indices and dweights [T, k] with 1 <= k <= E, dlogits [T, E] expected";
  p.T = logits[0], p.E = logits[1], p.k = ids[1];
  return "";
}
#endif

} // namespace shardc::kernels
