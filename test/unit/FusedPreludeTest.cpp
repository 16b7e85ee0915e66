// The fused-kernel prelude (FusedPrelude.h) compiled as host C++, as the CPU backend builds
// generated kernels: its conversions must give the bits the runtime's library kernels give
// (runtime/lib/Tensor.cpp), or a fused chain would not match the same ops run one by one;
// its formula table (which the library kernels instantiate too) must say what the ops mean.
#include <cmath>
#include "shardc/kernels/FusedPrelude.h"
#include "shardc/runtime/Tensor.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <random>

namespace {

uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

// Every 16-bit pattern, both formats.
TEST(FusedPrelude, SixteenBitToF32MatchesRuntime) {
  for (uint32_t h = 0; h <= 0xffffu; ++h) {
    auto v = static_cast<uint16_t>(h);
    ASSERT_EQ(bits(sc_from_bf16(v)), bits(shardc::rt::bf16ToF32(v))) << std::hex << h;
    ASSERT_EQ(bits(sc_from_f16(v)), bits(shardc::rt::f16ToF32(v))) << std::hex << h;
  }
}

// Rounding f32 to bf16/f16: random bit patterns (NaNs, infinities, subnormals, ties) plus
// the boundaries.
TEST(FusedPrelude, F32ToSixteenBitMatchesRuntime) {
  std::mt19937 rng(7);
  std::vector<uint32_t> cases = {0u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00001u, 0x477ff000u,
                                 0x477fefffu, 0x38800000u, 0x387fffffu, 0x33000000u, 0x33000001u, 0x3f808000u,
                                 0x3f818000u, 0x7f7fffffu};
  for (int i = 0; i < 2000000; ++i)
    cases.push_back(rng());
  for (uint32_t u : cases) {
    float f;
    std::memcpy(&f, &u, 4);
    ASSERT_EQ(sc_to_bf16(f), shardc::rt::f32ToBf16(f)) << std::hex << u;
    ASSERT_EQ(sc_to_f16(f), shardc::rt::f32ToF16(f)) << std::hex << u;
  }
}

// The formulas against textbook definitions written here independently, in double: a typo
// in the table (a wrong constant, a dropped term) fails this.
TEST(FusedPrelude, FormulasMeanWhatTheirOpsMean) {
  const double kPi = 3.14159265358979323846;
  auto near = [](double got, double want) { return std::fabs(got - want) <= 4e-7 * std::fmax(1.0, std::fabs(want)); };
  for (double x = -30.0; x <= 30.0; x += 0.0137) {
    const float xf = float(x);
    const double xd = double(xf);
    const double sig = 1.0 / (1.0 + std::exp(-xd));
    ASSERT_TRUE(near(sc_op_sigmoid(xf), sig)) << x;
    ASSERT_TRUE(near(sc_op_silu(xf), xd * sig)) << x;
    ASSERT_TRUE(near(sc_op_gelu_erf(xf), 0.5 * xd * (1.0 + std::erf(xd / std::sqrt(2.0))))) << x;
    ASSERT_TRUE(near(sc_op_gelu_tanh(xf),
                     0.5 * xd * (1.0 + std::tanh(std::sqrt(2.0 / kPi) * (xd + 0.044715 * xd * xd * xd)))))
        << x;
    ASSERT_EQ(sc_op_neg(xd), -xd);
    ASSERT_TRUE(near(sc_op_exp(xf / 8), std::exp(xd / 8))) << x;
    if (xd > 0) {
      ASSERT_TRUE(near(sc_op_log(xf), std::log(xd))) << x;
      ASSERT_TRUE(near(sc_op_sqrt(xf), std::sqrt(xd))) << x;
      ASSERT_TRUE(near(sc_op_reciprocal(xf), 1.0 / xd)) << x;
      ASSERT_TRUE(near(sc_op_pow(xf, 1.5f), std::pow(xd, 1.5))) << x;
    }
    ASSERT_EQ(sc_op_add(xd, 2.0), xd + 2.0);
    ASSERT_EQ(sc_op_sub(xd, 2.0), xd - 2.0);
    ASSERT_EQ(sc_op_mul(xd, 2.0), xd * 2.0);
    ASSERT_EQ(sc_op_div(xd, 2.0), xd / 2.0);
  }
  // Abs, Floor, Ceil, Round, Sign, Min and Max against definitions by cases, in double; the
  // grid steps through halves so that Round's ties are hit (ONNX rounds them to even).
  auto roundHalfEven = [](double x) {
    const double f = double(int64_t(x)); // the integral part, toward zero
    const double frac = std::fabs(x - f), away = x < 0 ? f - 1.0 : f + 1.0;
    if (frac == 0.5)
      return int64_t(f) % 2 == 0 ? f : away;
    return frac > 0.5 ? away : f;
  };
  for (int k = -200; k <= 200; ++k) {
    for (double d : {0.0, 0.25, 0.49, 0.51}) {
      const double x = k * 0.5 + d;
      const double want_floor = double(int64_t(x)) - ((x < 0 && x != double(int64_t(x))) ? 1.0 : 0.0);
      const double want_ceil = double(int64_t(x)) + ((x > 0 && x != double(int64_t(x))) ? 1.0 : 0.0);
      ASSERT_EQ(sc_op_abs(x), x < 0 ? -x : x) << x;
      ASSERT_EQ(sc_op_abs(float(x)), float(x < 0 ? -x : x)) << x;
      ASSERT_EQ(sc_op_floor(x), want_floor) << x;
      ASSERT_EQ(sc_op_ceil(x), want_ceil) << x;
      ASSERT_EQ(sc_op_round(x), roundHalfEven(x)) << x;
      ASSERT_EQ(sc_op_round(float(x)), float(roundHalfEven(x))) << x;
      ASSERT_EQ(sc_op_sign(x), x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0) << x;
      ASSERT_EQ(sc_op_min(x, 1.25), x <= 1.25 ? x : 1.25) << x;
      ASSERT_EQ(sc_op_max(x, 1.25), x >= 1.25 ? x : 1.25) << x;
      ASSERT_EQ(sc_op_min(1.25, x), x <= 1.25 ? x : 1.25) << x;
      ASSERT_EQ(sc_op_max(1.25, x), x >= 1.25 ? x : 1.25) << x;
    }
  }
  // Signed zeros and NaN: |-0| is +0, Sign(NaN), Min and Max with a NaN on either side are NaN.
  ASSERT_FALSE(std::signbit(sc_op_abs(-0.0)));
  const double nan = std::nan("");
  ASSERT_TRUE(std::isnan(sc_op_sign(nan)));
  ASSERT_TRUE(std::isnan(sc_op_min(nan, 1.0)) && std::isnan(sc_op_min(1.0, nan)));
  ASSERT_TRUE(std::isnan(sc_op_max(nan, 1.0)) && std::isnan(sc_op_max(1.0, nan)));
  ASSERT_TRUE(std::isnan(sc_op_min(float(nan), 1.0f)) && std::isnan(sc_op_max(1.0f, float(nan))));
  // The f32 instantiation is the f32 expression (what a generated kernel computes), bit for bit.
  for (float x = -30.0f; x <= 30.0f; x += 0.0137f)
    ASSERT_EQ(bits(sc_op_sigmoid(x)), bits(1.0f / (1.0f + std::exp(-x)))) << x;
}

} // namespace
