// Compile-time views of the runtime dtypes: storage type plus lossless load and converting
// store, and switches that turn a runtime DType (or element width) into a template argument.
#pragma once

#include "shardc/runtime/Tensor.h"

#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <utility>

namespace shardc::rt::cpu {

// Elem<D>::load widens to double (float dtypes) or int64_t (integer dtypes and bool) exactly;
// Elem<D>::from converts back: floats round to nearest even, float -> int truncates toward
// zero and saturates (NaN -> 0), int -> int wraps, anything -> bool is "!= 0".
template <DType D> struct Elem;

template <typename Int> Int intFromDouble(double v) {
  if (std::isnan(v))
    return 0;
  if (v <= static_cast<double>(std::numeric_limits<Int>::min()))
    return std::numeric_limits<Int>::min();
  // 2^63 is the first double above INT64_MAX; compare against the bound as a double.
  if (v >= static_cast<double>(std::numeric_limits<Int>::max()))
    return std::numeric_limits<Int>::max();
  return static_cast<Int>(v);
}

template <typename Int> struct IntElem {
  using Storage = Int;
  static int64_t load(Int v) { return static_cast<int64_t>(v); }
  static Int from(double v) { return intFromDouble<Int>(v); }
  static Int from(int64_t v) { return static_cast<Int>(static_cast<uint64_t>(v)); }
};

template <> struct Elem<DType::F32> {
  using Storage = float;
  static double load(float v) { return v; }
  static float from(double v) { return static_cast<float>(v); }
  static float from(int64_t v) { return static_cast<float>(v); }
};
template <> struct Elem<DType::F64> {
  using Storage = double;
  static double load(double v) { return v; }
  static double from(double v) { return v; }
  static double from(int64_t v) { return static_cast<double>(v); }
};
template <> struct Elem<DType::F16> {
  using Storage = uint16_t;
  static double load(uint16_t v) { return f16ToF32(v); }
  static uint16_t from(double v) { return f32ToF16(static_cast<float>(v)); }
  static uint16_t from(int64_t v) { return f32ToF16(static_cast<float>(v)); }
};
template <> struct Elem<DType::BF16> {
  using Storage = uint16_t;
  static double load(uint16_t v) { return bf16ToF32(v); }
  static uint16_t from(double v) { return f32ToBf16(static_cast<float>(v)); }
  static uint16_t from(int64_t v) { return f32ToBf16(static_cast<float>(v)); }
};
template <> struct Elem<DType::I64> : IntElem<int64_t> {};
template <> struct Elem<DType::I32> : IntElem<int32_t> {};
template <> struct Elem<DType::I8> : IntElem<int8_t> {};
template <> struct Elem<DType::U8> : IntElem<uint8_t> {};
template <> struct Elem<DType::Bool> {
  using Storage = uint8_t;
  static int64_t load(uint8_t v) { return v != 0; }
  static uint8_t from(double v) { return v != 0.0; }
  static uint8_t from(int64_t v) { return v != 0; }
};

template <DType D> using DTypeConstant = std::integral_constant<DType, D>;

// fn(DTypeConstant<D>{}) for the runtime dtype t.
template <typename Fn> decltype(auto) dispatchDType(DType t, Fn &&fn) {
  switch (t) {
  case DType::F32: return fn(DTypeConstant<DType::F32>{});
  case DType::F16: return fn(DTypeConstant<DType::F16>{});
  case DType::BF16: return fn(DTypeConstant<DType::BF16>{});
  case DType::F64: return fn(DTypeConstant<DType::F64>{});
  case DType::I64: return fn(DTypeConstant<DType::I64>{});
  case DType::I32: return fn(DTypeConstant<DType::I32>{});
  case DType::I8: return fn(DTypeConstant<DType::I8>{});
  case DType::U8: return fn(DTypeConstant<DType::U8>{});
  case DType::Bool: break;
  }
  return fn(DTypeConstant<DType::Bool>{});
}

} // namespace shardc::rt::cpu
