// The backward of the raised mixture-of-experts ops on the CPU (docs/moe.md#training).
// moe_experts_grad runs as grouped sgemms, the forward's layout (runtime/kernels/cpu/Moe.cpp):
// the (token, choice) rows sorted by expert, per expert the recomputed gate/up GEMM, then the
// GEMMs of the backward; moe_router_grad runs the shared SIMT source per token
// (shardc/kernels/MoeGradKernels.h, which the CUDA backend launches).
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "Sgemm.h"

#include "shardc/kernels/MoeGradKernels.h"

#include <algorithm>
#include <vector>

namespace shardc::rt::cpu {

namespace {
// The grouped backward over T·k rows of expert id[r] (r = t·k + j); with allowNone, a row whose
// id is outside [0, E) belongs to no expert (its dweights and dx terms are zero).
std::string moeGradRows(const float *xs, const int64_t *id, const float *ws, const float *gus, const float *ds,
                        const float *dys, int64_t T, int64_t k, int64_t H, int64_t E, int64_t I,
                        kernels::MoeActivation act, bool allowNone, float *dxs, float *dwOut, float *dguOut,
                        float *ddOut, float *wk) {
  // The rows grouped by expert, in token order within an expert (the forward's permutation).
  std::vector<int64_t> start(size_t(E) + 1, 0), order(size_t(T * k));
  for (int64_t r = 0; r < T * k; ++r) {
    if (id[r] < 0 || id[r] >= E) {
      if (!allowNone)
        return "expert id " + std::to_string(id[r]) + " outside [0, " + std::to_string(E) + ")";
      continue;
    }
    ++start[size_t(id[r]) + 1];
  }
  for (int64_t e = 0; e < E; ++e)
    start[size_t(e) + 1] += start[size_t(e)];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t r = 0; r < T * k; ++r)
      if (id[r] >= 0 && id[r] < E)
        order[size_t(fill[size_t(id[r])]++)] = r;
      else
        dwOut[r] = 0.0f;
  }
  // work, in expert order: per row [dg; du] (2I) then h (I); the rows of no expert last, zero.
  std::fill(wk + start[size_t(E)] * 3 * I, wk + T * k * 3 * I, 0.0f);
  std::vector<float> rows, dyw, gate, o, dh, dxRows(size_t(T * k * H), 0.0f);
  for (int64_t e = 0; e < E; ++e) {
    const int64_t n = start[size_t(e) + 1] - start[size_t(e)], first = start[size_t(e)];
    float *dguE = dguOut + e * 2 * I * H, *ddE = ddOut + e * H * I;
    if (n == 0) {
      std::fill_n(dguE, 2 * I * H, 0.0f);
      std::fill_n(ddE, H * I, 0.0f);
      continue;
    }
    rows.resize(size_t(n * H));
    dyw.resize(size_t(n * H));
    gate.resize(size_t(n * 2 * I));
    o.resize(size_t(n * H));
    dh.resize(size_t(n * I));
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = order[size_t(first + i)], t = r / k;
      std::copy_n(xs + t * H, H, rows.data() + i * H);
      for (int64_t c = 0; c < H; ++c)
        dyw[size_t(i * H + c)] = ws[r] * dys[t * H + c];
    }
    float *wkE = wk + first * 3 * I;
    // Recompute: [n, H] x [2I, H]^T -> [n, 2I]; h = act(g)·u into work's last I columns.
    sgemm(false, true, n, 2 * I, H, 1.0f, rows.data(), H, gus + e * 2 * I * H, H, 0.0f, gate.data(), 2 * I);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < I; ++c)
        wkE[i * 3 * I + 2 * I + c] =
            kernels::moeActivate(act, gate[size_t(i * 2 * I + c)]) * gate[size_t(i * 2 * I + I + c)];
    // o = h down^T [n, H]: dweights[r] = dy[t]·o (unweighted dy).
    sgemm(false, true, n, H, I, 1.0f, wkE + 2 * I, 3 * I, ds + e * H * I, I, 0.0f, o.data(), H);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t r = order[size_t(first + i)], t = r / k;
      float acc = 0.0f;
      for (int64_t c = 0; c < H; ++c)
        acc += dys[t * H + c] * o[size_t(i * H + c)];
      dwOut[r] = acc;
    }
    // ddown[e] = dyw^T h: [H, n] x [n, I].
    sgemm(true, false, H, I, n, 1.0f, dyw.data(), H, wkE + 2 * I, 3 * I, 0.0f, ddE, I);
    // dh = dyw down[e]: [n, H] x [H, I] -> [n, I]; then [dg; du].
    sgemm(false, false, n, I, H, 1.0f, dyw.data(), H, ds + e * H * I, I, 0.0f, dh.data(), I);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t c = 0; c < I; ++c) {
        const float g = gate[size_t(i * 2 * I + c)], u = gate[size_t(i * 2 * I + I + c)], d = dh[size_t(i * I + c)];
        wkE[i * 3 * I + c] = d * u * kernels::moeActivateGrad(act, g);
        wkE[i * 3 * I + I + c] = d * kernels::moeActivate(act, g);
      }
    // dgate_up[e] = [dg; du]^T x: [2I, n] x [n, H]; the rows' dx = [dg; du] gate_up[e]: [n, 2I] x [2I, H].
    sgemm(true, false, 2 * I, H, n, 1.0f, wkE, 3 * I, rows.data(), H, 0.0f, dguE, H);
    sgemm(false, false, n, H, 2 * I, 1.0f, wkE, 3 * I, gus + e * 2 * I * H, H, 0.0f, rows.data(), H);
    for (int64_t i = 0; i < n; ++i)
      std::copy_n(rows.data() + i * H, H, dxRows.data() + order[size_t(first + i)] * H);
  }
  // Each token sums its k rows in j order.
  for (int64_t t = 0; t < T; ++t)
    for (int64_t c = 0; c < H; ++c) {
      float acc = dxRows[size_t(t * k * H + c)];
      for (int64_t j = 1; j < k; ++j)
        acc += dxRows[size_t((t * k + j) * H + c)];
      dxs[t * H + c] = acc;
    }
  return "";
}
} // namespace

