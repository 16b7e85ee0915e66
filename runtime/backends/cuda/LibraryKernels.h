// The CUDA backend's library kernels by entry point, for the table that dispatches them
// (CudaKernelTable.cpp). Host declarations only: no CUDA header, so plain C++ includes it.
#pragma once

#include "shardc/runtime/Kernel.h"

#include <cstdint>
#include <string>

namespace shardc::cuda::lib {

// LibraryKernels.cu
std::string linearKernel(const rt::KernelArgs &a);
std::string matmulKernel(const rt::KernelArgs &a);
std::string attentionKernel(const rt::KernelArgs &a);
std::string embeddingKernel(const rt::KernelArgs &a);
std::string copyKernel(const rt::KernelArgs &a);
std::string castKernel(const rt::KernelArgs &a);
std::string splitKernel(const rt::KernelArgs &a);
std::string dynamicSliceKernel(const rt::KernelArgs &a);
std::string gatherKernel(const rt::KernelArgs &a);
std::string tokenLossKernel(const rt::KernelArgs &a);
std::string tokenLossGradKernel(const rt::KernelArgs &a);
std::string embeddingGradKernel(const rt::KernelArgs &a);
// C [M, N] = op(A) · op(B), row-major f32 device pointers with leading dims, on the thread's
// stream: one GEMM of the MoE steps' groups (MoeKernels.cu), through linear's path (cuBLASLt).
std::string groupGemm(const char *op, bool transA, bool transB, int64_t M, int64_t N, int64_t K, const float *A,
                      int64_t lda, const float *B, int64_t ldb, float *C, int64_t ldc);

// SharedKernels.cu (the SIMT kernels of shardc/kernels/IndexKernels.h)
std::string sliceKernel(const rt::KernelArgs &a);
std::string concatKernel(const rt::KernelArgs &a);
std::string transposeKernel(const rt::KernelArgs &a);
std::string expandKernel(const rt::KernelArgs &a);
std::string reduceSumKernel(const rt::KernelArgs &a);
std::string reduceMeanKernel(const rt::KernelArgs &a);
std::string reduceMaxKernel(const rt::KernelArgs &a);
// SharedKernels.cu (shardc/kernels/AttentionRows.h): attention that also writes lse (the
// library attention otherwise), attention_grad.
std::string attentionWithLseKernel(const rt::KernelArgs &a);
std::string attentionGradKernel(const rt::KernelArgs &a);
// SharedKernels.cu (ElementwiseKernels.h): what generated kernels normally absorb.
std::string formulaKernel(const rt::KernelArgs &a);
std::string rotaryKernel(const rt::KernelArgs &a);
std::string rmsNormKernel(const rt::KernelArgs &a);
std::string layerNormKernel(const rt::KernelArgs &a);
std::string softmaxKernel(const rt::KernelArgs &a);
std::string logSoftmaxKernel(const rt::KernelArgs &a);
std::string siluMulKernel(const rt::KernelArgs &a);
std::string powKernel(const rt::KernelArgs &a);
std::string gemmKernel(const rt::KernelArgs &a);
// SharedKernels.cu (SelectKernels.h): selections and comparisons of any dtype.
std::string whereKernel(const rt::KernelArgs &a);
std::string equalKernel(const rt::KernelArgs &a);
std::string lessKernel(const rt::KernelArgs &a);
std::string lessEqualKernel(const rt::KernelArgs &a);
std::string cumsumKernel(const rt::KernelArgs &a);
std::string argMaxKernel(const rt::KernelArgs &a);
std::string argMinKernel(const rt::KernelArgs &a);
std::string scatterElementsKernel(const rt::KernelArgs &a);
std::string scatterNdKernel(const rt::KernelArgs &a);
std::string isnanKernel(const rt::KernelArgs &a);
std::string gatherElementsKernel(const rt::KernelArgs &a);
std::string triluKernel(const rt::KernelArgs &a);
// SharedKernels.cu (MoeKernels.h): the routing ops of exported MoE graphs, any dtype.
std::string topKKernel(const rt::KernelArgs &a);
std::string gatherNdKernel(const rt::KernelArgs &a);
// SharedKernels.cu (LossKernels.h): the vocabulary-parallel loss, f32 bf16 f16 f64 logits.
std::string tokenLossStatsKernel(const rt::KernelArgs &a);
std::string tokenLossStatsGradKernel(const rt::KernelArgs &a);
std::string tokenLossCombineKernel(const rt::KernelArgs &a);
// MoeKernels.cu: the raised MoE steps (MoeKernels.h, MoeGradKernels.h). moe_experts and
// moe_grouped_gemm run loops of cuBLASLt GEMMs over the expert groups, reading the group sizes
// on the host (noteHostWait); the rest are SIMT kernels.
std::string moeRouterKernel(const rt::KernelArgs &a);  // f32 bf16 f16
std::string moeExpertsKernel(const rt::KernelArgs &a); // f32
// Expert parallelism: permute (any dtype, i64 ids), grouped GEMM and unpermute (f32).
std::string moePermuteKernel(const rt::KernelArgs &a);
std::string moeGroupedGemmKernel(const rt::KernelArgs &a);
std::string moeUnpermuteKernel(const rt::KernelArgs &a);
// The MoE backward (MoeGradKernels.h), f32.
std::string moeExpertsGradKernel(const rt::KernelArgs &a);
std::string moeGroupedGemmGradKernel(const rt::KernelArgs &a);
std::string moeRouterGradKernel(const rt::KernelArgs &a);

// Prepares the flash attention kernels' shared memory (host-side, before any capture).
void prepareAttention();

} // namespace shardc::cuda::lib
