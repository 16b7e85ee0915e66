// The routing and grouped-experts kernels of mixture-of-experts graphs
// (shardc/kernels/MoeKernels.h): the CPU backend's top_k, gather_nd and moe_experts against
// plain references, and the CUDA backend's SIMT kernels through the Simt.h emulator against the
// CPU kernels (top_k, gather_nd bit for bit); moe_experts and the expert-parallel steps as the
// CUDA backend sequences them (runtime/backends/cuda/MoeKernels.cu: the host's counting sort and
// GEMM groups, the emulated permute, GLU and unpermute kernels, a plain GEMM for cuBLASLt's).
#include "shardc/kernels/MoeKernels.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
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
  return simt::launch({int(kernels::indexBlocks(count)), 1, kernels::kIndexThreads}, body);
}

// The GLU as the CUDA backend launches it, through the emulator.
auto emulatedGlu(kernels::MoeGluParams &glu) {
  return [&glu](int64_t rows) {
    glu.rows = rows;
    return launch(rows * glu.I, [&] { kernels::moeGluElements(glu); });
  };
}

// C [M, N] = A [M, K] · B^T, B stored [N, K]: what MoeKernels.cu asks cuBLASLt for.
std::string gemmBt(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
  for (int64_t m = 0; m < M; ++m)
    for (int64_t n = 0; n < N; ++n) {
      float acc = 0.0f;
      for (int64_t q = 0; q < K; ++q)
        acc += A[m * K + q] * B[n * K + q];
      C[m * N + n] = acc;
    }
  return "";
}

// moe_experts in the CUDA backend's sequence (MoeKernels.cu), the device steps emulated.
std::string cudaSequenceMoeExperts(const std::vector<float> &x, const std::vector<int64_t> &ids,
                                   const std::vector<float> &w, const std::vector<float> &gu,
                                   const std::vector<float> &dn, int64_t T, int64_t H, int64_t I, int64_t E, int64_t k,
                                   kernels::MoeActivation act, std::vector<float> &y) {
  const int64_t N = T * k;
  std::vector<int64_t> counts(static_cast<size_t>(E)), rowOf(static_cast<size_t>(N));
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  bool unrouted = false;
  if (std::string err = kernels::planMoeRowGroups(ids.data(), T, k, E, rowOf.data(), counts.data(), groups, total,
                                                  unrouted);
      !err.empty() || unrouted)
    return err.empty() ? "bad expert id" : err;
  kernels::MoeEpParams p;
  p.T = T, p.k = k;
  std::vector<float> rows(size_t(N * H)), gate(size_t(N * 2 * I)), hidden(size_t(N * I)), back(size_t(N * H));
  y.assign(size_t(T * H), 0.0f);
  p.x = x.data(), p.rows = rows.data(), p.rowOfC = rowOf.data(), p.H = H;
  if (std::string err = launch(N * H, [&] { kernels::moePermuteElements(p); }); !err.empty())
    return err;
  kernels::MoeGluParams glu;
  glu.gate = gate.data(), glu.hidden = hidden.data(), glu.rows = total, glu.I = I, glu.activation = act;
  if (std::string err = kernels::runMoeExpertGroups(groups, total, rows.data(), gu.data(), dn.data(), H, I, gate.data(),
                                                    hidden.data(), back.data(), gemmBt, emulatedGlu(glu));
      !err.empty())
    return err;
  p.back = back.data(), p.weights = w.data(), p.y = y.data();
  return launch(T * H, [&] { kernels::moeUnpermuteElements(p); });
}

// top_k's reference: a stable sort of each line by value (NaN first when largest).
void topKReference(const std::vector<float> &x, int64_t outer, int64_t n, int64_t inner, int64_t k, bool largest,
                   std::vector<float> &vals, std::vector<int64_t> &idx) {
  vals.assign(size_t(outer * k * inner), 0.0f);
  idx.assign(vals.size(), 0);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t in = 0; in < inner; ++in) {
      std::vector<int64_t> order(static_cast<size_t>(n));
      std::iota(order.begin(), order.end(), 0);
      auto at = [&](int64_t i) { return x[size_t((o * n + i) * inner + in)]; };
      std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
        const float va = at(a), vb = at(b);
        if (std::isnan(va) || std::isnan(vb))
          return !std::isnan(va) ? !largest : (std::isnan(vb) ? false : largest);
        return largest ? va > vb : va < vb;
      });
      for (int64_t j = 0; j < k; ++j) {
        idx[size_t((o * k + j) * inner + in)] = order[size_t(j)];
        vals[size_t((o * k + j) * inner + in)] = at(order[size_t(j)]);
      }
    }
}

