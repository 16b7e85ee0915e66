// The CUDA backend's library kernels on a GPU, through its kernel table (lookupCudaKernel: the
// entry's predicate, then the launch), against the CPU backend's kernels on the same inputs:
// the kinds the training programs added (slice, concat, transpose, expand, reduce_*,
// attention with lse, attention_grad), those --no-fuse programs added (formula, rms_norm,
// layer_norm, rotary, softmax, log_softmax), selections and gemm, the MoE steps' loops of
// cuBLASLt GEMMs (moe_experts, moe_grouped_gemm), and a few of the first ones.
// Built wherever the CUDA backend is; registered only with -DSHARDC_ENABLE_GPU_TESTS=ON (the
// GPU machines): without a GPU every case fails. CudaKernelTable.* needs no GPU and
// always runs (unit.cuda_kernel_table). On the CPU the SIMT sources of these kernels are
// checked by unit.simt.cuda_shared_kernels.
#include "CudaBackend.h"
#include "CudaKernelTable.h"

#include "shardc/runtime/Kernel.h"

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

namespace {

using namespace shardc;
using rt::DType;

struct Host {
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  rt::TensorView view() { return {bytes.data(), dtype, shape}; }
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    return n;
  }
  double at(int64_t i) const {
    switch (dtype) {
    case DType::F32: { float f; std::memcpy(&f, &bytes[size_t(i) * 4], 4); return f; }
    case DType::BF16: { uint16_t h; std::memcpy(&h, &bytes[size_t(i) * 2], 2); return rt::bf16ToF32(h); }
    case DType::I64: { int64_t v; std::memcpy(&v, &bytes[size_t(i) * 8], 8); return double(v); }
    default: return bytes[size_t(i)];
    }
  }
};

Host make(DType dtype, std::vector<int64_t> shape, unsigned seed, bool filled = true) {
  Host t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(t.numel()) * rt::dtypeSize(dtype), 0);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int64_t i = 0; filled && i < t.numel(); ++i) {
    const float f = u(rng);
    switch (dtype) {
    case DType::F32: std::memcpy(&t.bytes[size_t(i) * 4], &f, 4); break;
    case DType::BF16: { uint16_t h = rt::f32ToBf16(f); std::memcpy(&t.bytes[size_t(i) * 2], &h, 2); break; }
    case DType::I64: { int64_t v = int64_t(rng() % 100); std::memcpy(&t.bytes[size_t(i) * 8], &v, 8); break; }
    default: t.bytes[size_t(i)] = uint8_t(rng() % 4 != 0); break; // bool masks: mostly kept
    }
  }
  return t;
}

// Without a GPU (unit.cuda_kernel_table): every step kind the CPU backend has, the CUDA table has.
TEST(CudaKernelTable, CoversEveryCpuKind) {
  for (const std::string &op : rt::cpuKernelNames())
    EXPECT_NE(cuda::findCudaKernel(op), nullptr) << op << " has a CPU kernel and no CUDA one";
  size_t count = 0;
  const cuda::CudaKernelEntry *table = cuda::cudaKernelTable(count);
  for (size_t i = 0; i < count; ++i)
    EXPECT_NE(rt::lookupCpuKernel(table[i].op), nullptr) << table[i].op << ": a CUDA kind the CPU lacks";
}

class CudaKernelsGpu : public ::testing::Test {
protected:
  void SetUp() override {
    int count = 0;
    // Registered only where a GPU is expected: without one, fail as the other GPU tests do.
    ASSERT_TRUE(cudaGetDeviceCount(&count) == cudaSuccess && count > 0) << "no CUDA device";
    ASSERT_EQ(cuda::CudaBackend::create(0, backend_), "");
  }
  // Runs `op` on the CPU and on the GPU (inputs copied over, outputs back) and compares each
  // output within tol (relative to the output's largest magnitude).
  void compare(const char *op, std::vector<Host> in, std::vector<Host> out, const rt::Attrs &attrs, double tol) {
    std::vector<Host> cpuOut = out, gpuOut = out;
    rt::KernelArgs cpu;
    for (Host &h : in)
      cpu.in.push_back(h.view());
    for (Host &h : cpuOut)
      cpu.out.push_back(h.view());
    cpu.attrs = &attrs;
    ASSERT_EQ(rt::lookupCpuKernel(op)(cpu), "") << op;
    rt::KernelArgs gpu = cpu;
    std::vector<rt::MemoryBlock> blocks;
    for (size_t i = 0; i < in.size() + out.size(); ++i) {
      Host &h = i < in.size() ? in[i] : gpuOut[i - in.size()];
      blocks.push_back(backend_->allocate(h.bytes.size()));
      rt::TensorView &v = i < in.size() ? gpu.in[i] : gpu.out[i - in.size()];
      v.data = blocks.back().data();
      ASSERT_EQ(backend_->copyIn(v.data, h.bytes.data(), h.bytes.size()), "");
    }
    rt::KernelFn fn = cuda::lookupCudaKernel(op);
    ASSERT_NE(fn, nullptr) << op;
    ASSERT_EQ(fn(gpu), "") << op;
    ASSERT_EQ(backend_->synchronize(), "") << op;
    for (size_t o = 0; o < out.size(); ++o) {
      ASSERT_EQ(backend_->copyOut(gpuOut[o].bytes.data(), gpu.out[o].data, gpuOut[o].bytes.size()), "");
      double scale = 0.0, worst = 0.0;
      for (int64_t i = 0; i < cpuOut[o].numel(); ++i)
        if (std::isfinite(cpuOut[o].at(i)))
          scale = std::max(scale, std::fabs(cpuOut[o].at(i)));
      for (int64_t i = 0; i < cpuOut[o].numel(); ++i) {
        const double g = gpuOut[o].at(i), w = cpuOut[o].at(i);
        const double err = (g == w) ? 0.0 : std::fabs(g - w) / (std::fabs(w) + scale);
        worst = std::isnan(err) ? 1e9 : std::max(worst, err);
      }
      EXPECT_LE(worst, tol) << op << " output " << o;
    }
  }
  std::unique_ptr<cuda::CudaBackend> backend_;
};

