// The prelude of every generated fused kernel: one text that the host C++ compiler (CPU
// backend) and NVRTC (CUDA backend) both build. Only launch geometry differs between the two:
// SC_LOOP is a plain loop on the CPU and a grid-stride loop on the GPU. No header is needed
// under NVRTC; the math is its built-in float functions.
//
// Elementwise kernels loop over elements (SC_LOOP); row kernels (a normalisation with the
// elementwise ops around it) loop over rows (SC_ROWS) and, per row, over its elements
// (SC_COLS), with the row's statistics summed in double.
//
// Scalars are computed in f32. bf16/f16 values are loaded into f32 and rounded back (round to
// nearest even) after every op whose result type is bf16/f16, as the CPU library kernels do,
// so a fused chain gives the same bits as the ops run one by one. The conversions and the
// conversions here match runtime/lib/Tensor.cpp (a unit test checks that they do), and the
// elementwise formulas at the end are the ones every backend computes.
#ifndef SHARDC_FUSED_PRELUDE_H
#define SHARDC_FUSED_PRELUDE_H

#if defined(__CUDACC__)
#define SC_FN __device__ __forceinline__
#define SC_KERNEL extern "C" __global__ void
#define SC_LOOP(i, n)                                                                      \
  for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < (long long)(n); \
       i += (long long)gridDim.x * blockDim.x)