TEST(MoeKernels, TopKMatchesAStableSortAndTheSimtKernel) {
  for (bool largest : {true, false})
    for (auto [shape, axis] : {std::pair{std::vector<int64_t>{6, 9}, int64_t(1)}, {{3, 7, 5}, 1}, {{8, 4}, 0}}) {
      std::vector<float> x = randomFloats(size_t(shape[0] * shape[1] * (shape.size() > 2 ? shape[2] : 1)), 7);
      for (size_t i = 0; i < x.size(); i += 5)
        x[i] = x[(i * 7) % x.size()] = 0.5f; // ties
      x[3] = std::nanf("");
      const int64_t n = shape[size_t(axis)], k = std::min<int64_t>(3, n);
      int64_t outer = 1, inner = 1;
      for (int64_t d = 0; d < int64_t(shape.size()); ++d) {
        if (d < axis)
          outer *= shape[size_t(d)];
        if (d > axis)
          inner *= shape[size_t(d)];
      }
      std::vector<int64_t> yShape = shape;
      yShape[size_t(axis)] = k;
      Tensor xt = tensor(DType::F32, shape, x), v = empty(DType::F32, yShape), i = empty(DType::I64, yShape);
      rt::Attrs attrs;
      attrs.set("axis", axis);
      attrs.set("largest", largest);
      ASSERT_EQ(test::runCpuKernel<Tensor>("top_k", {&xt}, {&v, &i}, attrs), "");
      std::vector<float> wantV;
      std::vector<int64_t> wantI;
      topKReference(x, outer, n, inner, k, largest, wantV, wantI);
      EXPECT_EQ(values<int64_t>(i), wantI) << "largest " << largest << " axis " << axis;
      std::vector<float> gotV = values<float>(v);
      for (size_t e = 0; e < gotV.size(); ++e)
        EXPECT_TRUE(gotV[e] == wantV[e] || (std::isnan(gotV[e]) && std::isnan(wantV[e]))) << e;

      kernels::TopKParams p;
      ASSERT_EQ(kernels::planTopK(shape, yShape, axis, p), "");
      Tensor sv = empty(DType::F32, yShape), si = empty(DType::I64, yShape);
      p.x = xt.bytes.data();
      p.values = sv.bytes.data();
      p.indices = reinterpret_cast<int64_t *>(si.bytes.data());
      p.largest = largest;
      ASSERT_EQ(launch(p.lines, [&] { kernels::topKLines(p); }), "");
      EXPECT_EQ(sv.bytes, v.bytes);
      EXPECT_EQ(si.bytes, i.bytes);
    }
}

