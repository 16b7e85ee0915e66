// The Simt.h host emulator (barriers, shared memory, shuffles, the warp MMA's fragment
// layouts) and, through it, the flash attention kernel the CUDA backend launches, compared
// with the CPU backend's attention on the same 16-bit-rounded inputs.
//
// Built a second time with SHARDC_FLASH_ON_GPU (shardc-flash-gpu-tests, registered with
// -DSHARDC_ENABLE_GPU_TESTS=ON): the same cases run the kernel on the GPU, and its output is
// also compared with the emulator's, which checks the emulator's MMA layouts against the
// hardware's.
#include "shardc/kernels/FlashAttention.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include <gtest/gtest.h>

#ifdef SHARDC_FLASH_ON_GPU
#include "shardc/cuda/FlashAttention.h"
#include <cuda_runtime_api.h>
#endif

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace shardc;
namespace simt = shardc::simt;

TEST(Simt, BarriersOrderSharedMemory) {
  // Each thread writes its slot, waits, then reads its neighbour's: wrong without the barrier
  // (the emulator runs threads in turn, and shared memory starts as garbage).
  std::vector<int> got(128, -1);
  std::string err = simt::launch({2, 1, 128}, [&] {
    SIMT_SHARED(int, slots, 128);
    const int t = simt::threadIdxX();
    slots[t] = t * 10 + simt::blockIdxX();
    simt::syncThreads();
    if (simt::blockIdxX() == 1)
      got[size_t(t)] = slots[(t + 1) % 128];
  });
  ASSERT_EQ(err, "");
  for (int t = 0; t < 128; ++t)
    EXPECT_EQ(got[size_t(t)], ((t + 1) % 128) * 10 + 1);
}

TEST(Simt, ABarrierSomeThreadsSkipIsReported) {
  // The classic bug: an early return for out-of-range threads before a barrier.
  std::string err = simt::launch({1, 1, 64}, [&] {
    if (simt::threadIdxX() == 5)
      return;
    simt::syncThreads();
  });
  EXPECT_NE(err.find("barrier"), std::string::npos) << err;
  EXPECT_NE(err.find("block (0,0)"), std::string::npos) << err;
  // Threads that wait at a barrier while a warp collective misses lanes: stuck.
  err = simt::launch({1, 1, 64}, [&] {
    if (simt::threadIdxX() < 48)
      simt::syncThreads();
    else
      (void)simt::shflXor(1.0f, 1);
  });
  EXPECT_NE(err.find("stuck: 48 threads wait at a barrier, 16 at a warp collective"), std::string::npos) << err;
}

TEST(Simt, ShuffleXorButterflyReduces) {
  std::vector<float> got(64);
  ASSERT_EQ(simt::launch({1, 1, 64}, [&] {
              const int t = simt::threadIdxX();
              float v = float(t);
              for (int m = 16; m > 0; m >>= 1)
                v += simt::shflXor(v, m);
              got[size_t(t)] = v;
            }),
            "");
  for (int t = 0; t < 64; ++t) // each warp's lanes all hold the warp's sum
    EXPECT_EQ(got[size_t(t)], t < 32 ? 496.0f : 1520.0f);
}

TEST(Simt, DivergentWarpCollectiveIsReported) {
  std::string err = simt::launch({1, 1, 32}, [&] {
    if (simt::threadIdxX() < 16)
      (void)simt::shflXor(1.0f, 1);
  });
  EXPECT_NE(err.find("stuck"), std::string::npos) << err;
}

