// The CUDA backend's launches of the SIMT kernels it shares with the CPU tests: strided copies
// and reductions (shardc/kernels/IndexKernels.h: slice, concat, transpose, expand, reduce_sum,
// reduce_mean, reduce_max), training attention (AttentionRows.h: the forward that also writes
// lse, attention_grad), the steps generated kernels normally absorb (ElementwiseKernels.h:
// formula, pow, silu_mul, rotary, rms_norm, layer_norm, softmax, log_softmax) and selections
// (SelectKernels.h: where, equal, isnan, gather_elements, trilu); and ONNX gemm (cuBLAS after
// a strided copy of C). The plans are the headers' host code, the kernels their device code;
// the CPU tests run both through the Simt.h emulator (test/unit/*KernelsSimtTest.cpp,
// AttentionRowsSimtTest.cpp). Built with --fmad=false, as NVRTC builds the generated kernels:
// no contraction into FMAs, so the GPU rounds as the CPU does. What each step kind takes is
// CudaKernelTable.cpp's.
#include "CudaBackend.h"
#include "LibraryKernels.h"
#include "SimtLaunch.cuh"
#include "shardc/kernels/AttentionRows.h"
#include "shardc/kernels/ElementwiseKernels.h"
#include "shardc/kernels/IndexKernels.h"
#include "shardc/kernels/LossKernels.h"
#include "shardc/kernels/ScanKernels.h"
#include "shardc/kernels/MoeKernels.h"
#include "shardc/kernels/SelectKernels.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cmath>