SC_FN float sc_bits_to_f32(unsigned int u) { return __uint_as_float(u); }
SC_FN unsigned int sc_f32_to_bits(float f) { return __float_as_uint(f); }
SC_FN float sc_exp(float x) { return expf(x); }
SC_FN float sc_log(float x) { return logf(x); }
SC_FN float sc_sqrt(float x) { return sqrtf(x); }
SC_FN float sc_tanh(float x) { return tanhf(x); }
SC_FN float sc_erf(float x) { return erff(x); }
SC_FN float sc_cos(float x) { return cosf(x); }
SC_FN float sc_sin(float x) { return sinf(x); }
SC_FN float sc_pow(float a, float b) { return powf(a, b); }
SC_FN float sc_fabs(float x) { return fabsf(x); }
SC_FN float sc_floor(float x) { return floorf(x); }
SC_FN float sc_ceil(float x) { return ceilf(x); }
SC_FN float sc_rint(float x) { return rintf(x); } // halves to even
SC_FN float sc_fmod(float a, float b) { return fmodf(a, b); }
SC_FN double sc_fmod(double a, double b) { return fmod(a, b); }
SC_FN double sc_sqrt_d(double x) { return sqrt(x); }
SC_FN double sc_log_d(double x) { return log(x); }
SC_FN double sc_exp(double x) { return exp(x); }
SC_FN double sc_log(double x) { return log(x); }
SC_FN double sc_sqrt(double x) { return sqrt(x); }
SC_FN double sc_tanh(double x) { return tanh(x); }
SC_FN double sc_erf(double x) { return erf(x); }
SC_FN double sc_cos(double x) { return cos(x); }
SC_FN double sc_sin(double x) { return sin(x); }
SC_FN double sc_pow(double a, double b) { return pow(a, b); }
SC_FN double sc_fabs(double x) { return fabs(x); }
SC_FN double sc_floor(double x) { return floor(x); }
SC_FN double sc_ceil(double x) { return ceil(x); }
SC_FN double sc_rint(double x) { return rint(x); }
// Row kernels: one block per row, its threads striding over the row; sc_row_sum is a block
// reduction that every thread of the block calls (blockDim a multiple of 32, at most 1024).
#define SC_ROWS(r, n) for (long long r = blockIdx.x; r < (long long)(n); r += gridDim.x)
#define SC_COLS(j, n) for (long long j = threadIdx.x; j < (long long)(n); j += blockDim.x)
SC_FN double sc_row_sum(double v) {
  __shared__ double partial[32];
  for (int o = 16; o > 0; o >>= 1)
    v += __shfl_down_sync(0xffffffffu, v, o);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads(); // the previous row's result may still be being read
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = (int)threadIdx.x < warps ? partial[threadIdx.x] : 0.0;
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1)
      v += __shfl_down_sync(0xffffffffu, v, o);
  if (threadIdx.x == 0)
    partial[0] = v;
  __syncthreads();
  return partial[0];
}
SC_FN float sc_row_max(float v) {
  __shared__ float partial[32];
  for (int o = 16; o > 0; o >>= 1)
    v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = (blockDim.x + 31) >> 5;
  __syncthreads();
  if (lane == 0)
    partial[warp] = v;
  __syncthreads();
  v = (int)threadIdx.x < warps ? partial[threadIdx.x] : sc_bits_to_f32(0xff800000u);
  if (warp == 0)
    for (int o = 16; o > 0; o >>= 1)
      v = fmaxf(v, __shfl_down_sync(0xffffffffu, v, o));
  if (threadIdx.x == 0)
    partial[0] = v;
  __syncthreads();
  return partial[0];
}
#else
#include <cmath>
#include <cstring>
#define SC_FN static inline
#define SC_KERNEL static void
#define SC_LOOP(i, n) for (long long i = 0; i < (long long)(n); ++i)
SC_FN float sc_bits_to_f32(unsigned int u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
SC_FN unsigned int sc_f32_to_bits(float f) {
  unsigned int u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
SC_FN float sc_exp(float x) { return std::exp(x); }
SC_FN float sc_log(float x) { return std::log(x); }
SC_FN float sc_sqrt(float x) { return std::sqrt(x); }
SC_FN float sc_tanh(float x) { return std::tanh(x); }
SC_FN float sc_erf(float x) { return std::erf(x); }
SC_FN float sc_cos(float x) { return std::cos(x); }
SC_FN float sc_sin(float x) { return std::sin(x); }
SC_FN float sc_pow(float a, float b) { return std::pow(a, b); }
SC_FN float sc_fabs(float x) { return std::fabs(x); }
SC_FN float sc_floor(float x) { return std::floor(x); }
SC_FN float sc_ceil(float x) { return std::ceil(x); }
SC_FN float sc_rint(float x) { return std::nearbyint(x); } // halves to even (default rounding)
SC_FN float sc_fmod(float a, float b) { return std::fmod(a, b); }
SC_FN double sc_fmod(double a, double b) { return std::fmod(a, b); }
SC_FN double sc_sqrt_d(double x) { return std::sqrt(x); }
SC_FN double sc_log_d(double x) { return std::log(x); }
SC_FN double sc_exp(double x) { return std::exp(x); }
SC_FN double sc_log(double x) { return std::log(x); }
SC_FN double sc_sqrt(double x) { return std::sqrt(x); }
SC_FN double sc_tanh(double x) { return std::tanh(x); }
SC_FN double sc_erf(double x) { return std::erf(x); }
SC_FN double sc_cos(double x) { return std::cos(x); }
SC_FN double sc_sin(double x) { return std::sin(x); }
SC_FN double sc_pow(double a, double b) { return std::pow(a, b); }
SC_FN double sc_fabs(double x) { return std::fabs(x); }
SC_FN double sc_floor(double x) { return std::floor(x); }
SC_FN double sc_ceil(double x) { return std::ceil(x); }
SC_FN double sc_rint(double x) { return std::nearbyint(x); }
// Row kernels: rows in order, each row's elements in order (the library kernels' order).
#define SC_ROWS(r, n) for (long long r = 0; r < (long long)(n); ++r)
#define SC_COLS(j, n) for (long long j = 0; j < (long long)(n); ++j)
SC_FN double sc_row_sum(double v) { return v; }
SC_FN float sc_row_max(float v) { return v; }
#endif

// ONNX Mod: `fmod` keeps the dividend's sign (C's fmod and %), `mod` the divisor's (Python's
// %). Integers (CPU library kernels only; the caller rejects a zero divisor and takes b == -1
// as 0) use the integer operator, floats the math library's fmod.
template <typename T> SC_FN T sc_fmod(T a, T b) { return T(a % b); }
template <typename T> SC_FN T sc_mod(T a, T b) {
  T r = sc_fmod(a, b);
  return (r != T(0) && ((r < T(0)) != (b < T(0)))) ? T(r + b) : r;
}

// bf16: the top half of an f32.
SC_FN float sc_from_bf16(unsigned short h) { return sc_bits_to_f32((unsigned int)h << 16); }
SC_FN unsigned short sc_to_bf16(float f) {
  unsigned int u = sc_f32_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep the sign, quiet
    return (unsigned short)((u >> 16) | 0x0040u);
  u += 0x7fffu + ((u >> 16) & 1u); // ties to even; a carry rounds into the exponent
  return (unsigned short)(u >> 16);
}

// f16 (IEEE binary16), subnormals included.
SC_FN float sc_from_f16(unsigned short h) {
  unsigned int sign = (unsigned int)(h & 0x8000u) << 16;
  unsigned int e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1fu)
    return sc_bits_to_f32(sign | 0x7f800000u | (m << 13));
  if (e != 0)
    return sc_bits_to_f32(sign | ((e + 112u) << 23) | (m << 13));
  if (m == 0)
    return sc_bits_to_f32(sign);
  float magnitude = (float)m * sc_bits_to_f32(0x33800000u); // m * 2^-24, exact
  return sc_bits_to_f32(sign | sc_f32_to_bits(magnitude));
}
SC_FN unsigned short sc_to_f16(float f) {
  unsigned int u = sc_f32_to_bits(f);
  unsigned short sign = (unsigned short)((u >> 16) & 0x8000u);
  unsigned int a = u & 0x7fffffffu;
  if (a > 0x7f800000u)
    return (unsigned short)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) // rounds past 65504
    return (unsigned short)(sign | 0x7c00u);
  if (a >= 0x38800000u) { // normal
    unsigned int r = a + 0xfffu + ((a >> 13) & 1u);
    return (unsigned short)(sign | ((r - 0x38000000u) >> 13));
  }
  unsigned int shift = 126u - (a >> 23); // subnormal
  if (shift > 24u)
    return sign;
  unsigned int m = (a & 0x7fffffu) | 0x800000u;
  unsigned int q = m >> shift, rest = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
  if (rest > half || (rest == half && (q & 1u)))
    ++q;
  return (unsigned short)(sign | q);
}
SC_FN float sc_round_bf16(float f) { return sc_from_bf16(sc_to_bf16(f)); }
SC_FN float sc_round_f16(float f) { return sc_from_f16(sc_to_f16(f)); }

