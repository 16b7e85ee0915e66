// The backward of the raised mixture-of-experts ops (sc.moe_experts_grad, sc.moe_router_grad;
// docs/moe.md#training). One source for the CUDA backend (runtime/backends/cuda/MoeKernels.cu)
// and the CPU (runtime/kernels/cpu/MoeGrad.cpp): the experts' backward is one sequence of GEMM
// groups and element steps (runMoeGradSequence), moe_router_grad one thread per token.
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

// The shapes of moe_experts_grad (x [T, H], ids [T, k], weights [T, k], gate_up [E, 2I, H],
// down [E, H, I], dy [T, H]) and of moe_grouped_gemm_grad (the received rows: T = R, k = 1,
// E local experts, `segments` received counts, source-major).
struct MoeExpertsGradParams {
  int64_t T = 0, H = 0, k = 0, E = 0, I = 0, segments = 0;
  MoeActivation activation = MoeActivation::Silu;
};

// The MoE backward as both backends run it (runMoeGradSequence below): the forward's grouped
// layout (the T·k pairs sorted by expert, rowOf[s] the row of pair s, -1 for a pair of no
// expert; one GEMM group per expert), the GEMMs of the recomputed gate/up and of the backward
// per group, and these element steps between them, each over `total` grouped rows or the
// pairs. work [T·k, 3I] holds each row's [dg; du] (2I) and activation h (I).
struct MoeGradSeqParams {
  const float *x = nullptr, *dy = nullptr, *weights = nullptr; // [T, H], [T, H], [T·k]
  const int64_t *rowOf = nullptr;                              // [T·k]
  float *rows = nullptr, *dyw = nullptr;                       // [total, H]: x[t] and weights·dy[t] by row
  const float *gate = nullptr;                                 // [total, 2I]: the recomputed g, u
  const float *o = nullptr;                                    // [total, H]: h · down[e]^T
  const float *dh = nullptr;                                   // [total, I]: dyw · down[e]
  const float *dxRows = nullptr;                               // [total, H]: [dg; du] · gate_up[e]
  float *work = nullptr, *dweights = nullptr, *dx = nullptr;   // [T·k, 3I], [T·k], [T, H]
  int64_t T = 0, H = 0, k = 0, I = 0, total = 0;
  MoeActivation activation = MoeActivation::Silu;
};

// n over T·k·H: pair s's row of x and of weights[s]·dy[t].
SIMT_DEVICE void moeGradGatherElement(const MoeGradSeqParams &p, int64_t n) {
  const int64_t s = n / p.H, c = n % p.H, row = p.rowOf[s], from = (s / p.k) * p.H + c;
  if (row >= 0) {
    p.rows[row * p.H + c] = p.x[from];
    p.dyw[row * p.H + c] = p.weights[s] * p.dy[from];
  }
}
// n over total·I: h = act(g)·u into work's last I columns.
SIMT_DEVICE void moeGradHiddenElement(const MoeGradSeqParams &p, int64_t n) {
  const int64_t i = n / p.I, c = n % p.I;
  const float *g = p.gate + i * 2 * p.I;
  p.work[i * 3 * p.I + 2 * p.I + c] = moeActivate(p.activation, g[c]) * g[p.I + c];
}
// n over total·I: dg = dh·u·act'(g), du = dh·act(g) into work's first 2I columns.
SIMT_DEVICE void moeGradGluElement(const MoeGradSeqParams &p, int64_t n) {
  const int64_t i = n / p.I, c = n % p.I;
  const float g = p.gate[i * 2 * p.I + c], u = p.gate[i * 2 * p.I + p.I + c], d = p.dh[n];
  p.work[i * 3 * p.I + c] = d * u * moeActivateGrad(p.activation, g);
  p.work[i * 3 * p.I + p.I + c] = d * moeActivate(p.activation, g);
}
// s over T·k: dweights[s] = dy[t] · o[row] (the unweighted dy; 0 for a pair of no expert).
SIMT_DEVICE void moeGradWeightsElement(const MoeGradSeqParams &p, int64_t s) {
  const int64_t row = p.rowOf[s];
  float acc = 0.0f;
  if (row >= 0)
    for (int64_t c = 0; c < p.H; ++c)
      acc += p.dy[(s / p.k) * p.H + c] * p.o[row * p.H + c];
  p.dweights[s] = acc;
}
// n over T·H: dx[t, c] = the sum of its k rows' dx in choice order.
SIMT_DEVICE void moeGradXElement(const MoeGradSeqParams &p, int64_t n) {
  const int64_t t = n / p.H, c = n % p.H;
  float acc = 0.0f;
  for (int64_t j = 0; j < p.k; ++j) {
    const int64_t row = p.rowOf[t * p.k + j];
    const float v = row < 0 ? 0.0f : p.dxRows[row * p.H + c];
    acc = j == 0 ? v : acc + v;
  }
  p.dx[n] = acc;
}

#define SHARDC_MOE_GRAD_GRID(fn, count)                                                 \
  SIMT_DEVICE void fn##s(const MoeGradSeqParams &p) {                                   \
    const int64_t n = int64_t(simt::blockIdxX()) * simt::blockDimX() + simt::threadIdxX(); \
    if (n < (count))                                                                     \
      fn(p, n);                                                                          \
  }