// Every element of A (16x16), B (16x8) and C (16x8) is held by exactly one (lane, element).
TEST(Simt, MmaFragmentsCoverEachOperandOnce) {
  std::vector<int> a(256, 0), b(128, 0), c(128, 0);
  for (int lane = 0; lane < 32; ++lane) {
    for (int i = 0; i < 8; ++i) {
      auto rc = simt::mmaFragmentA(lane, i);
      ++a[size_t(rc.row * 16 + rc.col)];
    }
    for (int i = 0; i < 4; ++i) {
      auto rb = simt::mmaFragmentB(lane, i);
      ++b[size_t(rb.row * 8 + rb.col)];
      auto rcc = simt::mmaFragmentC(lane, i);
      ++c[size_t(rcc.row * 8 + rcc.col)];
    }
  }
  for (int n : a) EXPECT_EQ(n, 1);
  for (int n : b) EXPECT_EQ(n, 1);
  for (int n : c) EXPECT_EQ(n, 1);
  // Spot checks against the PTX ISA's figures for mma.m16n8k16 (.bf16/.f16).
  EXPECT_EQ(simt::mmaFragmentA(5, 0).row, 1);
  EXPECT_EQ(simt::mmaFragmentA(5, 0).col, 2);
  EXPECT_EQ(simt::mmaFragmentA(5, 3).row, 9);
  EXPECT_EQ(simt::mmaFragmentA(5, 7).col, 11);
  EXPECT_EQ(simt::mmaFragmentB(6, 3).row, 13);
  EXPECT_EQ(simt::mmaFragmentB(6, 3).col, 1);
  EXPECT_EQ(simt::mmaFragmentC(31, 3).row, 15);
  EXPECT_EQ(simt::mmaFragmentC(31, 3).col, 7);
}

// The MMA as a warp computes it: fragments loaded by the ISA's per-lane formulas, written out
// here independently of the emulator's, against a plain product.
TEST(Simt, MmaComputesTheTileProduct) {
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> small(-8, 8);
  float A[16][16], B[16][8], C[16][8];
  for (auto &r : A) for (float &x : r) x = float(small(rng)) / 4.0f; // exact in bf16
  for (auto &r : B) for (float &x : r) x = float(small(rng)) / 4.0f;
  for (auto &r : C) for (float &x : r) x = float(small(rng));
  auto bits = [](float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    return uint16_t(u >> 16);
  };
  float D[16][8];
  ASSERT_EQ(simt::launch({1, 1, 32}, [&] {
              const int lane = simt::threadIdxX(), g = lane / 4, t = lane % 4;
              uint32_t a[4], b[2];
              // a0,a1: (g, 2t..2t+1); a2,a3: (g+8, ...); a4..a7: the same 8 columns on.
              a[0] = bits(A[g][2 * t]) | uint32_t(bits(A[g][2 * t + 1])) << 16;
              a[1] = bits(A[g + 8][2 * t]) | uint32_t(bits(A[g + 8][2 * t + 1])) << 16;
              a[2] = bits(A[g][2 * t + 8]) | uint32_t(bits(A[g][2 * t + 9])) << 16;
              a[3] = bits(A[g + 8][2 * t + 8]) | uint32_t(bits(A[g + 8][2 * t + 9])) << 16;
              b[0] = bits(B[2 * t][g]) | uint32_t(bits(B[2 * t + 1][g])) << 16;
              b[1] = bits(B[2 * t + 8][g]) | uint32_t(bits(B[2 * t + 9][g])) << 16;
              float d[4] = {C[g][2 * t], C[g][2 * t + 1], C[g + 8][2 * t], C[g + 8][2 * t + 1]};
              simt::mmaM16n8k16<true>(d, a, b);
              D[g][2 * t] = d[0];
              D[g][2 * t + 1] = d[1];
              D[g + 8][2 * t] = d[2];
              D[g + 8][2 * t + 1] = d[3];
            }),
            "");
  for (int i = 0; i < 16; ++i)
    for (int j = 0; j < 8; ++j) {
      float want = C[i][j];
      for (int k = 0; k < 16; ++k)
        want += A[i][k] * B[k][j];
      EXPECT_EQ(D[i][j], want) << i << "," << j;
    }
}

