// The backward of the raised MoE ops (shardc/kernels/MoeGradKernels.h, runtime/kernels/cpu/
// MoeGrad.cpp) against central finite differences of an f64 forward: moe_experts_grad's CPU
// kernel (runMoeGradSequence with sgemm) and the CUDA backend's sequence (MoeKernels.cu: the
// host's sort and groups, the element steps through the Simt.h emulator, a plain GEMM in
// cuBLASLt's place), SwiGLU and GeGLU, with an expert that gets no row; and
// moe_router_grad (softmax with and without renormalisation, sigmoid with renormalisation and
// a routed scaling factor), whose CPU kernel runs the SIMT source.
#include "shardc/kernels/MoeGradKernels.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <vector>

namespace {

using namespace shardc;
namespace simt = shardc::simt;
using rt::DType;
using Tensor = test::ByteTensor;

template <typename T> Tensor tensor(DType dtype, std::vector<int64_t> shape, const std::vector<T> &values) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.resize(values.size() * sizeof(T));
  std::memcpy(t.bytes.data(), values.data(), t.bytes.size());
  return t;
}
Tensor empty(DType dtype, std::vector<int64_t> shape) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(t.numel()) * rt::dtypeSize(dtype), 0xEE);
  return t;
}
std::vector<float> floats(const Tensor &t) {
  std::vector<float> v(t.bytes.size() / sizeof(float));
  std::memcpy(v.data(), t.bytes.data(), t.bytes.size());
  return v;
}
std::vector<float> randomFloats(size_t n, unsigned seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, scale);
  std::vector<float> v(n);
  for (float &x : v)
    x = d(rng);
  return v;
}
template <typename Body> std::string launch(int64_t count, Body body) {
  return simt::launch({int(kernels::indexBlocks(count)), 1, kernels::kIndexThreads}, body);
}

// C = op(A) · op(B), row-major with leading dims: what MoeKernels.cu asks cuBLASLt for.
std::string plainGemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, const float *A, int64_t lda, const float *B,
                      int64_t ldb, float *C, int64_t ldc) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t q = 0; q < K; ++q)
        acc += (ta ? A[q * lda + m] : A[m * lda + q]) * (tb ? B[n * ldb + q] : B[q * ldb + n]);
      C[m * ldc + n] = acc;
    }
  return "";
}

// The MoE backward in the CUDA backend's sequence (MoeKernels.cu's moeGradOnDevice), the device
// steps emulated: ids [T·k] (-1: a row of no expert), outputs as the step's.
struct GradOut {
  std::vector<float> dx, dw, dgu, ddn, work;
};
std::string cudaSequenceGrad(const std::vector<int64_t> &ids, int64_t T, int64_t k, int64_t E, int64_t H, int64_t I,
                             kernels::MoeActivation act, const std::vector<float> &x, const std::vector<float> &dy,
                             const std::vector<float> &w, const std::vector<float> &gu, const std::vector<float> &dn,
                             GradOut &out) {
  const int64_t N = T * k;
  std::vector<int64_t> counts(static_cast<size_t>(E)), rowOf(static_cast<size_t>(N));
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  bool unrouted = false; // the received rows past the total have no expert
  if (std::string err = kernels::planMoeRowGroups(ids.data(), T, k, E, rowOf.data(), counts.data(), groups, total,
                                                  unrouted);
      !err.empty())
    return err;
  std::vector<float> rows(size_t(total * H)), dyw(size_t(total * H)), gate(size_t(total * 2 * I)),
      o(size_t(total * H)), dh(size_t(total * I)), dxRows(size_t(total * H));
  out.dx.assign(size_t(T * H), -7.0f), out.dw.assign(size_t(N), -7.0f), out.dgu.assign(size_t(E * 2 * I * H), -7.0f);
  out.ddn.assign(size_t(E * H * I), -7.0f), out.work.assign(size_t(N * 3 * I), -7.0f);
  kernels::MoeGradSeqParams p;
  p.x = x.data(), p.dy = dy.data(), p.weights = w.data(), p.rowOf = rowOf.data(), p.rows = rows.data();
  p.dyw = dyw.data(), p.gate = gate.data(), p.o = o.data(), p.dh = dh.data(), p.dxRows = dxRows.data();
  p.work = out.work.data(), p.dweights = out.dw.data(), p.dx = out.dx.data();
  p.T = T, p.H = H, p.k = k, p.I = I, p.total = total, p.activation = act;
  auto run = [&p](kernels::MoeGradStep step, int64_t count) {
    switch (step) {
    case kernels::MoeGradStep::Gather: return launch(count, [&] { kernels::moeGradGatherElements(p); });
    case kernels::MoeGradStep::Hidden: return launch(count, [&] { kernels::moeGradHiddenElements(p); });
    case kernels::MoeGradStep::Glu: return launch(count, [&] { kernels::moeGradGluElements(p); });
    case kernels::MoeGradStep::Weights: return launch(count, [&] { kernels::moeGradWeightsElements(p); });
    case kernels::MoeGradStep::X: return launch(count, [&] { kernels::moeGradXElements(p); });
    }
    return std::string("unknown step");
  };
  auto zero = [](float *ptr, int64_t count) {
    std::fill_n(ptr, count, 0.0f);
    return std::string();
  };
  return kernels::runMoeGradSequence(groups, p, gu.data(), dn.data(), E, out.dgu.data(), out.ddn.data(), plainGemm,
                                     run, zero);
}

