// The shared "compute in f32" wrapper: kernels written for f32 serve f16/bf16 (and f64)
// tensors by running on converted copies; plus the element conversion `cast` is built on.
#pragma once

#include "shardc/runtime/Kernel.h"

#include <vector>

namespace shardc::rt::cpu {

// dst[i] = src[i] converted between any two dtypes (numel must match; see Elem for the rules).
void castElements(const TensorView &src, const TensorView &dst);

// Runs `kernel` with every f16/bf16 tensor of args (and f64 unless keepF64) replaced by an
// f32 copy, then converts the f32 results back into the real outputs. Tensors of other
// dtypes (indices, bool masks) pass through untouched. Without such tensors it is a plain call.
std::string computeInFloat32(const KernelArgs &args, KernelFn kernel, bool keepF64);

template <KernelFn Kernel> std::string viaFloat32(const KernelArgs &args) {
  return computeInFloat32(args, Kernel, /*keepF64=*/false);
}
// For kernels that have native f64 paths (elementwise ops, reductions).
template <KernelFn Kernel> std::string viaFloat32KeepF64(const KernelArgs &args) {
  return computeInFloat32(args, Kernel, /*keepF64=*/true);
}

} // namespace shardc::rt::cpu