TEST(MoeKernels, GatherNdMatchesAReferenceAndTheSimtKernel) {
  // batch_dims 0: data [4, 3, 5], indices [2, 3, 2] -> y [2, 3, 5]; batch_dims 1: data [2, 4, 3],
  // indices [2, 3, 1] -> y [2, 3, 3].
  struct Case {
    std::vector<int64_t> data, idx, y;
    int64_t b;
    std::vector<int64_t> ids;
  };
  for (const Case &c : {Case{{4, 3, 5}, {2, 3, 2}, {2, 3, 5}, 0, {0, 1, 3, 2, -1, 0, 2, 2, 1, -3, 0, 0}},
                        Case{{2, 4, 3}, {2, 3, 1}, {2, 3, 3}, 1, {3, 0, -1, 1, 1, 2}}}) {
    const int64_t dataN = c.data[0] * c.data[1] * c.data[2];
    std::vector<float> data(static_cast<size_t>(dataN));
    std::iota(data.begin(), data.end(), 0.0f);
    Tensor dt = tensor(DType::F32, c.data, data), it = tensor(DType::I64, c.idx, c.ids), y = empty(DType::F32, c.y);
    rt::Attrs attrs;
    attrs.set("batch_dims", c.b);
    ASSERT_EQ(test::runCpuKernel<Tensor>("gather_nd", {&dt, &it}, {&y}, attrs), "");
    std::vector<float> want;
    if (c.b == 0) {
      for (size_t r = 0; r < 6; ++r) {
        int64_t i0 = c.ids[2 * r], i1 = c.ids[2 * r + 1];
        i0 += i0 < 0 ? 4 : 0;
        i1 += i1 < 0 ? 3 : 0;
        for (int64_t s = 0; s < 5; ++s)
          want.push_back(data[size_t((i0 * 3 + i1) * 5 + s)]);
      }
    } else {
      for (int64_t bb = 0; bb < 2; ++bb)
        for (int64_t j = 0; j < 3; ++j) {
          int64_t i0 = c.ids[size_t(bb * 3 + j)];
          i0 += i0 < 0 ? 4 : 0;
          for (int64_t s = 0; s < 3; ++s)
            want.push_back(data[size_t((bb * 4 + i0) * 3 + s)]);
        }
    }
    EXPECT_EQ(values<float>(y), want) << "batch_dims " << c.b;

    kernels::GatherNdParams p;
    ASSERT_EQ(kernels::planGatherNd(c.data, c.idx, c.y, c.b, 4, p), "");
    Tensor sy = empty(DType::F32, c.y);
    p.data = dt.bytes.data();
    p.indices = it.bytes.data();
    p.y = sy.bytes.data();
    ASSERT_EQ(launch(p.count, [&] { kernels::gatherNdElements(p); }), "");
    EXPECT_EQ(sy.bytes, y.bytes);
  }
  // An index out of range is the CPU kernel's error.
  Tensor dt = tensor(DType::F32, {3, 2}, std::vector<float>(6, 1.0f)), it = tensor(DType::I64, {1, 1}, std::vector<int64_t>{3});
  Tensor y = empty(DType::F32, {1, 2});
  EXPECT_NE(test::runCpuKernel<Tensor>("gather_nd", {&dt, &it}, {&y}, rt::Attrs{}).find("out of range"), std::string::npos);
}

