// The backward of the raised mixture-of-experts ops on the CPU (docs/moe.md#training).
// moe_experts_grad runs MoeGradKernels.h's runMoeGradSequence (the forward's grouped layout,
// sgemms per expert group, the shared element steps in loops), the sequence the CUDA backend
// runs with cuBLASLt; moe_router_grad runs the shared SIMT source per token.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "Sgemm.h"

#include "shardc/kernels/MoeGradKernels.h"

#include <algorithm>
#include <vector>

namespace shardc::rt::cpu {

namespace {
// The grouped backward over T·k rows of expert id[r] (r = t·k + j): runMoeGradSequence with
// sgemm and loops; with allowNone, a row whose id is outside [0, E) belongs to no expert (its
// dweights and dx terms are zero).
std::string moeGradRows(const float *xs, const int64_t *id, const float *ws, const float *gus, const float *ds,
                        const float *dys, int64_t T, int64_t k, int64_t H, int64_t E, int64_t I,
                        kernels::MoeActivation act, bool allowNone, float *dxs, float *dwOut, float *dguOut,
                        float *ddOut, float *wk) {
  const int64_t N = T * k;
  std::vector<int64_t> counts(static_cast<size_t>(E)), rowOf(static_cast<size_t>(N));
  std::vector<kernels::MoeGemmGroup> groups; // the forward's layout: rows grouped by expert
  int64_t total = 0;
  bool unrouted = false;
  if (std::string err = kernels::planMoeRowGroups(id, T, k, E, rowOf.data(), counts.data(), groups, total, unrouted);
      !err.empty())
    return err;
  if (unrouted && !allowNone)
    for (int64_t r = 0; r < N; ++r)
      if (id[r] < 0 || id[r] >= E)
        return "expert id " + std::to_string(id[r]) + " outside [0, " + std::to_string(E) + ")";
  std::vector<float> rows(size_t(total * H)), dyw(size_t(total * H)), gate(size_t(total * 2 * I)),
      o(size_t(total * H)), dh(size_t(total * I)), dxRows(size_t(total * H));
  kernels::MoeGradSeqParams p;
  p.x = xs, p.dy = dys, p.weights = ws, p.rowOf = rowOf.data(), p.rows = rows.data(), p.dyw = dyw.data();
  p.gate = gate.data(), p.o = o.data(), p.dh = dh.data(), p.dxRows = dxRows.data();
  p.work = wk, p.dweights = dwOut, p.dx = dxs, p.T = T, p.H = H, p.k = k, p.I = I, p.total = total;
  p.activation = act;
  auto gemm = [](bool ta, bool tb, int64_t M, int64_t Nn, int64_t K, const float *A, int64_t lda, const float *B,
                 int64_t ldb, float *C, int64_t ldc) {
    sgemm(ta, tb, M, Nn, K, 1.0f, A, lda, B, ldb, 0.0f, C, ldc);
    return std::string();
  };
  auto run = [&p](kernels::MoeGradStep step, int64_t count) {
    for (int64_t n = 0; n < count; ++n)
      switch (step) {
      case kernels::MoeGradStep::Gather: kernels::moeGradGatherElement(p, n); break;
      case kernels::MoeGradStep::Hidden: kernels::moeGradHiddenElement(p, n); break;
      case kernels::MoeGradStep::Glu: kernels::moeGradGluElement(p, n); break;
      case kernels::MoeGradStep::Weights: kernels::moeGradWeightsElement(p, n); break;
      case kernels::MoeGradStep::X: kernels::moeGradXElement(p, n); break;
      }
    return std::string();
  };
  auto zero = [](float *ptr, int64_t count) {
    std::fill_n(ptr, count, 0.0f);
    return std::string();
  };
  return kernels::runMoeGradSequence(groups, p, gus, ds, E, dguOut, ddOut, gemm, run, zero);
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
  kernels::MoeActivation act = kernels::MoeActivation::Silu;
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
  kernels::MoeActivation act = kernels::MoeActivation::Silu;
  if (std::string err = kernels::moeActivationOf(args.attrs ? args.attrs->getString("activation", "silu") : "silu", act);
      !err.empty())
    return "moe_grouped_gemm_grad: " + err;
  std::vector<int64_t> id;
  if (std::string err = kernels::moeReceivedRowExperts(counts.as<int64_t>(), p.segments, El, R, id); !err.empty())
    return "moe_grouped_gemm_grad: " + err;
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