// d/dθ of a scalar f64 function of the f32 values `v`, by central differences, per element.
std::vector<double> centralDifferences(std::vector<float> &v, const std::function<double()> &f) {
  std::vector<double> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) {
    const float keep = v[i];
    const double h = 1e-3 * (1.0 + std::fabs(keep));
    v[i] = float(keep + h);
    const double up = f(), hUp = double(v[i]) - keep;
    v[i] = float(keep - h);
    const double down = f(), hDown = keep - double(v[i]);
    v[i] = keep;
    out[i] = (up - down) / (hUp + hDown);
  }
  return out;
}

void expectClose(const std::vector<float> &got, const std::vector<double> &want, const char *what, double tol) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double w : want)
    scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + scale)) << what << " element " << i;
}

double activate(int act, double g) {
  if (act == 0)
    return g / (1 + std::exp(-g));
  const double c = 0.79788456080286535588;
  return 0.5 * g * (1 + std::tanh(c * (g + 0.044715 * g * g * g)));
}

TEST(MoeGradKernels, ExpertsGradMatchesFiniteDifferences) {
  const int64_t T = 7, H = 6, I = 5, E = 4, k = 2;
  for (int act : {0, 1}) {
    std::vector<float> x = randomFloats(size_t(T * H), 11), gu = randomFloats(size_t(E * 2 * I * H), 12, 0.4f),
                       dn = randomFloats(size_t(E * H * I), 13, 0.4f), w = randomFloats(size_t(T * k), 14),
                       dy = randomFloats(size_t(T * H), 15);
    std::vector<int64_t> ids(size_t(T * k));
    for (int64_t t = 0; t < T; ++t) { // expert 3 gets no row
      ids[size_t(t * k)] = t % 3;
      ids[size_t(t * k + 1)] = (t + 1 + t % 2) % 3;
    }
    // L = Σ_t,h dy[t, h] · y[t, h] in f64.
    auto loss = [&]() {
      double L = 0;
      for (int64_t t = 0; t < T; ++t)
        for (int64_t j = 0; j < k; ++j) {
          const int64_t r = t * k + j, e = ids[size_t(r)];
          std::vector<double> hv(static_cast<size_t>(I));
          for (int64_t c = 0; c < I; ++c) {
            double g = 0, u = 0;
            for (int64_t d = 0; d < H; ++d) {
              g += double(gu[size_t((e * 2 * I + c) * H + d)]) * x[size_t(t * H + d)];
              u += double(gu[size_t((e * 2 * I + I + c) * H + d)]) * x[size_t(t * H + d)];
            }
            hv[size_t(c)] = activate(act, g) * u;
          }
          for (int64_t d = 0; d < H; ++d) {
            double o = 0;
            for (int64_t c = 0; c < I; ++c)
              o += double(dn[size_t((e * H + d) * I + c)]) * hv[size_t(c)];
            L += double(dy[size_t(t * H + d)]) * double(w[size_t(r)]) * o;
          }
        }
      return L;
    };
    const std::vector<double> fx = centralDifferences(x, loss), fw = centralDifferences(w, loss),
                              fgu = centralDifferences(gu, loss), fdn = centralDifferences(dn, loss);

    rt::Attrs attrs;
    attrs.set("activation", std::string(act ? "gelu_tanh" : "silu"));
    Tensor xt = tensor(DType::F32, {T, H}, x), it = tensor(DType::I64, {T, k}, ids), wt = tensor(DType::F32, {T, k}, w),
           gt = tensor(DType::F32, {E, 2 * I, H}, gu), dt = tensor(DType::F32, {E, H, I}, dn),
           yt = tensor(DType::F32, {T, H}, dy);
    Tensor dx = empty(DType::F32, {T, H}), dw = empty(DType::F32, {T, k}), dgu = empty(DType::F32, {E, 2 * I, H}),
           ddn = empty(DType::F32, {E, H, I}), work = empty(DType::F32, {T * k, 3 * I});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_experts_grad", {&xt, &it, &wt, &gt, &dt, &yt},
                                         {&dx, &dw, &dgu, &ddn, &work}, attrs),
              "");
    const double tol = 2e-3;
    expectClose(floats(dx), fx, "CPU dx", tol);
    expectClose(floats(dw), fw, "CPU dweights", tol);
    expectClose(floats(dgu), fgu, "CPU dgate_up", tol);
    expectClose(floats(ddn), fdn, "CPU ddown", tol);

    GradOut seq;
    ASSERT_EQ(cudaSequenceGrad(ids, T, k, E, H, I, act ? kernels::MoeActivation::GeluTanh : kernels::MoeActivation::Silu,
                               x, dy, w, gu, dn, seq),
              "");
    expectClose(seq.dx, fx, "CUDA sequence dx", tol);
    expectClose(seq.dw, fw, "CUDA sequence dweights", tol);
    expectClose(seq.dgu, fgu, "CUDA sequence dgate_up", tol);
    expectClose(seq.ddn, fdn, "CUDA sequence ddown", tol);
    // Expert 3 got no row: its gradients are exact zeros on both paths.
    for (const std::vector<float> &g : {floats(dgu), seq.dgu})
      for (int64_t n = 3 * 2 * I * H; n < E * 2 * I * H; ++n)
        ASSERT_EQ(g[size_t(n)], 0.0f);
  }
}

