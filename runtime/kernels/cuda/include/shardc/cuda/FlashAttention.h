// The flash attention kernel (shardc/kernels/FlashAttention.h) on a CUDA stream.
#pragma once

#include "shardc/kernels/FlashAttention.h"

#include <cuda_runtime_api.h>

#include <string>

namespace shardc::cuda {

// Enqueues y = attention(q, k, v) on `stream`. `bf16`: bf16 inputs, else f16; `headDim` one
// that flashAttentionSupportsHeadDim accepts. Returns "" or a one-line error (a launch error).
[[nodiscard]] std::string launchFlashAttention(const kernels::FlashAttentionParams &params, bool bf16,
                                               int headDim, cudaStream_t stream);

} // namespace shardc::cuda
