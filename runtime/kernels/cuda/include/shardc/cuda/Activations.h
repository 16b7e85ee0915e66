// CUDA activation kernels (f32 and bf16, computed in f32) over the shared ActivationMath.h
// formulas. The CUDA backend (issue 5) launches them on its compute stream.
#pragma once

#include <cstdint>
#include <cuda_runtime_api.h>

namespace shardc::cuda {

enum class Activation { Sigmoid, Silu, GeluErf, GeluTanh };

// y[i] = f(x[i]) for i < n; x and y are device pointers (they may alias). Returns the launch
// status; nothing synchronises the stream.
cudaError_t launchActivationF32(Activation f, const float *x, float *y, int64_t n, cudaStream_t stream);
cudaError_t launchActivationBF16(Activation f, const void *x, void *y, int64_t n, cudaStream_t stream);

} // namespace shardc::cuda
