// The fused-kernel prelude (FusedPrelude.h) compiled as host C++, as the CPU backend builds
// generated kernels: its conversions and activations must give the bits the runtime's
// library kernels give (runtime/lib/Tensor.cpp, ActivationMath.h), or a fused chain would
// not match the same ops run one by one.
#include "shardc/kernels/ActivationMath.h"
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

TEST(FusedPrelude, ActivationsMatchLibraryKernels) {
  for (float x = -30.0f; x <= 30.0f; x += 0.0137f) {
    ASSERT_EQ(bits(sc_sigmoid(x)), bits(shardc::kernels::sigmoid(x))) << x;
    ASSERT_EQ(bits(sc_silu(x)), bits(shardc::kernels::silu(x))) << x;
    ASSERT_EQ(bits(sc_gelu_erf(x)), bits(shardc::kernels::geluErf(x))) << x;
    ASSERT_EQ(bits(sc_gelu_tanh(x)), bits(shardc::kernels::geluTanh(x))) << x;
  }
}

} // namespace
