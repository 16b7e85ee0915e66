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
  // The f32 instantiation is the f32 expression (what a generated kernel computes), bit for bit.
  for (float x = -30.0f; x <= 30.0f; x += 0.0137f)
    ASSERT_EQ(bits(sc_op_sigmoid(x)), bits(1.0f / (1.0f + std::exp(-x)))) << x;
}

} // namespace
