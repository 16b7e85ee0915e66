// CublasLtGemm on a GPU against the naive row-major references (GemmReference.h): linear with
// and without transposed weight, bias and GELU-tanh epilogues, f32 / TF32 / bf16 / f16 (f32
// out), a broadcast-batch matmul, odd sizes, in-place accumulation, and the algorithm cache.
// Built wherever CUDA is; registered only with -DSHARDC_ENABLE_GPU_TESTS=ON.
#include "GemmReference.h"

#include "shardc/cuda/CublasLtGemm.h"
#include "shardc/runtime/Tensor.h"

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

#include <cmath>
#include <cstring>

namespace {

using namespace shardc::kernels;
using shardc::cuda::CublasLtGemm;
using shardc::rt::DType;

// Host values rounded to `t`, as the GPU sees them.
std::vector<double> roundTo(DType t, std::vector<double> v) {
  for (double &x : v)
    x = t == DType::BF16  ? shardc::rt::bf16ToF32(shardc::rt::f32ToBf16(float(x)))
        : t == DType::F16 ? shardc::rt::f16ToF32(shardc::rt::f32ToF16(float(x)))
                          : double(float(x));
  return v;
}

struct DeviceBuffer {
  void *ptr = nullptr;
  DType type = DType::F32;
  size_t n = 0;
  DeviceBuffer(DType t, const std::vector<double> &v) : type(t), n(v.size()) {
    const size_t size = t == DType::F32 ? 4 : 2;
    std::vector<uint8_t> bytes(std::max<size_t>(n, 1) * size);
    for (size_t i = 0; i < n; ++i) {
      if (t == DType::F32) {
        float f = float(v[i]);
        std::memcpy(&bytes[i * 4], &f, 4);
      } else {
        uint16_t h = t == DType::BF16 ? shardc::rt::f32ToBf16(float(v[i])) : shardc::rt::f32ToF16(float(v[i]));
        std::memcpy(&bytes[i * 2], &h, 2);
      }
    }
    EXPECT_EQ(cudaMalloc(&ptr, bytes.size()), cudaSuccess);
    EXPECT_EQ(cudaMemcpy(ptr, bytes.data(), bytes.size(), cudaMemcpyHostToDevice), cudaSuccess);
  }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  std::vector<double> read() const {
    const size_t size = type == DType::F32 ? 4 : 2;
    std::vector<uint8_t> bytes(n * size);
    EXPECT_EQ(cudaMemcpy(bytes.data(), ptr, bytes.size(), cudaMemcpyDeviceToHost), cudaSuccess);
    std::vector<double> v(n);
    for (size_t i = 0; i < n; ++i) {
      if (type == DType::F32) {
        float f;
        std::memcpy(&f, &bytes[i * 4], 4);
        v[i] = f;
      } else {
        uint16_t h;
        std::memcpy(&h, &bytes[i * 2], 2);
        v[i] = type == DType::BF16 ? shardc::rt::bf16ToF32(h) : shardc::rt::f16ToF32(h);
      }
    }
    return v;
  }
  template <typename T = void> T *at(int64_t offset) const {
    return reinterpret_cast<T *>(static_cast<uint8_t *>(ptr) + offset * (type == DType::F32 ? 4 : 2));
  }
};

class CublasLtGemmGpu : public ::testing::Test {
protected:
  void SetUp() override {
    int devices = 0;
    // Registered only with -DSHARDC_ENABLE_GPU_TESTS=ON, i.e. where a GPU is expected: a
    // missing device is a failure, not a skip.
    ASSERT_TRUE(cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0) << "no CUDA device";
    ASSERT_EQ(CublasLtGemm::create(gemm), "");
    ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  }
  void TearDown() override {
    if (stream)
      cudaStreamDestroy(stream);
  }
  std::unique_ptr<CublasLtGemm> gemm;
  cudaStream_t stream = nullptr;
};

void expectNear(const std::vector<double> &got, const std::vector<double> &want, double tol, const std::string &what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << ", element " << i;
}

struct LinearGpuCase {
  std::vector<int64_t> x;
  int64_t N;
  bool transW;
  GemmEpilogue epilogue;
  DType in, out;
  GemmPrecision precision;
  double tol;
};

TEST_F(CublasLtGemmGpu, LinearMatchesReference) {
  const LinearGpuCase cases[] = {
      {{2, 3, 64}, 96, true, GemmEpilogue::Bias, DType::F32, DType::F32, GemmPrecision::F32, 1e-5},
      {{1, 5}, 3, false, GemmEpilogue::None, DType::F32, DType::F32, GemmPrecision::F32, 1e-5}, // M=1 N=3 K=5
      {{7, 5}, 3, true, GemmEpilogue::GeluTanhBias, DType::F32, DType::F32, GemmPrecision::F32, 1e-4},
      {{64, 128}, 256, false, GemmEpilogue::None, DType::F32, DType::F32, GemmPrecision::F32AllowTF32, 5e-3},
      {{4, 16, 128}, 64, true, GemmEpilogue::GeluTanhBias, DType::BF16, DType::BF16, GemmPrecision::F32, 2e-2},
      {{33, 40}, 24, false, GemmEpilogue::Bias, DType::BF16, DType::BF16, GemmPrecision::F32, 2e-2},
      {{8, 64}, 32, true, GemmEpilogue::Bias, DType::F16, DType::F32, GemmPrecision::F32, 1e-3},
      {{1, 5}, 3, true, GemmEpilogue::GeluTanhBias, DType::F16, DType::F16, GemmPrecision::F32, 5e-3},
  };
  uint32_t seed = 1;
  for (const LinearGpuCase &c : cases) {
    GemmProblem p;
    const int64_t K = c.x.back();
    const std::vector<int64_t> w = c.transW ? std::vector<int64_t>{c.N, K} : std::vector<int64_t>{K, c.N};
    ASSERT_EQ(linearProblem(c.x, w, c.transW, c.epilogue, c.in, p), "");
    p.c = p.d = p.bias = c.out;
    p.precision = c.precision;
    GemmPlan plan;
    ASSERT_EQ(planGemm(p, plan), "");
    const std::string what = describeGemm(p);
    auto x = roundTo(c.in, gemmref::randomValues(p.M * K, seed++));
    auto wv = roundTo(c.in, gemmref::randomValues(K * p.N, seed++));
    auto bias = roundTo(c.out, gemmref::randomValues(p.N, seed++));
    DeviceBuffer dx(c.in, x), dw(c.in, wv), db(c.out, bias), dy(c.out, std::vector<double>(p.M * p.N, 0.0));
    ASSERT_EQ(gemm->run(plan, dx.ptr, dw.ptr, db.ptr, nullptr, dy.ptr, stream), "") << what;
    ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess) << what;
    expectNear(dy.read(), gemmref::linearReference(x, wv, bias, p.M, p.N, K, c.transW, c.epilogue), c.tol, what);
  }
}