// ldmatrix .x4 as the PTX ISA describes it: lanes 8i..8i+7 address matrix i's rows; lane l
// gets (l/4, 2(l%4)) and (l/4, 2(l%4)+1) of each matrix, or the transposed pair.
TEST(Simt, LdmatrixDealsRowsAndColumns) {
  for (bool trans : {false, true}) {
    std::vector<uint32_t> got(32 * 4);
    std::string err = simt::launch({1, 1, 32}, [&] {
      SIMT_SHARED(uint16_t, tile, 4 * 8 * 16); // 4 matrices of 8 rows, rows padded to 16
      const int lane = simt::threadIdxX();
      for (int e = 0; e < 16; ++e) // value = matrix*100 + row*10 + col for col < 8
        tile[lane * 16 + e] = uint16_t((lane / 8) * 100 + (lane % 8) * 10 + e);
      simt::syncThreads();
      uint32_t r[4];
      if (trans)
        simt::ldmatrixX4<true>(r, tile + lane * 16);
      else
        simt::ldmatrixX4<false>(r, tile + lane * 16);
      for (int i = 0; i < 4; ++i)
        got[size_t(lane * 4 + i)] = r[i];
    });
    ASSERT_EQ(err, "");
    for (int lane = 0; lane < 32; ++lane)
      for (int i = 0; i < 4; ++i) {
        const int a = lane / 4, b = 2 * (lane % 4);
        const uint32_t lo = trans ? i * 100 + b * 10 + a : i * 100 + a * 10 + b;
        const uint32_t hi = trans ? i * 100 + (b + 1) * 10 + a : i * 100 + a * 10 + b + 1;
        EXPECT_EQ(got[size_t(lane * 4 + i)], lo | (hi << 16)) << "trans " << trans << " lane " << lane << " i " << i;
      }
  }
  // A row address outside shared memory is reported, not read.
  std::vector<uint16_t> global(256);
  std::string err = simt::launch({1, 1, 32}, [&] {
    SIMT_SHARED(uint16_t, tile, 256);
    tile[simt::threadIdxX()] = 0;
    uint32_t r[4];
    simt::ldmatrixX4<false>(r, global.data() + simt::threadIdxX() * 8);
  });
  EXPECT_NE(err.find("not in the block's shared memory"), std::string::npos) << err;
}

// ---- Flash attention through the emulator against the CPU backend's attention.

uint16_t toBits(bool bf16, float f) { return bf16 ? sc_to_bf16(f) : sc_to_f16(f); }
float fromBits(bool bf16, uint16_t h) { return bf16 ? sc_from_bf16(h) : sc_from_f16(h); }

struct Case {
  const char *name;
  bool bf16;
  int64_t B, Hq, Hkv, S, T, D;
  bool causal;
  int maskKind;                      // 0 none, 1 bool, 2 additive
  std::vector<int64_t> maskShape;    // broadcast to [B, Hq, S, T]
};

kernels::FlashAttentionParams paramsFor(const Case &c, const void *q, const void *k, const void *v,
                                       const void *mask, void *y) {
  kernels::FlashAttentionParams p;
  p.q = q;
  p.k = k;
  p.v = v;
  p.y = y;
  p.mask = mask;
  p.B = c.B;
  p.Hq = c.Hq;
  p.Hkv = c.Hkv;
  p.S = c.S;
  p.T = c.T;
  p.scale = float(1.0 / std::sqrt(double(c.D)));
  p.causal = c.causal;
  p.maskKind = c.maskKind;
  if (c.maskKind) {
    const int64_t full[4] = {c.B, c.Hq, c.S, c.T};
    const int64_t off = 4 - int64_t(c.maskShape.size());
    int64_t stride = 1;
    for (int64_t e = int64_t(c.maskShape.size()) - 1; e >= 0; --e) {
      p.maskStride[off + e] = c.maskShape[size_t(e)] == 1 && full[off + e] != 1 ? 0 : stride;
      stride *= c.maskShape[size_t(e)];
    }
  }
  return p;
}

std::string runFlash(const Case &c, const std::vector<uint16_t> &q, const std::vector<uint16_t> &k,
                     const std::vector<uint16_t> &v, const void *mask, std::vector<uint16_t> &y) {
  const kernels::FlashAttentionParams p = paramsFor(c, q.data(), k.data(), v.data(), mask, y.data());
  simt::LaunchShape shape{int(kernels::flashAttentionGridX(c.S)), int(c.B * c.Hq), kernels::kFlashThreads,
                          kernels::flashAttentionSharedBytes(c.D)};
  return simt::launch(shape, [&] {
    if (c.bf16) {
      if (c.D == 64) kernels::flashAttentionForward<true, 64>(p);
      else if (c.D == 128) kernels::flashAttentionForward<true, 128>(p);
      else kernels::flashAttentionForward<true, 32>(p);
    } else {
      if (c.D == 64) kernels::flashAttentionForward<false, 64>(p);
      else if (c.D == 128) kernels::flashAttentionForward<false, 128>(p);
      else kernels::flashAttentionForward<false, 32>(p);
    }
  });
}

