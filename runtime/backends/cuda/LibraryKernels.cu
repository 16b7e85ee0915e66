// The CUDA backend's library kernels: the ops no generated kernel covers (for the models
// bench/gpu checks: linear, matmul, attention, embedding, gather, dynamic_slice, copy, cast,
// split; and the training loss, token_loss, and the backward kernels token_loss_grad and
// embedding_grad; attention with lse and attention_grad are SharedKernels.cu's). GEMMs go
// through cuBLAS (f32 accumulation);
// 16-bit attention is the flash kernel (FlashAttention.h, tensor cores), other attention a
// straightforward kernel (one block per query row, scores in shared memory); embedding and
// copies are plain. All enqueue on the calling thread's backend stream.
#include "CudaBackend.h"
#include "LibraryKernels.h"
#include "shardc/cuda/CublasLtGemm.h"
#include "shardc/cuda/FlashAttention.h"

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace shardc::cuda {

namespace {

using rt::DType;
using rt::KernelArgs;
using rt::TensorView;

std::string launched(const char *op) {
  cudaError_t rc = cudaGetLastError();
  return rc == cudaSuccess ? "" : std::string(op) + ": " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
}

std::string unsupported(const char *op, DType d) {
  return std::string(op) + ": dtype " + rt::dtypeName(d) + " has no CUDA kernel (f32, bf16, f16 do)";
}

bool isGemmType(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16; }

cudaDataType_t cudaType(DType d) {
  return d == DType::F32 ? CUDA_R_32F : d == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

__device__ __forceinline__ float toFloat(float x) { return x; }
__device__ __forceinline__ float toFloat(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float toFloat(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T fromFloat(float x);
template <> __device__ __forceinline__ float fromFloat<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 fromFloat<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half fromFloat<__half>(float x) { return __float2half_rn(x); }

// ---- GEMMs: row-major C[M, N] = A[M, K] op(B), op(B) = B [K, N] or, transposed, B [N, K];
// column-major cuBLAS computes C^T = op(B)^T A^T.
std::string gemm(const char *op, bool transB, int64_t M, int64_t N, int64_t K, const void *A, int64_t strideA,
                 const void *B, int64_t strideB, void *C, int64_t strideC, int64_t batch, DType dtype, float beta) {
  auto handle = static_cast<cublasHandle_t>(threadContext().cublas);
  const float alpha = 1.0f;
  cudaDataType_t t = cudaType(dtype);
  cublasStatus_t st = cublasGemmStridedBatchedEx(
      handle, transB ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, int(N), int(M), int(K), &alpha, B, t,
      int(transB ? K : N), strideB, A, t, int(K), strideA, &beta, C, t, int(N), strideC, int(batch),
      CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
  return st == CUBLAS_STATUS_SUCCESS ? "" : std::string(op) + ": cuBLAS " + cublasGetStatusString(st);
}

template <typename T> __global__ void fillRows(const T *bias, T *y, int64_t rows, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < rows * n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] = bias[i % n];
}

// The step's `axis` attribute (normalised) and the element counts before and after it in `t`.
struct AxisSplit {
  int64_t axis, outer, inner;
};
AxisSplit aroundAxis(const TensorView &t, const rt::Attrs *attrs) {
  int64_t axis = attrs ? attrs->getInt("axis", 0) : 0;
  if (axis < 0)
    axis += t.rank();
  AxisSplit split{axis, 1, 1};
  for (int64_t d = 0; d < axis; ++d)
    split.outer *= t.shape[d];
  for (int64_t d = axis + 1; d < t.rank(); ++d)
    split.inner *= t.shape[d];
  return split;
}

unsigned gridFor(int64_t n, unsigned threads) {
  int64_t blocks = (n + threads - 1) / threads;
  int64_t most = int64_t(threadContext().smCount) * 32;
  return unsigned(blocks < 1 ? 1 : blocks > most ? most : blocks);
}

// The thread's cuBLASLt GEMMs (algorithm cache, fixed workspace), made on first use.
std::string ltGemm(CublasLtGemm *&out) {
  thread_local std::unique_ptr<CublasLtGemm> gemm;
  if (!gemm)
    if (std::string err = CublasLtGemm::create(gemm); !err.empty())
      return err;
  out = gemm.get();
  return "";
}

// linear through cuBLASLt: the plan (GemmPlan.h, tested on the CPU) puts the bias in the
// epilogue, so the result is rounded once. SHARDC_GEMM=cublas selects the cuBLAS path below
// (to tell the two apart when a result is off).
std::string linearLt(const KernelArgs &a) {
  const TensorView &x = a.in[0], &w = a.in[1], &y = a.out[0];
  bool transW = a.attrs && a.attrs->getBool("transpose_w", false);
  // sc-fuse-linear-epilogue's GELU (tanh) runs in cuBLASLt's epilogue, after the bias.
  const std::string epilogue = a.attrs ? a.attrs->getString("epilogue", "") : "";
  if (!epilogue.empty() && (epilogue != "gelu_tanh" || a.in.size() < 3))
    return "linear: the epilogue '" + epilogue + "' (with" + (a.in.size() < 3 ? "out" : "") +
           " a bias) has no cuBLASLt plan";
  kernels::GemmEpilogue kind = a.in.size() < 3        ? kernels::GemmEpilogue::None
                               : epilogue.empty()     ? kernels::GemmEpilogue::Bias
                                                      : kernels::GemmEpilogue::GeluTanhBias;
  kernels::GemmProblem problem;
  if (std::string err = kernels::linearProblem(x.shape, w.shape, transW, kind, x.dtype, problem);
      !err.empty())
    return "linear: " + err;
  kernels::GemmPlan plan;
  if (std::string err = kernels::planGemm(problem, plan); !err.empty())
    return "linear: " + err;
  CublasLtGemm *gemm = nullptr;
  if (std::string err = ltGemm(gemm); !err.empty())
    return "linear: " + err;
  return gemm->run(plan, x.data, w.data, a.in.size() > 2 ? a.in[2].data : nullptr, nullptr, y.data,
                   threadContext().stream);
}

bool useCublas() {
  static const bool cublas = [] {
    const char *v = std::getenv("SHARDC_GEMM");
    return v && std::string(v) == "cublas";
  }();
  return cublas;
}

std::string linearKernel(const KernelArgs &a) {
  const TensorView &x = a.in[0], &w = a.in[1], &y = a.out[0];
  if (!isGemmType(x.dtype) || w.dtype != x.dtype || y.dtype != x.dtype)
    return unsupported("linear", x.dtype);
  if (!useCublas() || (a.attrs && !a.attrs->getString("epilogue", "").empty())) // epilogues: cuBLASLt only
    return linearLt(a);
  bool transW = a.attrs && a.attrs->getBool("transpose_w", false);
  int64_t K = x.shape.back(), N = transW ? w.shape[0] : w.shape[1], M = x.numel() / K;
  float beta = 0.0f;
  if (a.in.size() > 2) { // y starts as the bias rows; the GEMM adds onto them (one rounding)
    cudaStream_t s = threadContext().stream;
    switch (x.dtype) {
    case DType::F32: fillRows<<<gridFor(M * N, 256), 256, 0, s>>>(a.in[2].as<float>(), y.as<float>(), M, N); break;
    case DType::BF16: fillRows<<<gridFor(M * N, 256), 256, 0, s>>>(a.in[2].as<__nv_bfloat16>(), y.as<__nv_bfloat16>(), M, N); break;
    default: fillRows<<<gridFor(M * N, 256), 256, 0, s>>>(a.in[2].as<__half>(), y.as<__half>(), M, N); break;
    }
    if (std::string err = launched("linear bias"); !err.empty())
      return err;
    beta = 1.0f;
  }
  return gemm("linear", transW, M, N, K, x.data, 0, w.data, 0, y.data, 0, 1, x.dtype, beta);
}

// C [M, N] = op(A) · op(B), row-major f32 with leading dims (A [M, K] or, transposed, [K, M];
// B [K, N] or [N, K]): the MoE steps' GEMM groups (MoeKernels.cu), through linear's path
// (cuBLASLt; cuBLAS with SHARDC_GEMM=cublas).
std::string groupGemm(const char *op, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  if (M == 0 || N == 0)
    return "";
  if (useCublas()) { // column-major: C^T = op(B)^T · op(A)^T
    const float alpha = 1.0f, beta = 0.0f;
    cublasStatus_t st = cublasGemmEx(static_cast<cublasHandle_t>(threadContext().cublas),
                                     transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, int(N),
                                     int(M), int(K), &alpha, B, CUDA_R_32F, int(ldb), A, CUDA_R_32F, int(lda), &beta,
                                     C, CUDA_R_32F, int(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    return st == CUBLAS_STATUS_SUCCESS ? "" : std::string(op) + ": cuBLAS " + cublasGetStatusString(st);
  }
  kernels::GemmProblem problem;
  problem.M = M, problem.N = N, problem.K = K, problem.transposeA = transA, problem.transposeB = transB;
  problem.lda = lda, problem.ldb = ldb, problem.ldc = ldc;
  kernels::GemmPlan plan;
  std::string err = kernels::planGemm(problem, plan);
  CublasLtGemm *lt = nullptr;
  if (err.empty())
    err = ltGemm(lt);
  if (err.empty())
    err = lt->run(plan, A, B, nullptr, nullptr, C, threadContext().stream);
  return err.empty() ? "" : std::string(op) + ": " + err;
}

// matmul through cuBLASLt: any numpy batch broadcast, as one strided-batched GEMM per launch
// offset (matmulProblems, tested on the CPU).
std::string matmulLt(const KernelArgs &a) {
  const TensorView &A = a.in[0], &B = a.in[1], &y = a.out[0];
  kernels::MatmulGemms gemms;
  if (std::string err = kernels::matmulProblems(A.shape, B.shape, A.dtype, gemms); !err.empty())
    return "matmul: " + err;
  kernels::GemmPlan plan;
  if (std::string err = kernels::planGemm(gemms.problem, plan); !err.empty())
    return "matmul: " + err;
  CublasLtGemm *gemm = nullptr;
  if (std::string err = ltGemm(gemm); !err.empty())
    return "matmul: " + err;
  size_t es = rt::dtypeSize(A.dtype);
  for (const kernels::MatmulLaunch &l : gemms.launches)
    if (std::string err = gemm->run(plan, static_cast<const uint8_t *>(A.data) + l.offsetA * es,
                                    static_cast<const uint8_t *>(B.data) + l.offsetB * es, nullptr, nullptr,
                                    static_cast<uint8_t *>(y.data) + l.offsetC * es, threadContext().stream);
        !err.empty())
      return "matmul: " + err;
  return "";
}

std::string matmulKernel(const KernelArgs &a) {
  const TensorView &A = a.in[0], &B = a.in[1], &y = a.out[0];
  if (!isGemmType(A.dtype) || B.dtype != A.dtype || y.dtype != A.dtype)
    return unsupported("matmul", A.dtype);
  if (!useCublas())
    return matmulLt(a);
  if (A.rank() < 2 || B.rank() < 2)
    return "matmul: 1-D operands have no CUDA kernel yet";
  int64_t M = A.shape[A.rank() - 2], K = A.shape.back(), N = B.shape.back();
  int64_t batch = y.numel() / (M * N), batchA = A.numel() / (M * K), batchB = B.numel() / (K * N);
  if ((batchA != batch && batchA != 1) || (batchB != batch && batchB != 1))
    return "matmul: a batch broadcast other than all or one has no CUDA kernel yet";
  return gemm("matmul", false, M, N, K, A.data, batchA == 1 ? 0 : M * K, B.data, batchB == 1 ? 0 : K * N, y.data,
              M * N, batch, A.dtype, 0.0f);
}

// ---- Attention: one block per (batch, query head, query row).
__device__ float blockReduce(float v, bool max, float *shared) {
  for (int o = 16; o > 0; o >>= 1) {
    float other = __shfl_down_sync(0xffffffffu, v, o);
    v = max ? fmaxf(v, other) : v + other;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0)
    shared[warp] = v;
  __syncthreads();
  v = int(threadIdx.x) < warps ? shared[threadIdx.x] : (max ? -INFINITY : 0.0f);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1) {
      float other = __shfl_down_sync(0xffffffffu, v, o);
      v = max ? fmaxf(v, other) : v + other;
    }
  if (threadIdx.x == 0)
    shared[0] = v;
  __syncthreads();
  return shared[0];
}

struct AttentionDims {
  int64_t B, Hq, Hkv, S, T, D, Dv;
  int64_t maskStride[4]; // broadcast strides of the mask over [B, Hq, S, T]
  int maskKind;          // 0 none, 1 bool (false: masked out), 2 additive float
  float scale;
  bool causal;
};

template <typename T>
__global__ void attentionRows(const T *q, const T *k, const T *v, const void *mask, T *y, AttentionDims d) {
  extern __shared__ float scores[]; // d.T floats, then 32 for the reductions
  float *reduce = scores + d.T;
  const int64_t row = blockIdx.x, i = row % d.S, h = (row / d.S) % d.Hq, b = row / (d.S * d.Hq);
  const int64_t kvHead = h / (d.Hq / d.Hkv);
  const T *qr = q + ((b * d.Hq + h) * d.S + i) * d.D;
  const T *kh = k + (b * d.Hkv + kvHead) * d.T * d.D;
  const T *vh = v + (b * d.Hkv + kvHead) * d.T * d.Dv;
  T *yr = y + ((b * d.Hq + h) * d.S + i) * d.Dv;
  const int64_t keys = d.causal ? (i + 1 < d.T ? i + 1 : d.T) : d.T; // upper-left aligned
  float localMax = -INFINITY;
  for (int64_t j = threadIdx.x; j < d.T; j += blockDim.x) {
    float s = -INFINITY;
    if (j < keys) {
      float acc = 0.0f;
      for (int64_t e = 0; e < d.D; ++e)
        acc += toFloat(qr[e]) * toFloat(kh[j * d.D + e]);
      s = acc * d.scale;
      int64_t m = b * d.maskStride[0] + h * d.maskStride[1] + i * d.maskStride[2] + j * d.maskStride[3];
      if (d.maskKind == 1 && !static_cast<const uint8_t *>(mask)[m])
        s = -INFINITY;
      else if (d.maskKind == 2)
        s += static_cast<const float *>(mask)[m];
    }
    scores[j] = s;
    localMax = fmaxf(localMax, s);
  }
  const float rowMax = blockReduce(localMax, true, reduce);
  if (rowMax == -INFINITY) { // nothing to attend to: zeros, as the CPU kernel writes
    for (int64_t e = threadIdx.x; e < d.Dv; e += blockDim.x)
      yr[e] = fromFloat<T>(0.0f);
    return;
  }
  float localSum = 0.0f;
  for (int64_t j = threadIdx.x; j < d.T; j += blockDim.x) {
    float p = scores[j] == -INFINITY ? 0.0f : expf(scores[j] - rowMax);
    scores[j] = p;
    localSum += p;
  }
  const float sum = blockReduce(localSum, false, reduce);
  for (int64_t e = threadIdx.x; e < d.Dv; e += blockDim.x) {
    float acc = 0.0f;
    for (int64_t j = 0; j < keys; ++j)
      acc += scores[j] * toFloat(vh[j * d.Dv + e]);
    yr[e] = fromFloat<T>(acc / sum);
  }
}

std::string attentionKernel(const KernelArgs &a) {
  const TensorView &q = a.in[0], &k = a.in[1], &v = a.in[2], &y = a.out[0];
  if (!isGemmType(q.dtype) || k.dtype != q.dtype || v.dtype != q.dtype || y.dtype != q.dtype)
    return unsupported("attention", q.dtype);
  if (q.rank() != 4 || k.rank() != 4 || v.rank() != 4)
    return "attention: the CUDA kernel takes 4-D q, k, v";
  AttentionDims d{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3], v.shape[3], {0, 0, 0, 0}, 0,
                  0.0f, a.attrs && a.attrs->getBool("causal", false)};
  d.scale = float(a.attrs && a.attrs->has("scale") ? a.attrs->getFloat("scale") : 1.0 / std::sqrt(double(d.D)));
  const void *mask = nullptr;
  if (a.in.size() > 3) {
    const TensorView &m = a.in[3];
    if (m.dtype != DType::Bool && m.dtype != DType::F32)
      return "attention: a mask of dtype " + std::string(rt::dtypeName(m.dtype)) + " has no CUDA kernel";
    d.maskKind = m.dtype == DType::Bool ? 1 : 2;
    mask = m.data;
    const int64_t full[4] = {d.B, d.Hq, d.S, d.T};
    int64_t stride = 1, off = 4 - m.rank();
    for (int64_t e = m.rank() - 1; e >= 0; --e) {
      d.maskStride[off + e] = m.shape[e] == 1 && full[off + e] != 1 ? 0 : stride;
      stride *= m.shape[e];
    }
  }
  // 16-bit inputs with a head dim it has an instantiation for take the flash kernel
  // (shardc/kernels/FlashAttention.h, the source the CPU tests run through the emulator);
  // the rest (f32, odd head dims) the one-block-per-row kernel below.
  auto aligned = [](const void *ptr, uintptr_t n) { return reinterpret_cast<uintptr_t>(ptr) % n == 0; };
  if (q.dtype != DType::F32 && d.D == d.Dv && kernels::flashAttentionSupportsHeadDim(d.D) &&
      aligned(q.data, 4) && aligned(k.data, 16) && aligned(v.data, 16) && aligned(y.data, 4) &&
      !std::getenv("SHARDC_NAIVE_ATTENTION")) {
    kernels::FlashAttentionParams p;
    p.q = q.data;
    p.k = k.data;
    p.v = v.data;
    p.y = y.data;
    p.mask = mask;
    p.B = d.B;
    p.Hq = d.Hq;
    p.Hkv = d.Hkv;
    p.S = d.S;
    p.T = d.T;
    for (int e = 0; e < 4; ++e)
      p.maskStride[e] = d.maskStride[e];
    p.maskKind = d.maskKind;
    p.scale = d.scale;
    p.causal = d.causal;
    return cuda::launchFlashAttention(p, q.dtype == DType::BF16, int(d.D), threadContext().stream);
  }
  size_t shared = (size_t(d.T) + 32) * sizeof(float);
  if (shared > 48 * 1024)
    return "attention: " + std::to_string(d.T) + " keys exceed the row kernel's shared memory (16-bit inputs of head dim 32, 64 or 128 take the flash kernel)";
  dim3 grid(unsigned(d.B * d.Hq * d.S)), block(128);
  cudaStream_t s = threadContext().stream;
  switch (q.dtype) {
  case DType::F32: attentionRows<<<grid, block, shared, s>>>(q.as<float>(), k.as<float>(), v.as<float>(), mask, y.as<float>(), d); break;
  case DType::BF16: attentionRows<<<grid, block, shared, s>>>(q.as<__nv_bfloat16>(), k.as<__nv_bfloat16>(), v.as<__nv_bfloat16>(), mask, y.as<__nv_bfloat16>(), d); break;
  default: attentionRows<<<grid, block, shared, s>>>(q.as<__half>(), k.as<__half>(), v.as<__half>(), mask, y.as<__half>(), d); break;
  }
  return launched("attention");
}

// ---- Embedding: rows of the table by id; a vocabulary-split table (a third input: the first
// row this rank holds, in device memory) gives zero rows for the ids other ranks hold. Ids
// outside the vocabulary give zero rows too (the CPU kernel reports them; a kernel on the
// stream cannot).
template <typename E, typename I>
__global__ void embeddingRows(const E *table, const I *ids, E *y, int64_t count, int64_t hidden,
                              const int64_t *rowStart, int64_t rows) {
  const int64_t start = rowStart ? *rowStart : 0;
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < count * hidden;
       n += int64_t(gridDim.x) * blockDim.x) {
    int64_t local = int64_t(ids[n / hidden]) - start;
    y[n] = local >= 0 && local < rows ? table[local * hidden + n % hidden] : E(0);
  }
}

std::string embeddingKernel(const KernelArgs &a) {
  const TensorView &table = a.in[0], &ids = a.in[1], &y = a.out[0];
  if (table.rank() != 2 || (ids.dtype != DType::I64 && ids.dtype != DType::I32))
    return "embedding: the CUDA kernel takes a [V, H] table and i64/i32 ids";
  if (a.in.size() == 3 && (a.in[2].dtype != DType::I64 || a.in[2].numel() != 1))
    return "embedding: row_start must be one i64";
  int64_t hidden = table.shape[1], rows = table.shape[0], count = ids.numel();
  const int64_t *start = a.in.size() == 3 ? a.in[2].as<int64_t>() : nullptr;
  unsigned grid = gridFor(count * hidden, 256);
  cudaStream_t s = threadContext().stream;
  size_t es = rt::dtypeSize(table.dtype);
  bool i64 = ids.dtype == DType::I64;
  if (es == 4) {
    if (i64) embeddingRows<<<grid, 256, 0, s>>>(table.as<uint32_t>(), ids.as<int64_t>(), y.as<uint32_t>(), count, hidden, start, rows);
    else embeddingRows<<<grid, 256, 0, s>>>(table.as<uint32_t>(), ids.as<int32_t>(), y.as<uint32_t>(), count, hidden, start, rows);
  } else if (es == 2) {
    if (i64) embeddingRows<<<grid, 256, 0, s>>>(table.as<uint16_t>(), ids.as<int64_t>(), y.as<uint16_t>(), count, hidden, start, rows);
    else embeddingRows<<<grid, 256, 0, s>>>(table.as<uint16_t>(), ids.as<int32_t>(), y.as<uint16_t>(), count, hidden, start, rows);
  } else {
    return "embedding: tables of " + std::to_string(es) + "-byte elements have no CUDA kernel";
  }
  return launched("embedding");
}

// ---- Dynamic slice along an axis, the start an i64 in device memory (the rank's chunk):
// y[o, j, i] = x[o, start + j, i]. A start that leaves the input gives zeros (the CPU kernel
// reports it).
template <typename E>
__global__ void sliceRows(const E *x, const int64_t *start, E *y, int64_t outer, int64_t axisLen, int64_t length,
                          int64_t inner) {
  const int64_t first = *start;
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < outer * length * inner;
       n += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = n % inner, j = (n / inner) % length, o = n / (inner * length);
    bool inside = first >= 0 && first + length <= axisLen;
    y[n] = inside ? x[(o * axisLen + first + j) * inner + i] : E(0);
  }
}

std::string dynamicSliceKernel(const KernelArgs &a) {
  const TensorView &x = a.in[0], &start = a.in[1], &y = a.out[0];
  if (start.dtype != DType::I64 || start.numel() != 1 || y.rank() != x.rank())
    return "dynamic_slice: the CUDA kernel takes an i64 start and a result of the input's rank";
  const auto [axis, outer, inner] = aroundAxis(x, a.attrs);
  const int64_t length = y.shape[axis], total = outer * length * inner;
  unsigned grid = gridFor(total, 256);
  cudaStream_t s = threadContext().stream;
  const int64_t *first = start.as<int64_t>();
  switch (rt::dtypeSize(x.dtype)) {
  case 1: sliceRows<<<grid, 256, 0, s>>>(x.as<uint8_t>(), first, y.as<uint8_t>(), outer, x.shape[axis], length, inner); break;
  case 2: sliceRows<<<grid, 256, 0, s>>>(x.as<uint16_t>(), first, y.as<uint16_t>(), outer, x.shape[axis], length, inner); break;
  case 4: sliceRows<<<grid, 256, 0, s>>>(x.as<uint32_t>(), first, y.as<uint32_t>(), outer, x.shape[axis], length, inner); break;
  case 8: sliceRows<<<grid, 256, 0, s>>>(x.as<uint64_t>(), first, y.as<uint64_t>(), outer, x.shape[axis], length, inner); break;
  default: return "dynamic_slice: unsupported element size";
  }
  return launched("dynamic_slice");
}

// ---- Cast between any two dtypes (the casts the fusion leaves: integer and boolean ones).
__device__ __forceinline__ double loadAny(const void *p, int64_t i, DType t) {
  switch (t) {
  case DType::F32: return static_cast<const float *>(p)[i];
  case DType::F64: return static_cast<const double *>(p)[i];
  case DType::BF16: return __bfloat162float(static_cast<const __nv_bfloat16 *>(p)[i]);
  case DType::F16: return __half2float(static_cast<const __half *>(p)[i]);
  case DType::I64: return double(static_cast<const int64_t *>(p)[i]);
  case DType::I32: return static_cast<const int32_t *>(p)[i];
  case DType::I8: return static_cast<const int8_t *>(p)[i];
  case DType::U8: return static_cast<const uint8_t *>(p)[i];
  case DType::Bool: return static_cast<const uint8_t *>(p)[i] ? 1.0 : 0.0;
  }
  return 0.0;
}
__device__ __forceinline__ void storeAny(void *p, int64_t i, DType t, double v) {
  switch (t) {
  case DType::F32: static_cast<float *>(p)[i] = float(v); break;
  case DType::F64: static_cast<double *>(p)[i] = v; break;
  case DType::BF16: static_cast<__nv_bfloat16 *>(p)[i] = __float2bfloat16_rn(float(v)); break;
  case DType::F16: static_cast<__half *>(p)[i] = __float2half_rn(float(v)); break;
  case DType::I64: static_cast<int64_t *>(p)[i] = int64_t(v); break;
  case DType::I32: static_cast<int32_t *>(p)[i] = int32_t(v); break;
  case DType::I8: static_cast<int8_t *>(p)[i] = int8_t(v); break;
  case DType::U8: static_cast<uint8_t *>(p)[i] = uint8_t(v); break;
  case DType::Bool: static_cast<uint8_t *>(p)[i] = v != 0.0; break;
  }
}
__global__ void castElements(const void *x, DType from, void *y, DType to, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    storeAny(y, i, to, loadAny(x, i, from));
}

std::string castKernel(const KernelArgs &a) {
  int64_t n = a.in[0].numel();
  castElements<<<gridFor(n, 256), 256, 0, threadContext().stream>>>(a.in[0].data, a.in[0].dtype, a.out[0].data,
                                                                     a.out[0].dtype, n);
  return launched("cast");
}

// ---- Split along an axis: one 2-D strided copy per part.
std::string splitKernel(const KernelArgs &a) {
  const TensorView &x = a.in[0];
  int64_t axis = a.attrs ? a.attrs->getInt("axis", 0) : 0;
  if (axis < 0)
    axis += x.rank();
  int64_t outer = 1, inner = int64_t(rt::dtypeSize(x.dtype));
  for (int64_t d = 0; d < axis; ++d)
    outer *= x.shape[d];
  for (int64_t d = axis + 1; d < x.rank(); ++d)
    inner *= x.shape[d];
  int64_t offset = 0;
  for (const TensorView &y : a.out) {
    size_t width = size_t(y.shape[axis] * inner);
    cudaError_t rc = cudaMemcpy2DAsync(y.data, width, static_cast<const uint8_t *>(x.data) + offset, size_t(x.shape[axis] * inner),
                                       width, size_t(outer), cudaMemcpyDeviceToDevice, threadContext().stream);
    if (rc != cudaSuccess)
      return std::string("split: ") + cudaGetErrorString(rc);
    offset += int64_t(width);
  }
  return "";
}

// ---- Gather along an axis: out[o, j, i] = data[o, idx[j], i] (negative ids count from the
// end, as ONNX says; ids out of range give zeros, where the CPU kernel reports them).
template <typename E, typename I>
__global__ void gatherRows(const E *data, const I *idx, E *y, int64_t outer, int64_t axisLen, int64_t count,
                           int64_t inner) {
  for (int64_t n = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; n < outer * count * inner;
       n += int64_t(gridDim.x) * blockDim.x) {
    int64_t i = n % inner, j = (n / inner) % count, o = n / (inner * count);
    int64_t id = int64_t(idx[j]);
    if (id < 0)
      id += axisLen;
    y[n] = id >= 0 && id < axisLen ? data[(o * axisLen + id) * inner + i] : E(0);
  }
}

template <typename E>
std::string gatherAs(const KernelArgs &a, int64_t outer, int64_t axisLen, int64_t count, int64_t inner) {
  const TensorView &data = a.in[0], &idx = a.in[1], &y = a.out[0];
  unsigned grid = gridFor(outer * count * inner, 256);
  cudaStream_t s = threadContext().stream;
  if (idx.dtype == DType::I64)
    gatherRows<<<grid, 256, 0, s>>>(data.as<E>(), idx.as<int64_t>(), y.as<E>(), outer, axisLen, count, inner);
  else
    gatherRows<<<grid, 256, 0, s>>>(data.as<E>(), idx.as<int32_t>(), y.as<E>(), outer, axisLen, count, inner);
  return launched("gather");
}

std::string gatherKernel(const KernelArgs &a) {
  const TensorView &data = a.in[0], &idx = a.in[1];
  if (idx.dtype != DType::I64 && idx.dtype != DType::I32)
    return "gather: the CUDA kernel takes i64/i32 indices";
  const auto [axis, outer, inner] = aroundAxis(data, a.attrs);
  switch (rt::dtypeSize(data.dtype)) {
  case 1: return gatherAs<uint8_t>(a, outer, data.shape[axis], idx.numel(), inner);
  case 2: return gatherAs<uint16_t>(a, outer, data.shape[axis], idx.numel(), inner);
  case 4: return gatherAs<uint32_t>(a, outer, data.shape[axis], idx.numel(), inner);
  case 8: return gatherAs<uint64_t>(a, outer, data.shape[axis], idx.numel(), inner);
  default: return "gather: unsupported element size";
  }
}

// ---- token_loss: one block per [B*S] row; max-subtracted logsumexp in f32 over the row, then
// one thread adds the row's loss and 1 to the zeroed scalar outputs (float atomics: the order
// of the additions, so the last bits of the sum, may vary between runs). Label -100 is ignored.
template <typename T>
__global__ void tokenLossRows(const T *x, const int64_t *labels, int64_t vocab, float *sum, float *count) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x, label = labels[row];
  if (label == -100)
    return;
  const T *in = x + row * vocab;
  auto blockReduce = [&](float v, bool isMax) {
    for (int o = 16; o > 0; o /= 2) {
      float w = __shfl_xor_sync(0xffffffffu, v, o);
      v = isMax ? fmaxf(v, w) : v + w;
    }
    if (threadIdx.x % 32 == 0)
      red[threadIdx.x / 32] = v;
    __syncthreads();
    v = threadIdx.x < blockDim.x / 32 ? red[threadIdx.x] : (isMax ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o /= 2) {
      float w = __shfl_xor_sync(0xffffffffu, v, o);
      v = isMax ? fmaxf(v, w) : v + w;
    }
    __syncthreads();
    return v;
  };
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    m = fmaxf(m, toFloat(in[j]));
  m = blockReduce(m, true);
  float e = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    e += __expf(toFloat(in[j]) - m);
  e = blockReduce(e, false);
  if (threadIdx.x == 0 && label >= 0 && label < vocab) {
    atomicAdd(sum, logf(e) - (toFloat(in[label]) - m));
    atomicAdd(count, 1.0f);
  }
}

std::string tokenLossKernel(const KernelArgs &a) {
  const TensorView &x = a.in[0], &labels = a.in[1];
  if (x.rank() != 3 || labels.dtype != DType::I64 || a.out[0].dtype != DType::F32 || a.out[1].dtype != DType::F32)
    return "token_loss: the CUDA kernel takes logits [B, S, V], i64 labels and f32 outputs";
  cudaStream_t s = threadContext().stream;
  for (const TensorView &y : a.out)
    if (cudaError_t rc = cudaMemsetAsync(y.data, 0, sizeof(float), s); rc != cudaSuccess)
      return std::string("token_loss: ") + cudaGetErrorString(rc);
  const int64_t rows = x.shape[0] * x.shape[1], vocab = x.shape[2];
  if (rows == 0)
    return "";
  float *sum = a.out[0].as<float>(), *count = a.out[1].as<float>();
  const int64_t *pl = labels.as<int64_t>();
  switch (x.dtype) {
  case DType::F32: tokenLossRows<<<unsigned(rows), 256, 0, s>>>(x.as<float>(), pl, vocab, sum, count); break;
  case DType::BF16: tokenLossRows<<<unsigned(rows), 256, 0, s>>>(x.as<__nv_bfloat16>(), pl, vocab, sum, count); break;
  case DType::F16: tokenLossRows<<<unsigned(rows), 256, 0, s>>>(x.as<__half>(), pl, vocab, sum, count); break;
  default: return unsupported("token_loss", x.dtype);
  }
  return launched("token_loss");
}

// ---- token_loss_grad: one block per [B*S] row; dlogits = dsum * (softmax - onehot(label)),
// max-subtracted in f32; rows with label -100 are zero (so are rows with a label outside
// [0, V), which add nothing to token_loss's sum; the CPU kernel reports them).
template <typename T>
__global__ void tokenLossGradRows(const T *x, const int64_t *labels, const float *dsum, int64_t vocab, T *dx) {
  __shared__ float red[32];
  const int64_t row = blockIdx.x, label = labels[row];
  const T *in = x + row * vocab;
  T *out = dx + row * vocab;
  if (label < 0 || label >= vocab) { // the whole block takes this branch
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
      out[j] = fromFloat<T>(0.0f);
    return;
  }
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    m = fmaxf(m, toFloat(in[j]));
  m = blockReduce(m, true, red);
  float e = 0.0f;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    e += __expf(toFloat(in[j]) - m);
  e = blockReduce(e, false, red);
  const float g = *dsum, inv = 1.0f / e;
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    out[j] = fromFloat<T>(g * (__expf(toFloat(in[j]) - m) * inv - (j == label ? 1.0f : 0.0f)));
}

std::string tokenLossGradKernel(const KernelArgs &a) {
  const TensorView &x = a.in[0], &labels = a.in[1], &dsum = a.in[2], &dx = a.out[0];
  if (x.rank() != 3 || labels.dtype != DType::I64 || dsum.dtype != DType::F32 || dsum.numel() != 1 ||
      dx.dtype != x.dtype)
    return "token_loss_grad: the CUDA kernel takes logits [B, S, V], i64 labels, one f32 dsum and dlogits of the "
           "logits' dtype";
  const int64_t rows = x.shape[0] * x.shape[1], vocab = x.shape[2];
  if (rows == 0 || vocab == 0)
    return "";
  cudaStream_t s = threadContext().stream;
  const int64_t *pl = labels.as<int64_t>();
  const float *g = dsum.as<float>();
  switch (x.dtype) {
  case DType::F32: tokenLossGradRows<<<unsigned(rows), 256, 0, s>>>(x.as<float>(), pl, g, vocab, dx.as<float>()); break;
  case DType::BF16: tokenLossGradRows<<<unsigned(rows), 256, 0, s>>>(x.as<__nv_bfloat16>(), pl, g, vocab, dx.as<__nv_bfloat16>()); break;
  case DType::F16: tokenLossGradRows<<<unsigned(rows), 256, 0, s>>>(x.as<__half>(), pl, g, vocab, dx.as<__half>()); break;
  default: return unsupported("token_loss_grad", x.dtype);
  }
  return launched("token_loss_grad");
}

// ---- embedding_grad: one block per row of dtable, without atomics (deterministic): the block
// scans the ids a tile of blockDim at a time, lists the positions holding its id in order
// (warp ballots), and adds their dy rows into an f32 row in shared memory, written once at
// the end. Ids outside this rank's rows, and padding_idx, add nothing (ids outside the
// vocabulary are not reported: the CPU kernel does).
constexpr int kEmbeddingGradThreads = 256;

template <typename E, typename I>
__global__ void embeddingGradRows(const I *ids, const E *dy, E *dtable, int64_t count, int64_t hidden,
                                  const int64_t *rowStart, int64_t rows, int64_t padding) {
  extern __shared__ float acc[]; // hidden floats
  __shared__ int64_t hits[kEmbeddingGradThreads];
  __shared__ int warpHits[kEmbeddingGradThreads / 32];
  const int64_t start = rowStart ? *rowStart : 0;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
    const int64_t id = start + r;
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
      acc[c] = 0.0f;
    for (int64_t n0 = 0; id != padding && n0 < count; n0 += blockDim.x) {
      const int64_t n = n0 + threadIdx.x;
      const bool hit = n < count && int64_t(ids[n]) == id;
      const unsigned ballot = __ballot_sync(0xffffffffu, hit);
      if (lane == 0)
        warpHits[warp] = __popc(ballot);
      __syncthreads();
      int before = 0, total = 0;
      for (int w = 0; w < int(blockDim.x >> 5); ++w) {
        before += w < warp ? warpHits[w] : 0;
        total += warpHits[w];
      }
      if (hit)
        hits[before + __popc(ballot & ((1u << lane) - 1u))] = n;
      __syncthreads();
      for (int k = 0; k < total; ++k)
        for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
          acc[c] += toFloat(dy[hits[k] * hidden + c]);
      __syncthreads();
    }
    for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x)
      dtable[r * hidden + c] = fromFloat<E>(acc[c]);
    __syncthreads();
  }
}