// Four consecutive elements, for vectorised element kernels (one thread, four lanes): one
// 8-byte access (two for f32) where the address allows it on a GPU, element by element
// otherwise and on the CPU. The values are the scalar loads' and stores', bit for bit.
#if defined(__CUDACC__)
SC_FN void sc_load4_u16(const unsigned short *p, unsigned short h[4]) {
  if (((unsigned long long)p & 7ull) == 0) {
    unsigned long long w = *(const unsigned long long *)p;
    h[0] = (unsigned short)w; h[1] = (unsigned short)(w >> 16);
    h[2] = (unsigned short)(w >> 32); h[3] = (unsigned short)(w >> 48);
  } else {
    h[0] = p[0]; h[1] = p[1]; h[2] = p[2]; h[3] = p[3];
  }
}
SC_FN void sc_store4_u16(unsigned short *p, const unsigned short h[4]) {
  if (((unsigned long long)p & 7ull) == 0) {
    *(unsigned long long *)p = (unsigned long long)h[0] | ((unsigned long long)h[1] << 16) |
                               ((unsigned long long)h[2] << 32) | ((unsigned long long)h[3] << 48);
  } else {
    p[0] = h[0]; p[1] = h[1]; p[2] = h[2]; p[3] = h[3];
  }
}
SC_FN void sc_load4_f32(const float *p, float v[4]) {
  if (((unsigned long long)p & 7ull) == 0) {
    unsigned long long a = *(const unsigned long long *)p, b = *(const unsigned long long *)(p + 2);
    v[0] = sc_bits_to_f32((unsigned int)a); v[1] = sc_bits_to_f32((unsigned int)(a >> 32));
    v[2] = sc_bits_to_f32((unsigned int)b); v[3] = sc_bits_to_f32((unsigned int)(b >> 32));
  } else {
    v[0] = p[0]; v[1] = p[1]; v[2] = p[2]; v[3] = p[3];
  }
}
SC_FN void sc_store4_f32(float *p, const float v[4]) {
  if (((unsigned long long)p & 7ull) == 0) {
    *(unsigned long long *)p = (unsigned long long)sc_f32_to_bits(v[0]) | ((unsigned long long)sc_f32_to_bits(v[1]) << 32);
    *(unsigned long long *)(p + 2) = (unsigned long long)sc_f32_to_bits(v[2]) | ((unsigned long long)sc_f32_to_bits(v[3]) << 32);
  } else {
    p[0] = v[0]; p[1] = v[1]; p[2] = v[2]; p[3] = v[3];
  }
}
#else
SC_FN void sc_load4_u16(const unsigned short *p, unsigned short h[4]) {
  for (int k = 0; k < 4; ++k) h[k] = p[k];
}
SC_FN void sc_store4_u16(unsigned short *p, const unsigned short h[4]) {
  for (int k = 0; k < 4; ++k) p[k] = h[k];
}
SC_FN void sc_load4_f32(const float *p, float v[4]) {
  for (int k = 0; k < 4; ++k) v[k] = p[k];
}
SC_FN void sc_store4_f32(float *p, const float v[4]) {
  for (int k = 0; k < 4; ++k) p[k] = v[k];
}
#endif
SC_FN void sc_load4_bf16(const unsigned short *p, float v[4]) {
  unsigned short h[4];
  sc_load4_u16(p, h);
  for (int k = 0; k < 4; ++k) v[k] = sc_from_bf16(h[k]);
}
SC_FN void sc_load4_f16(const unsigned short *p, float v[4]) {
  unsigned short h[4];
  sc_load4_u16(p, h);
  for (int k = 0; k < 4; ++k) v[k] = sc_from_f16(h[k]);
}
SC_FN void sc_store4_bf16(unsigned short *p, const float v[4]) {
  unsigned short h[4];
  for (int k = 0; k < 4; ++k) h[k] = sc_to_bf16(v[k]);
  sc_store4_u16(p, h);
}
SC_FN void sc_store4_f16(unsigned short *p, const float v[4]) {
  unsigned short h[4];
  for (int k = 0; k < 4; ++k) h[k] = sc_to_f16(v[k]);
  sc_store4_u16(p, h);
}

