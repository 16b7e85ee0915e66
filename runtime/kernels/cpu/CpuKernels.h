// Every CPU kernel entry point, grouped as the source files are; KernelRegistry.cpp maps op
// names to these. Kernels take f32 (and native f64/int where noted) and are wrapped for f16/bf16.
#pragma once

#include "shardc/runtime/Kernel.h"

namespace shardc::rt::cpu {

// Elementwise.cpp
std::string addKernel(const KernelArgs &args);
std::string subKernel(const KernelArgs &args);
std::string mulKernel(const KernelArgs &args);
std::string divKernel(const KernelArgs &args);
std::string powKernel(const KernelArgs &args);
std::string equalKernel(const KernelArgs &args);
std::string whereKernel(const KernelArgs &args);
std::string negKernel(const KernelArgs &args);
std::string sqrtKernel(const KernelArgs &args);
std::string reciprocalKernel(const KernelArgs &args);
std::string expKernel(const KernelArgs &args);
std::string logKernel(const KernelArgs &args);
std::string tanhKernel(const KernelArgs &args);
std::string sigmoidKernel(const KernelArgs &args);
std::string erfKernel(const KernelArgs &args);
std::string cosKernel(const KernelArgs &args);
std::string sinKernel(const KernelArgs &args);
std::string siluKernel(const KernelArgs &args);
std::string geluKernel(const KernelArgs &args);
std::string isnanKernel(const KernelArgs &args);
std::string castKernel(const KernelArgs &args);
std::string copyKernel(const KernelArgs &args);
std::string siluMulKernel(const KernelArgs &args);

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
std::string concatKernel(const KernelArgs &args);
std::string splitKernel(const KernelArgs &args);
std::string gatherKernel(const KernelArgs &args);
std::string gatherElementsKernel(const KernelArgs &args);
std::string expandKernel(const KernelArgs &args);
std::string triluKernel(const KernelArgs &args);
std::string embeddingKernel(const KernelArgs &args);

// Normalization.cpp
std::string rmsNormKernel(const KernelArgs &args);
std::string layerNormKernel(const KernelArgs &args);

// Attention.cpp
std::string rotaryKernel(const KernelArgs &args);
std::string attentionKernel(const KernelArgs &args);
// SHARDC_CPU_ATTENTION=simt: 16-bit attention through the CUDA flash kernel's source run by
// the SIMT emulator (FlashAttentionSimt.cpp); an error for steps that kernel cannot take.
bool simtAttentionRequested();
std::string flashAttentionSimtKernel(const KernelArgs &args);

} // namespace shardc::rt::cpu
