// The CUDA backend's training attention (shardc/kernels/AttentionRows.h: the forward with lse,
// dq, dk and dv recomputed from lse) run through the Simt.h emulator against the CPU backend's
// attention and attention_grad on the same tensors: GQA, causal, bool and additive masks, f32
// and bf16. The sums run in other orders than the CPU's GEMMs: close, not bit for bit.
#include "shardc/kernels/AttentionRows.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace {

using namespace shardc;
namespace simt = shardc::simt;
using rt::DType;

// A tensor kept as f32 values (rounded to bf16 when the case is bf16) with its bytes.
struct Tensor {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<float> f32;
  std::vector<uint16_t> u16;
  void *data() { return dtype == DType::BF16 ? static_cast<void *>(u16.data()) : static_cast<void *>(f32.data()); }
  rt::TensorView view() { return {data(), dtype, shape}; }
  float at(size_t i) const { return dtype == DType::BF16 ? rt::bf16ToF32(u16[i]) : f32[i]; }
};

int64_t count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Tensor make(DType dtype, std::vector<int64_t> shape, std::mt19937 &rng, float range = 1.0f) {
  Tensor t{dtype, std::move(shape), {}, {}};
  std::uniform_real_distribution<float> u(-range, range);
  t.f32.resize(size_t(count(t.shape)));
  for (float &f : t.f32)
    f = u(rng);
  if (dtype == DType::BF16)
    for (float f : t.f32)
      t.u16.push_back(rt::f32ToBf16(f));
  return t;
}

Tensor zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t{dtype, std::move(shape), {}, {}};
  t.f32.assign(size_t(count(t.shape)), 7.0f); // not zero: every element must be written
  if (dtype == DType::BF16)
    t.u16.assign(t.f32.size(), rt::f32ToBf16(7.0f));
  return t;
}

std::string runCpu(const char *op, std::vector<Tensor *> in, std::vector<Tensor *> out, const rt::Attrs &attrs) {
  return test::runCpuKernel(op, in, out, attrs);
}

// |got - want| <= tol (|want| + the largest |want|): relative to the tensor's scale, since
// gradients that cancel to ~0 keep only the rounding of the terms that cancelled.
void expectClose(const Tensor &got, const Tensor &want, double tol, const char *what) {
  ASSERT_EQ(got.f32.size(), want.f32.size());
  double scale = 0.0;
  for (size_t i = 0; i < want.f32.size(); ++i)
    if (std::isfinite(want.at(i)))
      scale = std::max(scale, std::fabs(double(want.at(i))));
  double worst = 0.0;
  size_t at = 0;
  for (size_t i = 0; i < got.f32.size(); ++i) {
    const double g = got.at(i), w = want.at(i);
    const double err = (std::isinf(g) && g == w) ? 0.0 : std::fabs(g - w) / (std::fabs(w) + scale);
    if (!(err <= worst)) {
      worst = err;
      at = i;
    }
  }
  EXPECT_LE(worst, tol) << what << ": element " << at << " is " << got.at(at) << ", the CPU's " << want.at(at);
}

struct Case {
  DType dtype;
  int64_t B, Hq, Hkv, S, T, D;
  bool causal;
  int maskKind; // 0 none, 1 bool, 2 additive f32
};