template <typename E> std::string embeddingGradAs(const KernelArgs &a, int64_t padding) {
  const TensorView &ids = a.in[0], &dtable = a.out[0];
  const int64_t rows = dtable.shape[0], hidden = dtable.shape[1];
  const int64_t *start = a.in.size() == 3 ? a.in[2].as<int64_t>() : nullptr;
  const size_t shared = size_t(hidden) * sizeof(float);
  const unsigned grid = unsigned(rows < 65535 ? rows : 65535);
  cudaStream_t s = threadContext().stream;
  if (ids.dtype == DType::I64)
    embeddingGradRows<<<grid, kEmbeddingGradThreads, shared, s>>>(ids.as<int64_t>(), a.in[1].as<E>(), dtable.as<E>(),
                                                                  ids.numel(), hidden, start, rows, padding);
  else
    embeddingGradRows<<<grid, kEmbeddingGradThreads, shared, s>>>(ids.as<int32_t>(), a.in[1].as<E>(), dtable.as<E>(),
                                                                  ids.numel(), hidden, start, rows, padding);
  return launched("embedding_grad");
}

std::string embeddingGradKernel(const KernelArgs &a) {
  const TensorView &ids = a.in[0], &dy = a.in[1], &dtable = a.out[0];
  if (dtable.rank() != 2 || (ids.dtype != DType::I64 && ids.dtype != DType::I32) || dy.dtype != dtable.dtype ||
      dy.numel() != ids.numel() * dtable.shape[1])
    return "embedding_grad: the CUDA kernel takes i64/i32 ids, dy [..., H] and dtable [V, H] of dy's dtype";
  if (a.in.size() == 3 && (a.in[2].dtype != DType::I64 || a.in[2].numel() != 1))
    return "embedding_grad: row_start must be one i64";
  if (size_t(dtable.shape[1]) * sizeof(float) > 48 * 1024)
    return "embedding_grad: hidden size " + std::to_string(dtable.shape[1]) +
           " exceeds the CUDA kernel's shared-memory row (12288 floats)";
  if (dtable.shape[0] == 0 || dtable.shape[1] == 0)
    return "";
  const int64_t padding = a.attrs ? a.attrs->getInt("padding_idx", -1) : -1;
  switch (dy.dtype) {
  case DType::F32: return embeddingGradAs<float>(a, padding);
  case DType::BF16: return embeddingGradAs<__nv_bfloat16>(a, padding);
  case DType::F16: return embeddingGradAs<__half>(a, padding);
  default: return unsupported("embedding_grad", dy.dtype);
  }
}