// moe_experts: the grouped CPU kernel and the SIMT kernels against a direct loop in double, on
// balanced routing and on routing that sends every token to expert 0 (experts 2, 3 get none).
TEST(MoeKernels, MoeExpertsMatchesADirectLoop) {
  const int64_t T = 13, H = 16, I = 12, E = 4, k = 2;
  for (bool skew : {false, true}) {
    std::vector<float> x = randomFloats(size_t(T * H), 1), gu = randomFloats(size_t(E * 2 * I * H), 2, 0.3f),
                       dn = randomFloats(size_t(E * H * I), 3, 0.3f), w = randomFloats(size_t(T * k), 4);
    std::vector<int64_t> ids(static_cast<size_t>(T * k));
    for (int64_t t = 0; t < T; ++t) {
      ids[size_t(t * k)] = skew ? 0 : (t * 3) % E;
      ids[size_t(t * k + 1)] = skew ? 1 : (t * 3 + 1 + t % 2) % E;
    }
    std::vector<double> want(static_cast<size_t>(T * H), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t j = 0; j < k; ++j) {
        const int64_t e = ids[size_t(t * k + j)];
        std::vector<double> h(static_cast<size_t>(I));
        for (int64_t c = 0; c < I; ++c) {
          double g = 0, u = 0;
          for (int64_t d = 0; d < H; ++d) {
            g += double(gu[size_t((e * 2 * I + c) * H + d)]) * x[size_t(t * H + d)];
            u += double(gu[size_t((e * 2 * I + I + c) * H + d)]) * x[size_t(t * H + d)];
          }
          h[size_t(c)] = g / (1 + std::exp(-g)) * u;
        }
        for (int64_t d = 0; d < H; ++d) {
          double acc = 0;
          for (int64_t c = 0; c < I; ++c)
            acc += double(dn[size_t((e * H + d) * I + c)]) * h[size_t(c)];
          want[size_t(t * H + d)] += acc * w[size_t(t * k + j)];
        }
      }
    Tensor xt = tensor(DType::F32, {T, H}, x), it = tensor(DType::I64, {T, k}, ids), wt = tensor(DType::F32, {T, k}, w),
           gt = tensor(DType::F32, {E, 2 * I, H}, gu), dt = tensor(DType::F32, {E, H, I}, dn);
    Tensor y = empty(DType::F32, {T, H}), hidden = empty(DType::F32, {T * k, I});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_experts", {&xt, &it, &wt, &gt, &dt}, {&y, &hidden}, rt::Attrs{}), "");
    std::vector<float> got = values<float>(y);
    for (size_t e = 0; e < got.size(); ++e)
      ASSERT_NEAR(got[e], want[e], 1e-4 * (1 + std::fabs(want[e]))) << "skew " << skew << " element " << e;

    std::vector<float> simtY;
    ASSERT_EQ(cudaSequenceMoeExperts(x, ids, w, gu, dn, T, H, I, E, k, kernels::MoeActivation::Silu, simtY), "");
    for (size_t e = 0; e < simtY.size(); ++e)
      ASSERT_NEAR(simtY[e], want[e], 1e-4 * (1 + std::fabs(want[e]))) << "SIMT, skew " << skew << " element " << e;
  }
  // An expert id outside [0, E) is the CPU kernel's error.
  Tensor xt = tensor(DType::F32, {1, 2}, std::vector<float>{1, 2}), it = tensor(DType::I64, {1, 1}, std::vector<int64_t>{5});
  Tensor wt = tensor(DType::F32, {1, 1}, std::vector<float>{1}), gt = tensor(DType::F32, {2, 2, 2}, std::vector<float>(8, 1));
  Tensor dt = tensor(DType::F32, {2, 2, 1}, std::vector<float>(4, 1)), y = empty(DType::F32, {1, 2}), h = empty(DType::F32, {1, 1});
  EXPECT_NE(test::runCpuKernel<Tensor>("moe_experts", {&xt, &it, &wt, &gt, &dt}, {&y, &h}, rt::Attrs{}).find("expert id 5"),
            std::string::npos);
}