#ifdef SHARDC_FLASH_ON_GPU
// The same kernel on the GPU: inputs copied over, y copied back.
std::string runFlashOnGpu(const Case &c, const std::vector<uint16_t> &q, const std::vector<uint16_t> &k,
                          const std::vector<uint16_t> &v, const void *mask, size_t maskBytes,
                          std::vector<uint16_t> &y) {
  void *dq = nullptr, *dk = nullptr, *dv = nullptr, *dy = nullptr, *dm = nullptr;
  auto up = [](void *&dst, const void *src, size_t bytes) {
    if (cudaMalloc(&dst, bytes ? bytes : 4) != cudaSuccess)
      return false;
    return cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
  };
  std::string err;
  if (!up(dq, q.data(), q.size() * 2) || !up(dk, k.data(), k.size() * 2) || !up(dv, v.data(), v.size() * 2) ||
      !up(dy, y.data(), y.size() * 2) || (mask && !up(dm, mask, maskBytes)))
    err = "cannot allocate or copy to the GPU";
  if (err.empty())
    err = cuda::launchFlashAttention(paramsFor(c, dq, dk, dv, mask ? dm : nullptr, dy), c.bf16, int(c.D), nullptr);
  if (err.empty() && cudaDeviceSynchronize() != cudaSuccess)
    err = std::string("kernel failed: ") + cudaGetErrorString(cudaGetLastError());
  if (err.empty() && cudaMemcpy(y.data(), dy, y.size() * 2, cudaMemcpyDeviceToHost) != cudaSuccess)
    err = "cannot copy y back";
  for (void *ptr : {dq, dk, dv, dy, dm})
    cudaFree(ptr);
  return err;
}
#endif

class FlashAttention : public ::testing::TestWithParam<Case> {};

TEST_P(FlashAttention, MatchesTheCpuKernel) {
  const Case &c = GetParam();
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  auto fill = [&](int64_t n, std::vector<uint16_t> &bits, std::vector<float> &vals, float sd) {
    bits.resize(size_t(n));
    vals.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) {
      bits[size_t(i)] = toBits(c.bf16, normal(rng) * sd);
      vals[size_t(i)] = fromBits(c.bf16, bits[size_t(i)]);
    }
  };
  std::vector<uint16_t> qb, kb, vb;
  std::vector<float> qf, kf, vf;
  fill(c.B * c.Hq * c.S * c.D, qb, qf, 1.5f); // scores of a few units: a peaked softmax
  fill(c.B * c.Hkv * c.T * c.D, kb, kf, 1.5f);
  fill(c.B * c.Hkv * c.T * c.D, vb, vf, 1.0f);

  int64_t maskCount = 1;
  for (int64_t d : c.maskShape)
    maskCount *= d;
  std::vector<uint8_t> boolMask;
  std::vector<float> addMask;
  const void *mask = nullptr;
  if (c.maskKind == 1) {
    boolMask.resize(size_t(maskCount));
    for (auto &m : boolMask)
      m = (rng() % 4) != 0;
    for (size_t i = 0; i < boolMask.size() && i < size_t(c.T); ++i)
      boolMask[i] = 0; // the first row (of the first broadcast slice) sees nothing
    mask = boolMask.data();
  } else if (c.maskKind == 2) {
    addMask.resize(size_t(maskCount));
    for (auto &m : addMask)
      m = (rng() % 3) == 0 ? -1e9f : normal(rng);
    mask = addMask.data();
  }

  std::vector<uint16_t> y(size_t(c.B * c.Hq * c.S * c.D), 0xffff);
  // cp.async copies landing early (at issue) with warps drifting apart must give the very
  // same bits as late landing with interleaved warps: otherwise a wait or barrier is missing.
  simt::setCopyLanding(simt::CopyLanding::Early);
  simt::setSchedule(simt::Schedule::WarpByWarp);
  ASSERT_EQ(runFlash(c, qb, kb, vb, mask, y), "");
  const std::vector<uint16_t> early = y;
  simt::setCopyLanding(simt::CopyLanding::Late);
  simt::setSchedule(simt::Schedule::Interleaved);
  std::fill(y.begin(), y.end(), uint16_t(0xffff));
  ASSERT_EQ(runFlash(c, qb, kb, vb, mask, y), "");
  EXPECT_TRUE(early == y) << c.name << ": the result depends on when cp.async copies land";