// The scalar formula of every elementwise op, written once. This table is the single source
// of an elementwise op's arithmetic: generated kernels (CPU and CUDA) call sc_op_<name>, the
// CPU library kernels instantiate the same templates (compiler/lib constant folding runs those
// kernels), and the compiler's ElementwiseOpInterface names the row to use. Columns:
//   name   the formula's name (usually the sc op's mnemonic; GELU has one row per variant),
//   arity  1 (operand a) or 2 (operands a, b),
//   ints   how integer tensors are computed: `none` (float only), `wrap` (in the unsigned type
//          of the same width: two's complement wrap-around), `trunc` (signed division, the
//          divisor checked for 0 and -1 by the caller), `mod` (a remainder in the signed
//          type: the divisor checked for 0 by the caller, and b == -1 gives 0), `exact` (in the type
//          itself: min, max),
//   expr   the formula over a (and b) of type T: float in generated kernels, float or double in
//          the CPU library kernels.
// Adding a row defines the kernel everywhere; the sc op names it (ScOps.td).
#define SC_ELEMENTWISE_FORMULAS(X)                                                            \
  X(add, 2, wrap, a + b)                                                                      \
  X(sub, 2, wrap, a - b)                                                                      \
  X(mul, 2, wrap, a * b)                                                                      \
  X(div, 2, trunc, a / b)                                                                     \
  X(pow, 2, none, sc_pow(a, b))                                                               \
  X(neg, 1, wrap, -a)                                                                         \
  X(sqrt, 1, none, sc_sqrt(a))                                                                \
  X(reciprocal, 1, none, T(1) / a)                                                            \
  X(exp, 1, none, sc_exp(a))                                                                  \
  X(log, 1, none, sc_log(a))                                                                  \
  X(tanh, 1, none, sc_tanh(a))                                                                \
  X(sigmoid, 1, none, T(1) / (T(1) + sc_exp(-a)))                                             \
  X(erf, 1, none, sc_erf(a))                                                                  \
  X(cos, 1, none, sc_cos(a))                                                                  \
  X(sin, 1, none, sc_sin(a))                                                                  \
  X(relu, 1, none, a < T(0) ? T(0) : a)                                                       \
  X(abs, 1, none, sc_fabs(a))                                                                 \
  X(floor, 1, none, sc_floor(a))                                                              \
  X(ceil, 1, none, sc_ceil(a))                                                                \
  X(round, 1, none, sc_rint(a))                                                               \
  X(sign, 1, none, a > T(0) ? T(1) : a < T(0) ? T(-1) : a)                                    \
  X(min, 2, exact, (a != a || a < b) ? a : b)                                                 \
  X(leaky_relu, 2, none, a < T(0) ? a * b : a)                                                \
  X(mod, 2, mod, sc_mod(a, b))                                                                \
  X(fmod, 2, mod, sc_fmod(a, b))                                                              \
  X(max, 2, exact, (a != a || a > b) ? a : b)                                                 \
  X(silu, 1, none, a * sc_op_sigmoid(a))                                                      \
  X(silu_grad, 2, none, b * sc_op_sigmoid(a) * (T(1) + a * (T(1) - sc_op_sigmoid(a))))         \
  X(gelu_erf, 1, none, T(0.5) * a * (T(1) + sc_erf(a * T(0.70710678118654752440))))           \
  X(gelu_tanh, 1, none,                                                                       \
    T(0.5) * a * (T(1) + sc_tanh(T(0.79788456080286535588) * (a + T(0.044715) * a * a * a))))   \
  X(gelu_erf_grad, 2, none,                                                                   \
    b * (T(0.5) * (T(1) + sc_erf(a * T(0.70710678118654752440))) +                              \
         a * T(0.39894228040143267794) * sc_exp(T(-0.5) * a * a)))                              \
  X(gelu_tanh_grad, 2, none,                                                                  \
    b * (T(0.5) * (T(1) + sc_tanh(T(0.79788456080286535588) * (a + T(0.044715) * a * a * a))) + \
         T(0.5) * a *                                                                           \
             (T(1) - sc_tanh(T(0.79788456080286535588) * (a + T(0.044715) * a * a * a)) *       \
                         sc_tanh(T(0.79788456080286535588) * (a + T(0.044715) * a * a * a))) * \
             T(0.79788456080286535588) * (T(1) + T(0.134145) * a * a)))

#define SC_FORMULA_PARAMS_1 T a
#define SC_FORMULA_PARAMS_2 T a, T b
#define SC_DEFINE_FORMULA(name, arity, ints, ...) \
  template <typename T> SC_FN T sc_op_##name(SC_FORMULA_PARAMS_##arity) { return __VA_ARGS__; }
SC_ELEMENTWISE_FORMULAS(SC_DEFINE_FORMULA)
#undef SC_DEFINE_FORMULA

#endif // SHARDC_FUSED_PRELUDE_H
