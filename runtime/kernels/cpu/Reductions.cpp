// Reductions along axes: numerically stable softmax / log_softmax over one axis, and
// reduce_sum / reduce_mean / reduce_max over a set of axes (accumulating in double or int64).
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "StridedLoops.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

namespace shardc::rt::cpu {

namespace {

std::string softmaxLike(const char *name, const KernelArgs &args, bool logarithm) {
  if (auto e = expectArity(name, args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (x.dtype != DType::F32 || y.dtype != DType::F32)
    return unsupportedDType(name, x.dtype != DType::F32 ? x.dtype : y.dtype);
  if (auto e = expectShape(name, "y", y, x.shape); !e.empty())
    return e;
  const int64_t axisAttr = args.attrs ? args.attrs->getInt("axis", -1) : -1;
  auto axis = normalizeAxis(axisAttr, x.rank());
  if (!axis)
    return badAxis(name, axisAttr, x.rank());
  const int64_t outer = productOf(x.shape, 0, *axis);
  const int64_t n = x.shape[*axis];
  const int64_t inner = productOf(x.shape, *axis + 1, x.shape.size());
  const float *px = x.as<float>();
  float *py = y.as<float>();
  for (int64_t o = 0; o < outer; ++o) {
    for (int64_t i = 0; i < inner; ++i) {
      const float *in = px + o * n * inner + i;
      float *out = py + o * n * inner + i;
      float maxValue = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < n; ++j)
        maxValue = std::max(maxValue, in[j * inner]);
      double sum = 0.0;
      for (int64_t j = 0; j < n; ++j) {
        float e = std::exp(in[j * inner] - maxValue);
        if (!logarithm)
          out[j * inner] = e;
        sum += e;
      }
      if (logarithm) {
        // (x - max) - log(sum): folding max into the log first loses the low bits of
        // x - max when |x| is large (ONNX's test_logsoftmax_large_number).
        const float logSum = static_cast<float>(std::log(sum));
        for (int64_t j = 0; j < n; ++j)
          out[j * inner] = (in[j * inner] - maxValue) - logSum;
      } else {
        const float inv = static_cast<float>(1.0 / sum);
        for (int64_t j = 0; j < n; ++j)
          out[j * inner] *= inv;
      }
    }
  }
  return "";
}

enum class Reduction { Sum, Mean, Max };

template <typename T>
void reduceLoop(const TensorView &x, const TensorView &y, const std::vector<int64_t> &accStrides,
                Reduction kind) {
  // Accumulate in double for float dtypes (sums of many f32 values) and int64 for integers.
  using Acc = std::conditional_t<std::is_floating_point_v<T>, double, int64_t>;
  const Acc init = kind != Reduction::Max ? Acc(0)
                   : std::is_floating_point_v<T> ? Acc(-std::numeric_limits<double>::infinity())
                                                 : std::numeric_limits<int64_t>::lowest();
  std::vector<Acc> acc(static_cast<size_t>(y.numel()), init);
  auto combine = [kind](Acc a, Acc v) {
    if (kind != Reduction::Max) {
      if constexpr (std::is_integral_v<Acc>)
        return static_cast<Acc>(static_cast<uint64_t>(a) + static_cast<uint64_t>(v)); // wraps
      else
        return a + v;
    }
    if constexpr (std::is_floating_point_v<Acc>)
      if (std::isnan(v))
        return v; // NaN wins, as in numpy and onnxruntime
    return v > a ? v : a;
  };
  const T *px = x.as<T>();
  forEachRow<2>(x.shape, {contiguousStrides(x.shape), accStrides}, {0, 0},
                [&](const std::array<int64_t, 2> &off, int64_t n, const std::array<int64_t, 2> &st) {
                  const T *in = px + off[0];
                  if (st[1] == 0) {
                    Acc a = acc[off[1]];
                    for (int64_t i = 0; i < n; ++i)
                      a = combine(a, static_cast<Acc>(in[i]));
                    acc[off[1]] = a;
                  } else {
                    for (int64_t i = 0; i < n; ++i)
                      acc[off[1] + i * st[1]] = combine(acc[off[1] + i * st[1]], static_cast<Acc>(in[i]));
                  }
                });
  const int64_t count = y.numel() > 0 ? x.numel() / y.numel() : 0;
  T *py = y.as<T>();
  for (size_t i = 0; i < acc.size(); ++i) {
    Acc v = acc[i];
    if (kind == Reduction::Mean) {
      if constexpr (std::is_floating_point_v<Acc>)
        v = v / static_cast<double>(count); // 0/0 = NaN for an empty reduction
      else
        v = count > 0 ? v / count : 0;
    }
    py[i] = static_cast<T>(v);
  }
}

std::string reduceKernel(const char *name, const KernelArgs &args, Reduction kind) {
  if (auto e = expectArity(name, args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType(name, {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  std::vector<int64_t> axes = args.attrs ? args.attrs->getInts("axes") : std::vector<int64_t>{};
  const bool keepdims = args.attrs ? args.attrs->getBool("keepdims", true) : true;
  std::vector<bool> reduced(x.shape.size(), axes.empty()); // no axes: reduce everything
  for (int64_t a : axes) {
    auto axis = normalizeAxis(a, x.rank());
    if (!axis)
      return badAxis(name, a, x.rank());
    if (reduced[*axis])
      return std::string(name) + ": axis " + std::to_string(a) + " listed twice";
    reduced[*axis] = true;
  }
  std::vector<int64_t> kept, expected;
  for (size_t d = 0; d < x.shape.size(); ++d) {
    kept.push_back(reduced[d] ? 1 : x.shape[d]);
    if (!reduced[d] || keepdims)
      expected.push_back(kept.back());
  }
  if (auto e = expectShape(name, "y", y, expected); !e.empty())
    return e;
  std::vector<int64_t> accStrides = contiguousStrides(kept);
  for (size_t d = 0; d < kept.size(); ++d)
    if (reduced[d])
      accStrides[d] = 0;
  switch (x.dtype) {
  case DType::F32: reduceLoop<float>(x, y, accStrides, kind); return "";
  case DType::F64: reduceLoop<double>(x, y, accStrides, kind); return "";
  case DType::I64: reduceLoop<int64_t>(x, y, accStrides, kind); return "";
  case DType::I32: reduceLoop<int32_t>(x, y, accStrides, kind); return "";
  default: return unsupportedDType(name, x.dtype);
  }
}

} // namespace

std::string softmaxKernel(const KernelArgs &args) { return softmaxLike("softmax", args, false); }
std::string logSoftmaxKernel(const KernelArgs &args) {
  return softmaxLike("log_softmax", args, true);
}
std::string reduceSumKernel(const KernelArgs &args) {
  return reduceKernel("reduce_sum", args, Reduction::Sum);
}
std::string reduceMeanKernel(const KernelArgs &args) {
  return reduceKernel("reduce_mean", args, Reduction::Mean);
}
std::string reduceMaxKernel(const KernelArgs &args) {
  return reduceKernel("reduce_max", args, Reduction::Max);
}

} // namespace shardc::rt::cpu
