// The kernels added with the raised MoE router (docs/moe.md): moe_router (MoeKernels.h) against
// a double-precision reference of transformers' routers (Mixtral, Qwen2-MoE, DeepSeek-V3), GeGLU
// moe_experts against a direct loop, scatter_elements against a row-major loop, arg_min against
// a scan; the CUDA backend's SIMT kernels through the Simt.h emulator against the CPU kernels
// (bit for bit where they share the source; to rounding for moe_experts).
#include "shardc/kernels/MoeKernels.h"
#include "shardc/kernels/ScanKernels.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
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
template <typename T> std::vector<T> values(const Tensor &t) {
  std::vector<T> v(t.bytes.size() / sizeof(T));
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
  return simt::launch({int(kernels::indexBlocks(count < 1 ? 1 : count)), 1, kernels::kIndexThreads}, body);
}

struct RouterCase {
  const char *name;
  bool sigmoid, bias, normalize;
  int64_t nGroup, topkGroup, groupK;
  double eps, scale;
};

// transformers' routers in double: scores, choice = scores + bias, DeepSeek's group mask, a
// stable top-k of the choice, the unbiased scores renormalised and scaled.
void routerReference(const RouterCase &c, const std::vector<float> &logits, const std::vector<float> &bias, int64_t T,
                     int64_t E, int64_t k, std::vector<int64_t> &ids, std::vector<double> &weights) {
  ids.assign(size_t(T * k), 0);
  weights.assign(size_t(T * k), 0.0);
  for (int64_t t = 0; t < T; ++t) {
    std::vector<double> s(static_cast<size_t>(E)), choice(static_cast<size_t>(E));
    double m = -INFINITY, sum = 0.0;
    for (int64_t e = 0; e < E; ++e)
      m = std::max(m, double(logits[size_t(t * E + e)]));
    for (int64_t e = 0; e < E; ++e)
      sum += std::exp(double(logits[size_t(t * E + e)]) - m);
    for (int64_t e = 0; e < E; ++e) {
      const double l = logits[size_t(t * E + e)];
      s[size_t(e)] = c.sigmoid ? 1.0 / (1.0 + std::exp(-l)) : std::exp(l - m) / sum;
      choice[size_t(e)] = s[size_t(e)] + (c.bias ? double(bias[size_t(e)]) : 0.0);
    }
    const int64_t size = E / c.nGroup;
    std::vector<double> groupScore(static_cast<size_t>(c.nGroup));
    for (int64_t g = 0; g < c.nGroup; ++g) {
      std::vector<double> in(choice.begin() + g * size, choice.begin() + (g + 1) * size);
      std::sort(in.begin(), in.end(), std::greater<double>());
      groupScore[size_t(g)] = std::accumulate(in.begin(), in.begin() + c.groupK, 0.0);
    }
    std::vector<int64_t> order(static_cast<size_t>(c.nGroup));
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return groupScore[size_t(a)] > groupScore[size_t(b)]; });
    std::vector<bool> kept(static_cast<size_t>(c.nGroup), false);
    for (int64_t n = 0; n < c.topkGroup; ++n)
      kept[size_t(order[size_t(n)])] = true;
    for (int64_t e = 0; e < E; ++e)
      if (!kept[size_t(e / size)])
        choice[size_t(e)] = -INFINITY;
    std::vector<int64_t> experts(static_cast<size_t>(E));
    std::iota(experts.begin(), experts.end(), 0);
    std::stable_sort(experts.begin(), experts.end(),
                     [&](int64_t a, int64_t b) { return choice[size_t(a)] > choice[size_t(b)]; });
    double chosen = 0.0;
    for (int64_t j = 0; j < k; ++j)
      chosen += s[size_t(experts[size_t(j)])];
    for (int64_t j = 0; j < k; ++j) {
      ids[size_t(t * k + j)] = experts[size_t(j)];
      double w = s[size_t(experts[size_t(j)])];
      if (c.normalize)
        w /= chosen + c.eps;
      weights[size_t(t * k + j)] = w * c.scale;
    }
  }
}

rt::Attrs routerAttrs(const RouterCase &c) {
  rt::Attrs a;
  a.set("scoring", std::string(c.sigmoid ? "sigmoid" : "softmax"));
  a.set("n_group", c.nGroup);
  a.set("topk_group", c.topkGroup);
  a.set("group_k", c.groupK);
  a.set("normalize", c.normalize);
  a.set("norm_epsilon", c.eps);
  a.set("scale", c.scale);
  return a;
}