// moe_experts_grad: x [T, H], indices [T, k], weights [T, k], gate_up [E, 2I, H], down [E, H, I],
// dy [T, H] -> dx [T, H], dweights [T, k], dgate_up [E, 2I, H], ddown [E, H, I], work [T·k, 3I].
// f32 (16-bit via f32).
std::string moeExpertsGradKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_experts_grad", args, 6, 6, 5, 5); !e.empty())
    return e;
  const TensorView &x = args.in[0], &ids = args.in[1], &w = args.in[2], &gu = args.in[3], &down = args.in[4],
                   &dy = args.in[5];
  const TensorView &dx = args.out[0], &dw = args.out[1], &dgu = args.out[2], &ddown = args.out[3], &work = args.out[4];
  if (auto e = expectSameDType("moe_experts_grad", {{"x", &x}, {"weights", &w}, {"gate_up", &gu}, {"down", &down},
                                                    {"dy", &dy}, {"dx", &dx}, {"dweights", &dw}, {"dgate_up", &dgu},
                                                    {"ddown", &ddown}, {"work", &work}});
      !e.empty())
    return e;
  if (x.dtype != DType::F32)
    return unsupportedDType("moe_experts_grad", x.dtype);
  if (ids.dtype != DType::I64)
    return "moe_experts_grad: indices must be i64";
  kernels::MoeExpertsGradParams p;
  if (std::string err = kernels::planMoeExpertsGrad(x.shape, ids.shape, w.shape, gu.shape, down.shape, dy.shape, p);
      !err.empty())
    return "moe_experts_grad: " + err;
  const int64_t T = p.T, H = p.H, k = p.k, E = p.E, I = p.I;
  for (auto [name, view, shape] : {std::tuple<const char *, const TensorView *, std::vector<int64_t>>{"dx", &dx, {T, H}},
                                   {"dweights", &dw, {T, k}},
                                   {"dgate_up", &dgu, {E, 2 * I, H}},
                                   {"ddown", &ddown, {E, H, I}},
                                   {"work", &work, {T * k, 3 * I}}})
    if (auto e = expectShape("moe_experts_grad", name, *view, shape); !e.empty())
      return e;
  kernels::MoeActivation act;
  if (std::string err = kernels::moeActivationOf(args.attrs ? args.attrs->getString("activation", "silu") : "silu", act);
      !err.empty())
    return "moe_experts_grad: " + err;
  if (std::string err = moeGradRows(x.as<float>(), ids.as<int64_t>(), w.as<float>(), gu.as<float>(), down.as<float>(),
                                    dy.as<float>(), T, k, H, E, I, act, false, dx.as<float>(), dw.as<float>(),
                                    dgu.as<float>(), ddown.as<float>(), work.as<float>());
      !err.empty())
    return "moe_experts_grad: " + err;
  return "";
}