void runCase(const Case &c) {
  std::mt19937 rng(42);
  const DType dt = c.dtype;
  Tensor q = make(dt, {c.B, c.Hq, c.S, c.D}, rng), k = make(dt, {c.B, c.Hkv, c.T, c.D}, rng);
  Tensor v = make(dt, {c.B, c.Hkv, c.T, c.D}, rng), dout = make(dt, {c.B, c.Hq, c.S, c.D}, rng);
  Tensor mask{c.maskKind == 1 ? DType::Bool : DType::F32, {c.B, 1, c.S, c.T}, {}, {}};
  std::vector<uint8_t> boolMask;
  if (c.maskKind == 1) {
    for (int64_t i = 0; i < count(mask.shape); ++i)
      boolMask.push_back(uint8_t((i * 7) % 5 != 0 || i % c.T == 0)); // row j = 0 always kept
  } else if (c.maskKind == 2) {
    mask = make(DType::F32, mask.shape, rng, 2.0f);
  }
  rt::Attrs attrs;
  attrs.set("causal", c.causal);
  std::vector<Tensor *> fwdIn{&q, &k, &v};
  rt::TensorView maskView{c.maskKind == 1 ? static_cast<void *>(boolMask.data()) : static_cast<void *>(mask.f32.data()),
                          mask.dtype, mask.shape};

  // Forward: y and lse.
  Tensor y = zeros(dt, q.shape), lse = zeros(DType::F32, {c.B, c.Hq, c.S});
  Tensor gy = zeros(dt, q.shape), glse = zeros(DType::F32, {c.B, c.Hq, c.S});
  rt::KernelArgs fwd;
  for (Tensor *t : fwdIn)
    fwd.in.push_back(t->view());
  if (c.maskKind)
    fwd.in.push_back(maskView);
  fwd.out = {y.view(), lse.view()};
  fwd.attrs = &attrs;
  ASSERT_EQ(rt::lookupCpuKernel("attention")(fwd), "");
  kernels::AttentionRowsParams p;
  p.q = q.data();
  p.k = k.data();
  p.v = v.data();
  p.mask = c.maskKind ? maskView.data : nullptr;
  p.maskKind = c.maskKind;
  p.maskStride[0] = c.S * c.T; // mask [B, 1, S, T]
  p.maskStride[2] = c.T;
  p.maskStride[3] = 1;
  p.B = c.B, p.Hq = c.Hq, p.Hkv = c.Hkv, p.S = c.S, p.T = c.T, p.D = c.D, p.Dv = c.D;
  p.type = dt == DType::BF16 ? kernels::AttentionType::BF16 : kernels::AttentionType::F32;
  p.scale = float(1.0 / std::sqrt(double(c.D)));
  p.causal = c.causal;
  p.y = gy.data();
  p.lse = glse.f32.data();
  ASSERT_EQ(simt::launch({int(c.B * c.Hq * c.S), 1, kernels::kAttentionRowThreads,
                          kernels::attentionRowsForwardShared(c.T)},
                         [&] { kernels::attentionRowsForward(p); }),
            "");
  const double tol = dt == DType::BF16 ? 1e-2 : 1e-5;
  expectClose(gy, y, tol, "y");
  expectClose(glse, lse, 1e-5, "lse");

  // Backward from the CPU's forward: dq, dk, dv.
  Tensor dq = zeros(dt, q.shape), dk = zeros(dt, k.shape), dv = zeros(dt, v.shape);
  Tensor gdq = zeros(dt, q.shape), gdk = zeros(dt, k.shape), gdv = zeros(dt, v.shape);
  rt::KernelArgs bwd;
  bwd.in = {q.view(), k.view(), v.view(), y.view(), lse.view(), dout.view()};
  if (c.maskKind)
    bwd.in.push_back(maskView);
  bwd.out = {dq.view(), dk.view(), dv.view()};
  bwd.attrs = &attrs;
  ASSERT_EQ(rt::lookupCpuKernel("attention_grad")(bwd), "");
  p.o = y.data();
  p.dout = dout.data();
  p.lseIn = lse.f32.data();
  p.dq = gdq.data();
  p.dk = gdk.data();
  p.dv = gdv.data();
  ASSERT_EQ(simt::launch({int(c.B * c.Hq * c.S), 1, kernels::kAttentionRowThreads,
                          kernels::attentionRowsGradQShared(c.T)},
                         [&] { kernels::attentionRowsGradQ(p); }),
            "");
  ASSERT_EQ(simt::launch({int(c.B * c.Hkv * c.T), 1, kernels::kAttentionRowThreads,
                          kernels::attentionRowsGradKVShared(c.S, c.D, c.D)},
                         [&] { kernels::attentionRowsGradKV(p); }),
            "");
  const double gradTol = dt == DType::BF16 ? 1e-2 : 1e-5;
  expectClose(gdq, dq, gradTol, "dq");
  expectClose(gdk, dk, gradTol, "dk");
  expectClose(gdv, dv, gradTol, "dv");
}

TEST(AttentionRowsSimt, CausalGqaF32) { runCase({DType::F32, 1, 4, 2, 19, 19, 16, true, 0}); }
TEST(AttentionRowsSimt, AdditiveMaskF32) { runCase({DType::F32, 2, 2, 1, 9, 13, 8, false, 2}); }
TEST(AttentionRowsSimt, BoolMaskCausalF32) { runCase({DType::F32, 1, 2, 2, 12, 12, 8, true, 1}); }
TEST(AttentionRowsSimt, CausalAdditiveMaskBf16) { runCase({DType::BF16, 1, 4, 2, 11, 11, 16, true, 2}); }

} // namespace
