// Cheap argument validation shared by the CPU kernels. Every check returns "" when fine or
// the one-line error the kernel hands back, always prefixed with the op name.
#pragma once

#include "shardc/runtime/Kernel.h"

#include <cstdint>
#include <optional>
#include <string>

namespace shardc::rt::cpu {

std::string expectArity(const char *op, const KernelArgs &args, size_t minIn, size_t maxIn,
                        size_t minOut, size_t maxOut);
// All listed tensors share `dtype`; names are for the message ("a", "b", "y").
std::string expectSameDType(const char *op, std::initializer_list<std::pair<const char *, const TensorView *>> tensors);
std::string expectShape(const char *op, const char *what, const TensorView &t,
                        const std::vector<int64_t> &shape);
// `axis` in [-rank, rank) mapped to [0, rank); nullopt when out of range.
std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank);
std::string badAxis(const char *op, int64_t axis, int64_t rank);
std::string unsupportedDType(const char *op, DType t);
// "f32 2x3x4": the description used in messages.
std::string describe(const TensorView &t);

} // namespace shardc::rt::cpu