// moe_grouped_gemm_grad (expert parallelism's backward): recv_x [R, H], recv_dy [R, H], recv_w
// [R, 1] (the rows sc.moe_dispatch delivered), recv_counts [G·El] (source-major), gate_up
// [El, 2I, H], down [El, H, I] -> dx [R, H], dweights [R, 1], dgate_up, ddown (the local
// experts' sums over the received rows), work [R, 3I]; the rows past the received total are
// zero. moe_experts_grad's grouped sgemms with each row's local expert from the counts. f32.
std::string moeGroupedGemmGradKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_grouped_gemm_grad", args, 6, 6, 5, 5); !e.empty())
    return e;
  const TensorView &x = args.in[0], &dy = args.in[1], &w = args.in[2], &counts = args.in[3], &gu = args.in[4],
                   &down = args.in[5];
  const TensorView &dx = args.out[0], &dw = args.out[1], &dgu = args.out[2], &ddown = args.out[3], &work = args.out[4];
  if (auto e = expectSameDType("moe_grouped_gemm_grad",
                               {{"recv_x", &x}, {"recv_dy", &dy}, {"recv_w", &w}, {"gate_up", &gu}, {"down", &down},
                                {"dx", &dx}, {"dweights", &dw}, {"dgate_up", &dgu}, {"ddown", &ddown}, {"work", &work}});
      !e.empty())
    return e;
  if (x.dtype != DType::F32)
    return unsupportedDType("moe_grouped_gemm_grad", x.dtype);
  kernels::MoeExpertsGradParams p;
  if (counts.dtype != DType::I64 || counts.rank() != 1 || x.rank() != 2 ||
      !kernels::planMoeGroupedGemmGrad(x.shape, dy.shape, w.shape, counts.shape, gu.shape, down.shape, p).empty())
    return "moe_grouped_gemm_grad: recv_x and recv_dy [R, H], recv_w [R, 1], i64 recv_counts [G*El], gate_up "
           "[El, 2I, H], down [El, H, I] expected, not " +
           describe(x) + ", " + describe(dy) + ", " + describe(w) + ", " + describe(counts) + ", " + describe(gu) +
           ", " + describe(down);
  const int64_t R = p.T, H = p.H, El = p.E, I = p.I;
  for (auto [name, view, shape] : {std::tuple<const char *, const TensorView *, std::vector<int64_t>>{"dx", &dx, {R, H}},
                                   {"dweights", &dw, {R, 1}},
                                   {"dgate_up", &dgu, {El, 2 * I, H}},
                                   {"ddown", &ddown, {El, H, I}},
                                   {"work", &work, {R, 3 * I}}})
    if (auto e = expectShape("moe_grouped_gemm_grad", name, *view, shape); !e.empty())
      return e;
  kernels::MoeActivation act;
  if (std::string err = kernels::moeActivationOf(args.attrs ? args.attrs->getString("activation", "silu") : "silu", act);
      !err.empty())
    return "moe_grouped_gemm_grad: " + err;
  // Each received row's local expert (-1 past the total).
  const int64_t *cnt = counts.as<int64_t>();
  std::vector<int64_t> id(size_t(R), -1);
  int64_t first = 0;
  for (int64_t s = 0; s < p.segments; ++s) {
    if (cnt[s] < 0 || first + cnt[s] > R)
      return "moe_grouped_gemm_grad: the received counts exceed the " + std::to_string(R) + " rows";
    std::fill_n(id.begin() + first, cnt[s], s % El);
    first += cnt[s];
  }
  return moeGradRows(x.as<float>(), id.data(), w.as<float>(), gu.as<float>(), down.as<float>(), dy.as<float>(), R, 1,
                     H, El, I, act, true, dx.as<float>(), dw.as<float>(), dgu.as<float>(), ddown.as<float>(),
                     work.as<float>());
}

// moe_router_grad: logits [T, E], indices [T, k] (i64), dweights [T, k] -> dlogits [T, E]; f32
// (16-bit via f32).
std::string moeRouterGradKernel(const KernelArgs &args) {
  if (auto e = expectArity("moe_router_grad", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &logits = args.in[0], &ids = args.in[1], &dw = args.in[2], &dl = args.out[0];
  if (auto e = expectSameDType("moe_router_grad", {{"logits", &logits}, {"dweights", &dw}, {"dlogits", &dl}});
      !e.empty())
    return e;
  if (logits.dtype != DType::F32)
    return unsupportedDType("moe_router_grad", logits.dtype);
  if (ids.dtype != DType::I64)
    return "moe_router_grad: indices must be i64";
  kernels::MoeRouterGradParams p;
  if (std::string err = kernels::planMoeRouterGrad(logits.shape, ids.shape, dw.shape, dl.shape, p); !err.empty())
    return "moe_router_grad: " + err;
  const std::string scoring = args.attrs ? args.attrs->getString("scoring", "softmax") : "softmax";
  if (scoring != "softmax" && scoring != "sigmoid")
    return "moe_router_grad: scoring '" + scoring + "' is not softmax or sigmoid";
  p.logits = logits.as<float>();
  p.ids = ids.as<int64_t>();
  p.dweights = dw.as<float>();
  p.dlogits = dl.as<float>();
  p.sigmoid = scoring == "sigmoid";
  p.normalize = args.attrs && args.attrs->getBool("normalize", false);
  p.normEpsilon = float(args.attrs ? args.attrs->getFloat("norm_epsilon", 0.0) : 0.0);
  p.scale = float(args.attrs ? args.attrs->getFloat("scale", 1.0) : 1.0);
  for (int64_t t = 0; t < p.T; ++t)
    kernels::moeRouterGradToken(p, t);
  return "";
}

} // namespace shardc::rt::cpu
