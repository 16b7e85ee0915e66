// ONNX scans and index ops on the CPU: cumsum (prefix sums along an axis), arg_max and arg_min
// (the index of the largest or smallest element along an axis), scatter_nd (slices of data
// replaced by, or combined with, updates) and scatter_elements (elements along an axis, run by
// the SIMT line function of shardc/kernels/ScanKernels.h). Every dtype: floats are read as double (16-bit floats decoded) and
// written back in their type, integers as int64.
#include "CpuKernels.h"
#include "DTypeDispatch.h"
#include "KernelChecks.h"

#include "shardc/kernels/ScanKernels.h"

#include <cmath>
#include <cstring>
#include <type_traits>

namespace shardc::rt::cpu {

namespace {

// The element counts before, along and after `axis`.
struct AxisSplit {
  int64_t outer = 1, len = 1, inner = 1;
};
AxisSplit splitAt(const std::vector<int64_t> &shape, int64_t axis) {
  AxisSplit s;
  for (int64_t d = 0; d < int64_t(shape.size()); ++d)
    (d < axis ? s.outer : d == axis ? s.len : s.inner) *= shape[size_t(d)];
  return s;
}

} // namespace

std::string cumsumKernel(const KernelArgs &args) {
  if (auto e = expectArity("cumsum", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("cumsum", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (auto e = expectShape("cumsum", "y", y, x.shape); !e.empty())
    return e;
  const int64_t rawAxis = args.attrs ? args.attrs->getInt("axis", 0) : 0;
  auto axis = normalizeAxis(rawAxis, x.rank());
  if (!axis)
    return badAxis("cumsum", rawAxis, x.rank());
  if (x.dtype == DType::Bool)
    return unsupportedDType("cumsum", x.dtype);
  const bool exclusive = args.attrs && args.attrs->getBool("exclusive", false);
  const bool reverse = args.attrs && args.attrs->getBool("reverse", false);
  const AxisSplit s = splitAt(x.shape, *axis);
  dispatchDType(x.dtype, [&](auto d) {
    using E = Elem<decltype(d)::value>;
    using S = typename E::Storage;
    using Acc = decltype(E::load(S{}));
    const S *px = x.as<S>();
    S *py = y.as<S>();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t i = 0; i < s.inner; ++i) {
        Acc acc = 0;
        for (int64_t step = 0; step < s.len; ++step) {
          const int64_t k = reverse ? s.len - 1 - step : step;
          const int64_t at = (o * s.len + k) * s.inner + i;
          const Acc v = E::load(px[at]);
          if constexpr (std::is_integral_v<Acc>) { // wrap around as the integer type does
            if (exclusive) {
              py[at] = E::from(acc);
              acc = Acc(uint64_t(acc) + uint64_t(v));
            } else {
              acc = Acc(uint64_t(acc) + uint64_t(v));
              py[at] = E::from(acc);
            }
          } else {
            if (exclusive) {
              py[at] = E::from(acc);
              acc += v;
            } else {
              acc += v;
              py[at] = E::from(acc);
            }
          }
        }
      }
  });
  return "";
}

namespace {
// arg_max, or arg_min where `minimum`: the first NaN wins either way (numpy's rule).
std::string argExtremum(const char *name, const KernelArgs &args, bool minimum) {
  if (auto e = expectArity(name, args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (y.dtype != DType::I64)
    return std::string(name) + ": output must be i64, not " + std::string(dtypeName(y.dtype));
  const int64_t rawAxis = args.attrs ? args.attrs->getInt("axis", 0) : 0;
  auto axis = normalizeAxis(rawAxis, x.rank());
  if (!axis)
    return badAxis(name, rawAxis, x.rank());
  const AxisSplit s = splitAt(x.shape, *axis);
  if (y.numel() != s.outer * s.inner)
    return std::string(name) + ": output has " + std::to_string(y.numel()) + " elements, not " +
           std::to_string(s.outer * s.inner);
  if (s.len == 0)
    return std::string(name) + ": the axis is empty";
  const bool last = args.attrs && args.attrs->getBool("select_last_index", false);
  int64_t *py = y.as<int64_t>();
  dispatchDType(x.dtype, [&](auto d) {
    using E = Elem<decltype(d)::value>;
    using S = typename E::Storage;
    const S *px = x.as<S>();
    for (int64_t o = 0; o < s.outer; ++o)
      for (int64_t i = 0; i < s.inner; ++i) {
        auto best = E::load(px[o * s.len * s.inner + i]);
        int64_t at = 0;
        for (int64_t k = 1; k < s.len; ++k) {
          const auto v = E::load(px[(o * s.len + k) * s.inner + i]);
          if constexpr (std::is_floating_point_v<decltype(v)>) {
            if (std::isnan(best))
              break; // the first NaN wins
            if (std::isnan(v) || (minimum ? v < best : v > best) || (last && v == best)) {
              best = v;
              at = k;
            }
          } else if ((minimum ? v < best : v > best) || (last && v == best)) {
            best = v;
            at = k;
          }
        }
        py[o * s.inner + i] = at;
      }
  });
  return "";
}
} // namespace

std::string argMaxKernel(const KernelArgs &args) { return argExtremum("arg_max", args, false); }
std::string argMinKernel(const KernelArgs &args) { return argExtremum("arg_min", args, true); }

std::string scatterNdKernel(const KernelArgs &args) {
  if (auto e = expectArity("scatter_nd", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &data = args.in[0], &idx = args.in[1], &upd = args.in[2], &y = args.out[0];
  if (auto e = expectSameDType("scatter_nd", {{"data", &data}, {"updates", &upd}, {"y", &y}}); !e.empty())
    return e;
  if (auto e = expectShape("scatter_nd", "y", y, data.shape); !e.empty())
    return e;
  if (idx.dtype != DType::I64 || idx.rank() < 1 || idx.shape.back() > data.rank())
    return "scatter_nd: indices must be i64 [..., K] with K <= rank(data), got " + describe(idx);
  const int64_t K = idx.shape.back(), tuples = K ? idx.numel() / K : 0;
  int64_t slice = 1;
  for (int64_t d = K; d < data.rank(); ++d)
    slice *= data.shape[size_t(d)];
  if (upd.numel() != tuples * slice)
    return "scatter_nd: updates have " + std::to_string(upd.numel()) + " elements, not " +
           std::to_string(tuples * slice);
  const std::string reduction = args.attrs ? args.attrs->getString("reduction", "none") : "none";
  if (reduction != "none" && reduction != "add" && reduction != "mul" && reduction != "max" && reduction != "min")
    return "scatter_nd: reduction '" + reduction + "' is not none, add, mul, max or min";
  if (data.data != y.data)
    std::memmove(y.data, data.data, y.bytes());
  const int64_t *pi = idx.as<int64_t>();
  std::string error;
  dispatchDType(data.dtype, [&](auto d) {
    using E = Elem<decltype(d)::value>;
    using S = typename E::Storage;
    const S *pu = upd.as<S>();
    S *py = y.as<S>();
    for (int64_t t = 0; t < tuples && error.empty(); ++t) {
      int64_t offset = 0;
      for (int64_t k = 0; k < K; ++k) {
        const int64_t dim = data.shape[size_t(k)];
        int64_t i = pi[t * K + k];
        if (i < 0)
          i += dim;
        if (i < 0 || i >= dim) {
          error = "scatter_nd: index " + std::to_string(pi[t * K + k]) + " out of range for dim " +
                  std::to_string(k) + " of size " + std::to_string(dim);
          return;
        }
        offset = offset * dim + i;
      }
      offset *= slice;
      for (int64_t j = 0; j < slice; ++j) {
        S &out = py[offset + j];
        const auto u = E::load(pu[t * slice + j]);
        const auto cur = E::load(out);
        if (reduction == "none")
          out = pu[t * slice + j];
        else if (reduction == "add")
          out = E::from(std::is_integral_v<decltype(u)> ? decltype(u)(uint64_t(cur) + uint64_t(u)) : cur + u);
        else if (reduction == "mul")
          out = E::from(std::is_integral_v<decltype(u)> ? decltype(u)(uint64_t(cur) * uint64_t(u)) : cur * u);
        else if (reduction == "max")
          out = E::from(u > cur ? u : cur);
        else
          out = E::from(u < cur ? u : cur);
      }
    }
  });
  return error;
}

// scatter_elements: the line function of ScanKernels.h (the CUDA kernel's source) in a loop,
// after the indices are checked (the CUDA kernel skips an index out of range).
std::string scatterElementsKernel(const KernelArgs &args) {
  if (auto e = expectArity("scatter_elements", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &data = args.in[0], &idx = args.in[1], &upd = args.in[2], &y = args.out[0];
  if (auto e = expectSameDType("scatter_elements", {{"data", &data}, {"updates", &upd}, {"y", &y}}); !e.empty())
    return e;
  if (auto e = expectShape("scatter_elements", "y", y, data.shape); !e.empty())
    return e;
  if (idx.dtype != DType::I64)
    return "scatter_elements: indices must be i64, got " + describe(idx);
  kernels::ScatterElementsParams p;
  if (std::string err = kernels::planScatterElements(data.shape, idx.shape, upd.shape,
                                                     args.attrs ? args.attrs->getInt("axis", 0) : 0,
                                                     args.attrs ? args.attrs->getString("reduction", "none") : "none", p);
      !err.empty())
    return "scatter_elements: " + err;
  const int64_t *pi = idx.as<int64_t>();
  for (int64_t i = 0, n = idx.numel(); i < n; ++i)
    if (pi[i] < -p.axisLen || pi[i] >= p.axisLen)
      return "scatter_elements: index " + std::to_string(pi[i]) + " out of range for an axis of " +
             std::to_string(p.axisLen);
  if (data.data != y.data)
    std::memmove(y.data, data.data, y.bytes());
  p.indices = pi;
  p.updates = upd.data;
  p.y = y.data;
  p.type = kernels::AnyType(int(data.dtype));
  for (int64_t line = 0; line < p.lines; ++line)
    kernels::scatterElementsLine(p, line);
  return "";
}

} // namespace shardc::rt::cpu
