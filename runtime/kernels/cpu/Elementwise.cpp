// Elementwise kernels: broadcasting binary arithmetic, comparisons and select, unary math,
// cast and copy. Arithmetic runs natively in f32/f64/i32/i64; 16-bit floats go through f32.
#include "shardc/kernels/FusedPrelude.h"
#include "CpuKernels.h"
#include "DTypeDispatch.h"
#include "Float32Compute.h"
#include "KernelChecks.h"
#include "StridedLoops.h"

#include <cmath>
#include <cstring>
#include <type_traits>
#include <vector>

namespace shardc::rt::cpu {

namespace {

// One functor per row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h): the formula the generated
// kernels compute, applied here to f32 and f64 (16-bit floats go through f32), and to
// integers as the row's `ints` column says: `wrap` computes in the unsigned type of the same
// width (two's complement wrap-around instead of undefined overflow), `trunc` divides in the
// signed type (C++ and onnxruntime truncate toward zero; zero divisors are rejected before
// the loop, and MIN / -1 wraps instead of trapping), `mod` the remainder in the type (zero
// divisors rejected, x % -1 is 0), `exact` computes in the type itself (min,
// max: nothing can overflow). Integers are i64, i32, i8 and u8.
enum class Ints { none, wrap, trunc, mod, exact };
#define SC_FORMULA_ARGS_1 a
#define SC_FORMULA_ARGS_2 a, b
#define SC_FORMULA_FUNCTOR(name, arity, ints, ...)                                             \
  struct Formula_##name {                                                                      \
    static constexpr const char *kName = #name;                                                \
    static constexpr int kArity = arity;                                                       \
    static constexpr Ints kInts = Ints::ints;                                                  \
    template <typename T> static T apply(SC_FORMULA_PARAMS_##arity) {                          \
      return sc_op_##name(SC_FORMULA_ARGS_##arity);                                            \
    }                                                                                          \
  };
SC_ELEMENTWISE_FORMULAS(SC_FORMULA_FUNCTOR)
#undef SC_FORMULA_FUNCTOR

template <typename F> struct Apply {
  static constexpr bool kCheckZero = F::kInts == Ints::trunc || F::kInts == Ints::mod;
  template <typename T> T operator()(T a) const {
    if constexpr (std::is_integral_v<T> && F::kInts == Ints::exact)
      return F::apply(a);
    else if constexpr (std::is_integral_v<T>)
      return T(F::apply(std::make_unsigned_t<T>(a)));
    else
      return F::apply(a);
  }
  template <typename T> T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) {
      using U = std::make_unsigned_t<T>;
      if constexpr (F::kInts == Ints::exact) {
        return F::apply(a, b);
      } else if constexpr (F::kInts == Ints::mod) {
        if (std::is_signed_v<T> && b == T(-1))
          return T(0); // MIN % -1 would trap
        return F::apply(a, b);
      } else if constexpr (F::kInts == Ints::trunc) {
        if (std::is_signed_v<T> && b == T(-1))
          return T(U(0) - U(a));
        return F::apply(a, b);
      } else {
        return T(F::apply(U(a), U(b)));
      }
    } else {
      return F::apply(a, b);
    }
  }
};

struct SiluMul {
  static constexpr bool kCheckZero = false;
  template <typename T> T operator()(T gate, T up) const { return sc_op_mul(sc_op_silu(gate), up); }
};

template <typename T, typename Op>
void binaryLoop(const TensorView &a, const TensorView &b, const TensorView &y, Op op) {
  const T *pa = a.as<T>();
  const T *pb = b.as<T>();
  T *py = y.as<T>();
  forEachRow<3>(y.shape, {contiguousStrides(y.shape), broadcastStrides(a.shape, y.shape),
                          broadcastStrides(b.shape, y.shape)},
                {0, 0, 0},
                [&](const std::array<int64_t, 3> &off, int64_t n, const std::array<int64_t, 3> &st) {
                  T *out = py + off[0];
                  const T *x0 = pa + off[1];
                  const T *x1 = pb + off[2];
                  // The common layouts get loops the compiler can vectorise.
                  if (st[1] == 1 && st[2] == 1) {
                    for (int64_t i = 0; i < n; ++i)
                      out[i] = op(x0[i], x1[i]);
                  } else if (st[1] == 1 && st[2] == 0) {
                    const T s = *x1;
                    for (int64_t i = 0; i < n; ++i)
                      out[i] = op(x0[i], s);
                  } else {
                    for (int64_t i = 0; i < n; ++i)
                      out[i] = op(x0[i * st[1]], x1[i * st[2]]);
                  }
                });
}

