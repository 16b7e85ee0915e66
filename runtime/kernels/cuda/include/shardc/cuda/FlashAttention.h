// The flash attention kernel (shardc/kernels/FlashAttention.h) on a CUDA stream.
#pragma once

#include "shardc/kernels/FlashAttention.h"

#include <cuda_runtime_api.h>

#include <string>

namespace shardc::cuda {

// Lets the kernels use their dynamic shared memory (over 48 KiB for head dim 128). Called once
// by the first launch; call it earlier (the CUDA backend does when it looks up `attention`) so
// that this host-side setting does not happen during a stream capture. "" or an error.
[[nodiscard]] std::string prepareFlashAttention();

// Enqueues y = attention(q, k, v) on `stream`. k and v 16-byte aligned, q and y 4-byte. `bf16`: bf16 inputs, else f16; `headDim` one
// that flashAttentionSupportsHeadDim accepts. Returns "" or a one-line error (a launch error).
[[nodiscard]] std::string launchFlashAttention(const kernels::FlashAttentionParams &params, bool bf16,
                                               int headDim, cudaStream_t stream);

} // namespace shardc::cuda
