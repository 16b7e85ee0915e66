// Elementwise activation kernels for the CUDA backend: grid-stride loops over the shared
// scalar formulas (ActivationMath.h), bf16 loaded and stored through f32 arithmetic.
#include "shardc/cuda/Activations.h"
#include "shardc/kernels/ActivationMath.h"

#include <cuda_bf16.h>

namespace shardc::cuda {

namespace {

template <Activation F> __device__ float apply(float x) {
  if constexpr (F == Activation::Sigmoid)
    return kernels::sigmoid(x);
  else if constexpr (F == Activation::Silu)
    return kernels::silu(x);
  else if constexpr (F == Activation::GeluErf)
    return kernels::geluErf(x);
  else
    return kernels::geluTanh(x);
}

template <Activation F> __global__ void activationF32(const float *x, float *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = apply<F>(x[i]);
}

template <Activation F> __global__ void activationBF16(const __nv_bfloat16 *x, __nv_bfloat16 *y, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = __float2bfloat16(apply<F>(__bfloat162float(x[i])));
}

// Enough blocks to fill an H100 (132 SMs) a few times over; the loops stride the rest.
dim3 gridFor(int64_t n, int threads) {
  int64_t blocks = (n + threads - 1) / threads;
  return dim3((unsigned)std::min<int64_t>(std::max<int64_t>(blocks, 1), 132 * 8));
}

template <typename Launch> cudaError_t dispatch(Activation f, Launch launch) {
  switch (f) {
  case Activation::Sigmoid: return launch(std::integral_constant<Activation, Activation::Sigmoid>{});
  case Activation::Silu: return launch(std::integral_constant<Activation, Activation::Silu>{});
  case Activation::GeluErf: return launch(std::integral_constant<Activation, Activation::GeluErf>{});
  case Activation::GeluTanh: return launch(std::integral_constant<Activation, Activation::GeluTanh>{});
  }
  return cudaErrorInvalidValue;
}

} // namespace

cudaError_t launchActivationF32(Activation f, const float *x, float *y, int64_t n, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  return dispatch(f, [&](auto which) {
    activationF32<decltype(which)::value><<<gridFor(n, 256), 256, 0, stream>>>(x, y, n);
    return cudaGetLastError();
  });
}

cudaError_t launchActivationBF16(Activation f, const void *x, void *y, int64_t n, cudaStream_t stream) {
  if (n == 0)
    return cudaSuccess;
  return dispatch(f, [&](auto which) {
    activationBF16<decltype(which)::value><<<gridFor(n, 256), 256, 0, stream>>>(
        static_cast<const __nv_bfloat16 *>(x), static_cast<__nv_bfloat16 *>(y), n);
    return cudaGetLastError();
  });
}

} // namespace shardc::cuda
