// The CUDA library kernels token_loss_grad and embedding_grad (runtime/backends/cuda/
// LibraryKernels.cu) against the CPU kernels (whose gradients unit.grad_kernels checks by
// finite differences). Needs a GPU: registered as gpu.grad_kernels only with
// -DSHARDC_ENABLE_GPU_TESTS=ON.
#include "CudaBackend.h"
#include "shardc/runtime/Kernel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

namespace {

using namespace shardc;
using rt::DType;
using Shape = std::vector<int64_t>;

int64_t numelOf(const Shape &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}

// A host tensor and its device copy.
struct Pair {
  std::vector<uint8_t> host;
  rt::MemoryBlock device;
  rt::TensorView h, d;
};

class GradKernelsGpu : public ::testing::Test {
protected:
  void SetUp() override {
    std::string err = cuda::CudaBackend::create(0, backend_);
    ASSERT_EQ(err, "") << "no usable GPU";
  }

  Pair make(DType dtype, Shape shape, const std::vector<double> &values) {
    Pair p;
    const size_t bytes = static_cast<size_t>(numelOf(shape)) * rt::dtypeSize(dtype);
    p.host.assign(bytes + 8, 0);
    p.h = rt::TensorView{p.host.data(), dtype, shape};
    for (size_t i = 0; i < values.size(); ++i) {
      void *at = p.host.data();
      switch (dtype) {
      case DType::F32: static_cast<float *>(at)[i] = float(values[i]); break;
      case DType::BF16: static_cast<uint16_t *>(at)[i] = rt::f32ToBf16(float(values[i])); break;
      case DType::I64: static_cast<int64_t *>(at)[i] = int64_t(values[i]); break;
      case DType::I32: static_cast<int32_t *>(at)[i] = int32_t(values[i]); break;
      default: ADD_FAILURE() << "unused dtype";
      }
    }
    p.device = backend_->allocate(bytes + 8);
    p.d = rt::TensorView{p.device.data(), dtype, shape};
    EXPECT_EQ(backend_->copyIn(p.device.data(), p.host.data(), bytes), "");
    return p;
  }

  static std::vector<double> values(const rt::TensorView &t) {
    std::vector<double> v(static_cast<size_t>(t.numel()));
    for (size_t i = 0; i < v.size(); ++i)
      v[i] = t.dtype == DType::F32 ? t.as<float>()[i] : rt::bf16ToF32(t.as<uint16_t>()[i]);
    return v;
  }

  // Runs `op` on the GPU and on the CPU; returns both outputs' values (GPU, CPU).
  std::pair<std::vector<double>, std::vector<double>> both(const std::string &op, std::vector<Pair *> ins, Pair &out,
                                                           const rt::Attrs &attrs = rt::Attrs()) {
    rt::KernelArgs gpu, cpu;
    gpu.attrs = cpu.attrs = &attrs;
    for (Pair *p : ins) {
      gpu.in.push_back(p->d);
      cpu.in.push_back(p->h);
    }
    gpu.out.push_back(out.d);
    cpu.out.push_back(out.h);
    rt::KernelFn fn = backend_->lookupKernel(op);
    EXPECT_NE(fn, nullptr) << op;
    if (!fn)
      return {};
    EXPECT_EQ(fn(gpu), "");
    EXPECT_EQ(backend_->synchronize(), "");
    std::vector<uint8_t> fromGpu(out.host.size());
    EXPECT_EQ(backend_->copyOut(fromGpu.data(), out.device.data(), out.h.bytes()), "");
    EXPECT_EQ(rt::lookupCpuKernel(op)(cpu), "");
    rt::TensorView g{fromGpu.data(), out.h.dtype, out.h.shape};
    lastGpuBytes_ = fromGpu;
    return {values(g), values(out.h)};
  }

  std::unique_ptr<cuda::CudaBackend> backend_;
  std::vector<uint8_t> lastGpuBytes_;
  std::mt19937 rng_{7};

  std::vector<double> uniform(int64_t n, double lo, double hi) {
    std::uniform_real_distribution<double> dist(lo, hi);
    std::vector<double> v(static_cast<size_t>(n));
    for (double &x : v)
      x = dist(rng_);
    return v;
  }
};

void expectClose(const std::vector<double> &got, const std::vector<double> &want, double tol, const char *what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 0;
  for (double w : want)
    scale = std::max(scale, std::fabs(w));
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " at " << i;
}

TEST_F(GradKernelsGpu, TokenLossGradMatchesTheCpu) {
  const int64_t B = 2, S = 5, V = 1000;
  std::vector<double> labels = {3, -100, 999, 0, 17, 500, -100, 2, 998, 1};
  Pair lab = make(DType::I64, {B, S}, labels), ds = make(DType::F32, {}, {0.25});
  for (DType dtype : {DType::F32, DType::BF16}) {
    Pair x = make(dtype, {B, S, V}, uniform(B * S * V, -6, 6)), dx = make(dtype, {B, S, V}, {});
    auto [gpu, cpu] = both("token_loss_grad", {&x, &lab, &ds}, dx);
    expectClose(gpu, cpu, dtype == DType::F32 ? 1e-5 : 1e-2, rt::dtypeName(dtype));
  }
}

TEST_F(GradKernelsGpu, EmbeddingGradMatchesTheCpuAndIsReproducible) {
  const int64_t N = 1200, H = 64, V = 50;
  std::vector<double> idValues;
  for (double u : uniform(N, 0, V))
    idValues.push_back(std::floor(u));
  for (DType idType : {DType::I64, DType::I32})
    for (DType dtype : {DType::F32, DType::BF16}) {
      Pair ids = make(idType, {4, N / 4}, idValues), dy = make(dtype, {4, N / 4, H}, uniform(N * H, -1, 1));
      Pair dt = make(dtype, {V, H}, {});
      rt::Attrs padding;
      padding.set("padding_idx", int64_t(3));
      auto [gpu, cpu] = both("embedding_grad", {&ids, &dy}, dt, padding);
      expectClose(gpu, cpu, dtype == DType::F32 ? 1e-5 : 1e-2, "embedding_grad");
      std::vector<uint8_t> first = lastGpuBytes_;
      both("embedding_grad", {&ids, &dy}, dt, padding);
      EXPECT_EQ(first, lastGpuBytes_) << "two runs differ";
      // A vocabulary split: rows [10, 30) of the 50.
      Pair start = make(DType::I64, {}, {10}), part = make(dtype, {20, H}, {});
      rt::Attrs split;
      split.set("vocab_size", V);
      auto [gpuPart, cpuPart] = both("embedding_grad", {&ids, &dy, &start}, part, split);
      expectClose(gpuPart, cpuPart, dtype == DType::F32 ? 1e-5 : 1e-2, "row_start");
    }
}

} // namespace