TEST_F(CudaKernelsGpu, DataMovementMatchesCpu) {
  rt::Attrs slice;
  slice.set("starts", std::vector<int64_t>{0, 1});
  slice.set("steps", std::vector<int64_t>{1, 2});
  compare("slice", {make(DType::I64, {2, 65}, 1)}, {make(DType::I64, {2, 32}, 0, false)}, slice, 0.0);
  rt::Attrs concat;
  concat.set("axis", int64_t(1));
  compare("concat", {make(DType::I64, {2, 63}, 2), make(DType::I64, {2, 1}, 3)},
          {make(DType::I64, {2, 64}, 0, false)}, concat, 0.0);
  rt::Attrs transpose;
  transpose.set("perm", std::vector<int64_t>{0, 2, 1, 3});
  compare("transpose", {make(DType::BF16, {2, 64, 4, 16}, 4)}, {make(DType::BF16, {2, 4, 64, 16}, 0, false)},
          transpose, 0.0);
  compare("expand", {make(DType::F32, {1, 64, 1}, 5)}, {make(DType::F32, {3, 64, 32}, 0, false)}, rt::Attrs(), 0.0);
}

TEST_F(CudaKernelsGpu, ReductionsMatchCpu) {
  for (DType dt : {DType::F32, DType::BF16})
    for (const char *op : {"reduce_sum", "reduce_mean", "reduce_max"}) {
      rt::Attrs last, outer;
      last.set("axes", std::vector<int64_t>{-1});
      outer.set("axes", std::vector<int64_t>{0, 1});
      const double tol = dt == DType::BF16 ? 4e-3 : 1e-6;
      compare(op, {make(dt, {2, 64, 256}, 6)}, {make(dt, {2, 64, 1}, 0, false)}, last, tol);
      compare(op, {make(dt, {2, 64, 256}, 7)}, {make(dt, {1, 1, 256}, 0, false)}, outer, tol);
    }
}

TEST_F(CudaKernelsGpu, TrainingAttentionMatchesCpu) {
  const int64_t B = 2, Hq = 4, Hkv = 2, S = 64, D = 32;
  for (DType dt : {DType::F32, DType::BF16}) {
    rt::Attrs attrs;
    attrs.set("causal", true);
    Host q = make(dt, {B, Hq, S, D}, 8), k = make(dt, {B, Hkv, S, D}, 9), v = make(dt, {B, Hkv, S, D}, 10);
    Host mask = make(DType::F32, {B, 1, S, S}, 11);
    Host y = make(dt, {B, Hq, S, D}, 0, false), lse = make(DType::F32, {B, Hq, S}, 0, false);
    const double tol = dt == DType::BF16 ? 1e-2 : 1e-5;
    compare("attention", {q, k, v, mask}, {y, lse}, attrs, tol);
    // The backward from the CPU's forward.
    rt::KernelArgs fwd;
    for (Host *h : {&q, &k, &v, &mask})
      fwd.in.push_back(h->view());
    fwd.out = {y.view(), lse.view()};
    fwd.attrs = &attrs;
    ASSERT_EQ(rt::lookupCpuKernel("attention")(fwd), "");
    Host dout = make(dt, {B, Hq, S, D}, 12);
    compare("attention_grad", {q, k, v, y, lse, dout, mask},
            {make(dt, q.shape, 0, false), make(dt, k.shape, 0, false), make(dt, v.shape, 0, false)}, attrs,
            dt == DType::BF16 ? 1e-2 : 1e-5);
  }
}