#ifdef SHARDC_FLASH_ON_GPU
  {
    const std::vector<uint16_t> emulated = y;
    std::fill(y.begin(), y.end(), uint16_t(0xffff));
    const size_t maskBytes = c.maskKind == 1 ? boolMask.size() : addMask.size() * 4;
    ASSERT_EQ(runFlashOnGpu(c, qb, kb, vb, mask, maskBytes, y), "");
    // The tensor cores may sum in another order and exp2f differs from the host's in the last
    // bits: one rounding step of the 16-bit type apart at most.
    int64_t apart = 0;
    for (size_t i = 0; i < y.size(); ++i) {
      const float a = fromBits(c.bf16, y[i]), b = fromBits(c.bf16, emulated[i]);
      apart += !(std::fabs(a - b) <= (c.bf16 ? 1.6e-2f : 2e-3f) * (1.0f + std::fabs(b)));
    }
    EXPECT_EQ(apart, 0) << c.name << ": GPU and emulator differ";
  }
#endif

  // The CPU backend's attention in f32 on the same rounded inputs.
  std::vector<float> want(y.size());
  rt::TensorView tq{qf.data(), rt::DType::F32, {c.B, c.Hq, c.S, c.D}};
  rt::TensorView tk{kf.data(), rt::DType::F32, {c.B, c.Hkv, c.T, c.D}};
  rt::TensorView tv{vf.data(), rt::DType::F32, {c.B, c.Hkv, c.T, c.D}};
  rt::TensorView ty{want.data(), rt::DType::F32, {c.B, c.Hq, c.S, c.D}};
  rt::KernelArgs args{{tq, tk, tv}, {ty}, nullptr};
  if (c.maskKind)
    args.in.push_back(rt::TensorView{const_cast<void *>(mask),
                                     c.maskKind == 1 ? rt::DType::Bool : rt::DType::F32, c.maskShape});
  rt::Attrs attrs;
  attrs.set("causal", c.causal);
  args.attrs = &attrs;
  ASSERT_EQ(rt::lookupCpuKernel("attention")(args), "");

  // 16-bit probabilities and a 16-bit output: |err| <= 2 ulp-ish of the type on values ~1.
  const float tol = c.bf16 ? 2e-2f : 4e-3f;
  double worst = 0.0;
  int64_t bad = 0, zeros = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const float got = fromBits(c.bf16, y[i]);
    const double err = std::fabs(double(got) - double(want[i]));
    worst = std::max(worst, err);
    bad += !(err <= tol * (1.0 + std::fabs(want[i])));
    zeros += want[i] == 0.0f && got == 0.0f;
  }
  EXPECT_EQ(bad, 0) << c.name << ": worst |error| " << worst;
  if (c.maskKind == 1)
    EXPECT_GE(zeros, c.D) << "the fully masked row is not zero";
  RecordProperty("worst_abs_error", std::to_string(worst));
}

INSTANTIATE_TEST_SUITE_P(
    Cases, FlashAttention,
    ::testing::Values(
        Case{"causal_gqa_bf16_d64", true, 1, 4, 2, 100, 100, 64, true, 0, {}},
        Case{"causal_mqa_bf16_d128_two_batches", true, 2, 2, 1, 70, 70, 128, true, 0, {}},
        Case{"full_bf16_d64_short_queries", true, 1, 2, 2, 37, 130, 64, false, 0, {}},
        Case{"bool_mask_bf16_d32", true, 1, 2, 1, 65, 65, 32, false, 1, {1, 1, 65, 65}},
        Case{"additive_mask_per_head_f16_d64", false, 2, 2, 2, 48, 80, 64, false, 2, {2, 2, 48, 80}},
        Case{"causal_f16_d128", false, 1, 1, 1, 129, 129, 128, true, 0, {}},
        Case{"causal_with_bool_mask_bf16_d64", true, 1, 2, 2, 64, 64, 64, true, 1, {64, 64}}),
    [](const ::testing::TestParamInfo<Case> &info) { return std::string(info.param.name); });

} // namespace
