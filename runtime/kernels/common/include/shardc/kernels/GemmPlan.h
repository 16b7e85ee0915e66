// GEMMs for cuBLASLt, planned in plain C++ (no CUDA headers) so that the error-prone part, the
// row-major to column-major mapping, is tested on machines without a GPU. The runtime's tensors
// are row-major; cuBLASLt is column-major, and a row-major [M, N] matrix is the column-major
// [N, M] matrix of the same bytes. So row-major D = A·B is computed as column-major
// Dᵀ = Bᵀ·Aᵀ: cuBLASLt's first operand is the runtime's B, its second the runtime's A, and
// cuBLASLt's m, n are the runtime's N, M. CublasLtGemm (runtime/kernels/cuda) only turns a
// GemmPlan into descriptors.
#pragma once

#include "shardc/runtime/Tensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::kernels {

using rt::DType;

enum class GemmEpilogue { None, Bias, GeluTanhBias };

// How f32 inputs are multiplied: exactly, or (only when asked) on TF32 tensor cores. 16-bit
// inputs always accumulate in f32.
enum class GemmPrecision { F32, F32AllowTF32 };

// D[b] = epilogue(alpha · op(A[b]) · op(B[b]) + beta · C[b]) in row-major terms, for
// b < batch; op(A) is [M, K], op(B) is [K, N], C and D are [M, N] and share one layout.
// A "linear" is A = x (leading dims folded into M), B = the weight, transposeB = transpose_weight.
struct GemmProblem {
  int64_t M = 0, N = 0, K = 0;
  bool transposeA = false; // A stored [K, M]
  bool transposeB = false; // B stored [N, K] (a linear's weight with transpose_weight)
  // Row-major leading dims (elements between rows); 0 is packed (the stored row length).
  int64_t lda = 0, ldb = 0, ldc = 0;
  int64_t batch = 1;
  // Elements between consecutive batch matrices; 0 reuses one A or B for every batch.
  int64_t strideA = 0, strideB = 0, strideC = 0;
  DType a = DType::F32, b = DType::F32, c = DType::F32, d = DType::F32;
  DType bias = DType::F32; // a vector of N, one per output column, shared by all batches
  GemmEpilogue epilogue = GemmEpilogue::None;
  GemmPrecision precision = GemmPrecision::F32;
  float alpha = 1.0f, beta = 0.0f; // C is read only when beta != 0
};

// cuBLASLt's vocabulary, as enums of our own; the values are cuBLASLt's, which the CUDA glue
// checks with static_asserts.
enum class LtOp : int32_t { N = 0, T = 1 };                             // cublasOperation_t
enum class LtEpilogue : int32_t { Default = 1, Bias = 4, GeluBias = 36 }; // cublasLtEpilogue_t
enum class LtComputeType : int32_t { F32 = 68, F32FastTF32 = 77 };     // cublasComputeType_t
enum class LtScaleType : int32_t { F32 = 0 };                          // cudaDataType_t CUDA_R_32F

// Which runtime operand a cuBLASLt operand is.
enum class GemmOperand { A, B };

// A column-major cuBLASLt matrix layout (cublasLtMatrixLayoutCreate plus the batch attributes).
struct LtLayout {
  DType type = DType::F32;
  uint64_t rows = 0, cols = 0;
  int64_t ld = 0;
  int32_t batchCount = 1;
  int64_t batchStride = 0; // elements
};

struct GemmPlan {
  GemmProblem problem;   // what was planned, as given
  bool valid = false;    // planGemm accepted it
  bool empty = false;    // M, N or batch is 0: nothing to launch
  GemmOperand first = GemmOperand::B;  // cuBLASLt's A
  GemmOperand second = GemmOperand::A; // cuBLASLt's B
  LtOp transa = LtOp::N, transb = LtOp::N;
  uint64_t m = 0, n = 0, k = 0;
  LtLayout a, b, c, d; // c and d are identical (C may be D, in place)
  LtEpilogue epilogue = LtEpilogue::Default;
  DType biasType = DType::F32; // = d's type, as cuBLASLt requires
  LtComputeType compute = LtComputeType::F32;
  LtScaleType scale = LtScaleType::F32;
  float alpha = 1.0f, beta = 0.0f;
  // Legal but off cuBLASLt's fast path (e.g. leading dims not a multiple of 16 bytes).
  std::vector<std::string> warnings;

  bool usesBias() const { return epilogue != LtEpilogue::Default; }
  bool readsC() const { return beta != 0.0f; }
};

// Plans `p` for cuBLASLt. Returns "" or a one-line reason cuBLASLt cannot run it (mixed input
// types, bf16 output from f32 inputs, TF32 for 16-bit inputs, a bias of another type than D,
// overlapping outputs, leading dims shorter than a row, ...).
[[nodiscard]] std::string planGemm(const GemmProblem &p, GemmPlan &out);

// "bf16 M=4 N=3 K=5 batch=2 transB -> bf16, bias+gelu": the problem, for messages.
std::string describeGemm(const GemmProblem &p);

// A runtime `linear`: x [..., K] times the 2-D weight w ([K, N], or [N, K] transposed) plus an
// optional bias [N], every operand of `dtype`. The leading dims of x fold into M (one GEMM).
[[nodiscard]] std::string linearProblem(const std::vector<int64_t> &xShape,
                                        const std::vector<int64_t> &wShape, bool transposeWeight,
                                        GemmEpilogue epilogue, DType dtype, GemmProblem &out);

// A runtime `matmul` (ONNX MatMul: 1-D operands promoted, batch dims broadcast numpy-style) as
// one strided-batched problem launched at a list of element offsets. The innermost batch dims
// whose strides collapse to one per operand form the strided batch; the others are looped. A
// batch that shares one B over consecutive A matrices becomes one tall GEMM (M · batch rows).
struct MatmulLaunch {
  int64_t offsetA = 0, offsetB = 0, offsetC = 0; // elements
};
struct MatmulGemms {
  GemmProblem problem;
  std::vector<MatmulLaunch> launches;
  std::vector<int64_t> outShape; // y's shape
};
[[nodiscard]] std::string matmulProblems(const std::vector<int64_t> &aShape,
                                         const std::vector<int64_t> &bShape, DType dtype,
                                         MatmulGemms &out);

} // namespace shardc::kernels