TEST_F(CudaKernelsGpu, UnfusedStepsMatchCpu) {
  for (DType dt : {DType::F32, DType::BF16}) {
    // libm and CUDA's expf/tanhf/erff may differ in the last bits; add and the norms should not.
    const double tol = dt == DType::BF16 ? 4e-3 : 1e-6;
    rt::Attrs add, gelu, norm;
    add.set("formula", std::string("add"));
    gelu.set("formula", std::string("gelu_tanh"));
    norm.set("epsilon", 1e-6);
    compare("formula", {make(dt, {2, 64, 256}, 16), make(dt, {256}, 17)}, {make(dt, {2, 64, 256}, 0, false)}, add, 0.0);
    compare("formula", {make(dt, {2, 64, 256}, 18)}, {make(dt, {2, 64, 256}, 0, false)}, gelu, tol);
    compare("rms_norm", {make(dt, {2, 64, 256}, 19), make(dt, {256}, 20)}, {make(dt, {2, 64, 256}, 0, false)}, norm,
            tol);
    compare("layer_norm", {make(dt, {2, 64, 256}, 21), make(dt, {256}, 22), make(dt, {256}, 23)},
            {make(dt, {2, 64, 256}, 0, false)}, norm, tol);
    rt::Attrs axis1;
    axis1.set("axis", int64_t(1));
    compare("softmax", {make(dt, {2, 64, 256}, 27)}, {make(dt, {2, 64, 256}, 0, false)}, rt::Attrs(), tol);
    compare("log_softmax", {make(dt, {2, 64, 256}, 28)}, {make(dt, {2, 64, 256}, 0, false)}, axis1, tol);
    compare("rotary", {make(dt, {2, 4, 64, 32}, 24), make(DType::F32, {64, 32}, 25), make(DType::F32, {64, 32}, 26)},
            {make(dt, {2, 4, 64, 32}, 0, false)}, rt::Attrs(), 0.0);
  }
}

TEST_F(CudaKernelsGpu, SelectionsAndGemmMatchCpu) {
  compare("where", {make(DType::Bool, {3, 1, 64}, 29), make(DType::F32, {2, 64}, 30), make(DType::F32, {3, 2, 1}, 31)},
          {make(DType::F32, {3, 2, 64}, 0, false)}, rt::Attrs(), 0.0);
  compare("equal", {make(DType::I64, {3, 2, 64}, 32), make(DType::I64, {2, 64}, 33)},
          {make(DType::Bool, {3, 2, 64}, 0, false)}, rt::Attrs(), 0.0);
  rt::Attrs trilu;
  trilu.set("upper", false);
  compare("trilu", {make(DType::F32, {2, 64, 64}, 34)}, {make(DType::F32, {2, 64, 64}, 0, false)}, trilu, 0.0);
  rt::Attrs gemm;
  gemm.set("trans_b", true);
  gemm.set("alpha", 0.5);
  compare("gemm", {make(DType::F32, {64, 96}, 35), make(DType::F32, {80, 96}, 36), make(DType::F32, {80}, 37)},
          {make(DType::F32, {64, 80}, 0, false)}, gemm, 1e-5);
}

// The MoE steps of MoeKernels.cu: the loops of cuBLASLt GEMMs over expert groups (an expert
// without rows, rows past the received ones) and the SIMT kernels around them; the host reads
// the group sizes, which the backend counts (so such a run is not captured).
TEST_F(CudaKernelsGpu, MoeGemmLoopsMatchCpu) {
  const int64_t T = 40, H = 64, I = 96, E = 4, k = 2;
  Host ids{DType::I64, {T, k}, std::vector<uint8_t>(size_t(T * k) * 8)};
  for (int64_t r = 0; r < T * k; ++r) {
    const int64_t e = (r * 3 + r / 5) % 3; // expert 3 gets no rows
    std::memcpy(&ids.bytes[size_t(r) * 8], &e, 8);
  }
  const uint64_t waits = backend_->kernelHostWaits();
  for (const char *act : {"silu", "gelu_tanh"}) {
    rt::Attrs attrs;
    attrs.set("activation", std::string(act));
    compare("moe_experts",
            {make(DType::F32, {T, H}, 40), ids, make(DType::F32, {T, k}, 41), make(DType::F32, {E, 2 * I, H}, 42),
             make(DType::F32, {E, H, I}, 43)},
            {make(DType::F32, {T, H}, 0, false), make(DType::F32, {T * k, I}, 0, false)}, attrs, 1e-5);
  }
  EXPECT_GT(backend_->kernelHostWaits(), waits);
  // Two sources x two local experts: 5, 0, 7 and 3 rows of 20 (the last 5 rows zero).
  Host counts{DType::I64, {4}, std::vector<uint8_t>(32)};
  const int64_t c[4] = {5, 0, 7, 3};
  std::memcpy(counts.bytes.data(), c, 32);
  compare("moe_grouped_gemm",
          {make(DType::F32, {20, H}, 44), counts, make(DType::F32, {2, 2 * I, H}, 45), make(DType::F32, {2, H, I}, 46)},
          {make(DType::F32, {20, H}, 0, false), make(DType::F32, {20, I}, 0, false)}, rt::Attrs(), 1e-5);
}

TEST_F(CudaKernelsGpu, FirstKindsMatchCpu) {
  rt::Attrs none;
  compare("cast", {make(DType::F32, {3, 70}, 13)}, {make(DType::BF16, {3, 70}, 0, false)}, none, 0.0);
  rt::Attrs gather;
  gather.set("axis", int64_t(0));
  compare("gather", {make(DType::F32, {100, 8}, 14), make(DType::I64, {5}, 15)},
          {make(DType::F32, {5, 8}, 0, false)}, gather, 0.0);
}

} // namespace
