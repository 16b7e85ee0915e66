// GPU micro-benchmarks of the CUDA backend's two heaviest kernels, for bench/gpu/kit2.sh:
// the flash attention kernel on the shape of bench_torch.py's SDPA anchor (causal, batch 4,
// 32 heads, sequence 2048, head dim 64, bf16) and a cuBLASLt bf16 GEMM of 8192^3 through the
// backend's CublasLtGemm, each timed with CUDA events over repeated launches. Prints one JSON
// line per measurement (as bench_torch.py does), so that the two can be put side by side.
// Figures only: nothing is checked here (gpu.flash_attention and gpu.gemm.cublaslt test).
#include "shardc/cuda/CublasLtGemm.h"
#include "shardc/cuda/FlashAttention.h"

#include <cuda_runtime_api.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <functional>
#include <string>
#include <vector>

namespace {

using namespace shardc;

bool check(cudaError_t e, const char *what) {
  if (e == cudaSuccess)
    return true;
  std::fprintf(stderr, "shardc-bench-kernels: %s: %s\n", what, cudaGetErrorString(e));
  return false;
}

// Mean milliseconds of `launch` over `iters` launches after `warm`, or < 0 on an error.
double timeLaunches(const std::function<std::string()> &launch, int warm, int iters) {
  for (int i = 0; i < warm; ++i)
    if (std::string err = launch(); !err.empty()) {
      std::fprintf(stderr, "shardc-bench-kernels: %s\n", err.c_str());
      return -1.0;
    }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  cudaEventRecord(start, nullptr);
  for (int i = 0; i < iters; ++i)
    (void)launch();
  cudaEventRecord(stop, nullptr);
  if (!check(cudaEventSynchronize(stop), "timing"))
    return -1.0;
  float ms = 0.0f;
  cudaEventElapsedTime(&ms, start, stop);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return double(ms) / iters;
}

void *deviceRandom(size_t elems16) {
  std::vector<uint16_t> host(elems16);
  uint32_t state = 12345;
  for (auto &h : host) { // bf16 values in about [-1, 1)
    state = state * 1664525u + 1013904223u;
    float f = float(int32_t(state >> 8) - (1 << 23)) / float(1 << 23);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    h = uint16_t(bits >> 16);
  }
  void *p = nullptr;
  if (!check(cudaMalloc(&p, elems16 * 2), "cudaMalloc") ||
      !check(cudaMemcpy(p, host.data(), elems16 * 2, cudaMemcpyHostToDevice), "cudaMemcpy"))
    std::exit(1);
  return p;
}

} // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::fprintf(stderr, "shardc-bench-kernels: no CUDA device\n");
    return 1;
  }
  cudaDeviceProp prop{};
  cudaGetDeviceProperties(&prop, 0);
  std::printf("{\"what\": \"device\", \"name\": \"%s\"}\n", prop.name);

  { // Flash attention, causal: 4 * B * H * S^2 * D / 2 flops.
    const int64_t B = 4, H = 32, S = 2048, D = 64;
    void *q = deviceRandom(size_t(B * H * S * D)), *k = deviceRandom(size_t(B * H * S * D));
    void *v = deviceRandom(size_t(B * H * S * D)), *y = deviceRandom(size_t(B * H * S * D));
    kernels::FlashAttentionParams p;
    p.q = q; p.k = k; p.v = v; p.y = y;
    p.B = B; p.Hq = H; p.Hkv = H; p.S = S; p.T = S;
    p.scale = 0.125f;
    p.causal = 1;
    const double ms = timeLaunches([&] { return cuda::launchFlashAttention(p, true, int(D), nullptr); }, 3, 20);
    if (ms > 0)
      std::printf("{\"what\": \"flash_fwd_causal_b4_h32_s2048_d64\", \"ms\": %.4f, \"tflops\": %.2f}\n", ms,
                  4.0 * B * H * S * S * D / 2 / (ms * 1e-3) / 1e12);
    for (void *ptr : {q, k, v, y})
      cudaFree(ptr);
  }

  { // cuBLASLt bf16 GEMM 8192^3 (f32 accumulation, bf16 out): 2 * M * N * K flops.
    const int64_t n = 8192;
    std::unique_ptr<cuda::CublasLtGemm> gemm;
    if (std::string err = cuda::CublasLtGemm::create(gemm); !err.empty()) {
      std::fprintf(stderr, "shardc-bench-kernels: %s\n", err.c_str());
      return 1;
    }
    kernels::GemmProblem problem;
    problem.M = problem.N = problem.K = n;
    problem.a = problem.b = problem.c = problem.d = problem.bias = rt::DType::BF16;
    kernels::GemmPlan plan;
    if (std::string err = kernels::planGemm(problem, plan); !err.empty()) {
      std::fprintf(stderr, "shardc-bench-kernels: %s\n", err.c_str());
      return 1;
    }
    void *a = deviceRandom(size_t(n * n)), *b = deviceRandom(size_t(n * n)), *d = deviceRandom(size_t(n * n));
    const double ms = timeLaunches([&] { return gemm->run(plan, a, b, nullptr, nullptr, d, nullptr); }, 3, 20);
    if (ms > 0)
      std::printf("{\"what\": \"cublaslt_gemm_bf16_8192\", \"ms\": %.4f, \"tflops\": %.2f}\n", ms,
                  2.0 * n * n * n / (ms * 1e-3) / 1e12);
    for (void *ptr : {a, b, d})
      cudaFree(ptr);
  }
  return 0;
}