namespace shardc::cuda {

namespace {

using rt::DType;
using rt::KernelArgs;
using simt_launch::anyType;
using simt_launch::launched;
using simt_launch::perElement;

__global__ void __launch_bounds__(kernels::kIndexThreads) stridedCopyKernel(kernels::StridedCopyParams p) {
  kernels::stridedCopy(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) reduceRowsKernel(kernels::ReduceParams p) {
  kernels::reduceRows(p);
}

__global__ void __launch_bounds__(kernels::kAttentionRowThreads) attentionForwardKernel(kernels::AttentionRowsParams p) {
  kernels::attentionRowsForward(p);
}
__global__ void __launch_bounds__(kernels::kAttentionRowThreads) attentionGradQKernel(kernels::AttentionRowsParams p) {
  kernels::attentionRowsGradQ(p);
}
__global__ void __launch_bounds__(kernels::kAttentionRowThreads) attentionGradKVKernel(kernels::AttentionRowsParams p) {
  kernels::attentionRowsGradKV(p);
}

__global__ void __launch_bounds__(kernels::kIndexThreads) formulaKernelGlobal(kernels::ElementwiseParams p) {
  kernels::formulaElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) rotaryKernelGlobal(kernels::ElementwiseParams p) {
  kernels::rotaryElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) normRowsKernel(kernels::NormParams p) {
  kernels::normRows(p);
}

__global__ void __launch_bounds__(kernels::kIndexThreads) softmaxRowsKernel(kernels::SoftmaxParams p) {
  kernels::softmaxRows(p);
}

__global__ void __launch_bounds__(kernels::kIndexThreads) selectKernelGlobal(kernels::SelectParams p) {
  kernels::selectElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) gatherElementsGlobal(kernels::GatherElementsParams p) {
  kernels::gatherElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) triluGlobal(kernels::TriluParams p) {
  kernels::triluElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) cumsumGlobal(kernels::AxisLinesParams p) {
  kernels::cumsumLines(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) argMaxGlobal(kernels::AxisLinesParams p) {
  kernels::argMaxLines(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) scatterNdGlobal(kernels::ScatterNdParams p) {
  kernels::scatterNdSlices(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) scatterElementsGlobal(kernels::ScatterElementsParams p) {
  kernels::scatterElementsLines(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) topKGlobal(kernels::TopKParams p) { kernels::topKLines(p); }
__global__ void __launch_bounds__(kernels::kIndexThreads) gatherNdGlobal(kernels::GatherNdParams p) {
  kernels::gatherNdElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) tokenLossStatsGlobal(kernels::TokenLossStatsParams p) {
  kernels::tokenLossStatsRows(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) tokenLossStatsGradGlobal(kernels::TokenLossStatsParams p) {
  kernels::tokenLossStatsGradElements(p);
}
__global__ void __launch_bounds__(kernels::kIndexThreads) tokenLossCombineGlobal(kernels::TokenLossCombineParams p) {
  kernels::tokenLossCombineThread(p);
}


kernels::ElemType elemType(DType d) {
  return d == DType::BF16 ? kernels::ElemType::BF16 : d == DType::F16 ? kernels::ElemType::F16 : kernels::ElemType::F32;
}


std::string copy(const char *op, const std::string &planned, kernels::StridedCopyParams &p, void *dst,
                 const void *src) {
  if (!planned.empty())
    return std::string(op) + ": " + planned;
  if (p.count == 0)
    return "";
  p.dst = dst;
  p.src = src;
  const int64_t blocks = kernels::indexBlocks(p.count);
  if (blocks > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.count) + " elements exceed one launch";
  stridedCopyKernel<<<unsigned(blocks), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

std::vector<int64_t> ints(const KernelArgs &a, const char *name) {
  return a.attrs ? a.attrs->getInts(name) : std::vector<int64_t>{};
}

std::string reduce(const char *op, const KernelArgs &a, kernels::ReduceKind kind) {
  const rt::TensorView &x = a.in[0], &y = a.out[0];
  kernels::ReduceParams p;
  if (std::string err = kernels::planReduce(x.shape, ints(a, "axes"), y.numel(), p); !err.empty())
    return std::string(op) + ": " + err;
  if (p.outputs == 0)
    return "";
  if (p.outputs > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.outputs) + " outputs exceed one launch";
  p.x = x.data;
  p.y = y.data;
  p.kind = kind;
  p.type = x.dtype == DType::BF16 ? kernels::ReduceType::BF16
           : x.dtype == DType::F16 ? kernels::ReduceType::F16
                                   : kernels::ReduceType::F32;
  reduceRowsKernel<<<unsigned(p.outputs), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

// The shapes, scale, causality and mask of an attention (or attention_grad) step; `mask`: its
// operand index, past the inputs when there is none.
kernels::AttentionRowsParams attentionParams(const KernelArgs &a, size_t mask) {
  const rt::TensorView &q = a.in[0], &k = a.in[1], &v = a.in[2];
  kernels::AttentionRowsParams p;
  p.q = q.data;
  p.k = k.data;
  p.v = v.data;
  p.B = q.shape[0], p.Hq = q.shape[1], p.Hkv = k.shape[1], p.S = q.shape[2], p.T = k.shape[2];
  p.D = q.shape[3], p.Dv = v.shape[3];
  p.type = q.dtype == DType::BF16 ? kernels::AttentionType::BF16
           : q.dtype == DType::F16 ? kernels::AttentionType::F16
                                   : kernels::AttentionType::F32;
  p.scale = float(a.attrs && a.attrs->has("scale") ? a.attrs->getFloat("scale") : 1.0 / std::sqrt(double(p.D)));
  p.causal = a.attrs && a.attrs->getBool("causal", false);
  if (mask < a.in.size()) {
    const rt::TensorView &m = a.in[mask];
    p.mask = m.data;
    p.maskKind = m.dtype == DType::Bool ? 1 : 2;
    const int64_t full[4] = {p.B, p.Hq, p.S, p.T};
    int64_t stride = 1, off = 4 - m.rank();
    for (int64_t e = m.rank() - 1; e >= 0; --e) {
      p.maskStride[off + e] = m.shape[size_t(e)] == 1 && full[off + e] != 1 ? 0 : stride;
      stride *= m.shape[size_t(e)];
    }
  }
  return p;
}

// An elementwise launch over y: the inputs broadcast to it, each with its own dtype.
std::string elementwise(const char *op, const KernelArgs &a, kernels::ElementwiseParams &p, bool rotary) {
  std::vector<std::vector<int64_t>> shapes;
  for (const rt::TensorView &t : a.in)
    shapes.push_back(t.shape);
  if (std::string err = kernels::planElementwise(a.out[0].shape, shapes, p); !err.empty())
    return std::string(op) + ": " + err;
  for (size_t i = 0; i < a.in.size(); ++i) {
    p.in[i].data = a.in[i].data;
    p.in[i].type = elemType(a.in[i].dtype);
  }
  p.y = a.out[0].data;
  p.yType = elemType(a.out[0].dtype);
  const int64_t blocks = kernels::indexBlocks(p.count);
  if (p.count == 0)
    return "";
  if (blocks > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.count) + " elements exceed one launch";
  if (rotary)
    rotaryKernelGlobal<<<unsigned(blocks), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  else
    formulaKernelGlobal<<<unsigned(blocks), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

std::string norm(const char *op, const KernelArgs &a, bool layer) {
  const rt::TensorView &x = a.in[0];
  kernels::NormParams p;
  const int64_t axis = a.attrs ? a.attrs->getInt("axis", -1) : -1;
  const bool bias = layer && a.in.size() > 2;
  if (std::string err = kernels::planNorm(x.shape, axis, a.in[1].shape, bias ? &a.in[2].shape : nullptr, p);
      !err.empty())
    return std::string(op) + ": " + err;
  p.layer = layer;
  p.epsilon = a.attrs ? a.attrs->getFloat("epsilon", 1e-5) : 1e-5;
  p.x.data = x.data;
  p.x.type = elemType(x.dtype);
  p.scale.data = a.in[1].data;
  p.scale.type = elemType(a.in[1].dtype);
  if (bias) {
    p.bias.data = a.in[2].data;
    p.bias.type = elemType(a.in[2].dtype);
  }
  p.y = a.out[0].data;
  p.yType = elemType(a.out[0].dtype);
  p.mean = a.out.size() > 1 ? a.out[1].as<float>() : nullptr;
  p.invStd = a.out.size() > 2 ? a.out[2].as<float>() : nullptr;
  if (p.rows == 0)
    return "";
  if (p.rows > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(p.rows) + " rows exceed one launch";
  normRowsKernel<<<unsigned(p.rows), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

std::string softmax(const char *op, const KernelArgs &a, bool logarithm) {
  kernels::SoftmaxParams p;
  if (std::string err = kernels::planSoftmax(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", -1) : -1, p);
      !err.empty())
    return std::string(op) + ": " + err;
  p.x.data = a.in[0].data;
  p.x.type = elemType(a.in[0].dtype);
  p.y = a.out[0].data;
  p.yType = elemType(a.out[0].dtype);
  p.logarithm = logarithm;
  const int64_t rows = p.outer * p.inner;
  if (rows == 0 || p.n == 0)
    return "";
  if (rows > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(rows) + " rows exceed one launch";
  softmaxRowsKernel<<<unsigned(rows), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}


std::string select(const char *op, const KernelArgs &a, kernels::SelectOp which) {
  kernels::SelectParams p;
  std::vector<std::vector<int64_t>> shapes;
  for (const rt::TensorView &t : a.in)
    shapes.push_back(t.shape);
  if (std::string err = kernels::planSelect(a.out[0].shape, shapes, p); !err.empty())
    return std::string(op) + ": " + err;
  for (size_t i = 0; i < a.in.size(); ++i) {
    p.in[i].data = a.in[i].data;
    p.in[i].type = anyType(a.in[i].dtype);
  }
  p.y = a.out[0].data;
  p.yType = anyType(a.out[0].dtype);
  p.op = which;
  return perElement(op, selectKernelGlobal, p, p.count);
}

} // namespace

namespace lib {

std::string whereKernel(const KernelArgs &a) { return select("where", a, kernels::SelectOp::Where); }
std::string equalKernel(const KernelArgs &a) { return select("equal", a, kernels::SelectOp::Equal); }
std::string isnanKernel(const KernelArgs &a) { return select("isnan", a, kernels::SelectOp::IsNan); }
std::string lessKernel(const KernelArgs &a) { return select("less", a, kernels::SelectOp::Less); }
std::string lessEqualKernel(const KernelArgs &a) { return select("less_equal", a, kernels::SelectOp::LessEqual); }

// ONNX scans and index ops (ScanKernels.h).
std::string cumsumKernel(const KernelArgs &a) {
  kernels::AxisLinesParams p;
  if (std::string err = kernels::planAxisLines(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0, p);
      !err.empty())
    return "cumsum: " + err;
  p.x = a.in[0].data;
  p.y = a.out[0].data;
  p.type = anyType(a.in[0].dtype);
  p.exclusive = a.attrs && a.attrs->getBool("exclusive", false);
  p.reverse = a.attrs && a.attrs->getBool("reverse", false);
  return perElement("cumsum", cumsumGlobal, p, p.outer * p.inner);
}
namespace {
// arg_max, or arg_min where `minimum` (ScanKernels.h's argMaxLines serves both).
std::string argExtremum(const char *name, const KernelArgs &a, bool minimum) {
  kernels::AxisLinesParams p;
  if (std::string err = kernels::planAxisLines(a.in[0].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0, p);
      !err.empty())
    return name + (": " + err);
  p.x = a.in[0].data;
  p.y = a.out[0].data;
  p.type = anyType(a.in[0].dtype);
  p.selectLast = a.attrs && a.attrs->getBool("select_last_index", false);
  p.minimum = minimum;
  return perElement(name, argMaxGlobal, p, p.outer * p.inner);
}
} // namespace
std::string argMaxKernel(const KernelArgs &a) { return argExtremum("arg_max", a, false); }
std::string argMinKernel(const KernelArgs &a) { return argExtremum("arg_min", a, true); }
std::string scatterElementsKernel(const KernelArgs &a) {
  kernels::ScatterElementsParams p;
  if (std::string err = kernels::planScatterElements(a.in[0].shape, a.in[1].shape, a.in[2].shape,
                                                     a.attrs ? a.attrs->getInt("axis", 0) : 0,
                                                     a.attrs ? a.attrs->getString("reduction", "none") : "none", p);
      !err.empty())
    return "scatter_elements: " + err;
  if (a.out[0].data != a.in[0].data &&
      cudaMemcpyAsync(a.out[0].data, a.in[0].data, a.out[0].bytes(), cudaMemcpyDeviceToDevice,
                      threadContext().stream) != cudaSuccess)
    return launched("scatter_elements");
  p.indices = static_cast<const int64_t *>(a.in[1].data);
  p.updates = a.in[2].data;
  p.y = a.out[0].data;
  p.type = anyType(a.in[0].dtype);
  return perElement("scatter_elements", scatterElementsGlobal, p, p.lines);
}
std::string scatterNdKernel(const KernelArgs &a) {
  kernels::ScatterNdParams p;
  if (std::string err = kernels::planScatterNd(a.in[0].shape, a.in[1].shape,
                                               a.attrs ? a.attrs->getString("reduction", "none") : "none", p);
      !err.empty())
    return "scatter_nd: " + err;
  if (a.out[0].data != a.in[0].data &&
      cudaMemcpyAsync(a.out[0].data, a.in[0].data, a.out[0].bytes(), cudaMemcpyDeviceToDevice,
                      threadContext().stream) != cudaSuccess)
    return launched("scatter_nd");
  p.indices = static_cast<const int64_t *>(a.in[1].data);
  p.updates = a.in[2].data;
  p.y = a.out[0].data;
  p.type = anyType(a.in[0].dtype);
  return perElement("scatter_nd", scatterNdGlobal, p, p.slice);
}

std::string gatherElementsKernel(const KernelArgs &a) {
  kernels::GatherElementsParams p;
  if (std::string err = kernels::planGatherElements(a.in[0].shape, a.in[1].shape, a.attrs ? a.attrs->getInt("axis", 0) : 0,
                                                    int(rt::dtypeSize(a.in[0].dtype)), p);
      !err.empty())
    return "gather_elements: " + err;
  p.data = a.in[0].data;
  p.indices = a.in[1].data;
  p.indices64 = a.in[1].dtype == DType::I64;
  p.y = a.out[0].data;
  return perElement("gather_elements", gatherElementsGlobal, p, p.count);
}

std::string triluKernel(const KernelArgs &a) {
  kernels::TriluParams p;
  if (std::string err = kernels::planTrilu(a.in[0].shape, a.attrs ? a.attrs->getBool("upper", true) : true,
                                           a.attrs ? a.attrs->getInt("k", 0) : 0, int(rt::dtypeSize(a.in[0].dtype)), p);
      !err.empty())
    return "trilu: " + err;
  p.x = a.in[0].data;
  p.y = a.out[0].data;
  return perElement("trilu", triluGlobal, p, p.count);
}

// MoeKernels.h: top_k (one thread per line) and gather_nd (one per element).
std::string topKKernel(const KernelArgs &a) {
  kernels::TopKParams p;
  if (std::string err = kernels::planTopK(a.in[0].shape, a.out[0].shape, a.attrs ? a.attrs->getInt("axis", -1) : -1, p);
      !err.empty())
    return "top_k: " + err;
  p.x = a.in[0].data;
  p.values = a.out[0].data;
  p.indices = static_cast<int64_t *>(a.out[1].data);
  p.type = anyType(a.in[0].dtype);
  p.largest = a.attrs ? a.attrs->getBool("largest", true) : true;
  return perElement("top_k", topKGlobal, p, p.lines);
}

std::string gatherNdKernel(const KernelArgs &a) {
  kernels::GatherNdParams p;
  if (std::string err = kernels::planGatherNd(a.in[0].shape, a.in[1].shape, a.out[0].shape,
                                              a.attrs ? a.attrs->getInt("batch_dims", 0) : 0,
                                              int(rt::dtypeSize(a.in[0].dtype)), p);
      !err.empty())
    return "gather_nd: " + err;
  p.data = a.in[0].data;
  p.indices = a.in[1].data;
  p.indices64 = a.in[1].dtype == DType::I64;
  p.y = a.out[0].data;
  return perElement("gather_nd", gatherNdGlobal, p, p.count);
}

// LossKernels.h: the vocabulary-parallel loss. Operand checks are the table's
// (acceptsTokenLoss* in CudaKernelTable.cpp); stats is one thread per row, its gradient one per
// logit, combine one thread.
kernels::TokenLossStatsParams tokenLossRows(const KernelArgs &a, size_t startAt) {
  kernels::TokenLossStatsParams p;
  p.logits = a.in[0].data;
  p.type = anyType(a.in[0].dtype);
  p.labels = static_cast<const int64_t *>(a.in[1].data);
  p.max = a.in[2].data;
  p.vocabStart = a.in.size() > startAt ? static_cast<const int64_t *>(a.in[startAt].data) : nullptr;
  p.rows = a.in[0].shape[0] * a.in[0].shape[1];
  p.vocab = a.in[0].shape[2];
  return p;
}
std::string tokenLossStatsKernel(const KernelArgs &a) {
  kernels::TokenLossStatsParams p = tokenLossRows(a, 3);
  p.sumexp = a.out[0].data;
  p.picked = a.out[1].data;
  return perElement("token_loss_stats", tokenLossStatsGlobal, p, p.rows);
}
std::string tokenLossStatsGradKernel(const KernelArgs &a) {
  kernels::TokenLossStatsParams p = tokenLossRows(a, 5);
  p.dsumexp = a.in[3].data;
  p.dpicked = a.in[4].data;
  p.dlogits = a.out[0].data;
  return perElement("token_loss_stats_grad", tokenLossStatsGradGlobal, p, p.rows * p.vocab);
}
std::string tokenLossCombineKernel(const KernelArgs &a) {
  kernels::TokenLossCombineParams p;
  p.sumexp = a.in[0].data;
  p.picked = a.in[1].data;
  p.max = a.in[2].data;
  p.rowType = anyType(a.in[0].dtype);
  p.maxType = anyType(a.in[2].dtype);
  p.labels = static_cast<const int64_t *>(a.in[3].data);
  p.sum = a.out[0].data;
  p.count = a.out[1].data;
  p.rows = a.in[0].numel();
  return perElement("token_loss_combine", tokenLossCombineGlobal, p, 1);
}

std::string siluMulKernel(const KernelArgs &a) {
  kernels::ElementwiseParams p;
  p.siluMul = 1;
  return elementwise("silu_mul", a, p, false);
}

// ONNX Gemm in f32: y = alpha op(A) op(B) + beta C, C broadcast into y by the strided copy
// first, then one cuBLAS GEMM (column-major: y^T = op(B)^T op(A)^T) adding onto it.
std::string gemmKernel(const KernelArgs &a) {
  const rt::TensorView &A = a.in[0], &B = a.in[1], &y = a.out[0];
  const float alpha = float(a.attrs ? a.attrs->getFloat("alpha", 1.0) : 1.0);
  float beta = float(a.attrs ? a.attrs->getFloat("beta", 1.0) : 1.0);
  const bool transA = a.attrs && a.attrs->getBool("trans_a", false);
  const bool transB = a.attrs && a.attrs->getBool("trans_b", false);
  const int64_t M = transA ? A.shape[1] : A.shape[0], K = transA ? A.shape[0] : A.shape[1];
  const int64_t N = transB ? B.shape[0] : B.shape[1];
  if (a.in.size() > 2 && beta != 0.0f) {
    kernels::StridedCopyParams p;
    if (std::string err = copy("gemm", kernels::planExpand(a.in[2].shape, y.shape, 4, p), p, y.data, a.in[2].data);
        !err.empty())
      return err;
  } else {
    beta = 0.0f;
  }
  if (M == 0 || N == 0)
    return "";
  auto handle = static_cast<cublasHandle_t>(threadContext().cublas);
  cublasStatus_t st = cublasGemmEx(handle, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                   int(N), int(M), int(K), &alpha, B.data, CUDA_R_32F, int(B.shape[1]), A.data,
                                   CUDA_R_32F, int(A.shape[1]), &beta, y.data, CUDA_R_32F, int(N), CUBLAS_COMPUTE_32F,
                                   CUBLAS_GEMM_DEFAULT);
  return st == CUBLAS_STATUS_SUCCESS ? "" : std::string("gemm: cuBLAS ") + cublasGetStatusString(st);
}

std::string powKernel(const KernelArgs &a) {
  kernels::ElementwiseParams p;
  p.formula = kernels::FormulaId::pow;
  return elementwise("pow", a, p, false);
}

std::string softmaxKernel(const KernelArgs &a) { return softmax("softmax", a, false); }
std::string logSoftmaxKernel(const KernelArgs &a) { return softmax("log_softmax", a, true); }

std::string formulaKernel(const KernelArgs &a) {
  kernels::ElementwiseParams p;
  int arity = 0;
  const std::string name = a.attrs ? a.attrs->getString("formula", "") : "";
  if (!kernels::findFormula(name, p.formula, arity))
    return "formula: '" + name + "' is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)";
  return elementwise("formula", a, p, false);
}

std::string rotaryKernel(const KernelArgs &a) {
  kernels::ElementwiseParams p;
  return elementwise("rotary", a, p, true);
}

std::string rmsNormKernel(const KernelArgs &a) { return norm("rms_norm", a, false); }
std::string layerNormKernel(const KernelArgs &a) { return norm("layer_norm", a, true); }


// attention: with the second output lse (training), the row kernel that writes it; else the
// library kernel (flash for 16-bit inputs).
std::string attentionWithLseKernel(const KernelArgs &a) {
  if (a.out.size() < 2)
    return attentionKernel(a);
  kernels::AttentionRowsParams p = attentionParams(a, 3);
  p.y = a.out[0].data;
  p.lse = a.out[1].as<float>();
  const int64_t rows = p.B * p.Hq * p.S;
  if (rows == 0)
    return "";
  attentionForwardKernel<<<unsigned(rows), kernels::kAttentionRowThreads, kernels::attentionRowsForwardShared(p.T),
                           threadContext().stream>>>(p);
  return launched("attention (with lse)");
}

std::string attentionGradKernel(const KernelArgs &a) {
  kernels::AttentionRowsParams p = attentionParams(a, 6);
  p.o = a.in[3].data;
  p.lseIn = a.in[4].as<float>();
  p.dout = a.in[5].data;
  p.dq = a.out[0].data;
  p.dk = a.out[1].data;
  p.dv = a.out[2].data;
  cudaStream_t s = threadContext().stream;
  if (const int64_t rows = p.B * p.Hq * p.S; rows > 0)
    attentionGradQKernel<<<unsigned(rows), kernels::kAttentionRowThreads, kernels::attentionRowsGradQShared(p.T), s>>>(p);
  if (std::string err = launched("attention_grad (dq)"); !err.empty())
    return err;
  if (const int64_t keys = p.B * p.Hkv * p.T; keys > 0)
    attentionGradKVKernel<<<unsigned(keys), kernels::kAttentionRowThreads,
                            kernels::attentionRowsGradKVShared(p.S, p.D, p.Dv), s>>>(p);
  return launched("attention_grad (dk, dv)");
}

std::string sliceKernel(const KernelArgs &a) {
  const rt::TensorView &x = a.in[0], &y = a.out[0];
  kernels::StridedCopyParams p;
  std::string planned = kernels::planSlice(x.shape, y.shape, ints(a, "starts"), ints(a, "steps"),
                                           int(rt::dtypeSize(x.dtype)), p);
  return copy("slice", planned, p, y.data, x.data);
}

std::string concatKernel(const KernelArgs &a) {
  const rt::TensorView &y = a.out[0];
  int64_t axis = a.attrs ? a.attrs->getInt("axis", 0) : 0;
  if (axis < 0)
    axis += y.rank();
  int64_t offset = 0;
  for (const rt::TensorView &x : a.in) {
    kernels::StridedCopyParams p;
    std::string planned = kernels::planConcatPart(y.shape, x.shape, axis, offset, int(rt::dtypeSize(x.dtype)), p);
    if (std::string err = copy("concat", planned, p, y.data, x.data); !err.empty())
      return err;
    offset += x.shape[size_t(axis)];
  }
  return "";
}

std::string transposeKernel(const KernelArgs &a) {
  kernels::StridedCopyParams p;
  std::string planned = kernels::planTranspose(a.in[0].shape, ints(a, "perm"), int(rt::dtypeSize(a.in[0].dtype)), p);
  return copy("transpose", planned, p, a.out[0].data, a.in[0].data);
}

std::string expandKernel(const KernelArgs &a) {
  kernels::StridedCopyParams p;
  std::string planned = kernels::planExpand(a.in[0].shape, a.out[0].shape, int(rt::dtypeSize(a.in[0].dtype)), p);
  return copy("expand", planned, p, a.out[0].data, a.in[0].data);
}

std::string reduceSumKernel(const KernelArgs &a) { return reduce("reduce_sum", a, kernels::ReduceKind::Sum); }
std::string reduceMeanKernel(const KernelArgs &a) { return reduce("reduce_mean", a, kernels::ReduceKind::Mean); }
std::string reduceMaxKernel(const KernelArgs &a) { return reduce("reduce_max", a, kernels::ReduceKind::Max); }

} // namespace lib

} // namespace shardc::cuda
