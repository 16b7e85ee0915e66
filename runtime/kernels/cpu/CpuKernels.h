// Every CPU kernel entry point, grouped as the source files are; KernelRegistry.cpp maps op
// names to these. Kernels take f32 (and native f64/int where noted) and are wrapped for f16/bf16.
#pragma once

#include "shardc/runtime/Kernel.h"

#include <exception>
#include <string>
#include <vector>

namespace shardc::rt::cpu {

// A kernel that never lets an exception (allocation failure) escape into the executor.
template <KernelFn Kernel> std::string guarded(const KernelArgs &args) {
  try {
    return Kernel(args);
  } catch (const std::exception &e) {
    return std::string("kernel failed: ") + e.what();
  } catch (...) {
    return "kernel failed with an unknown exception";
  }
}

// Elementwise.cpp
// Every row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h) is a kernel named by the row
// (add, exp, gelu_tanh, ...), guarded and computing 16-bit floats in f32; nullptr for other
// names. The step kind `formula` runs the row its attribute `formula` names.
KernelFn lookupFormulaKernel(std::string_view name);
std::vector<std::string> formulaKernelNames();
std::string formulaStepKernel(const KernelArgs &args);
std::string powKernel(const KernelArgs &args);
std::string equalKernel(const KernelArgs &args);
std::string lessKernel(const KernelArgs &args);      // a < b, bool result
std::string lessEqualKernel(const KernelArgs &args); // a <= b, bool result
std::string whereKernel(const KernelArgs &args);
std::string isnanKernel(const KernelArgs &args);
std::string castKernel(const KernelArgs &args);
std::string copyKernel(const KernelArgs &args);
std::string siluMulKernel(const KernelArgs &args);

// IndexOps.cpp (every dtype; ONNX CumSum, ArgMax, ArgMin, ScatterND, ScatterElements)
std::string cumsumKernel(const KernelArgs &args);
std::string argMaxKernel(const KernelArgs &args);
std::string argMinKernel(const KernelArgs &args);
std::string scatterElementsKernel(const KernelArgs &args);
std::string scatterNdKernel(const KernelArgs &args);

// LinearAlgebra.cpp
std::string matmulKernel(const KernelArgs &args);
std::string linearKernel(const KernelArgs &args);
std::string gemmKernel(const KernelArgs &args);

// Reductions.cpp
std::string softmaxKernel(const KernelArgs &args);
std::string logSoftmaxKernel(const KernelArgs &args);
std::string reduceSumKernel(const KernelArgs &args);
std::string reduceMeanKernel(const KernelArgs &args);
std::string reduceMaxKernel(const KernelArgs &args);

// DataMovement.cpp (dtype-agnostic: they move bytes)
std::string transposeKernel(const KernelArgs &args);
std::string sliceKernel(const KernelArgs &args);
std::string dynamicSliceKernel(const KernelArgs &args);
std::string concatKernel(const KernelArgs &args);
std::string splitKernel(const KernelArgs &args);
std::string gatherKernel(const KernelArgs &args);
std::string gatherElementsKernel(const KernelArgs &args);
std::string expandKernel(const KernelArgs &args);
std::string triluKernel(const KernelArgs &args);
std::string embeddingKernel(const KernelArgs &args);

// Moe.cpp: the routing ops of exported MoE graphs (every dtype)
std::string topKKernel(const KernelArgs &args);
std::string gatherNdKernel(const KernelArgs &args);
std::string moeExpertsKernel(const KernelArgs &args); // f32
std::string moeRouterKernel(const KernelArgs &args);  // f32 bf16 f16
// Expert parallelism's local steps (MoeEp.cpp): permute any dtype, the others f32.
std::string moePermuteKernel(const KernelArgs &args);
std::string moeGroupedGemmKernel(const KernelArgs &args);
std::string moeUnpermuteKernel(const KernelArgs &args);
// MoeGrad.cpp: the backward of the raised MoE ops (f32).
std::string moeExpertsGradKernel(const KernelArgs &args);
std::string moeGroupedGemmGradKernel(const KernelArgs &args);
std::string moeRouterGradKernel(const KernelArgs &args);

// Normalization.cpp
std::string rmsNormKernel(const KernelArgs &args);
std::string layerNormKernel(const KernelArgs &args);

// TokenLoss.cpp: the summed token cross-entropy and label count (f32, bf16, f16 logits)
std::string tokenLossKernel(const KernelArgs &args);

// LossStats.cpp: the vocabulary-parallel loss (row statistics, their gradient, the combine;
// f32, bf16, f16 or f64 logits)
std::string tokenLossStatsKernel(const KernelArgs &args);
std::string tokenLossStatsGradKernel(const KernelArgs &args);
std::string tokenLossCombineKernel(const KernelArgs &args);

// Gradients.cpp: backward kernels of training (attention_grad and embedding_grad in f32 and
// f64; token_loss_grad reads f32, bf16 or f16 logits in place)
std::string attentionGradKernel(const KernelArgs &args);
std::string embeddingGradKernel(const KernelArgs &args);
std::string tokenLossGradKernel(const KernelArgs &args);

// Attention.cpp
std::string rotaryKernel(const KernelArgs &args);
std::string attentionKernel(const KernelArgs &args);
// SHARDC_CPU_ATTENTION=simt: 16-bit attention through the CUDA flash kernel's source run by
// the SIMT emulator (FlashAttentionSimt.cpp); an error for steps that kernel cannot take.
bool simtAttentionRequested();
std::string flashAttentionSimtKernel(const KernelArgs &args);

} // namespace shardc::rt::cpu
