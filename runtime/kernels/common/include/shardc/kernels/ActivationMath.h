// Scalar activation math shared by the CPU kernels and the CUDA kernels: one definition of
// SiLU, sigmoid and both GELUs, compiled by the host compiler and by nvcc (one source, two
// targets), so the CPU tests check the formulas the GPU runs.
#pragma once

#include <cmath>

#if defined(__CUDACC__)
#define SHARDC_HOST_DEVICE __host__ __device__
#else
#define SHARDC_HOST_DEVICE
#endif

namespace shardc::kernels {

template <typename T> SHARDC_HOST_DEVICE inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }

template <typename T> SHARDC_HOST_DEVICE inline T silu(T x) { return x * sigmoid(x); }

// GELU, exact: 0.5 x (1 + erf(x / sqrt 2)).
template <typename T> SHARDC_HOST_DEVICE inline T geluErf(T x) {
  return T(0.5) * x * (T(1) + std::erf(x * T(0.70710678118654752440)));
}

// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
template <typename T> SHARDC_HOST_DEVICE inline T geluTanh(T x) {
  const T k = T(0.79788456080286535588);
  return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
}

} // namespace shardc::kernels
