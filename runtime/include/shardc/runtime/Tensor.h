// Dense tensors as the runtime sees them: a pointer into the arena, a weight buffer or the
// artifact blob, plus dtype and shape. No ownership; the executor owns all storage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

enum class DType : uint8_t { F32, F16, BF16, F64, I64, I32, I8, U8, Bool };

std::optional<DType> parseDType(std::string_view name);
const char *dtypeName(DType t);
size_t dtypeSize(DType t);
bool isFloat(DType t);

struct TensorView {
  void *data = nullptr;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t bytes() const { return static_cast<size_t>(numel()) * dtypeSize(dtype); }
  int64_t rank() const { return static_cast<int64_t>(shape.size()); }
  template <typename T> T *as() const { return static_cast<T *>(data); }
};

std::string shapeString(const std::vector<int64_t> &shape); // "2x64x256", "scalar" for []

// bf16/f16 <-> f32 conversions (round to nearest even), shared by kernels and I/O.
float bf16ToF32(uint16_t v);
uint16_t f32ToBf16(float v);
float f16ToF32(uint16_t v);
uint16_t f32ToF16(float v);

} // namespace shardc::rt
