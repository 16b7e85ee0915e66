// The CUDA backend's MoE steps (docs/moe.md): the raised router and experts, expert
// parallelism's local steps and the MoE backward. moe_experts and moe_grouped_gemm are loops of
// cuBLASLt GEMMs over expert groups (planMoeGemmGroups of MoeKernels.h, the groups the CPU
// kernels run with sgemm), two GEMMs per group with the GLU between them. The group sizes are
// read on the host: moe_experts copies the expert ids over and sorts the (token, choice) pairs
// there (moePermutePlan, the CPU's counting sort), moe_grouped_gemm copies the received counts.
// The host waits for those copies, so a program with these steps is not captured as a graph
// (noteHostWait), as Megatron's dropless MoE reads tokens_per_expert on the host. The other
// steps are the SIMT kernels of MoeKernels.h and MoeGradKernels.h, which the CPU tests run
// through the emulator. Built with --fmad=false, like SharedKernels.cu.
#include "CudaBackend.h"
#include "LibraryKernels.h"
#include "SimtLaunch.cuh"
#include "shardc/kernels/MoeGradKernels.h"
#include "shardc/kernels/MoeKernels.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace shardc::cuda {

namespace {

using rt::KernelArgs;
using simt_launch::anyType;
using simt_launch::launched;
using simt_launch::perElement;

__global__ void __launch_bounds__(kernels::kIndexThreads) moeRouterGlobal(kernels::MoeRouterParams p) {
  kernels::moeRouterTokens(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) moeGluGlobal(kernels::MoeGluParams p) {
  kernels::moeGluElements(p);
}
// Expert parallelism: the counting sort in one thread, then the elements.
__global__ void moePermutePlanGlobal(kernels::MoeEpParams p) { kernels::moePermutePlan(p); }
__global__ void __launch_bounds__(kernels::kIndexThreads) moePermuteGlobal(kernels::MoeEpParams p) {
  kernels::moePermuteElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) moeUnpermuteGlobal(kernels::MoeEpParams p) {
  kernels::moeUnpermuteElements(p);
}
#define SHARDC_MOE_GRAD_GLOBAL(fn)                                                                      \
  __global__ void __launch_bounds__(kernels::kIndexThreads) fn##Global(kernels::MoeGradSeqParams p) { \
    kernels::fn##s(p);                                                                                 \
  }
SHARDC_MOE_GRAD_GLOBAL(moeGradGatherElement)
SHARDC_MOE_GRAD_GLOBAL(moeGradHiddenElement)
SHARDC_MOE_GRAD_GLOBAL(moeGradGluElement)
SHARDC_MOE_GRAD_GLOBAL(moeGradWeightsElement)
SHARDC_MOE_GRAD_GLOBAL(moeGradXElement)
#undef SHARDC_MOE_GRAD_GLOBAL
__global__ void __launch_bounds__(kernels::kIndexThreads) moeRouterGradGlobal(kernels::MoeRouterGradParams p) {
  kernels::moeRouterGradTokens(p);
}

std::string cudaText(const char *op, const char *what, cudaError_t rc) {
  return std::string(op) + ": " + what + ": " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
}

// The GEMM loops' per-thread buffers, grown on demand: device scratch (stream-ordered, so a
// replaced buffer is freed after the work that used it) and pinned host memory for what the
// host reads and writes. Allocating between launches is allowed: these steps run uncaptured.
struct MoeScratch {
  void *device = nullptr, *host = nullptr;
  size_t deviceBytes = 0, hostBytes = 0;
  ~MoeScratch() {
    if (host)
      cudaFreeHost(host);
    if (device)
      cudaFree(device);
  }
};
thread_local MoeScratch scratch;

std::string deviceScratch(const char *op, size_t bytes, char *&out) {
  cudaStream_t s = threadContext().stream;
  if (bytes > scratch.deviceBytes) {
    if (scratch.device)
      cudaFreeAsync(scratch.device, s);
    scratch.device = nullptr, scratch.deviceBytes = 0;
    if (cudaError_t rc = cudaMallocAsync(&scratch.device, bytes, s); rc != cudaSuccess)
      return cudaText(op, ("allocating " + std::to_string(bytes) + " bytes of workspace").c_str(), rc);
    scratch.deviceBytes = bytes;
  }
  out = static_cast<char *>(scratch.device);
  return "";
}
// Pinned host memory; waits for the stream first, since an earlier step may still be copying
// from it.
std::string hostScratch(const char *op, size_t bytes, char *&out) {
  if (bytes > scratch.hostBytes) {
    if (cudaError_t rc = cudaStreamSynchronize(threadContext().stream); rc != cudaSuccess)
      return cudaText(op, "waiting for the stream", rc);
    if (scratch.host)
      cudaFreeHost(scratch.host);
    scratch.host = nullptr, scratch.hostBytes = 0;
    if (cudaError_t rc = cudaHostAlloc(&scratch.host, bytes, cudaHostAllocDefault); rc != cudaSuccess)
      return cudaText(op, "allocating pinned host memory", rc);
    scratch.hostBytes = bytes;
  }
  out = static_cast<char *>(scratch.host);
  return "";
}
// Copies `bytes` of device memory to the host and waits for them (the host wait that keeps the
// program uncaptured).
std::string readOnHost(const char *op, void *host, const void *device, size_t bytes) {
  cudaStream_t s = threadContext().stream;
  cudaError_t rc = cudaMemcpyAsync(host, device, bytes, cudaMemcpyDeviceToHost, s);
  if (rc == cudaSuccess)
    rc = cudaStreamSynchronize(s);
  noteHostWait();
  return rc == cudaSuccess ? "" : cudaText(op, "reading the group sizes", rc);
}
size_t aligned(size_t bytes) { return (bytes + 255) & ~size_t(255); }

// The experts over grouped rows (MoeKernels.h's runMoeExpertGroups): cuBLASLt GEMMs and the
// GLU as a launch.
std::string runExpertGroups(const char *op, const std::vector<kernels::MoeGemmGroup> &groups, int64_t total,
                            const float *rows, const float *gateUp, const float *down, int64_t H, int64_t I,
                            kernels::MoeActivation act, float *gate, float *hidden, float *out) {
  kernels::MoeGluParams glu;
  glu.gate = gate, glu.hidden = hidden, glu.I = I, glu.activation = act;
  auto gemm = [op](int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C) {
    return lib::groupGemm(op, false, true, M, N, K, A, K, B, K, C, N);
  };
  auto runGlu = [op, &glu](int64_t rows) {
    glu.rows = rows;
    return perElement(op, moeGluGlobal, glu, rows * glu.I);
  };
  return kernels::runMoeExpertGroups(groups, total, rows, gateUp, down, H, I, gate, hidden, out, gemm, runGlu);
}

// The MoE backward (f32): MoeGradKernels.h's runMoeGradSequence with cuBLASLt GEMMs over the
// expert groups and the element steps as launches. `ids` [T·k] on the host (-1: a row of no
// expert, allowed with allowNone): the pairs are sorted there and their rows copied over.
std::string moeGradOnDevice(const char *op, const KernelArgs &a, const float *x, const float *dy, const float *w,
                            const int64_t *ids, int64_t T, int64_t k, int64_t E, int64_t H, int64_t I,
                            bool allowNone, kernels::MoeActivation act, const float *gateUp, const float *down,
                            char *host) {
  const int64_t N = T * k;
  auto *rowOf = reinterpret_cast<int64_t *>(host) + N, *counts = rowOf + N;
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  bool unrouted = false;
  if (std::string e = kernels::planMoeRowGroups(ids, T, k, E, rowOf, counts, groups, total, unrouted); !e.empty())
    return std::string(op) + ": " + e;
  if (unrouted && !allowNone)
    return std::string(op) + ": an expert id outside [0, " + std::to_string(E) + ")";
  // Scratch: rows, dyw, o, dxRows [total, H], gate [total, 2I], dh [total, I], then rowOf.
  const size_t rowsBytes = aligned(size_t(total * H) * 4), gateBytes = aligned(size_t(total * 2 * I) * 4),
               dhBytes = aligned(size_t(total * I) * 4);
  char *dev = nullptr;
  if (std::string e = deviceScratch(op, 4 * rowsBytes + gateBytes + dhBytes + size_t(N) * 8, dev); !e.empty())
    return e;
  kernels::MoeGradSeqParams p;
  p.rows = reinterpret_cast<float *>(dev), p.dyw = reinterpret_cast<float *>(dev + rowsBytes);
  p.o = reinterpret_cast<float *>(dev + 2 * rowsBytes), p.dxRows = reinterpret_cast<float *>(dev + 3 * rowsBytes);
  p.gate = reinterpret_cast<float *>(dev + 4 * rowsBytes);
  p.dh = reinterpret_cast<float *>(dev + 4 * rowsBytes + gateBytes);
  auto *rowOfDev = reinterpret_cast<int64_t *>(dev + 4 * rowsBytes + gateBytes + dhBytes);
  cudaStream_t s = threadContext().stream;
  if (cudaError_t rc = cudaMemcpyAsync(rowOfDev, rowOf, size_t(N) * 8, cudaMemcpyHostToDevice, s); rc != cudaSuccess)
    return cudaText(op, "copying the rows' order", rc);
  p.x = x, p.dy = dy, p.weights = w, p.rowOf = rowOfDev;
  p.work = static_cast<float *>(a.out[4].data), p.dweights = static_cast<float *>(a.out[1].data);
  p.dx = static_cast<float *>(a.out[0].data);
  p.T = T, p.H = H, p.k = k, p.I = I, p.total = total, p.activation = act;
  auto gemm = [op](bool ta, bool tb, int64_t M, int64_t Nn, int64_t K, const float *A, int64_t lda, const float *B,
                   int64_t ldb, float *C, int64_t ldc) {
    return lib::groupGemm(op, ta, tb, M, Nn, K, A, lda, B, ldb, C, ldc);
  };
  auto run = [op, &p](kernels::MoeGradStep step, int64_t count) {
    switch (step) {
    case kernels::MoeGradStep::Gather: return perElement(op, moeGradGatherElementGlobal, p, count);
    case kernels::MoeGradStep::Hidden: return perElement(op, moeGradHiddenElementGlobal, p, count);
    case kernels::MoeGradStep::Glu: return perElement(op, moeGradGluElementGlobal, p, count);
    case kernels::MoeGradStep::Weights: return perElement(op, moeGradWeightsElementGlobal, p, count);
    case kernels::MoeGradStep::X: return perElement(op, moeGradXElementGlobal, p, count);
    }
    return std::string(op) + ": unknown step";
  };
  auto zero = [op, s](float *ptr, int64_t count) {
    cudaError_t rc = count > 0 ? cudaMemsetAsync(ptr, 0, size_t(count) * 4, s) : cudaSuccess;
    return rc == cudaSuccess ? std::string() : cudaText(op, "zeroing", rc);
  };
  return kernels::runMoeGradSequence(groups, p, gateUp, down, E, static_cast<float *>(a.out[2].data),
                                     static_cast<float *>(a.out[3].data), gemm, run, zero);
}

} // namespace