TEST(MoeRouter, MatchesTransformersRoutersAndTheSimtKernel) {
  const int64_t T = 37, E = 16, k = 4;
  const RouterCase cases[] = {
      {"mixtral", false, false, true, 1, 1, 2, 0.0, 1.0},
      {"qwen2_moe", false, false, false, 1, 1, 2, 0.0, 1.0},
      {"deepseek_v3", true, true, true, 4, 2, 2, 1e-20, 2.5},
      {"sigmoid_bias_only", true, true, false, 1, 1, 2, 0.0, 1.0},
      {"groups_top1", false, false, true, 8, 3, 1, 0.0, 1.0},
  };
  for (const RouterCase &c : cases) {
    const std::vector<float> logits = randomFloats(size_t(T * E), 5), bias = randomFloats(size_t(E), 6, 0.1f);
    std::vector<int64_t> wantIds;
    std::vector<double> wantW;
    routerReference(c, logits, bias, T, E, k, wantIds, wantW);
    Tensor lt = tensor(DType::F32, {T, E}, logits), bt = tensor(DType::F32, {E}, bias);
    Tensor ids = empty(DType::I64, {T, k}), w = empty(DType::F32, {T, k});
    std::vector<Tensor *> in{&lt};
    if (c.bias)
      in.push_back(&bt);
    const rt::Attrs attrs = routerAttrs(c);
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_router", in, {&ids, &w}, attrs), "") << c.name;
    EXPECT_EQ(values<int64_t>(ids), wantIds) << c.name;
    const std::vector<float> got = values<float>(w);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], wantW[i], 2e-6 * (1 + std::fabs(wantW[i]))) << c.name << " weight " << i;

    kernels::MoeRouterParams p;
    ASSERT_EQ(kernels::planMoeRouter({T, E}, c.bias ? &bt.shape : nullptr, {T, k}, {T, k}, c.nGroup, c.topkGroup,
                                     c.groupK, p),
              "");
    Tensor sIds = empty(DType::I64, {T, k}), sW = empty(DType::F32, {T, k});
    p.logits = lt.bytes.data();
    p.bias = c.bias ? bt.bytes.data() : nullptr;
    p.indices = reinterpret_cast<int64_t *>(sIds.bytes.data());
    p.weights = sW.bytes.data();
    p.sigmoid = c.sigmoid;
    p.normalize = c.normalize;
    p.normEpsilon = float(c.eps);
    p.scale = float(c.scale);
    ASSERT_EQ(launch(T, [&] { kernels::moeRouterTokens(p); }), "");
    EXPECT_EQ(sIds.bytes, ids.bytes) << "SIMT " << c.name;
    EXPECT_EQ(sW.bytes, w.bytes) << "SIMT " << c.name;
  }
  // Groups that do not divide the experts, or keep fewer than k of them, are errors.
  Tensor lt = tensor(DType::F32, {2, 6}, std::vector<float>(12, 0.5f));
  Tensor ids = empty(DType::I64, {2, 4}), w = empty(DType::F32, {2, 4});
  RouterCase bad{"bad", false, false, true, 4, 1, 1, 0.0, 1.0};
  EXPECT_NE(test::runCpuKernel<Tensor>("moe_router", {&lt}, {&ids, &w}, routerAttrs(bad)).find("n_group 4"),
            std::string::npos);
  bad.nGroup = 3;
  EXPECT_NE(test::runCpuKernel<Tensor>("moe_router", {&lt}, {&ids, &w}, routerAttrs(bad)).find("do not fit"),
            std::string::npos);
}