TEST(MoeGradKernels, RouterGradMatchesFiniteDifferences) {
  const int64_t T = 5, E = 6, k = 2;
  struct Case {
    bool sigmoid, normalize;
    double eps, scale;
  };
  for (Case c : {Case{false, true, 1e-20, 1.0}, Case{false, false, 0.0, 1.0}, Case{true, true, 1e-20, 2.5}}) {
    std::vector<float> logits = randomFloats(size_t(T * E), 21), dw = randomFloats(size_t(T * k), 22);
    std::vector<int64_t> ids(size_t(T * k));
    for (int64_t t = 0; t < T; ++t) {
      ids[size_t(t * k)] = (2 * t) % E;
      ids[size_t(t * k + 1)] = (2 * t + 3) % E;
    }
    auto loss = [&]() {
      double L = 0;
      for (int64_t t = 0; t < T; ++t) {
        std::vector<double> s(static_cast<size_t>(E));
        double m = -1e300, z = 0;
        for (int64_t e = 0; e < E; ++e)
          m = std::max(m, double(logits[size_t(t * E + e)]));
        for (int64_t e = 0; e < E; ++e)
          z += std::exp(double(logits[size_t(t * E + e)]) - m);
        for (int64_t e = 0; e < E; ++e) {
          const double l = logits[size_t(t * E + e)];
          s[size_t(e)] = c.sigmoid ? 1 / (1 + std::exp(-l)) : std::exp(l - m) / z;
        }
        double S = c.eps;
        for (int64_t j = 0; j < k; ++j)
          S += s[size_t(ids[size_t(t * k + j)])];
        for (int64_t j = 0; j < k; ++j) {
          const double wj = s[size_t(ids[size_t(t * k + j)])] * c.scale / (c.normalize ? S : 1.0);
          L += wj * dw[size_t(t * k + j)];
        }
      }
      return L;
    };
    const std::vector<double> want = centralDifferences(logits, loss);
    rt::Attrs attrs;
    attrs.set("scoring", std::string(c.sigmoid ? "sigmoid" : "softmax"));
    attrs.set("normalize", c.normalize);
    attrs.set("norm_epsilon", c.eps);
    attrs.set("scale", c.scale);
    Tensor lt = tensor(DType::F32, {T, E}, logits), it = tensor(DType::I64, {T, k}, ids),
           dwt = tensor(DType::F32, {T, k}, dw), out = empty(DType::F32, {T, E});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_router_grad", {&lt, &it, &dwt}, {&out}, attrs), "");
    expectClose(floats(out), want, c.sigmoid ? "sigmoid" : c.normalize ? "softmax, renormalised" : "softmax", 2e-3);
  }
}