std::string checkBroadcast(const char *op, const TensorView &a, const TensorView &b,
                           const TensorView &y) {
  auto shape = broadcastShapes(a.shape, b.shape);
  if (!shape)
    return std::string(op) + ": shapes do not broadcast: " + shapeString(a.shape) + " and " +
           shapeString(b.shape);
  if (*shape != y.shape)
    return std::string(op) + ": output has shape " + shapeString(y.shape) + ", broadcast gives " +
           shapeString(*shape);
  return "";
}

template <typename T> bool hasZero(const TensorView &t) {
  const T *p = t.as<T>();
  for (int64_t i = 0, n = t.numel(); i < n; ++i)
    if (p[i] == 0)
      return true;
  return false;
}

template <bool AllowInt, typename T, typename Op>
std::string intBinary(const char *name, const TensorView &a, const TensorView &b, const TensorView &y, Op op) {
  if constexpr (AllowInt) {
    if constexpr (Op::kCheckZero) {
      if (hasZero<T>(b))
        return std::string(name) + ": integer division by zero";
    }
    binaryLoop<T>(a, b, y, op);
    return "";
  } else {
    return unsupportedDType(name, y.dtype);
  }
}

template <bool AllowInt, typename Op>
std::string binaryKernel(const char *name, const KernelArgs &args, Op op) {
  if (auto e = expectArity(name, args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &a = args.in[0], &b = args.in[1], &y = args.out[0];
  if (auto e = expectSameDType(name, {{"a", &a}, {"b", &b}, {"y", &y}}); !e.empty())
    return e;
  if (auto e = checkBroadcast(name, a, b, y); !e.empty())
    return e;
  switch (y.dtype) {
  case DType::F32: binaryLoop<float>(a, b, y, op); return "";
  case DType::F64: binaryLoop<double>(a, b, y, op); return "";
  case DType::I64: return intBinary<AllowInt, int64_t>(name, a, b, y, op);
  case DType::I32: return intBinary<AllowInt, int32_t>(name, a, b, y, op);
  case DType::I8: return intBinary<AllowInt, int8_t>(name, a, b, y, op);
  case DType::U8: return intBinary<AllowInt, uint8_t>(name, a, b, y, op);
  default: break;
  }
  return unsupportedDType(name, y.dtype);
}

template <typename T, typename Fn> void unaryLoop(const TensorView &x, const TensorView &y, Fn fn) {
  const T *px = x.as<T>();
  T *py = y.as<T>();
  for (int64_t i = 0, n = y.numel(); i < n; ++i)
    py[i] = fn(px[i]);
}

// Fn is a generic lambda applied per element in the tensor's own precision (f32 or f64; and
// i32/i64 when AllowInt).
template <bool AllowInt = false, typename Fn>
std::string unaryKernel(const char *name, const KernelArgs &args, Fn fn) {
  if (auto e = expectArity(name, args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType(name, {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (auto e = expectShape(name, "y", y, x.shape); !e.empty())
    return e;
  switch (y.dtype) {
  case DType::F32: unaryLoop<float>(x, y, fn); return "";
  case DType::F64: unaryLoop<double>(x, y, fn); return "";
  case DType::I64:
    if constexpr (AllowInt) {
      unaryLoop<int64_t>(x, y, fn);
      return "";
    }
    break;
  case DType::I32:
    if constexpr (AllowInt) {
      unaryLoop<int32_t>(x, y, fn);
      return "";
    }
    break;
  case DType::I8:
    if constexpr (AllowInt) {
      unaryLoop<int8_t>(x, y, fn);
      return "";
    }
    break;
  case DType::U8:
    if constexpr (AllowInt) {
      unaryLoop<uint8_t>(x, y, fn);
      return "";
    }
    break;
  default: break;
  }
  return unsupportedDType(name, y.dtype);
}

template <typename F> std::string formulaKernel(const KernelArgs &args) {
  if constexpr (F::kArity == 2)
    return binaryKernel<F::kInts != Ints::none>(F::kName, args, Apply<F>{});
  else
    return unaryKernel<F::kInts != Ints::none>(F::kName, args, Apply<F>{});
}

struct FormulaKernel {
  const char *name;
  KernelFn fn;
};
#define SC_FORMULA_ENTRY(name, ...) {#name, guarded<viaFloat32KeepF64<formulaKernel<Formula_##name>>>},
constexpr FormulaKernel kFormulaKernels[] = {SC_ELEMENTWISE_FORMULAS(SC_FORMULA_ENTRY)};
#undef SC_FORMULA_ENTRY

} // namespace

KernelFn lookupFormulaKernel(std::string_view name) {
  for (const FormulaKernel &k : kFormulaKernels)
    if (name == k.name)
      return k.fn;
  return nullptr;
}

std::string formulaStepKernel(const KernelArgs &args) {
  std::string name = args.attrs ? args.attrs->getString("formula", "") : "";
  KernelFn fn = lookupFormulaKernel(name);
  if (!fn)
    return "formula: '" + name + "' is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)";
  return fn(args);
}

std::vector<std::string> formulaKernelNames() {
  std::vector<std::string> names;
  for (const FormulaKernel &k : kFormulaKernels)
    names.emplace_back(k.name);
  return names;
}

std::string siluMulKernel(const KernelArgs &args) {
  return binaryKernel<false>("silu_mul", args, SiluMul{});
}

std::string powKernel(const KernelArgs &args) {
  // ONNX Pow lets the exponent have its own (numeric) dtype; bring it to the base's first.
  if (auto e = expectArity("pow", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &a = args.in[0], &b = args.in[1];
  if ((a.dtype == DType::I64 || a.dtype == DType::I32) && args.out[0].dtype == a.dtype) {
    // An integer base (ONNX allows it): computed in f64 and converted back toward zero, as
    // onnxruntime does, with the exponent of any numeric dtype.
    std::vector<double> a64(static_cast<size_t>(a.numel()) + 1), b64(static_cast<size_t>(b.numel()) + 1),
        y64(static_cast<size_t>(args.out[0].numel()) + 1);
    TensorView A{a64.data(), DType::F64, a.shape}, B{b64.data(), DType::F64, b.shape},
        Y{y64.data(), DType::F64, args.out[0].shape};
    castElements(a, A);
    castElements(b, B);
    KernelArgs wide{{A, B}, {Y}, args.attrs};
    if (auto e = formulaKernel<Formula_pow>(wide); !e.empty())
      return e;
    castElements(Y, args.out[0]);
    return "";
  }
  if (b.dtype == a.dtype || !isFloat(a.dtype))
    return formulaKernel<Formula_pow>(args);
  std::vector<uint8_t> converted(static_cast<size_t>(b.numel()) * dtypeSize(a.dtype) + 1);
  TensorView exponent{converted.data(), a.dtype, b.shape};
  castElements(b, exponent);
  KernelArgs sameDType{{a, exponent}, args.out, args.attrs};
  return formulaKernel<Formula_pow>(sameDType);
}

namespace {
// y = a <cmp> b over decoded values (+0 == -0, NaN compares false), operands broadcast.
template <typename Cmp> std::string compareKernel(const char *name, const KernelArgs &args, Cmp cmp) {
  if (auto e = expectArity(name, args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &a = args.in[0], &b = args.in[1], &y = args.out[0];
  if (auto e = expectSameDType(name, {{"a", &a}, {"b", &b}}); !e.empty())
    return e;
  if (y.dtype != DType::Bool)
    return std::string(name) + ": output must be bool, not " + std::string(dtypeName(y.dtype));
  if (auto e = checkBroadcast(name, a, b, y); !e.empty())
    return e;
  dispatchDType(a.dtype, [&](auto d) {
    using E = Elem<decltype(d)::value>;
    using S = typename E::Storage;
    const S *pa = a.as<S>();
    const S *pb = b.as<S>();
    uint8_t *py = y.as<uint8_t>();
    forEachRow<3>(y.shape, {contiguousStrides(y.shape), broadcastStrides(a.shape, y.shape),
                            broadcastStrides(b.shape, y.shape)},
                  {0, 0, 0},
                  [&](const std::array<int64_t, 3> &off, int64_t n, const std::array<int64_t, 3> &st) {
                    for (int64_t i = 0; i < n; ++i)
                      py[off[0] + i] = cmp(E::load(pa[off[1] + i * st[1]]), E::load(pb[off[2] + i * st[2]]));
                  });
  });
  return "";
}
} // namespace

std::string equalKernel(const KernelArgs &args) {
  return compareKernel("equal", args, [](auto x, auto z) { return x == z; });
}
std::string lessKernel(const KernelArgs &args) {
  return compareKernel("less", args, [](auto x, auto z) { return x < z; });
}
std::string lessEqualKernel(const KernelArgs &args) {
  return compareKernel("less_equal", args, [](auto x, auto z) { return x <= z; });
}

std::string whereKernel(const KernelArgs &args) {
  if (auto e = expectArity("where", args, 3, 3, 1, 1); !e.empty())
    return e;
  const TensorView &c = args.in[0], &a = args.in[1], &b = args.in[2], &y = args.out[0];
  if (c.dtype != DType::Bool)
    return "where: condition must be bool, not " + std::string(dtypeName(c.dtype));
  if (auto e = expectSameDType("where", {{"a", &a}, {"b", &b}, {"y", &y}}); !e.empty())
    return e;
  auto ab = broadcastShapes(a.shape, b.shape);
  auto all = ab ? broadcastShapes(c.shape, *ab) : std::nullopt;
  if (!all)
    return "where: shapes do not broadcast: " + shapeString(c.shape) + ", " + shapeString(a.shape) +
           ", " + shapeString(b.shape);
  if (*all != y.shape)
    return "where: output has shape " + shapeString(y.shape) + ", broadcast gives " +
           shapeString(*all);
  auto select = [&](auto word) {
    using W = decltype(word);
    const uint8_t *pc = c.as<uint8_t>();
    const W *pa = a.as<W>();
    const W *pb = b.as<W>();
    W *py = y.as<W>();
    forEachRow<4>(y.shape, {contiguousStrides(y.shape), broadcastStrides(c.shape, y.shape),
                            broadcastStrides(a.shape, y.shape), broadcastStrides(b.shape, y.shape)},
                  {0, 0, 0, 0},
                  [&](const std::array<int64_t, 4> &off, int64_t n, const std::array<int64_t, 4> &st) {
                    for (int64_t i = 0; i < n; ++i)
                      py[off[0] + i] = pc[off[1] + i * st[1]] ? pa[off[2] + i * st[2]]
                                                              : pb[off[3] + i * st[3]];
                  });
  };
  switch (dtypeSize(y.dtype)) {
  case 1: select(uint8_t{}); break;
  case 2: select(uint16_t{}); break;
  case 4: select(uint32_t{}); break;
  default: select(uint64_t{}); break;
  }
  return "";
}

std::string isnanKernel(const KernelArgs &args) {
  if (auto e = expectArity("isnan", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (y.dtype != DType::Bool)
    return "isnan: output must be bool, not " + std::string(dtypeName(y.dtype));
  if (auto e = expectShape("isnan", "y", y, x.shape); !e.empty())
    return e;
  dispatchDType(x.dtype, [&](auto d) {
    using E = Elem<decltype(d)::value>;
    const auto *px = x.as<typename E::Storage>();
    uint8_t *py = y.as<uint8_t>();
    for (int64_t i = 0, n = x.numel(); i < n; ++i) {
      if constexpr (std::is_same_v<decltype(E::load(px[i])), double>)
        py[i] = std::isnan(E::load(px[i]));
      else
        py[i] = 0; // integers are never NaN
    }
  });
  return "";
}

std::string castKernel(const KernelArgs &args) {
  if (auto e = expectArity("cast", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectShape("cast", "y", y, x.shape); !e.empty())
    return e;
  if (x.dtype == y.dtype) {
    if (x.data != y.data)
      std::memmove(y.data, x.data, y.bytes());
    return "";
  }
  castElements(x, y);
  return "";
}

std::string copyKernel(const KernelArgs &args) {
  if (auto e = expectArity("copy", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("copy", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (x.numel() != y.numel())
    return "copy: element counts differ: " + shapeString(x.shape) + " -> " + shapeString(y.shape);
  // The memory plan may place a reshape's output on its input: then there is nothing to do.
  if (x.data != y.data)
    std::memmove(y.data, x.data, y.bytes());
  return "";
}

} // namespace shardc::rt::cpu