// GeGLU experts (activation gelu_tanh, gelu_erf) against a direct loop. The CPU kernel runs
// moeGluElement, the GLU the CUDA backend launches between its GEMMs.
TEST(MoeRouter, GegluExpertsMatchADirectLoop) {
  const int64_t T = 9, H = 8, I = 6, E = 3, k = 2;
  const std::vector<float> x = randomFloats(size_t(T * H), 11), gu = randomFloats(size_t(E * 2 * I * H), 12, 0.4f),
                           dn = randomFloats(size_t(E * H * I), 13, 0.4f), w = randomFloats(size_t(T * k), 14);
  std::vector<int64_t> ids(static_cast<size_t>(T * k));
  for (int64_t r = 0; r < T * k; ++r)
    ids[size_t(r)] = (r * 5 + r / 3) % E;
  for (const char *act : {"gelu_tanh", "gelu_erf", "silu"}) {
    auto activate = [&](double g) {
      if (std::string(act) == "gelu_tanh")
        return 0.5 * g * (1 + std::tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
      if (std::string(act) == "gelu_erf")
        return 0.5 * g * (1 + std::erf(g / std::sqrt(2.0)));
      return g / (1 + std::exp(-g));
    };
    std::vector<double> want(static_cast<size_t>(T * H), 0.0);
    for (int64_t r = 0; r < T * k; ++r) {
      const int64_t t = r / k, e = ids[size_t(r)];
      std::vector<double> h(static_cast<size_t>(I));
      for (int64_t c = 0; c < I; ++c) {
        double g = 0, u = 0;
        for (int64_t d = 0; d < H; ++d) {
          g += double(gu[size_t((e * 2 * I + c) * H + d)]) * x[size_t(t * H + d)];
          u += double(gu[size_t((e * 2 * I + I + c) * H + d)]) * x[size_t(t * H + d)];
        }
        h[size_t(c)] = activate(g) * u;
      }
      for (int64_t d = 0; d < H; ++d)
        for (int64_t c = 0; c < I; ++c)
          want[size_t(t * H + d)] += double(dn[size_t((e * H + d) * I + c)]) * h[size_t(c)] * w[size_t(r)];
    }
    Tensor xt = tensor(DType::F32, {T, H}, x), it = tensor(DType::I64, {T, k}, ids), wt = tensor(DType::F32, {T, k}, w),
           gt = tensor(DType::F32, {E, 2 * I, H}, gu), dt = tensor(DType::F32, {E, H, I}, dn);
    Tensor y = empty(DType::F32, {T, H}), hidden = empty(DType::F32, {T * k, I});
    rt::Attrs attrs;
    attrs.set("activation", std::string(act));
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_experts", {&xt, &it, &wt, &gt, &dt}, {&y, &hidden}, attrs), "");
    const std::vector<float> got = values<float>(y);
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_NEAR(got[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << act << " element " << i;
  }
  Tensor xt = tensor(DType::F32, {1, 2}, std::vector<float>{1, 2}), it = tensor(DType::I64, {1, 1}, std::vector<int64_t>{0});
  Tensor wt = tensor(DType::F32, {1, 1}, std::vector<float>{1}), gt = tensor(DType::F32, {1, 2, 2}, std::vector<float>(4, 1));
  Tensor dt = tensor(DType::F32, {1, 2, 1}, std::vector<float>(2, 1)), y = empty(DType::F32, {1, 2}), h = empty(DType::F32, {1, 1});
  rt::Attrs relu;
  relu.set("activation", std::string("relu"));
  EXPECT_NE(test::runCpuKernel<Tensor>("moe_experts", {&xt, &it, &wt, &gt, &dt}, {&y, &h}, relu).find("activation 'relu'"),
            std::string::npos);
}

// scatter_elements against a loop over the indices in row-major order (repeated targets: the
// order matters for none, and for float add/mul rounding), every axis and reduction.
TEST(MoeRouter, ScatterElementsMatchesARowMajorLoop) {
  const std::vector<int64_t> dataShape{4, 3, 5}, idxShape{3, 2, 4};
  for (int64_t axis : {0, 1, 2})
    for (const char *reduction : {"none", "add", "mul", "max", "min"})
      for (DType dtype : {DType::F32, DType::I64}) {
        std::mt19937 rng(unsigned(axis * 7 + 1));
        const int64_t len = dataShape[size_t(axis)], n = 3 * 2 * 4;
        std::vector<int64_t> idx(static_cast<size_t>(n));
        for (int64_t &i : idx)
          i = int64_t(rng() % uint32_t(2 * len)) - len; // negatives wrap
        const std::vector<float> df = randomFloats(60, 31), uf = randomFloats(size_t(n), 32);
        std::vector<double> want(df.begin(), df.end());
        std::vector<int64_t> di(60), ui(static_cast<size_t>(n));
        for (size_t i = 0; i < di.size(); ++i)
          di[i] = int64_t(rng() % 9) - 4;
        for (size_t i = 0; i < ui.size(); ++i)
          ui[i] = int64_t(rng() % 9) - 4;
        std::vector<int64_t> wantI = di;
        for (int64_t p = 0; p < n; ++p) {
          int64_t c[3] = {p / 8, (p / 4) % 2, p % 4};
          int64_t i = idx[size_t(p)];
          c[axis] = i < 0 ? i + len : i;
          const int64_t at = (c[0] * 3 + c[1]) * 5 + c[2];
          const std::string r = reduction;
          auto combine = [&](auto cur, auto u) {
            return r == "add" ? cur + u : r == "mul" ? cur * u : r == "max" ? std::max(cur, u) : r == "min" ? std::min(cur, u) : u;
          };
          want[size_t(at)] = double(float(combine(float(want[size_t(at)]), uf[size_t(p)])));
          wantI[size_t(at)] = combine(wantI[size_t(at)], ui[size_t(p)]);
        }
        Tensor data = dtype == DType::F32 ? tensor(dtype, dataShape, df) : tensor(dtype, dataShape, di);
        Tensor upd = dtype == DType::F32 ? tensor(dtype, idxShape, uf) : tensor(dtype, idxShape, ui);
        Tensor it = tensor(DType::I64, idxShape, idx), y = empty(dtype, dataShape);
        rt::Attrs attrs;
        attrs.set("axis", axis);
        attrs.set("reduction", std::string(reduction));
        ASSERT_EQ(test::runCpuKernel<Tensor>("scatter_elements", {&data, &it, &upd}, {&y}, attrs), "");
        if (dtype == DType::F32) {
          const std::vector<float> got = values<float>(y);
          for (size_t i = 0; i < got.size(); ++i)
            ASSERT_EQ(got[i], float(want[i])) << "axis " << axis << " " << reduction << " element " << i;
        } else {
          EXPECT_EQ(values<int64_t>(y), wantI) << "axis " << axis << " " << reduction;
        }
        kernels::ScatterElementsParams p;
        ASSERT_EQ(kernels::planScatterElements(dataShape, idxShape, idxShape, axis, reduction, p), "");
        Tensor sy = data; // the backend copies data into y first
        p.indices = reinterpret_cast<const int64_t *>(it.bytes.data());
        p.updates = upd.bytes.data();
        p.y = sy.bytes.data();
        p.type = kernels::AnyType(int(dtype));
        ASSERT_EQ(launch(p.lines, [&] { kernels::scatterElementsLines(p); }), "");
        EXPECT_EQ(sy.bytes, y.bytes) << "SIMT axis " << axis << " " << reduction;
      }
  Tensor data = tensor(DType::F32, {2, 2}, std::vector<float>(4, 0)), upd = tensor(DType::F32, {1, 1}, std::vector<float>{1});
  Tensor it = tensor(DType::I64, {1, 1}, std::vector<int64_t>{2}), y = empty(DType::F32, {2, 2});
  rt::Attrs attrs;
  attrs.set("axis", int64_t(1));
  EXPECT_NE(test::runCpuKernel<Tensor>("scatter_elements", {&data, &it, &upd}, {&y}, attrs).find("index 2 out of range"),
            std::string::npos);
}

// arg_min: the first (or last) smallest; the first NaN wins; the SIMT line function agrees.
TEST(MoeRouter, ArgMinFindsTheSmallest) {
  const float nan = std::nanf("");
  const std::vector<float> x{3, 1, 2, 1, /**/ 5, nan, 0, nan, /**/ -1, -1, 4, -1};
  for (bool last : {false, true}) {
    Tensor xt = tensor(DType::F32, {3, 4}, x), y = empty(DType::I64, {3});
    rt::Attrs attrs;
    attrs.set("axis", int64_t(1));
    attrs.set("keepdims", false);
    attrs.set("select_last_index", last);
    ASSERT_EQ(test::runCpuKernel<Tensor>("arg_min", {&xt}, {&y}, attrs), "");
    EXPECT_EQ(values<int64_t>(y), (last ? std::vector<int64_t>{3, 1, 3} : std::vector<int64_t>{1, 1, 0}));
    kernels::AxisLinesParams p;
    ASSERT_EQ(kernels::planAxisLines({3, 4}, 1, p), "");
    Tensor sy = empty(DType::I64, {3});
    p.x = xt.bytes.data();
    p.y = sy.bytes.data();
    p.selectLast = last;
    p.minimum = 1;
    ASSERT_EQ(launch(3, [&] { kernels::argMaxLines(p); }), "");
    EXPECT_EQ(sy.bytes, y.bytes);
  }
  Tensor it = tensor(DType::I64, {2, 3}, std::vector<int64_t>{4, -2, 7, 0, 0, -9}), y = empty(DType::I64, {3});
  rt::Attrs attrs;
  attrs.set("axis", int64_t(0));
  attrs.set("keepdims", false);
  ASSERT_EQ(test::runCpuKernel<Tensor>("arg_min", {&it}, {&y}, attrs), "");
  EXPECT_EQ(values<int64_t>(y), (std::vector<int64_t>{1, 0, 1}));
}

} // namespace