std::string copyKernel(const KernelArgs &a) {
  cudaError_t rc = cudaMemcpyAsync(a.out[0].data, a.in[0].data, a.in[0].bytes(), cudaMemcpyDeviceToDevice,
                                   threadContext().stream);
  return rc == cudaSuccess ? "" : std::string("copy: ") + cudaGetErrorString(rc);
}

} // namespace

// The entry points CudaKernelTable.cpp lists (LibraryKernels.h).
namespace lib {
std::string linearKernel(const KernelArgs &a) { return cuda::linearKernel(a); }
std::string matmulKernel(const KernelArgs &a) { return cuda::matmulKernel(a); }
std::string attentionKernel(const KernelArgs &a) { return cuda::attentionKernel(a); }
std::string embeddingKernel(const KernelArgs &a) { return cuda::embeddingKernel(a); }
std::string copyKernel(const KernelArgs &a) { return cuda::copyKernel(a); }
std::string castKernel(const KernelArgs &a) { return cuda::castKernel(a); }
std::string splitKernel(const KernelArgs &a) { return cuda::splitKernel(a); }
std::string dynamicSliceKernel(const KernelArgs &a) { return cuda::dynamicSliceKernel(a); }
std::string gatherKernel(const KernelArgs &a) { return cuda::gatherKernel(a); }
std::string tokenLossKernel(const KernelArgs &a) { return cuda::tokenLossKernel(a); }
std::string tokenLossGradKernel(const KernelArgs &a) { return cuda::tokenLossGradKernel(a); }
std::string embeddingGradKernel(const KernelArgs &a) { return cuda::embeddingGradKernel(a); }
std::string groupGemm(const char *op, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc) {
  return cuda::groupGemm(op, transA, transB, M, N, K, A, lda, B, ldb, C, ldc);
}
// The flash kernels' shared-memory limit is a host-side setting: made when the table hands out
// `attention`, at load, rather than by the first launch, which may be inside a stream capture.
void prepareAttention() { (void)cuda::prepareFlashAttention(); }
} // namespace lib

} // namespace shardc::cuda