SHARDC_MOE_GRAD_GRID(moeGradGatherElement, p.T * p.k * p.H)
SHARDC_MOE_GRAD_GRID(moeGradHiddenElement, p.total * p.I)
SHARDC_MOE_GRAD_GRID(moeGradGluElement, p.total * p.I)
SHARDC_MOE_GRAD_GRID(moeGradWeightsElement, p.T * p.k)
SHARDC_MOE_GRAD_GRID(moeGradXElement, p.T * p.H)
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
// moe_grouped_gemm_grad's rows as pairs of moe_experts_grad (k = 1): each received row's local
// expert from the counts [segments] (source-major: segment s holds expert s % El), -1 for the
// rows past the received total. "" or why not.
inline std::string moeReceivedRowExperts(const int64_t *counts, int64_t segments, int64_t El, int64_t R,
                                         std::vector<int64_t> &ids) {
  ids.assign(size_t(R), -1);
  int64_t first = 0;
  for (int64_t s = 0; s < segments; ++s) {
    if (counts[s] < 0 || counts[s] > R - first)
      return "the received counts exceed the " + std::to_string(R) + " rows";
    for (int64_t r = first; r < first + counts[s]; ++r)
      ids[size_t(r)] = s % El;
    first += counts[s];
  }
  return "";
}

// The element steps of runMoeGradSequence, for a backend's `run(step, count)`.
enum class MoeGradStep { Gather, Hidden, Glu, Weights, X };

// The backward of the experts over the grouped rows (one group per expert, from
// planMoeGemmGroups over the per-expert counts): p's rows, dyw, gate, o, dh and dxRows point at
// the backend's scratch ([total, ·]); p.rowOf at the pairs' rows. The backend supplies
//   gemm(transA, transB, M, N, K, A, lda, B, ldb, C, ldc): C = op(A) · op(B), row-major f32,
//   run(step, count): one element step over `count` elements,
//   zero(ptr, count): count floats set to 0;
// both backends run this one sequence (CPU: sgemm and loops, runtime/kernels/cpu/MoeGrad.cpp;
// CUDA: cuBLASLt and launches, runtime/backends/cuda/MoeKernels.cu).
template <typename Gemm, typename Run, typename Zero>
std::string runMoeGradSequence(const std::vector<MoeGemmGroup> &groups, const MoeGradSeqParams &p,
                               const float *gateUp, const float *down, int64_t E, float *dgateUp, float *ddown,
                               Gemm &&gemm, Run &&run, Zero &&zero) {
  const int64_t H = p.H, I = p.I;
  float *gate = const_cast<float *>(p.gate), *o = const_cast<float *>(p.o), *dh = const_cast<float *>(p.dh);
  float *dxRows = const_cast<float *>(p.dxRows), *work = p.work;
  std::string err = run(MoeGradStep::Gather, p.T * p.k * H);
  for (const MoeGemmGroup &g : groups) // the recomputed [g, u]: rows · gate_up[e]^T
    if (err.empty())
      err = gemm(false, true, g.rows, 2 * I, H, p.rows + g.firstRow * H, H, gateUp + g.expert * 2 * I * H, H,
                 gate + g.firstRow * 2 * I, 2 * I);
  if (err.empty())
    err = run(MoeGradStep::Hidden, p.total * I);
  for (const MoeGemmGroup &g : groups) // o = h · down[e]^T, for dweights
    if (err.empty())
      err = gemm(false, true, g.rows, H, I, work + g.firstRow * 3 * I + 2 * I, 3 * I, down + g.expert * H * I, I,
                 o + g.firstRow * H, H);
  if (err.empty())
    err = run(MoeGradStep::Weights, p.T * p.k);
  for (const MoeGemmGroup &g : groups) { // ddown[e] = dyw^T · h; dh = dyw · down[e]
    if (err.empty())
      err = gemm(true, false, H, I, g.rows, p.dyw + g.firstRow * H, H, work + g.firstRow * 3 * I + 2 * I, 3 * I,
                 ddown + g.expert * H * I, I);
    if (err.empty())
      err = gemm(false, false, g.rows, I, H, p.dyw + g.firstRow * H, H, down + g.expert * H * I, I,
                 dh + g.firstRow * I, I);
  }
  if (err.empty())
    err = run(MoeGradStep::Glu, p.total * I);
  for (const MoeGemmGroup &g : groups) { // dgate_up[e] = [dg; du]^T · rows; the rows' dx = [dg; du] · gate_up[e]
    if (err.empty())
      err = gemm(true, false, 2 * I, H, g.rows, work + g.firstRow * 3 * I, 3 * I, p.rows + g.firstRow * H, H,
                 dgateUp + g.expert * 2 * I * H, H);
    if (err.empty())
      err = gemm(false, false, g.rows, H, 2 * I, work + g.firstRow * 3 * I, 3 * I, gateUp + g.expert * 2 * I * H, H,
                 dxRows + g.firstRow * H, H);
  }
  if (err.empty())
    err = run(MoeGradStep::X, p.T * H);
  // The experts without rows get zero gradients; work's rows past the grouped ones are zero.
  std::vector<char> has(size_t(E), 0);
  for (const MoeGemmGroup &g : groups)
    has[size_t(g.expert)] = 1;
  for (int64_t e = 0; e < E && err.empty(); ++e)
    if (!has[size_t(e)]) {
      err = zero(dgateUp + e * 2 * I * H, 2 * I * H);
      if (err.empty())
        err = zero(ddown + e * H * I, H * I);
    }
  if (err.empty())
    err = zero(work + p.total * 3 * I, (p.T * p.k - p.total) * 3 * I);
  return err;
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