TEST_F(CublasLtGemmGpu, BroadcastMatmulAndCache) {
  // Looped outer dim, strided inner batch with A broadcast: [2,1,8,32] · [1,4,32,16].
  const std::vector<int64_t> aShape = {2, 1, 8, 32}, bShape = {1, 4, 32, 16};
  MatmulGemms mm;
  ASSERT_EQ(matmulProblems(aShape, bShape, DType::BF16, mm), "");
  ASSERT_EQ(mm.launches.size(), 2u);
  GemmPlan plan;
  ASSERT_EQ(planGemm(mm.problem, plan), "");
  auto A = roundTo(DType::BF16, gemmref::randomValues(2 * 8 * 32, 11));
  auto B = roundTo(DType::BF16, gemmref::randomValues(4 * 32 * 16, 12));
  std::vector<int64_t> outShape;
  auto want = gemmref::matmulReference(A, aShape, B, bShape, outShape);
  DeviceBuffer da(DType::BF16, A), dbuf(DType::BF16, B), dy(DType::BF16, std::vector<double>(want.size(), 0.0));
  for (const MatmulLaunch &l : mm.launches)
    ASSERT_EQ(gemm->run(plan, da.at(l.offsetA), dbuf.at(l.offsetB), nullptr, nullptr, dy.at(l.offsetC), stream), "");
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  expectNear(dy.read(), want, 2e-2, "matmul");
  // Both launches have one key: their offsets (512 and 1024 bytes) keep cudaMalloc's 256-byte
  // alignment, so the heuristic ran once.
  EXPECT_EQ(gemm->cacheMisses(), 1u);
  EXPECT_EQ(gemm->cacheHits(), 1u);
  EXPECT_EQ(gemm->cachedProblems(), 1u);
}

TEST_F(CublasLtGemmGpu, AccumulatesInPlace) {
  GemmProblem p;
  ASSERT_EQ(linearProblem({16, 32}, {32, 48}, false, GemmEpilogue::None, DType::F32, p), "");
  p.beta = 1.0f;
  p.alpha = 0.5f;
  GemmPlan plan;
  ASSERT_EQ(planGemm(p, plan), "");
  auto A = gemmref::randomValues(16 * 32, 21), B = gemmref::randomValues(32 * 48, 22);
  auto D = roundTo(DType::F32, gemmref::randomValues(16 * 48, 23));
  A = roundTo(DType::F32, A);
  B = roundTo(DType::F32, B);
  DeviceBuffer da(DType::F32, A), dbuf(DType::F32, B), dd(DType::F32, D);
  ASSERT_EQ(gemm->run(plan, da.ptr, dbuf.ptr, nullptr, dd.ptr, dd.ptr, stream), "");
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  gemmref::rowMajorGemm(p, A, B, {}, D);
  expectNear(dd.read(), D, 1e-5, "in place");
}

TEST_F(CublasLtGemmGpu, RefusesMissingOperands) {
  GemmProblem p;
  ASSERT_EQ(linearProblem({4, 8}, {8, 8}, false, GemmEpilogue::Bias, DType::F32, p), "");
  GemmPlan plan;
  ASSERT_EQ(planGemm(p, plan), "");
  DeviceBuffer buf(DType::F32, std::vector<double>(64, 0.0));
  EXPECT_EQ(gemm->run(plan, buf.ptr, buf.ptr, nullptr, nullptr, buf.ptr, stream),
            "gemm: the epilogue adds a bias but none was given (f32 M=4 N=8 K=8 -> f32, bias)");
}

} // namespace
