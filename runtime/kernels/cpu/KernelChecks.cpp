// Message formatting for kernel argument errors; kept out of the kernels so that each one
// reads as its math plus a few one-line checks.
#include "KernelChecks.h"

namespace shardc::rt::cpu {

std::string expectArity(const char *op, const KernelArgs &args, size_t minIn, size_t maxIn,
                        size_t minOut, size_t maxOut) {
  auto range = [](size_t lo, size_t hi) {
    return lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi);
  };
  if (args.in.size() < minIn || args.in.size() > maxIn)
    return std::string(op) + ": expects " + range(minIn, maxIn) + " inputs, got " +
           std::to_string(args.in.size());
  if (args.out.size() < minOut || args.out.size() > maxOut)
    return std::string(op) + ": expects " + range(minOut, maxOut) + " outputs, got " +
           std::to_string(args.out.size());
  return "";
}

std::string expectSameDType(const char *op,
                            std::initializer_list<std::pair<const char *, const TensorView *>> tensors) {
  const auto &first = *tensors.begin();
  for (const auto &t : tensors)
    if (t.second->dtype != first.second->dtype)
      return std::string(op) + ": dtypes differ: " + first.first + " is " +
             dtypeName(first.second->dtype) + ", " + t.first + " is " + dtypeName(t.second->dtype);
  return "";
}

std::string expectShape(const char *op, const char *what, const TensorView &t,
                        const std::vector<int64_t> &shape) {
  if (t.shape == shape)
    return "";
  return std::string(op) + ": " + what + " has shape " + shapeString(t.shape) + ", expected " +
         shapeString(shape);
}

std::optional<int64_t> normalizeAxis(int64_t axis, int64_t rank) {
  if (axis < -rank || axis >= rank)
    return std::nullopt;
  return axis < 0 ? axis + rank : axis;
}

std::string badAxis(const char *op, int64_t axis, int64_t rank) {
  return std::string(op) + ": axis " + std::to_string(axis) + " out of range for rank " +
         std::to_string(rank);
}

std::string unsupportedDType(const char *op, DType t) {
  return std::string(op) + ": unsupported dtype " + dtypeName(t);
}

std::string describe(const TensorView &t) {
  return std::string(dtypeName(t.dtype)) + " " + shapeString(t.shape);
}

} // namespace shardc::rt::cpu
