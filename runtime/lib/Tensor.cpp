// Dtype names and sizes, shape printing, and the bf16/f16 <-> f32 conversions that kernels
// and tensor I/O share. Conversions are bit-exact round-to-nearest-even, independent of -ffast-math.
#include "shardc/runtime/Tensor.h"

#include <cstring>

namespace shardc::rt {

namespace {

struct DTypeInfo {
  DType dtype;
  const char *name;
  size_t size;
};

constexpr DTypeInfo kDTypes[] = {
    {DType::F32, "f32", 4}, {DType::F16, "f16", 2}, {DType::BF16, "bf16", 2},
    {DType::F64, "f64", 8}, {DType::I64, "i64", 8}, {DType::I32, "i32", 4},
    {DType::I8, "i8", 1},   {DType::U8, "u8", 1},   {DType::Bool, "bool", 1},
};

uint32_t bitsOf(float v) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  return u;
}

float floatOf(uint32_t u) {
  float v;
  std::memcpy(&v, &u, sizeof v);
  return v;
}

} // namespace

std::optional<DType> parseDType(std::string_view name) {
  for (const DTypeInfo &info : kDTypes)
    if (name == info.name)
      return info.dtype;
  return std::nullopt;
}

const char *dtypeName(DType t) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == t)
      return info.name;
  return "?";
}

size_t dtypeSize(DType t) {
  for (const DTypeInfo &info : kDTypes)
    if (info.dtype == t)
      return info.size;
  return 0;
}

bool isFloat(DType t) {
  return t == DType::F32 || t == DType::F16 || t == DType::BF16 || t == DType::F64;
}

std::string shapeString(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i)
      s += 'x';
    s += std::to_string(shape[i]);
  }
  return s;
}

float bf16ToF32(uint16_t v) { return floatOf(static_cast<uint32_t>(v) << 16); }

uint16_t f32ToBf16(float v) {
  uint32_t u = bitsOf(v);
  if ((u & 0x7fffffffu) > 0x7f800000u) // NaN: keep the sign, force a quiet NaN
    return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff plus the lowest kept bit rounds ties to even; a carry into the exponent
  // is the correct rounding up (and overflows to infinity at the top).
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float f16ToF32(uint16_t v) {
  uint32_t sign = static_cast<uint32_t>(v & 0x8000u) << 16;
  uint32_t exponent = (v >> 10) & 0x1fu;
  uint32_t mantissa = v & 0x3ffu;
  if (exponent == 0x1f) // inf / NaN
    return floatOf(sign | 0x7f800000u | (mantissa << 13));
  if (exponent != 0)
    return floatOf(sign | ((exponent + 112) << 23) | (mantissa << 13));
  if (mantissa == 0)
    return floatOf(sign);
  // Subnormal: mantissa * 2^-24, exactly representable as a normal f32.
  float magnitude = static_cast<float>(mantissa) * floatOf(0x33800000u); // 2^-24
  return floatOf(sign | bitsOf(magnitude));
}

uint16_t f32ToF16(float v) {
  uint32_t u = bitsOf(v);
  uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) // NaN: quiet, keep the top payload bits
    return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  if (a >= 0x477ff000u) // >= 65520 rounds (ties to even) past 65504: infinity
    return static_cast<uint16_t>(sign | 0x7c00u);
  if (a >= 0x38800000u) { // normal half (>= 2^-14): rebias, round on the 13 dropped bits
    uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
    return static_cast<uint16_t>(sign | ((rounded - 0x38000000u) >> 13));
  }
  // Subnormal half: value / 2^-24 = m * 2^(e - 126) with the implicit bit in m.
  uint32_t e = a >> 23;
  uint32_t shift = 126 - e; // >= 14 here
  if (shift > 24)           // below 2^-25 (or at it, a tie to even zero): zero
    return sign;
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  uint32_t q = m >> shift;
  uint32_t rest = m & ((1u << shift) - 1);
  uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (q & 1u)))
    ++q; // may become 0x400, the smallest normal, which is the right encoding
  return static_cast<uint16_t>(sign | q);
}

} // namespace shardc::rt