namespace lib {

// moe_experts (f32): the pairs sorted by expert on the host, x's rows permuted on the device,
// the GEMM loop, then each token's k weighted rows summed (moeUnpermuteElement).
std::string moeExpertsKernel(const KernelArgs &a) {
  const char *op = "moe_experts";
  kernels::MoeExpertsParams p;
  std::string err =
      kernels::planMoeExperts(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape, a.in[4].shape, p);
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", p.activation);
  if (!err.empty())
    return std::string(op) + ": " + err;
  const int64_t N = p.T * p.k, H = p.H, I = p.I;
  if (N == 0)
    return "";
  char *host = nullptr, *dev = nullptr;
  const size_t idBytes = size_t(N) * 8, rowBytes = aligned(size_t(N * H) * 4);
  if (std::string e = hostScratch(op, 2 * idBytes + size_t(p.E) * 8, host); !e.empty())
    return e;
  if (std::string e = deviceScratch(op, 2 * rowBytes + aligned(size_t(N * 2 * I) * 4) + idBytes, dev); !e.empty())
    return e;
  auto *ids = reinterpret_cast<int64_t *>(host), *rowOf = ids + N, *counts = rowOf + N;
  float *rows = reinterpret_cast<float *>(dev), *back = reinterpret_cast<float *>(dev + rowBytes);
  float *gate = reinterpret_cast<float *>(dev + 2 * rowBytes);
  auto *rowOfDev = reinterpret_cast<int64_t *>(dev + 2 * rowBytes + aligned(size_t(N * 2 * I) * 4));
  if (std::string e = readOnHost(op, ids, a.in[1].data, idBytes); !e.empty())
    return e;
  std::vector<kernels::MoeGemmGroup> groups; // the pairs sorted by expert, on the host
  int64_t total = 0;
  bool unrouted = false;
  if (std::string e = kernels::planMoeRowGroups(ids, p.T, p.k, p.E, rowOf, counts, groups, total, unrouted);
      !e.empty())
    return std::string(op) + ": " + e;
  if (unrouted)
    return std::string(op) + ": an expert id outside [0, " + std::to_string(p.E) + ")";
  cudaStream_t s = threadContext().stream;
  if (cudaError_t rc = cudaMemcpyAsync(rowOfDev, rowOf, idBytes, cudaMemcpyHostToDevice, s); rc != cudaSuccess)
    return cudaText(op, "copying the rows' order", rc);
  kernels::MoeEpParams dp;
  dp.x = a.in[0].data, dp.rows = rows, dp.rowOfC = rowOfDev, dp.T = p.T, dp.H = H, dp.k = p.k;
  if (std::string e = perElement(op, moePermuteGlobal, dp, N * H); !e.empty())
    return e;
  if (std::string e = runExpertGroups(op, groups, total, rows, static_cast<const float *>(a.in[3].data),
                                      static_cast<const float *>(a.in[4].data), H, I, p.activation, gate,
                                      static_cast<float *>(a.out[1].data), back);
      !e.empty())
    return e;
  dp.back = back, dp.weights = static_cast<const float *>(a.in[2].data), dp.y = static_cast<float *>(a.out[0].data);
  return perElement(op, moeUnpermuteGlobal, dp, p.T * H);
}

std::string moeRouterKernel(const KernelArgs &a) {
  kernels::MoeRouterParams p;
  const bool hasBias = a.in.size() > 1;
  if (std::string err = kernels::planMoeRouter(a.in[0].shape, hasBias ? &a.in[1].shape : nullptr, a.out[0].shape,
                                               a.out[1].shape, a.attrs ? a.attrs->getInt("n_group", 1) : 1,
                                               a.attrs ? a.attrs->getInt("topk_group", 1) : 1,
                                               a.attrs ? a.attrs->getInt("group_k", 2) : 2, p);
      !err.empty())
    return "moe_router: " + err;
  p.logits = a.in[0].data;
  p.bias = hasBias ? a.in[1].data : nullptr;
  p.indices = static_cast<int64_t *>(a.out[0].data);
  p.weights = a.out[1].data;
  p.type = anyType(a.in[0].dtype);
  p.sigmoid = a.attrs && a.attrs->getString("scoring", "softmax") == "sigmoid";
  p.normalize = a.attrs && a.attrs->getBool("normalize", false);
  p.normEpsilon = float(a.attrs ? a.attrs->getFloat("norm_epsilon", 0.0) : 0.0);
  p.scale = float(a.attrs ? a.attrs->getFloat("scale", 1.0) : 1.0);
  return perElement("moe_router", moeRouterGlobal, p, p.T);
}

// Expert parallelism's local steps (shapes checked by the table's accepts functions). An
// expert id outside [0, E) gets no row in moe_permute (the CPU kernel reports it).
std::string moePermuteKernel(const KernelArgs &a) {
  kernels::MoeEpParams p;
  p.x = a.in[0].data;
  p.ids = static_cast<const int64_t *>(a.in[1].data);
  p.rows = a.out[0].data;
  p.counts = static_cast<int64_t *>(a.out[1].data);
  p.rowOf = static_cast<int64_t *>(a.out[2].data);
  p.rowOfC = p.rowOf;
  p.T = a.in[0].shape[0], p.H = a.in[0].shape[1], p.k = a.in[1].shape[1], p.E = a.out[1].shape[0];
  p.elemSize = int(rt::dtypeSize(a.in[0].dtype));
  moePermutePlanGlobal<<<1, 1, 0, threadContext().stream>>>(p);
  if (std::string err = launched("moe_permute"); !err.empty())
    return err;
  return perElement("moe_permute", moePermuteGlobal, p, p.T * p.k * p.H);
}

// moe_grouped_gemm (f32, SwiGLU): recv [R, H] grouped by recv_counts [G·El] ([source][local
// expert]); the GEMM loop over the received segments; the rows past the received total are zero.
std::string moeGroupedGemmKernel(const KernelArgs &a) {
  const char *op = "moe_grouped_gemm";
  const int64_t R = a.in[0].shape[0], H = a.in[0].shape[1], El = a.in[2].shape[0], I = a.in[3].shape[2];
  const int64_t segments = a.in[1].shape[0];
  char *host = nullptr, *dev = nullptr;
  if (std::string e = hostScratch(op, size_t(segments) * 8, host); !e.empty())
    return e;
  auto *counts = reinterpret_cast<int64_t *>(host);
  if (std::string e = readOnHost(op, counts, a.in[1].data, size_t(segments) * 8); !e.empty())
    return e;
  std::vector<kernels::MoeGemmGroup> groups;
  int64_t total = 0;
  if (std::string e = kernels::planMoeGemmGroups(counts, segments, El, R, groups, total); !e.empty())
    return std::string(op) + ": " + e;
  if (std::string e = deviceScratch(op, std::max<size_t>(size_t(total * 2 * I) * 4, 1), dev); !e.empty())
    return e;
  auto *hidden = static_cast<float *>(a.out[1].data), *out = static_cast<float *>(a.out[0].data);
  if (std::string e = runExpertGroups(op, groups, total, static_cast<const float *>(a.in[0].data),
                                      static_cast<const float *>(a.in[2].data),
                                      static_cast<const float *>(a.in[3].data), H, I, kernels::MoeActivation::Silu,
                                      reinterpret_cast<float *>(dev), hidden, out);
      !e.empty())
    return e;
  cudaStream_t s = threadContext().stream;
  cudaError_t rc = cudaMemsetAsync(hidden + total * I, 0, size_t((R - total) * I) * 4, s);
  if (rc == cudaSuccess)
    rc = cudaMemsetAsync(out + total * H, 0, size_t((R - total) * H) * 4, s);
  return rc == cudaSuccess ? "" : cudaText(op, "zeroing the rows past the received ones", rc);
}

std::string moeUnpermuteKernel(const KernelArgs &a) {
  kernels::MoeEpParams p;
  p.back = static_cast<const float *>(a.in[0].data);
  p.rowOfC = static_cast<const int64_t *>(a.in[1].data);
  p.weights = static_cast<const float *>(a.in[2].data);
  p.y = static_cast<float *>(a.out[0].data);
  p.T = a.in[2].shape[0], p.k = a.in[2].shape[1], p.H = a.in[0].shape[1];
  return perElement("moe_unpermute", moeUnpermuteGlobal, p, p.T * p.H);
}

// moe_experts_grad (f32): the expert ids read on the host, then moeGradOnDevice.
std::string moeExpertsGradKernel(const KernelArgs &a) {
  const char *op = "moe_experts_grad";
  kernels::MoeExpertsGradParams p;
  std::string err = kernels::planMoeExpertsGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape,
                                                a.in[4].shape, a.in[5].shape, p);
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", p.activation);
  if (!err.empty())
    return std::string(op) + ": " + err;
  const int64_t N = p.T * p.k;
  char *host = nullptr;
  if (std::string e = hostScratch(op, size_t(2 * N + p.E) * 8, host); !e.empty())
    return e;
  if (std::string e = readOnHost(op, host, a.in[1].data, size_t(N) * 8); !e.empty())
    return e;
  return moeGradOnDevice(op, a, static_cast<const float *>(a.in[0].data), static_cast<const float *>(a.in[5].data),
                         static_cast<const float *>(a.in[2].data), reinterpret_cast<const int64_t *>(host), p.T, p.k,
                         p.E, p.H, p.I, false, p.activation, static_cast<const float *>(a.in[3].data),
                         static_cast<const float *>(a.in[4].data), host);
}
// Expert parallelism's backward: the received rows (k = 1), each row's local expert from
// recv_counts (moeReceivedRowExperts, on the host).
std::string moeGroupedGemmGradKernel(const KernelArgs &a) {
  const char *op = "moe_grouped_gemm_grad";
  kernels::MoeExpertsGradParams p;
  std::string err = kernels::planMoeGroupedGemmGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.in[3].shape,
                                                    a.in[4].shape, a.in[5].shape, p);
  if (err.empty())
    err = kernels::moeActivationOf(a.attrs ? a.attrs->getString("activation", "silu") : "silu", p.activation);
  if (!err.empty())
    return std::string(op) + ": " + err;
  const int64_t R = p.T;
  char *host = nullptr;
  if (std::string e = hostScratch(op, size_t(2 * R + p.E + p.segments) * 8, host); !e.empty())
    return e;
  auto *counts = reinterpret_cast<int64_t *>(host) + 2 * R + p.E;
  if (std::string e = readOnHost(op, counts, a.in[3].data, size_t(p.segments) * 8); !e.empty())
    return e;
  std::vector<int64_t> ids;
  if (std::string e = kernels::moeReceivedRowExperts(counts, p.segments, p.E, R, ids); !e.empty())
    return std::string(op) + ": " + e;
  return moeGradOnDevice(op, a, static_cast<const float *>(a.in[0].data), static_cast<const float *>(a.in[1].data),
                         static_cast<const float *>(a.in[2].data), ids.data(), R, 1, p.E, p.H, p.I, true,
                         p.activation, static_cast<const float *>(a.in[4].data),
                         static_cast<const float *>(a.in[5].data), host);
}
std::string moeRouterGradKernel(const KernelArgs &a) {
  kernels::MoeRouterGradParams p;
  if (std::string err = kernels::planMoeRouterGrad(a.in[0].shape, a.in[1].shape, a.in[2].shape, a.out[0].shape, p);
      !err.empty())
    return "moe_router_grad: " + err;
  p.logits = static_cast<const float *>(a.in[0].data);
  p.ids = static_cast<const int64_t *>(a.in[1].data);
  p.dweights = static_cast<const float *>(a.in[2].data);
  p.dlogits = static_cast<float *>(a.out[0].data);
  p.sigmoid = a.attrs && a.attrs->getString("scoring", "softmax") == "sigmoid";
  p.normalize = a.attrs && a.attrs->getBool("normalize", false);
  p.normEpsilon = float(a.attrs ? a.attrs->getFloat("norm_epsilon", 0.0) : 0.0);
  p.scale = float(a.attrs ? a.attrs->getFloat("scale", 1.0) : 1.0);
  return perElement("moe_router_grad", moeRouterGradGlobal, p, p.T);
}

} // namespace lib

} // namespace shardc::cuda