// Expert parallelism's local steps on one rank (a group of one: the received rows are the
// permuted rows): moe_permute, moe_grouped_gemm (CPU and SIMT) and moe_unpermute give
// moe_experts' result, on balanced and on skewed routing (experts without rows).
TEST(MoeKernels, ExpertParallelStepsMatchMoeExperts) {
  const int64_t T = 11, H = 8, I = 6, E = 4, k = 2, N = T * k;
  for (bool skew : {false, true}) {
    std::vector<float> x = randomFloats(size_t(T * H), 5), gu = randomFloats(size_t(E * 2 * I * H), 6, 0.3f),
                       dn = randomFloats(size_t(E * H * I), 7, 0.3f), w = randomFloats(size_t(N), 8);
    std::vector<int64_t> ids(static_cast<size_t>(N));
    for (int64_t t = 0; t < T; ++t) {
      ids[size_t(t * k)] = skew ? 0 : (t * 3) % E;
      ids[size_t(t * k + 1)] = skew ? 1 : (t * 3 + 1 + t % 2) % E;
    }
    Tensor xt = tensor(DType::F32, {T, H}, x), it = tensor(DType::I64, {T, k}, ids), wt = tensor(DType::F32, {T, k}, w),
           gt = tensor(DType::F32, {E, 2 * I, H}, gu), dt = tensor(DType::F32, {E, H, I}, dn);
    Tensor y = empty(DType::F32, {T, H}), hidden = empty(DType::F32, {N, I});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_experts", {&xt, &it, &wt, &gt, &dt}, {&y, &hidden}, rt::Attrs{}), "");
    Tensor rows = empty(DType::F32, {N, H}), counts = empty(DType::I64, {E}), rowOf = empty(DType::I64, {N});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_permute", {&xt, &it}, {&rows, &counts, &rowOf}, rt::Attrs{}), "");
    std::vector<int64_t> cnt = values<int64_t>(counts);
    EXPECT_EQ(std::accumulate(cnt.begin(), cnt.end(), int64_t(0)), N);
    Tensor out = empty(DType::F32, {N, H}), eh = empty(DType::F32, {N, I}), ey = empty(DType::F32, {T, H});
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_grouped_gemm", {&rows, &counts, &gt, &dt}, {&out, &eh}, rt::Attrs{}), "");
    ASSERT_EQ(test::runCpuKernel<Tensor>("moe_unpermute", {&out, &rowOf, &wt}, {&ey}, rt::Attrs{}), "");
    std::vector<float> want = values<float>(y), got = values<float>(ey);
    for (size_t e = 0; e < got.size(); ++e)
      ASSERT_NEAR(got[e], want[e], 1e-5 * (1 + std::fabs(want[e]))) << "skew " << skew << " element " << e;

    // The CUDA backend's sequence for moe_grouped_gemm on the same rows: the GEMM groups of the
    // received counts (one source here), the emulated GLU, then the emulated unpermute.
    std::vector<kernels::MoeGemmGroup> groups;
    int64_t total = 0;
    ASSERT_EQ(kernels::planMoeGemmGroups(cnt.data(), E, E, N, groups, total), "");
    EXPECT_EQ(total, N);
    const float *rs = reinterpret_cast<const float *>(rows.bytes.data());
    std::vector<float> gate(size_t(N * 2 * I)), hid(size_t(N * I)), back(size_t(N * H)), sy(size_t(T * H));
    kernels::MoeGluParams glu;
    glu.gate = gate.data(), glu.hidden = hid.data(), glu.rows = total, glu.I = I;
    ASSERT_EQ(kernels::runMoeExpertGroups(groups, total, rs, gu.data(), dn.data(), H, I, gate.data(), hid.data(),
                                          back.data(), gemmBt, emulatedGlu(glu)),
              "");
    kernels::MoeEpParams p;
    p.back = back.data();
    p.rowOfC = reinterpret_cast<const int64_t *>(rowOf.bytes.data());
    p.weights = w.data();
    p.y = sy.data();
    p.T = T, p.H = H, p.k = k;
    ASSERT_EQ(launch(T * H, [&] { kernels::moeUnpermuteElements(p); }), "");
    const std::vector<float> &simtY = sy;
    for (size_t e = 0; e < simtY.size(); ++e)
      ASSERT_NEAR(simtY[e], want[e], 1e-4 * (1 + std::fabs(want[e]))) << "SIMT, skew " << skew << " element " << e;
  }
}

// The GEMM groups of row counts: empty segments left out, local experts by segment modulo the
// experts, counts that are negative or overrun the rows refused.
TEST(MoeKernels, GemmGroupsOfRowCounts) {
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = -1;
  const std::vector<int64_t> counts{3, 0, 2, 1, 0, 4}; // [source 0: experts 0..2][source 1: experts 0..2]
  ASSERT_EQ(kernels::planMoeGemmGroups(counts.data(), 6, 3, 10, groups, total), "");
  EXPECT_EQ(total, 10);
  ASSERT_EQ(groups.size(), 4u);
  const int64_t want[4][3] = {{0, 0, 3}, {2, 3, 2}, {0, 5, 1}, {2, 6, 4}};
  for (size_t g = 0; g < groups.size(); ++g) {
    EXPECT_EQ(groups[g].expert, want[g][0]) << g;
    EXPECT_EQ(groups[g].firstRow, want[g][1]) << g;
    EXPECT_EQ(groups[g].rows, want[g][2]) << g;
  }
  EXPECT_NE(kernels::planMoeGemmGroups(counts.data(), 6, 3, 9, groups, total).find("exceed the 9 rows"),
            std::string::npos);
  const std::vector<int64_t> negative{2, -1};
  EXPECT_NE(kernels::planMoeGemmGroups(negative.data(), 2, 2, 9, groups, total).find("segment 1: -1"),
            std::string::npos);
  EXPECT_NE(kernels::planMoeGemmGroups(counts.data(), 5, 3, 10, groups, total).find("not whole groups"),
            std::string::npos);
}

} // namespace
