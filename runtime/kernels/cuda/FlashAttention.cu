// nvcc's instantiations of the shared flash attention source (shardc/kernels/FlashAttention.h),
// which the CPU tests run through the Simt.h emulator.
#include "shardc/cuda/FlashAttention.h"

#include <cuda_runtime.h>

namespace shardc::cuda {
namespace {

template <bool Bf16, int D>
__global__ void __launch_bounds__(kernels::kFlashThreads) flashAttentionKernel(kernels::FlashAttentionParams p) {
  kernels::flashAttentionForward<Bf16, D>(p);
}

template <bool Bf16, int D>
void launch(const kernels::FlashAttentionParams &p, cudaStream_t stream) {
  dim3 grid(unsigned(kernels::flashAttentionGridX(p.S)), unsigned(p.B * p.Hq));
  flashAttentionKernel<Bf16, D>
      <<<grid, kernels::kFlashThreads, kernels::flashAttentionSharedBytes(D), stream>>>(p);
}

template <bool Bf16, int D> cudaError_t allowSharedMemory() {
  return cudaFuncSetAttribute(flashAttentionKernel<Bf16, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                              int(kernels::flashAttentionSharedBytes(D)));
}

} // namespace

std::string prepareFlashAttention() {
  for (cudaError_t e : {allowSharedMemory<true, 32>(), allowSharedMemory<false, 32>(), allowSharedMemory<true, 64>(),
                        allowSharedMemory<false, 64>(), allowSharedMemory<true, 128>(), allowSharedMemory<false, 128>()})
    if (e != cudaSuccess)
      return std::string("flash attention: cudaFuncSetAttribute: ") + cudaGetErrorString(e);
  return "";
}

std::string launchFlashAttention(const kernels::FlashAttentionParams &p, bool bf16, int headDim,
                                 cudaStream_t stream) {
  static const std::string prepared = prepareFlashAttention(); // before any capture: see the header
  if (!prepared.empty())
    return prepared;
  if (p.B * p.Hq > 65535)
    return "flash attention: " + std::to_string(p.B * p.Hq) + " (batch x heads) exceed the grid's y limit";
  switch (headDim) {
  case 32: bf16 ? launch<true, 32>(p, stream) : launch<false, 32>(p, stream); break;
  case 64: bf16 ? launch<true, 64>(p, stream) : launch<false, 64>(p, stream); break;
  case 128: bf16 ? launch<true, 128>(p, stream) : launch<false, 128>(p, stream); break;
  default: return "flash attention: no kernel for head dim " + std::to_string(headDim);
  }
  if (cudaError_t e = cudaGetLastError(); e != cudaSuccess)
    return std::string("flash attention: launch failed: ") + cudaGetErrorString(e);
  return "";
}

} // namespace shardc::cuda