// Expert parallelism's backward (moe_grouped_gemm_grad) against moe_experts_grad on one rank:
// the (token, choice) rows laid out as sc.moe_dispatch delivers them from two sources (tokens
// [0, T/2) and [T/2, T)), source-major then by expert, with three unwritten rows past the
// total. Its per-row dx summed per token and its per-row dweights must be moe_experts_grad's dx
// and dweights; its expert gradients (summed over both sources' segments) must be the same;
// the rows past the total are zero. CPU kernel and SIMT element functions.
TEST(MoeGradKernels, GroupedGemmGradMatchesExpertsGrad) {
  const int64_t T = 6, H = 4, I = 3, E = 4, k = 2, G = 2, N = T * k, R = N + 3;
  const std::vector<int64_t> ids{0, 2, 1, 2, 3, 0, 2, 1, 0, 2, 2, 3};
  std::vector<float> x = randomFloats(size_t(T * H), 21), w = randomFloats(size_t(T * k), 22),
                     gu = randomFloats(size_t(E * 2 * I * H), 23, 0.5f), dn = randomFloats(size_t(E * H * I), 24, 0.5f),
                     dy = randomFloats(size_t(T * H), 25);
  rt::Attrs attrs;
  attrs.set("activation", std::string("silu"));
  Tensor xt = tensor(DType::F32, {T, H}, x), it = tensor(DType::I64, {T, k}, ids), wt = tensor(DType::F32, {T, k}, w),
         gt = tensor(DType::F32, {E, 2 * I, H}, gu), dt = tensor(DType::F32, {E, H, I}, dn),
         yt = tensor(DType::F32, {T, H}, dy);
  Tensor dx = empty(DType::F32, {T, H}), dw = empty(DType::F32, {T, k}), dgu = empty(DType::F32, {E, 2 * I, H}),
         ddn = empty(DType::F32, {E, H, I}), work = empty(DType::F32, {N, 3 * I});
  ASSERT_EQ(test::runCpuKernel<Tensor>("moe_experts_grad", {&xt, &it, &wt, &gt, &dt, &yt}, {&dx, &dw, &dgu, &ddn, &work},
                                       attrs),
            "");
  // The dispatched layout: rowOf[t·k + j] is the pair's received row.
  std::vector<int64_t> counts(static_cast<size_t>(G * E), 0), rowOf(static_cast<size_t>(N));
  std::vector<float> rx(size_t(R * H), -7.0f), rdy(size_t(R * H), -7.0f), rw(size_t(R), -7.0f);
  int64_t row = 0;
  for (int64_t g = 0; g < G; ++g)
    for (int64_t e = 0; e < E; ++e)
      for (int64_t s = 0; s < N; ++s) {
        const int64_t t = s / k;
        if ((t < T / 2 ? 0 : 1) != g || ids[size_t(s)] != e)
          continue;
        ++counts[size_t(g * E + e)];
        rowOf[size_t(s)] = row;
        std::copy_n(x.begin() + t * H, H, rx.begin() + row * H);
        std::copy_n(dy.begin() + t * H, H, rdy.begin() + row * H);
        rw[size_t(row)] = w[size_t(s)];
        ++row;
      }
  Tensor rxt = tensor(DType::F32, {R, H}, rx), ryt = tensor(DType::F32, {R, H}, rdy), rwt = tensor(DType::F32, {R, 1}, rw),
         ct = tensor(DType::I64, {G * E}, counts);
  auto check = [&](const char *what, const Tensor &gdx, const Tensor &gdw, const Tensor &gdgu, const Tensor &gddn) {
    SCOPED_TRACE(what);
    const std::vector<float> rowsDx = floats(gdx), rowsDw = floats(gdw), refDx = floats(dx), refDw = floats(dw);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t c = 0; c < H; ++c) {
        float acc = 0.0f;
        for (int64_t j = 0; j < k; ++j)
          acc += rowsDx[size_t(rowOf[size_t(t * k + j)] * H + c)];
        EXPECT_NEAR(acc, refDx[size_t(t * H + c)], 1e-5) << "dx[" << t << ", " << c << "]";
      }
    for (int64_t s = 0; s < N; ++s)
      EXPECT_NEAR(rowsDw[size_t(rowOf[size_t(s)])], refDw[size_t(s)], 1e-5) << "dweights " << s;
    for (int64_t r = N; r < R; ++r) {
      EXPECT_EQ(rowsDw[size_t(r)], 0.0f);
      for (int64_t c = 0; c < H; ++c)
        EXPECT_EQ(rowsDx[size_t(r * H + c)], 0.0f);
    }
    const std::vector<float> a = floats(gdgu), b = floats(dgu), c = floats(gddn), d = floats(ddn);
    for (size_t n = 0; n < a.size(); ++n)
      EXPECT_NEAR(a[n], b[n], 1e-5) << "dgate_up " << n;
    for (size_t n = 0; n < c.size(); ++n)
      EXPECT_NEAR(c[n], d[n], 1e-5) << "ddown " << n;
  };
  Tensor gdx = empty(DType::F32, {R, H}), gdw = empty(DType::F32, {R, 1}), gdgu = empty(DType::F32, {E, 2 * I, H}),
         gddn = empty(DType::F32, {E, H, I}), gwork = empty(DType::F32, {R, 3 * I});
  ASSERT_EQ(test::runCpuKernel<Tensor>("moe_grouped_gemm_grad", {&rxt, &ryt, &rwt, &ct, &gt, &dt},
                                       {&gdx, &gdw, &gdgu, &gddn, &gwork}, attrs),
            "");
  check("CPU", gdx, gdw, gdgu, gddn);


  // The CUDA backend's sequence: each received row's expert from the counts, on the host.
  std::vector<int64_t> rowExperts;
  ASSERT_EQ(kernels::moeReceivedRowExperts(counts.data(), G * E, E, R, rowExperts), "");
  GradOut seq;
  ASSERT_EQ(cudaSequenceGrad(rowExperts, R, 1, E, H, I, kernels::MoeActivation::Silu, rx, rdy, rw, gu, dn, seq), "");
  check("CUDA sequence", tensor(DType::F32, {R, H}, seq.dx), tensor(DType::F32, {R, 1}, seq.dw),
        tensor(DType::F32, {E, 2 * I, H}, seq.dgu), tensor(DType::F32, {E, H, I}, seq.ddn));
  const std::vector<float> cpuWork = floats(gwork); // the same layout as the CPU kernel's, to rounding
  ASSERT_EQ(seq.work.size(), cpuWork.size());
  for (size_t n = 0; n < cpuWork.size(); ++n)
    EXPECT_NEAR(seq.work[n], cpuWork[n], 1e-5 * (1 + std::fabs(cpuWork[n]))) << "work " << n;
}

} // namespace
