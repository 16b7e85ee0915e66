// Unit tests of the CPU kernels: each op against a naive reference on small random inputs
// (broadcasting, negative axes, GQA, masks, 16-bit floats) plus the one-line error strings.
#include "shardc/runtime/Kernel.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <numeric>
#include <random>

namespace {

using namespace shardc::rt;
using Shape = std::vector<int64_t>;

int64_t numelOf(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// A test tensor that owns its bytes.
struct Owned {
  std::vector<uint8_t> bytes;
  TensorView view;

  Owned(DType dtype, Shape shape) {
    bytes.assign(static_cast<size_t>(numelOf(shape)) * dtypeSize(dtype) + 8, 0xAB);
    view = TensorView{bytes.data(), dtype, std::move(shape)};
  }
  // Moving keeps the vector's buffer, so the view stays valid; a copy would not.
  Owned(Owned &&) = default;
  Owned(const Owned &) = delete;
  int64_t numel() const { return view.numel(); }
  template <typename T> T *as() { return view.as<T>(); }
};

void storeFloat(Owned &t, int64_t i, double v) {
  switch (t.view.dtype) {
  case DType::F32: t.as<float>()[i] = static_cast<float>(v); break;
  case DType::F64: t.as<double>()[i] = v; break;
  case DType::F16: t.as<uint16_t>()[i] = f32ToF16(static_cast<float>(v)); break;
  case DType::BF16: t.as<uint16_t>()[i] = f32ToBf16(static_cast<float>(v)); break;
  case DType::I64: t.as<int64_t>()[i] = static_cast<int64_t>(v); break;
  case DType::I32: t.as<int32_t>()[i] = static_cast<int32_t>(v); break;
  case DType::I8: t.as<int8_t>()[i] = static_cast<int8_t>(v); break;
  case DType::U8: t.as<uint8_t>()[i] = static_cast<uint8_t>(v); break;
  case DType::Bool: t.as<uint8_t>()[i] = v != 0; break;
  }
}

double loadValue(const Owned &t, int64_t i) {
  const void *p = t.view.data;
  switch (t.view.dtype) {
  case DType::F32: return static_cast<const float *>(p)[i];
  case DType::F64: return static_cast<const double *>(p)[i];
  case DType::F16: return f16ToF32(static_cast<const uint16_t *>(p)[i]);
  case DType::BF16: return bf16ToF32(static_cast<const uint16_t *>(p)[i]);
  case DType::I64: return static_cast<double>(static_cast<const int64_t *>(p)[i]);
  case DType::I32: return static_cast<const int32_t *>(p)[i];
  case DType::I8: return static_cast<const int8_t *>(p)[i];
  case DType::U8: return static_cast<const uint8_t *>(p)[i];
  case DType::Bool: return static_cast<const uint8_t *>(p)[i];
  }
  return 0;
}

Owned tensorOf(DType dtype, Shape shape, const std::vector<double> &values) {
  Owned t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(values.size()), t.numel());
  for (int64_t i = 0; i < t.numel(); ++i)
    storeFloat(t, i, values[i]);
  return t;
}

std::vector<double> valuesOf(const Owned &t) {
  std::vector<double> v(static_cast<size_t>(t.numel()));
  for (int64_t i = 0; i < t.numel(); ++i)
    v[i] = loadValue(t, i);
  return v;
}

std::mt19937 &rng() {
  static std::mt19937 gen(20240611);
  return gen;
}

Owned randomTensor(Shape shape, DType dtype = DType::F32, double lo = -2.0, double hi = 2.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Owned t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i)
    storeFloat(t, i, dist(rng()));
  return t;
}

Owned randomInts(Shape shape, int64_t lo, int64_t hi, DType dtype = DType::I64) {
  std::uniform_int_distribution<int64_t> dist(lo, hi);
  Owned t(dtype, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i)
    storeFloat(t, i, static_cast<double>(dist(rng())));
  return t;
}

// `op` is a step kind, or else a row of SC_ELEMENTWISE_FORMULAS, run as the step kind `formula`
// naming it.
std::string runKernel(const std::string &op, std::vector<Owned *> ins, std::vector<Owned *> outs,
                      const Attrs &attrs = Attrs()) {
  static const std::vector<std::string> rows = elementwiseFormulaNames();
  const bool isRow = !lookupCpuKernel(op) && std::find(rows.begin(), rows.end(), op) != rows.end();
  Attrs withRow = attrs;
  if (isRow)
    withRow.set("formula", op);
  KernelFn fn = lookupCpuKernel(isRow ? "formula" : op);
  if (!fn)
    return "no kernel for " + op;
  KernelArgs args;
  for (Owned *t : ins)
    args.in.push_back(t->view);
  for (Owned *t : outs)
    args.out.push_back(t->view);
  args.attrs = &withRow;
  return fn(args);
}

// Runs and expects success in one line.
#define EXPECT_RUNS(...) EXPECT_EQ(runKernel(__VA_ARGS__), "")

void expectNear(const std::vector<double> &got, const std::vector<double> &want, double tol,
                const char *what = "") {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isnan(want[i])) {
      EXPECT_TRUE(std::isnan(got[i])) << what << " at " << i;
      continue;
    }
    if (std::isinf(want[i])) {
      EXPECT_EQ(got[i], want[i]) << what << " at " << i;
      continue;
    }
    EXPECT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << " at " << i;
  }
}

// --- index arithmetic for the references -------------------------------------------------

Shape unravel(int64_t flat, const Shape &shape) {
  Shape index(shape.size());
  for (size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return index;
}

int64_t ravel(const Shape &index, const Shape &shape) {
  int64_t flat = 0;
  for (size_t d = 0; d < shape.size(); ++d)
    flat = flat * shape[d] + index[d];
  return flat;
}

// The flat position in a tensor of `shape` that broadcasting maps output `index` to.
int64_t broadcastSource(const Shape &index, const Shape &shape) {
  Shape src(shape.size());
  const size_t lead = index.size() - shape.size();
  for (size_t d = 0; d < shape.size(); ++d)
    src[d] = shape[d] == 1 ? 0 : index[lead + d];
  return ravel(src, shape);
}

Attrs attrsOf(std::initializer_list<std::pair<const char *, AttrValue>> values) {
  Attrs a;
  for (const auto &kv : values)
    a.set(kv.first, kv.second);
  return a;
}

// --- Tensor.h ---------------------------------------------------------------------------

TEST(Tensor, DTypeNamesSizesAndShapes) {
  const std::vector<std::pair<const char *, size_t>> expected = {
      {"f32", 4}, {"f16", 2}, {"bf16", 2}, {"f64", 8}, {"i64", 8},
      {"i32", 4}, {"i8", 1},  {"u8", 1},   {"bool", 1}};
  for (const auto &[name, size] : expected) {
    auto t = parseDType(name);
    ASSERT_TRUE(t.has_value()) << name;
    EXPECT_STREQ(dtypeName(*t), name);
    EXPECT_EQ(dtypeSize(*t), size);
  }
  EXPECT_FALSE(parseDType("float32").has_value());
  EXPECT_TRUE(isFloat(DType::BF16));
  EXPECT_FALSE(isFloat(DType::I64));
  EXPECT_EQ(shapeString({2, 64, 256}), "2x64x256");
  EXPECT_EQ(shapeString({}), "scalar");
  EXPECT_EQ(shapeString({0}), "0");
}

float floatFromBits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// bf16 reference: round the value to 8 significant bits with the FPU's nearest-even mode.
float bf16Reference(float x) {
  if (std::isnan(x) || std::isinf(x) || x == 0.0f)
    return x;
  int e = std::max(std::ilogb(x), -126);
  double r = std::ldexp(std::nearbyint(std::ldexp(static_cast<double>(x), 7 - e)), e - 7);
  return static_cast<float>(r); // values past the bf16 max become inf here too
}

TEST(Tensor, Bf16RoundsToNearestEven) {
  EXPECT_EQ(f32ToBf16(1.0f), 0x3f80);
  EXPECT_EQ(f32ToBf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);     // tie -> even (down)
  EXPECT_EQ(f32ToBf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82); // tie -> even (up)
  EXPECT_EQ(f32ToBf16(-2.5f), 0xc020);
  EXPECT_TRUE(std::isnan(bf16ToF32(f32ToBf16(std::nanf("")))));
  EXPECT_EQ(f32ToBf16(std::numeric_limits<float>::infinity()), 0x7f80);
  EXPECT_EQ(f32ToBf16(std::numeric_limits<float>::max()), 0x7f80); // rounds up to inf
  for (uint32_t h = 0; h < 0x10000; ++h) {                       // every bf16 survives f32
    float f = bf16ToF32(static_cast<uint16_t>(h));
    if (!std::isnan(f))
      ASSERT_EQ(f32ToBf16(f), h);
  }
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 200000; ++i) {
    float x = floatFromBits(bits(rng()));
    if (std::isnan(x))
      continue;
    float got = bf16ToF32(f32ToBf16(x));
    float want = bf16Reference(x);
    ASSERT_EQ(std::memcmp(&got, &want, 4), 0) << x;
  }
}

TEST(Tensor, F16ConversionsRoundToNearestEven) {
  EXPECT_EQ(f32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(f32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(f32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(f32ToF16(65519.0f), 0x7bff);
  EXPECT_EQ(f32ToF16(65520.0f), 0x7c00); // tie past the max rounds to inf
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(f32ToF16(std::ldexp(1.0f, -25)), 0x0000);       // tie -> even zero
  EXPECT_EQ(f32ToF16(std::ldexp(3.0f, -26)), 0x0001);       // 0.75 ulp -> 1
  EXPECT_EQ(f32ToF16(std::ldexp(3.0f, -25)), 0x0002);       // 1.5 ulp tie -> 2
  EXPECT_EQ(f32ToF16(std::ldexp(1023.5f, -24)), 0x0400);    // subnormal rounds into normal
  EXPECT_EQ(f32ToF16(1.0f + std::ldexp(1.0f, -11)), 0x3c00); // tie -> even
  EXPECT_EQ(f32ToF16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3c02);
  EXPECT_EQ(f32ToF16(-0.0f), 0x8000);
  EXPECT_EQ(f16ToF32(0x0001), std::ldexp(1.0f, -24));
  EXPECT_EQ(f16ToF32(0x7c00), std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(f16ToF32(f32ToF16(std::nanf("")))));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    float f = f16ToF32(static_cast<uint16_t>(h));
    if (!std::isnan(f))
      ASSERT_EQ(f32ToF16(f), h) << std::hex << h;
  }
#if defined(__FLT16_MAX__) && !defined(__clang__)
  // GCC's _Float16 conversions are IEEE round-to-nearest-even: an independent reference.
  // Random floats whose exponents span f16's subnormal..overflow range; every other one has
  // its dropped bits set to an exact tie.
  std::uniform_int_distribution<uint32_t> bits;
  std::uniform_int_distribution<uint32_t> exponent(127 - 27, 127 + 16);
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = (bits(rng()) & 0x807fffffu) | (exponent(rng()) << 23);
    if (i % 2)
      u = (u & ~0x1fffu) | 0x1000u;
    float x = floatFromBits(u);
    _Float16 h = static_cast<_Float16>(x);
    uint16_t want;
    std::memcpy(&want, &h, 2);
    ASSERT_EQ(f32ToF16(x), want) << x;
  }
#endif
}

TEST(Attrs, TypedGettersConvertNeighbouringKinds) {
  Attrs a = attrsOf({{"i", int64_t{3}},
                     {"d", 2.5},
                     {"b", true},
                     {"s", std::string("tanh")},
                     {"ints", std::vector<int64_t>{1, -2}},
                     {"doubles", std::vector<double>{0.0, 3.0}}});
  EXPECT_EQ(a.getInt("i"), 3);
  EXPECT_EQ(a.getFloat("i"), 3.0);
  EXPECT_EQ(a.getFloat("d"), 2.5);
  EXPECT_EQ(a.getInt("missing", 7), 7);
  EXPECT_TRUE(a.getBool("b"));
  EXPECT_TRUE(a.getBool("i"));
  EXPECT_EQ(a.getString("s"), "tanh");
  EXPECT_EQ(a.getString("i", "dflt"), "dflt");
  EXPECT_EQ(a.getInts("ints"), (std::vector<int64_t>{1, -2}));
  EXPECT_EQ(a.getInts("doubles"), (std::vector<int64_t>{0, 3}));
  EXPECT_EQ(a.getInts("i"), (std::vector<int64_t>{3}));
  EXPECT_TRUE(a.getInts("missing").empty());
}

// --- registry ---------------------------------------------------------------------------

// The Step kinds table of docs/artifact-format.md.
const std::vector<std::string> kDocumentedOps = {
    "formula", "pow", "equal", "where", "isnan", "cast", "copy",
    "matmul", "linear", "gemm", "softmax", "log_softmax", "reduce_sum", "reduce_mean",
    "reduce_max", "transpose", "slice", "dynamic_slice", "concat", "split", "gather", "gather_elements", "expand",
    "trilu", "embedding", "rms_norm", "layer_norm", "rotary", "attention", "silu_mul", "token_loss",
    "attention_grad", "embedding_grad", "token_loss_grad", "less", "less_equal", "cumsum", "arg_max",
    "scatter_nd", "top_k", "gather_nd", "moe_experts", "token_loss_stats", "token_loss_stats_grad",
    "token_loss_combine", "arg_min", "scatter_elements", "moe_router", "moe_permute", "moe_grouped_gemm",
    "moe_unpermute", "moe_experts_grad", "moe_router_grad", "moe_grouped_gemm_grad"};

TEST(Registry, EveryDocumentedOpHasAKernel) {
  std::vector<std::string> names = cpuKernelNames();
  for (const std::string &op : kDocumentedOps) {
    EXPECT_NE(lookupCpuKernel(op), nullptr) << op;
    EXPECT_NE(std::find(names.begin(), names.end(), op), names.end()) << op;
  }
  EXPECT_EQ(names.size(), kDocumentedOps.size());
  EXPECT_EQ(lookupCpuKernel("no_such_op"), nullptr);
}

TEST(Registry, WrongArityIsAnErrorNotACrash) {
  Owned x = randomTensor({2, 3});
  std::vector<std::string> ops = cpuKernelNames(), rows = elementwiseFormulaNames();
  ops.insert(ops.end(), rows.begin(), rows.end());
  for (const std::string &op : ops) {
    std::string none = runKernel(op, {}, {});
    EXPECT_EQ(none.rfind(op + ": ", 0), 0u) << op << ": " << none;
    std::string noOutput = runKernel(op, {&x, &x, &x}, {});
    EXPECT_FALSE(noOutput.empty()) << op;
  }
}

TEST(Registry, FormulaStepNamesItsRow) {
  Owned x = randomTensor({2, 3}), y(DType::F32, {2, 3});
  EXPECT_RUNS("formula", {&x}, {&y}, attrsOf({{"formula", std::string("exp")}}));
  EXPECT_EQ(runKernel("formula", {&x}, {&y}, attrsOf({{"formula", std::string("fast_gelu")}})),
            "formula: 'fast_gelu' is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)");
  EXPECT_EQ(runKernel("formula", {&x}, {&y}),
            "formula: '' is not a row of SC_ELEMENTWISE_FORMULAS (FusedPrelude.h)");
  // Formula rows are not step kinds of their own.
  EXPECT_EQ(lookupCpuKernel("exp"), nullptr);
  EXPECT_EQ(lookupCpuKernel("gelu_tanh"), nullptr);
}

// --- elementwise ------------------------------------------------------------------------

using BinaryRef = std::function<double(double, double)>;

void checkBinary(const std::string &op, const Shape &sa, const Shape &sb, const Shape &sy,
                 BinaryRef ref, DType dtype = DType::F32, double tol = 1e-6) {
  Owned a = randomTensor(sa, dtype, 0.5, 2.0);
  Owned b = randomTensor(sb, dtype, 0.5, 2.0);
  Owned y(dtype, sy);
  ASSERT_EQ(runKernel(op, {&a, &b}, {&y}), "") << op;
  std::vector<double> want(static_cast<size_t>(y.numel()));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape index = unravel(i, sy);
    want[i] = ref(loadValue(a, broadcastSource(index, sa)), loadValue(b, broadcastSource(index, sb)));
  }
  if (dtype == DType::BF16 || dtype == DType::F16) // compare after the output's rounding
    for (double &w : want)
      w = dtype == DType::BF16 ? bf16ToF32(f32ToBf16(static_cast<float>(w)))
                               : f16ToF32(f32ToF16(static_cast<float>(w)));
  expectNear(valuesOf(y), want, tol, op.c_str());
}

TEST(Elementwise, BinaryBroadcastsLikeNumpy) {
  const std::vector<std::pair<std::string, BinaryRef>> ops = {
      {"add", [](double x, double y) { return x + y; }},
      {"sub", [](double x, double y) { return x - y; }},
      {"mul", [](double x, double y) { return x * y; }},
      {"div", [](double x, double y) { return x / y; }},
      {"pow", [](double x, double y) { return std::pow(x, y); }},
      {"silu_mul", [](double g, double u) { return g / (1 + std::exp(-g)) * u; }}};
  const std::vector<std::array<Shape, 3>> shapes = {
      {Shape{2, 3, 4}, Shape{2, 3, 4}, Shape{2, 3, 4}}, {Shape{2, 3, 4}, Shape{3, 1}, Shape{2, 3, 4}},
      {Shape{4, 1, 5}, Shape{3, 1}, Shape{4, 3, 5}},    {Shape{}, Shape{2, 3}, Shape{2, 3}},
      {Shape{1, 3, 1, 2}, Shape{2, 1, 4, 1}, Shape{2, 3, 4, 2}}, {Shape{5}, Shape{}, Shape{5}},
      {Shape{2, 1, 3}, Shape{2, 1, 3}, Shape{2, 1, 3}}};
  for (const auto &[op, ref] : ops)
    for (const auto &s : shapes)
      checkBinary(op, s[0], s[1], s[2], ref);
  checkBinary("add", {3, 1}, {1, 4}, {3, 4}, ops[0].second, DType::F64, 1e-12);
  checkBinary("mul", {2, 3, 4}, {4}, {2, 3, 4}, ops[2].second, DType::BF16, 1e-6);
  // f16 quotients may differ from the double reference by one f16 ulp (double rounding).
  checkBinary("div", {2, 3, 4}, {3, 1}, {2, 3, 4}, ops[3].second, DType::F16, 1e-3);
}

TEST(Elementwise, BinaryRejectsBadShapesAndDTypes) {
  Owned a = randomTensor({2, 3}), b = randomTensor({4}), y(DType::F32, {2, 3});
  EXPECT_EQ(runKernel("add", {&a, &b}, {&y}), "add: shapes do not broadcast: 2x3 and 4");
  Owned c = randomTensor({3});
  Owned wrongY(DType::F32, {3, 3});
  EXPECT_EQ(runKernel("mul", {&a, &c}, {&wrongY}), "mul: output has shape 3x3, broadcast gives 2x3");
  Owned i = randomInts({2, 3}, 0, 3);
  EXPECT_EQ(runKernel("sub", {&a, &i}, {&y}), "sub: dtypes differ: a is f32, b is i64");
  Owned p = randomInts({2, 3}, 0, 3), q = randomInts({2, 3}, 1, 3), r(DType::Bool, {2, 3});
  EXPECT_EQ(runKernel("pow", {&p, &q}, {&r}), "pow: dtypes differ: a is i64, y is bool");
}

// An integer base is computed in f64 and converted back toward zero (ONNX allows it, as
// onnxruntime does), with an exponent of another dtype too.
TEST(Elementwise, PowOfIntegers) {
  Owned a = tensorOf(DType::I32, {3}, {1, 2, 3}), b = tensorOf(DType::I32, {3}, {4, 5, 6}), y(DType::I32, {3});
  EXPECT_RUNS("pow", {&a, &b}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{1, 32, 729}));
  Owned a64 = tensorOf(DType::I64, {3}, {2, 3, -2}), half = tensorOf(DType::F32, {1}, {1.5}), y64(DType::I64, {3});
  EXPECT_RUNS("pow", {&a64, &half}, {&y64});
  EXPECT_EQ(valuesOf(y64)[0], 2); // 2^1.5 = 2.83 -> 2
  EXPECT_EQ(valuesOf(y64)[1], 5); // 3^1.5 = 5.20 -> 5
}

TEST(Elementwise, IntegerArithmeticTruncatesAndWraps) {
  Owned a = tensorOf(DType::I64, {4}, {7, -7, 9, 100});
  Owned b = tensorOf(DType::I64, {4}, {2, 2, -4, 3});
  Owned y(DType::I64, {4});
  EXPECT_RUNS("div", {&a, &b}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{3, -3, -2, 33}));
  EXPECT_RUNS("sub", {&a, &b}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{5, -9, 13, 97}));
  Owned scalar = tensorOf(DType::I64, {}, {0});
  EXPECT_EQ(runKernel("div", {&a, &scalar}, {&y}), "div: integer division by zero");
  Owned minimum(DType::I64, {1}), minusOne = tensorOf(DType::I64, {1}, {-1}), q(DType::I64, {1});
  minimum.as<int64_t>()[0] = std::numeric_limits<int64_t>::min();
  EXPECT_RUNS("div", {&minimum, &minusOne}, {&q});
  EXPECT_EQ(q.as<int64_t>()[0], std::numeric_limits<int64_t>::min());
  Owned a32 = tensorOf(DType::I32, {2, 1}, {1, 2}), b32 = tensorOf(DType::I32, {3}, {10, 20, 30});
  Owned y32(DType::I32, {2, 3});
  EXPECT_RUNS("mul", {&a32, &b32}, {&y32});
  EXPECT_EQ(valuesOf(y32), (std::vector<double>{10, 20, 30, 20, 40, 60}));
  EXPECT_RUNS("add", {&a32, &b32}, {&y32});
  EXPECT_EQ(valuesOf(y32), (std::vector<double>{11, 21, 31, 12, 22, 32}));
}

TEST(Elementwise, PowAcceptsAnIntegerExponent) {
  Owned a = tensorOf(DType::F32, {3}, {2, 3, -2}), e = tensorOf(DType::I64, {}, {3});
  Owned y(DType::F32, {3});
  EXPECT_RUNS("pow", {&a, &e}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{8, 27, -8}));
}

TEST(Elementwise, EqualComparesValuesOfAnyDType) {
  const double nan = std::nan("");
  Owned a = tensorOf(DType::F32, {2, 3}, {1, 0.0, nan, 4, 5, 6});
  Owned b = tensorOf(DType::F32, {3}, {1, -0.0, nan});
  Owned y(DType::Bool, {2, 3});
  EXPECT_RUNS("equal", {&a, &b}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{1, 1, 0, 0, 0, 0}));
  Owned i = randomInts({3, 4}, 0, 2), j = randomInts({4}, 0, 2), yi(DType::Bool, {3, 4});
  EXPECT_RUNS("equal", {&i, &j}, {&yi});
  for (int64_t k = 0; k < 12; ++k)
    EXPECT_EQ(loadValue(yi, k), loadValue(i, k) == loadValue(j, k % 4) ? 1.0 : 0.0);
  Owned h = tensorOf(DType::BF16, {2}, {1.5, 2}), g = tensorOf(DType::BF16, {2}, {1.5, 3});
  Owned yh(DType::Bool, {2});
  EXPECT_RUNS("equal", {&h, &g}, {&yh});
  EXPECT_EQ(valuesOf(yh), (std::vector<double>{1, 0}));
  Owned notBool(DType::F32, {2});
  EXPECT_EQ(runKernel("equal", {&h, &g}, {&notBool}), "equal: output must be bool, not f32");
}

TEST(Elementwise, WhereBroadcastsAllThree) {
  Owned cond = randomInts({3, 1}, 0, 1, DType::Bool);
  Owned a = randomTensor({1, 4}), b = randomTensor({2, 3, 4});
  Owned y(DType::F32, {2, 3, 4});
  EXPECT_RUNS("where", {&cond, &a, &b}, {&y});
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape index = unravel(i, y.view.shape);
    double want = loadValue(cond, broadcastSource(index, {3, 1}))
                      ? loadValue(a, broadcastSource(index, {1, 4}))
                      : loadValue(b, i);
    EXPECT_EQ(loadValue(y, i), want);
  }
  Owned ia = randomInts({4}, -9, 9), ib = randomInts({3, 4}, -9, 9), iy(DType::I64, {3, 4});
  EXPECT_RUNS("where", {&cond, &ia, &ib}, {&iy});
  for (int64_t i = 0; i < 12; ++i)
    EXPECT_EQ(loadValue(iy, i), loadValue(cond, i / 4) ? loadValue(ia, i % 4) : loadValue(ib, i));
  EXPECT_EQ(runKernel("where", {&a, &a, &b}, {&y}), "where: condition must be bool, not f32");
}

TEST(Elementwise, UnaryMathMatchesLibm) {
  const std::vector<std::pair<std::string, std::function<double(double)>>> ops = {
      {"neg", [](double x) { return -x; }},
      {"sqrt", [](double x) { return std::sqrt(x); }},
      {"reciprocal", [](double x) { return 1 / x; }},
      {"exp", [](double x) { return std::exp(x); }},
      {"log", [](double x) { return std::log(x); }},
      {"tanh", [](double x) { return std::tanh(x); }},
      {"sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"erf", [](double x) { return std::erf(x); }},
      {"cos", [](double x) { return std::cos(x); }},
      {"sin", [](double x) { return std::sin(x); }},
      {"silu", [](double x) { return x / (1 + std::exp(-x)); }}};
  for (const auto &[op, ref] : ops) {
    const bool positive = op == "sqrt" || op == "log";
    Owned x = randomTensor({3, 5}, DType::F32, positive ? 0.1 : -4.0, 4.0);
    Owned y(DType::F32, {3, 5});
    ASSERT_EQ(runKernel(op, {&x}, {&y}), "") << op;
    std::vector<double> want;
    for (double v : valuesOf(x))
      want.push_back(ref(v));
    expectNear(valuesOf(y), want, 2e-6, op.c_str());
  }
  // Sigmoid and silu must not overflow for large |x|.
  Owned big = tensorOf(DType::F32, {4}, {-200, -100, 100, 200}), y(DType::F32, {4});
  EXPECT_RUNS("sigmoid", {&big}, {&y});
  expectNear(valuesOf(y), {0, 0, 1, 1}, 1e-7, "sigmoid large");
  EXPECT_RUNS("silu", {&big}, {&y});
  expectNear(valuesOf(y), {0, 0, 100, 200}, 1e-7, "silu large");
  Owned wrong(DType::F32, {4, 1});
  EXPECT_EQ(runKernel("exp", {&big}, {&wrong}), "exp: y has shape 4x1, expected 4");
}

TEST(Elementwise, NegKeepsSignedZeroAndWrapsIntegers) {
  Owned x = tensorOf(DType::F32, {2}, {0.0, -3}), y(DType::F32, {2});
  EXPECT_RUNS("neg", {&x}, {&y});
  EXPECT_TRUE(std::signbit(y.as<float>()[0]));
  EXPECT_EQ(y.as<float>()[1], 3.0f);
  Owned i(DType::I64, {2}), j(DType::I64, {2});
  i.as<int64_t>()[0] = 5;
  i.as<int64_t>()[1] = std::numeric_limits<int64_t>::min();
  EXPECT_RUNS("neg", {&i}, {&j});
  EXPECT_EQ(j.as<int64_t>()[0], -5);
  EXPECT_EQ(j.as<int64_t>()[1], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(runKernel("exp", {&i}, {&j}), "exp: unsupported dtype i64");
}

TEST(Elementwise, GeluExactAndTanh) {
  Owned x = randomTensor({4, 6}, DType::F32, -5, 5), y(DType::F32, {4, 6});
  std::vector<double> exact, tanhForm;
  for (double v : valuesOf(x)) {
    exact.push_back(0.5 * v * (1 + std::erf(v / std::sqrt(2.0))));
    tanhForm.push_back(0.5 * v * (1 + std::tanh(std::sqrt(2 / M_PI) * (v + 0.044715 * v * v * v))));
  }
  EXPECT_RUNS("gelu_erf", {&x}, {&y});
  expectNear(valuesOf(y), exact, 2e-6, "gelu_erf");
  EXPECT_RUNS("gelu_tanh", {&x}, {&y});
  expectNear(valuesOf(y), tanhForm, 2e-6, "gelu_tanh");
  Owned xb = randomTensor({8}, DType::BF16, -3, 3), yb(DType::BF16, {8});
  EXPECT_RUNS("gelu_erf", {&xb}, {&yb});
  std::vector<double> want;
  for (double v : valuesOf(xb))
    want.push_back(bf16ToF32(f32ToBf16(static_cast<float>(0.5 * v * (1 + std::erf(v / std::sqrt(2.0)))))));
  expectNear(valuesOf(yb), want, 1e-2, "gelu bf16");
}

TEST(Elementwise, IsNan) {
  Owned x = tensorOf(DType::F32, {4}, {1, std::nan(""), INFINITY, -0.0}), y(DType::Bool, {4});
  EXPECT_RUNS("isnan", {&x}, {&y});
  EXPECT_EQ(valuesOf(y), (std::vector<double>{0, 1, 0, 0}));
  Owned h = tensorOf(DType::F16, {2}, {std::nan(""), 1}), yh(DType::Bool, {2});
  EXPECT_RUNS("isnan", {&h}, {&yh});
  EXPECT_EQ(valuesOf(yh), (std::vector<double>{1, 0}));
}

// --- cast and copy ----------------------------------------------------------------------

TEST(Cast, FloatToIntTruncatesAndSaturates) {
  Owned x = tensorOf(DType::F32, {6}, {2.7, -2.7, 300, -5, std::nan(""), 0.4});
  Owned i(DType::I64, {6}), u(DType::U8, {6}), b(DType::Bool, {6}), i8(DType::I8, {6});
  EXPECT_RUNS("cast", {&x}, {&i});
  EXPECT_EQ(valuesOf(i), (std::vector<double>{2, -2, 300, -5, 0, 0}));
  EXPECT_RUNS("cast", {&x}, {&u});
  EXPECT_EQ(valuesOf(u), (std::vector<double>{2, 0, 255, 0, 0, 0}));
  EXPECT_RUNS("cast", {&x}, {&i8});
  EXPECT_EQ(valuesOf(i8), (std::vector<double>{2, -2, 127, -5, 0, 0}));
  EXPECT_RUNS("cast", {&x}, {&b});
  EXPECT_EQ(valuesOf(b), (std::vector<double>{1, 1, 1, 1, 1, 1}));
  Owned big(DType::F64, {2}), bigInt(DType::I64, {2});
  big.as<double>()[0] = 1e300;
  big.as<double>()[1] = -1e300;
  EXPECT_RUNS("cast", {&big}, {&bigInt});
  EXPECT_EQ(bigInt.as<int64_t>()[0], std::numeric_limits<int64_t>::max());
  EXPECT_EQ(bigInt.as<int64_t>()[1], std::numeric_limits<int64_t>::min());
}

TEST(Cast, IntegersAndBools) {
  Owned i(DType::I64, {3}), f(DType::F32, {3}), i32(DType::I32, {3}), b(DType::Bool, {3});
  i.as<int64_t>()[0] = (int64_t{1} << 40) + 3;
  i.as<int64_t>()[1] = -1;
  i.as<int64_t>()[2] = 0;
  EXPECT_RUNS("cast", {&i}, {&i32});
  EXPECT_EQ(valuesOf(i32), (std::vector<double>{3, -1, 0})); // wraps like numpy astype
  EXPECT_RUNS("cast", {&i}, {&b});
  EXPECT_EQ(valuesOf(b), (std::vector<double>{1, 1, 0}));
  EXPECT_RUNS("cast", {&b}, {&f});
  EXPECT_EQ(valuesOf(f), (std::vector<double>{1, 1, 0}));
  Owned big(DType::I64, {1}), back(DType::F64, {1});
  big.as<int64_t>()[0] = (int64_t{1} << 53) + 1; // not representable: rounds like a C++ cast
  EXPECT_RUNS("cast", {&big}, {&back});
  EXPECT_EQ(back.as<double>()[0], static_cast<double>((int64_t{1} << 53) + 1));
}

TEST(Cast, Bf16AndF16RoundTrip) {
  Owned x = randomTensor({64}, DType::F32, -100, 100);
  Owned h(DType::BF16, {64}), back(DType::F32, {64}), f16(DType::F16, {64}), h2(DType::BF16, {64});
  EXPECT_RUNS("cast", {&x}, {&h});
  EXPECT_RUNS("cast", {&h}, {&back});
  for (int64_t i = 0; i < 64; ++i) {
    EXPECT_EQ(h.as<uint16_t>()[i], f32ToBf16(x.as<float>()[i]));
    EXPECT_EQ(back.as<float>()[i], bf16Reference(x.as<float>()[i]));
  }
  EXPECT_RUNS("cast", {&h}, {&f16}); // bf16 -> f16 -> bf16 loses nothing for |x| < 100
  EXPECT_RUNS("cast", {&f16}, {&h2});
  EXPECT_EQ(valuesOf(h2), valuesOf(h));
}

TEST(Copy, ReshapesBytesAndChecksSizes) {
  Owned x = randomTensor({2, 3}), y(DType::F32, {3, 2, 1});
  EXPECT_RUNS("copy", {&x}, {&y});
  EXPECT_EQ(valuesOf(y), valuesOf(x));
  EXPECT_RUNS("copy", {&x}, {&x}); // in place: a no-op
  Owned small(DType::F32, {5});
  EXPECT_EQ(runKernel("copy", {&x}, {&small}), "copy: element counts differ: 2x3 -> 5");
}

// --- contractions -----------------------------------------------------------------------

// ONNX MatMul reference in double with explicit 1-D promotion and batch broadcasting.
std::vector<double> matmulReference(const Owned &a, const Owned &b, const Shape &yShape) {
  Shape sa = a.view.shape, sb = b.view.shape;
  const bool aVector = sa.size() == 1, bVector = sb.size() == 1;
  if (aVector)
    sa.insert(sa.begin(), 1);
  if (bVector)
    sb.push_back(1);
  const int64_t M = sa[sa.size() - 2], K = sa.back(), N = sb.back();
  Shape batchA(sa.begin(), sa.end() - 2), batchB(sb.begin(), sb.end() - 2);
  Shape batch(std::max(batchA.size(), batchB.size()));
  for (size_t i = 0; i < batch.size(); ++i) {
    auto dim = [&](const Shape &s) {
      size_t lead = batch.size() - s.size();
      return i < lead ? int64_t{1} : s[i - lead];
    };
    batch[i] = std::max(dim(batchA), dim(batchB));
  }
  std::vector<double> y;
  for (int64_t bi = 0; bi < numelOf(batch); ++bi) {
    Shape index = unravel(bi, batch);
    int64_t ao = broadcastSource(index, batchA) * M * K;
    int64_t bo = broadcastSource(index, batchB) * K * N;
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k)
          s += loadValue(a, ao + m * K + k) * loadValue(b, bo + k * N + n);
        y.push_back(s);
      }
  }
  EXPECT_EQ(static_cast<int64_t>(y.size()), numelOf(yShape));
  return y;
}

TEST(MatMul, BatchedBroadcastingAndOneDPromotion) {
  const std::vector<std::array<Shape, 3>> cases = {
      {Shape{3, 4}, Shape{4, 5}, Shape{3, 5}},
      {Shape{2, 3, 4}, Shape{4, 5}, Shape{2, 3, 5}},       // shared B: one tall sgemm
      {Shape{2, 1, 3, 4}, Shape{3, 4, 5}, Shape{2, 3, 3, 5}}, // both sides broadcast
      {Shape{3, 4}, Shape{2, 4, 5}, Shape{2, 3, 5}},          // broadcast A
      {Shape{4}, Shape{4, 5}, Shape{5}},
      {Shape{2, 3, 4}, Shape{4}, Shape{2, 3}},
      {Shape{4}, Shape{2, 4, 5}, Shape{2, 5}},
      {Shape{4}, Shape{4}, Shape{}},
      {Shape{2, 3, 0}, Shape{0, 5}, Shape{2, 3, 5}}, // K = 0: zeros
  };
  for (const auto &c : cases) {
    Owned a = randomTensor(c[0]), b = randomTensor(c[1]), y(DType::F32, c[2]);
    ASSERT_EQ(runKernel("matmul", {&a, &b}, {&y}), "") << shapeString(c[0]) << " · " << shapeString(c[1]);
    expectNear(valuesOf(y), matmulReference(a, b, c[2]), 1e-5, shapeString(c[0]).c_str());
  }
  Owned a = randomTensor({2, 3, 4}, DType::BF16), b = randomTensor({4, 5}, DType::BF16);
  Owned y(DType::BF16, {2, 3, 5});
  EXPECT_RUNS("matmul", {&a, &b}, {&y});
  expectNear(valuesOf(y), matmulReference(a, b, {2, 3, 5}), 1e-2, "bf16");
}

TEST(MatMul, ShapeErrors) {
  Owned a = randomTensor({2, 64, 256}), b = randomTensor({128, 256}), y(DType::F32, {2, 64, 256});
  EXPECT_EQ(runKernel("matmul", {&a, &b}, {&y}), "matmul: inner dims differ: 2x64x256 · 128x256");
  Owned c = randomTensor({3, 4, 5}), d = randomTensor({2, 5, 6}), e(DType::F32, {3, 4, 6});
  EXPECT_EQ(runKernel("matmul", {&c, &d}, {&e}), "matmul: batch dims do not broadcast: 3x4x5 · 2x5x6");
  Owned f = randomTensor({5, 6}), g(DType::F32, {3, 4, 7});
  EXPECT_EQ(runKernel("matmul", {&c, &f}, {&g}), "matmul: y has shape 3x4x7, expected 3x4x6");
}

TEST(Linear, PlainTransposedAndBias) {
  Owned x = randomTensor({2, 3, 4}), w = randomTensor({4, 5}), bias = randomTensor({5});
  Owned y(DType::F32, {2, 3, 5});
  std::vector<double> want = matmulReference(x, w, {2, 3, 5});
  EXPECT_RUNS("linear", {&x, &w}, {&y});
  expectNear(valuesOf(y), want, 1e-5, "linear");
  EXPECT_RUNS("linear", {&x, &w, &bias}, {&y});
  for (size_t i = 0; i < want.size(); ++i)
    want[i] += loadValue(bias, static_cast<int64_t>(i % 5));
  expectNear(valuesOf(y), want, 1e-5, "linear + bias");
  // w stored [N, K] (PyTorch's layout).
  Owned wt(DType::F32, {5, 4});
  for (int64_t k = 0; k < 4; ++k)
    for (int64_t n = 0; n < 5; ++n)
      wt.as<float>()[n * 4 + k] = w.as<float>()[k * 5 + n];
  EXPECT_RUNS("linear", {&x, &wt, &bias}, {&y}, attrsOf({{"transpose_w", true}}));
  expectNear(valuesOf(y), want, 1e-5, "linear transposed");
  EXPECT_EQ(runKernel("linear", {&x, &wt}, {&y}), "linear: inner dims differ: 2x3x4 · 5x4");
}

TEST(Gemm, TransposesAlphaBetaAndBroadcastC) {
  Owned a = randomTensor({4, 3}), b = randomTensor({5, 4}), c = randomTensor({5});
  Owned y(DType::F32, {3, 5});
  Attrs attrs = attrsOf({{"trans_a", true}, {"trans_b", true}, {"alpha", 0.5}, {"beta", 2.0}});
  EXPECT_RUNS("gemm", {&a, &b, &c}, {&y}, attrs);
  std::vector<double> want;
  for (int64_t m = 0; m < 3; ++m)
    for (int64_t n = 0; n < 5; ++n) {
      double s = 0;
      for (int64_t k = 0; k < 4; ++k)
        s += loadValue(a, k * 3 + m) * loadValue(b, n * 4 + k);
      want.push_back(0.5 * s + 2.0 * loadValue(c, n));
    }
  expectNear(valuesOf(y), want, 1e-5, "gemm");
  Owned bad = randomTensor({2, 5});
  EXPECT_EQ(runKernel("gemm", {&a, &b, &bad}, {&y}, attrs),
            "gemm: C of shape 2x5 does not broadcast to 3x5");
}

// --- softmax and reductions -------------------------------------------------------------

std::vector<double> softmaxReference(const Owned &x, int64_t axis, bool logarithm) {
  const Shape &s = x.view.shape;
  std::vector<double> y(static_cast<size_t>(x.numel()));
  for (int64_t i = 0; i < x.numel(); ++i) {
    Shape index = unravel(i, s);
    double maxValue = -INFINITY, sum = 0;
    for (int64_t j = 0; j < s[axis]; ++j) {
      index[axis] = j;
      maxValue = std::max(maxValue, loadValue(x, ravel(index, s)));
    }
    for (int64_t j = 0; j < s[axis]; ++j) {
      index[axis] = j;
      sum += std::exp(loadValue(x, ravel(index, s)) - maxValue);
    }
    double v = loadValue(x, i) - maxValue;
    y[i] = logarithm ? v - std::log(sum) : std::exp(v) / sum;
  }
  return y;
}

TEST(Softmax, AnyAxisAndStableForLargeValues) {
  for (bool logarithm : {false, true}) {
    const std::string op = logarithm ? "log_softmax" : "softmax";
    for (int64_t axis : {-1, 0, 1, -2}) {
      Owned x = randomTensor({3, 4, 5}, DType::F32, -5, 5), y(DType::F32, {3, 4, 5});
      ASSERT_EQ(runKernel(op, {&x}, {&y}, attrsOf({{"axis", axis}})), "");
      expectNear(valuesOf(y), softmaxReference(x, axis < 0 ? axis + 3 : axis, logarithm), 1e-5,
                 op.c_str());
    }
    Owned big = tensorOf(DType::F32, {3}, {1000, 1001, 1002}), y(DType::F32, {3});
    EXPECT_RUNS(op, {&big}, {&y});
    expectNear(valuesOf(y), softmaxReference(big, 0, logarithm), 1e-5, "large");
    EXPECT_EQ(runKernel(op, {&big}, {&y}, attrsOf({{"axis", int64_t{1}}})),
              op + ": axis 1 out of range for rank 1");
  }
}

TEST(Reduce, SumMeanMaxOverAxesWithAndWithoutKeepdims) {
  Owned x = randomTensor({2, 3, 4, 5});
  const std::vector<std::vector<int64_t>> axesCases = {{1}, {0, 2}, {3}, {1, 2, 3}, {-1}, {}};
  for (const std::string op : {"reduce_sum", "reduce_mean", "reduce_max"})
    for (const auto &axes : axesCases)
      for (bool keepdims : {true, false}) {
        std::vector<bool> reduced(4, axes.empty());
        for (int64_t a : axes)
          reduced[a < 0 ? a + 4 : a] = true;
        Shape kept, yShape;
        for (int64_t d = 0; d < 4; ++d) {
          kept.push_back(reduced[d] ? 1 : x.view.shape[d]);
          if (!reduced[d] || keepdims)
            yShape.push_back(kept.back());
        }
        std::vector<double> sum(numelOf(kept), 0), maxv(numelOf(kept), -INFINITY);
        for (int64_t i = 0; i < x.numel(); ++i) {
          Shape index = unravel(i, x.view.shape);
          for (int64_t d = 0; d < 4; ++d)
            if (reduced[d])
              index[d] = 0;
          int64_t o = ravel(index, kept);
          sum[o] += loadValue(x, i);
          maxv[o] = std::max(maxv[o], loadValue(x, i));
        }
        std::vector<double> want = op == "reduce_max" ? maxv : sum;
        if (op == "reduce_mean")
          for (double &v : want)
            v /= static_cast<double>(x.numel() / numelOf(kept));
        Owned y(DType::F32, yShape);
        ASSERT_EQ(runKernel(op, {&x}, {&y}, attrsOf({{"axes", axes}, {"keepdims", keepdims}})), "")
            << op;
        expectNear(valuesOf(y), want, 1e-5, op.c_str());
      }
  Owned i = tensorOf(DType::I64, {2, 3}, {1, 2, 3, 4, 5, 7}), yi(DType::I64, {2});
  EXPECT_RUNS("reduce_sum", {&i}, {&yi}, attrsOf({{"axes", std::vector<int64_t>{1}}, {"keepdims", false}}));
  EXPECT_EQ(valuesOf(yi), (std::vector<double>{6, 16}));
  EXPECT_RUNS("reduce_mean", {&i}, {&yi}, attrsOf({{"axes", std::vector<int64_t>{1}}, {"keepdims", false}}));
  EXPECT_EQ(valuesOf(yi), (std::vector<double>{2, 5}));
  Owned wrong(DType::F32, {2, 3});
  EXPECT_EQ(runKernel("reduce_sum", {&x}, {&wrong}, attrsOf({{"axes", std::vector<int64_t>{1}}})),
            "reduce_sum: y has shape 2x3, expected 2x1x4x5");
  EXPECT_EQ(runKernel("reduce_max", {&x}, {&wrong}, attrsOf({{"axes", std::vector<int64_t>{4}}})),
            "reduce_max: axis 4 out of range for rank 4");
  Owned withNan = tensorOf(DType::F32, {3}, {1, std::nan(""), 2}), m(DType::F32, {1});
  EXPECT_RUNS("reduce_max", {&withNan}, {&m}, attrsOf({{"axes", std::vector<int64_t>{0}}}));
  EXPECT_TRUE(std::isnan(m.as<float>()[0]));
}

// --- data movement ----------------------------------------------------------------------

TEST(DataMovement, TransposeAnyPermAndDType) {
  Owned x = randomTensor({2, 3, 4, 5});
  const std::vector<int64_t> perm = {2, 0, 3, 1};
  Shape yShape = {4, 2, 5, 3};
  Owned y(DType::F32, yShape);
  EXPECT_RUNS("transpose", {&x}, {&y}, attrsOf({{"perm", perm}}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape out = unravel(i, yShape), in(4);
    for (int d = 0; d < 4; ++d)
      in[perm[d]] = out[d];
    ASSERT_EQ(loadValue(y, i), loadValue(x, ravel(in, x.view.shape)));
  }
  Owned h = randomTensor({3, 2}, DType::BF16), ht(DType::BF16, {2, 3});
  EXPECT_RUNS("transpose", {&h}, {&ht}); // default perm reverses
  EXPECT_EQ(loadValue(ht, 1 * 3 + 2), loadValue(h, 2 * 2 + 1));
  EXPECT_EQ(runKernel("transpose", {&x}, {&y}, attrsOf({{"perm", std::vector<int64_t>{0, 0, 1, 2}}})),
            "transpose: perm is not a permutation of rank 4");
}

TEST(DataMovement, SliceWithPositiveAndNegativeSteps) {
  Owned x = randomTensor({5, 6, 4});
  const std::vector<int64_t> starts = {4, 1, 0}, steps = {-2, 2, 1};
  Shape yShape = {3, 3, 4};
  Owned y(DType::F32, yShape);
  EXPECT_RUNS("slice", {&x}, {&y}, attrsOf({{"starts", starts}, {"steps", steps}}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape out = unravel(i, yShape), in(3);
    for (int d = 0; d < 3; ++d)
      in[d] = starts[d] + out[d] * steps[d];
    ASSERT_EQ(loadValue(y, i), loadValue(x, ravel(in, x.view.shape)));
  }
  Owned reversed(DType::F32, {5, 6, 4});
  EXPECT_RUNS("slice", {&x}, {&reversed},
              attrsOf({{"starts", std::vector<int64_t>{0, 5, 3}}, {"steps", std::vector<int64_t>{1, -1, -1}}}));
  EXPECT_EQ(loadValue(reversed, 0), loadValue(x, 5 * 4 + 3));
  Owned tooLong(DType::F32, {4, 3, 4});
  EXPECT_EQ(runKernel("slice", {&x}, {&tooLong}, attrsOf({{"starts", starts}, {"steps", steps}})),
            "slice: dim 0 reads 4..-2 step -2 outside [0, 5)");
}

TEST(DataMovement, ConcatAndSplitAreInverses) {
  Owned a = randomTensor({2, 3, 4}), b = randomTensor({2, 1, 4}), c = randomTensor({2, 2, 4});
  Owned y(DType::F32, {2, 6, 4});
  EXPECT_RUNS("concat", {&a, &b, &c}, {&y}, attrsOf({{"axis", int64_t{-2}}}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape index = unravel(i, {2, 6, 4});
    const Owned &part = index[1] < 3 ? a : index[1] < 4 ? b : c;
    index[1] -= index[1] < 3 ? 0 : index[1] < 4 ? 3 : 4;
    ASSERT_EQ(loadValue(y, i), loadValue(part, ravel(index, part.view.shape)));
  }
  Owned a2(DType::F32, {2, 3, 4}), b2(DType::F32, {2, 1, 4}), c2(DType::F32, {2, 2, 4});
  EXPECT_RUNS("split", {&y}, {&a2, &b2, &c2}, attrsOf({{"axis", int64_t{1}}}));
  EXPECT_EQ(valuesOf(a2), valuesOf(a));
  EXPECT_EQ(valuesOf(b2), valuesOf(b));
  EXPECT_EQ(valuesOf(c2), valuesOf(c));
  Owned wrong(DType::F32, {2, 5, 4});
  EXPECT_EQ(runKernel("concat", {&a, &b, &c}, {&wrong}, attrsOf({{"axis", int64_t{1}}})),
            "concat: parts add up to 6 on axis 1, whole has 5");
  Owned i64 = randomInts({2, 3, 4}, 0, 9);
  EXPECT_EQ(runKernel("concat", {&a, &i64}, {&y}, attrsOf({{"axis", int64_t{1}}})),
            "concat: part 1 is i64, expected f32");
}

TEST(DataMovement, GatherWrapsNegativeIndicesAndRejectsOutOfRange) {
  Owned data = randomTensor({3, 5, 2});
  Owned indices = tensorOf(DType::I64, {2, 2}, {0, -1, 4, -5});
  Owned y(DType::F32, {3, 2, 2, 2});
  EXPECT_RUNS("gather", {&data, &indices}, {&y}, attrsOf({{"axis", int64_t{-2}}}));
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape o = unravel(i, {3, 2, 2, 2});
    int64_t index = static_cast<int64_t>(loadValue(indices, o[1] * 2 + o[2]));
    if (index < 0)
      index += 5;
    ASSERT_EQ(loadValue(y, i), loadValue(data, ravel({o[0], index, o[3]}, {3, 5, 2})));
  }
  Owned rows = tensorOf(DType::I32, {}, {2}), row(DType::F32, {5, 2});
  EXPECT_RUNS("gather", {&data, &rows}, {&row});
  EXPECT_EQ(loadValue(row, 3), loadValue(data, 2 * 10 + 3));
  Owned bad = tensorOf(DType::I64, {2}, {1, 5}), y2(DType::F32, {3, 2, 2});
  EXPECT_EQ(runKernel("gather", {&data, &bad}, {&y2}, attrsOf({{"axis", int64_t{1}}})),
            "gather: index 5 out of range for axis 1 of size 5");
  Owned floats = randomTensor({2});
  EXPECT_EQ(runKernel("gather", {&data, &floats}, {&y2}, attrsOf({{"axis", int64_t{1}}})),
            "gather: indices must be i64 or i32, not f32");
}

TEST(DataMovement, GatherElements) {
  Owned data = randomTensor({3, 4});
  Owned indices = tensorOf(DType::I64, {2, 4}, {0, 2, -1, 1, 2, 0, 0, -3});
  Owned y(DType::F32, {2, 4});
  EXPECT_RUNS("gather_elements", {&data, &indices}, {&y}, attrsOf({{"axis", int64_t{0}}}));
  for (int64_t i = 0; i < 8; ++i) {
    int64_t index = static_cast<int64_t>(loadValue(indices, i));
    EXPECT_EQ(loadValue(y, i), loadValue(data, (index < 0 ? index + 3 : index) * 4 + i % 4));
  }
  Owned along = tensorOf(DType::I32, {3, 2}, {3, 0, 1, 1, -1, 2}), y2(DType::F32, {3, 2});
  EXPECT_RUNS("gather_elements", {&data, &along}, {&y2}, attrsOf({{"axis", int64_t{-1}}}));
  EXPECT_EQ(loadValue(y2, 0), loadValue(data, 3));
  EXPECT_EQ(loadValue(y2, 4), loadValue(data, 2 * 4 + 3));
  Owned bad = tensorOf(DType::I64, {1, 1}, {3}), y3(DType::F32, {1, 1});
  EXPECT_EQ(runKernel("gather_elements", {&data, &bad}, {&y3}),
            "gather_elements: index 3 out of range for axis 0 of size 3");
}

TEST(DataMovement, ExpandBroadcastsToOutput) {
  Owned x = randomTensor({3, 1}), y(DType::F32, {2, 3, 4});
  EXPECT_RUNS("expand", {&x}, {&y});
  for (int64_t i = 0; i < y.numel(); ++i)
    ASSERT_EQ(loadValue(y, i), loadValue(x, broadcastSource(unravel(i, {2, 3, 4}), {3, 1})));
  Owned bad(DType::F32, {2, 4});
  EXPECT_EQ(runKernel("expand", {&x}, {&bad}), "expand: 3x1 does not broadcast to 2x4");
}

TEST(DataMovement, TriluUpperAndLowerWithOffset) {
  Owned x = randomTensor({2, 4, 5});
  for (bool upper : {true, false})
    for (int64_t k : {-2, -1, 0, 1, 3, 7}) {
      Owned y(DType::F32, {2, 4, 5});
      ASSERT_EQ(runKernel("trilu", {&x}, {&y}, attrsOf({{"upper", upper}, {"k", k}})), "");
      for (int64_t i = 0; i < y.numel(); ++i) {
        Shape index = unravel(i, {2, 4, 5});
        const int64_t diff = index[2] - index[1];
        const bool keep = upper ? diff >= k : diff <= k;
        ASSERT_EQ(loadValue(y, i), keep ? loadValue(x, i) : 0.0) << upper << " k=" << k;
      }
    }
}

TEST(DataMovement, EmbeddingRowsAndOutOfRangeId) {
  Owned table = randomTensor({512, 4}, DType::BF16);
  Owned ids = tensorOf(DType::I64, {2, 3}, {0, 511, 7, 7, 100, 3});
  Owned y(DType::BF16, {2, 3, 4});
  EXPECT_RUNS("embedding", {&table, &ids}, {&y});
  for (int64_t i = 0; i < y.numel(); ++i)
    ASSERT_EQ(loadValue(y, i), loadValue(table, static_cast<int64_t>(loadValue(ids, i / 4)) * 4 + i % 4));
  Owned bad = tensorOf(DType::I32, {2}, {3, 600}), y2(DType::BF16, {2, 4});
  EXPECT_EQ(runKernel("embedding", {&table, &bad}, {&y2}),
            "embedding: id 600 is outside the vocabulary [0, 512)");
  Owned negative = tensorOf(DType::I64, {1}, {-1}), y3(DType::BF16, {1, 4});
  EXPECT_EQ(runKernel("embedding", {&table, &negative}, {&y3}),
            "embedding: id -1 is outside the vocabulary [0, 512)");
}

TEST(DataMovement, EmbeddingVocabularyParallelRows) {
  // This rank holds rows [4, 8) of a 12-row table (its first row is the third input, as
  // sc-partition computes it): its ids give rows, the others zeros.
  Owned table = randomTensor({4, 3}, DType::F32);
  Owned ids = tensorOf(DType::I64, {4}, {0, 5, 7, 11});
  Owned start = tensorOf(DType::I64, {}, {4});
  Owned y(DType::F32, {4, 3});
  Attrs attrs = attrsOf({{"vocab_size", int64_t(12)}});
  ASSERT_EQ(runKernel("embedding", {&table, &ids, &start}, {&y}, attrs), "");
  for (int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(loadValue(y, j), 0.0);
    EXPECT_EQ(loadValue(y, 3 + j), loadValue(table, 1 * 3 + j));
    EXPECT_EQ(loadValue(y, 6 + j), loadValue(table, 3 * 3 + j));
    EXPECT_EQ(loadValue(y, 9 + j), 0.0);
  }
  Owned bad = tensorOf(DType::I64, {1}, {12}), y2(DType::F32, {1, 3});
  EXPECT_EQ(runKernel("embedding", {&table, &bad, &start}, {&y2}, attrs),
            "embedding: id 12 is outside the vocabulary [0, 12)");
  EXPECT_EQ(runKernel("embedding", {&table, &ids, &start}, {&y}),
            "embedding: a row_start needs the attribute vocab_size");
  Owned narrow = tensorOf(DType::I32, {}, {4});
  EXPECT_EQ(runKernel("embedding", {&table, &ids, &narrow}, {&y}, attrs),
            "embedding: row_start must be one i64, got i32 scalar");
}

TEST(DataMovement, DynamicSliceTakesTheChunkAtItsStart) {
  // [2, 6, 3] sliced to 2 rows of axis 1 from start 4 (rank 2's chunk of three).
  Owned x = randomTensor({2, 6, 3});
  Owned start = tensorOf(DType::I64, {}, {4});
  Owned y(DType::F32, {2, 2, 3});
  ASSERT_EQ(runKernel("dynamic_slice", {&x, &start}, {&y}, attrsOf({{"axis", int64_t(1)}})), "");
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape index = unravel(i, {2, 2, 3});
    index[1] += 4;
    ASSERT_EQ(loadValue(y, i), loadValue(x, ravel(index, {2, 6, 3}))) << i;
  }
  // The last axis counted from the end, on 8-byte elements.
  Owned w = tensorOf(DType::I64, {2, 4}, {0, 1, 2, 3, 10, 11, 12, 13}), one = tensorOf(DType::I64, {}, {1});
  Owned v(DType::I64, {2, 2});
  ASSERT_EQ(runKernel("dynamic_slice", {&w, &one}, {&v}, attrsOf({{"axis", int64_t(-1)}})), "");
  EXPECT_EQ(valuesOf(v), (std::vector<double>{1, 2, 11, 12}));
  Owned past = tensorOf(DType::I64, {}, {5});
  EXPECT_EQ(runKernel("dynamic_slice", {&x, &past}, {&y}, attrsOf({{"axis", int64_t(1)}})),
            "dynamic_slice: start 5 + 2 is outside [0, 6] on axis 1");
  Owned wrongShape(DType::F32, {2, 2, 2});
  EXPECT_EQ(runKernel("dynamic_slice", {&x, &start}, {&wrongShape}, attrsOf({{"axis", int64_t(1)}})).rfind(
                "dynamic_slice: y", 0),
            0u);
  Owned twoStarts = tensorOf(DType::I64, {2}, {0, 1});
  EXPECT_EQ(runKernel("dynamic_slice", {&x, &twoStarts}, {&y}, attrsOf({{"axis", int64_t(1)}})),
            "dynamic_slice: start must be one i64, got i64 2");
}

// --- normalisation ----------------------------------------------------------------------

void checkNorm(bool layer, const Shape &shape, int64_t axis, const Shape &paramShape,
               DType dtype = DType::F32, double tol = 1e-5) {
  Owned x = randomTensor(shape, dtype, -3, 3), scale = randomTensor(paramShape), bias = randomTensor(paramShape);
  Owned y(dtype, shape);
  const double eps = 1e-5;
  Attrs attrs = attrsOf({{"axis", axis}, {"epsilon", eps}});
  std::string err = layer ? runKernel("layer_norm", {&x, &scale, &bias}, {&y}, attrs)
                          : runKernel("rms_norm", {&x, &scale}, {&y}, attrs);
  ASSERT_EQ(err, "");
  const int64_t a = axis < 0 ? axis + static_cast<int64_t>(shape.size()) : axis;
  Shape normalized(shape.begin() + a, shape.end());
  const int64_t inner = numelOf(normalized), outer = x.numel() / inner;
  std::vector<double> want;
  for (int64_t r = 0; r < outer; ++r) {
    double mean = 0, sq = 0;
    for (int64_t i = 0; i < inner; ++i)
      mean += loadValue(x, r * inner + i) / inner;
    for (int64_t i = 0; i < inner; ++i) {
      double v = loadValue(x, r * inner + i) - (layer ? mean : 0.0);
      sq += v * v / inner;
    }
    for (int64_t i = 0; i < inner; ++i) {
      int64_t p = broadcastSource(unravel(i, normalized), paramShape);
      double v = (loadValue(x, r * inner + i) - (layer ? mean : 0.0)) / std::sqrt(sq + eps) *
                 loadValue(scale, p);
      want.push_back(layer ? v + loadValue(bias, p) : v);
    }
  }
  expectNear(valuesOf(y), want, tol, layer ? "layer_norm" : "rms_norm");
}

TEST(Normalization, RmsNormAndLayerNorm) {
  for (bool layer : {false, true}) {
    checkNorm(layer, {2, 3, 8}, -1, {8});
    checkNorm(layer, {2, 3, 8}, 1, {3, 8});
    checkNorm(layer, {2, 3, 8}, -2, {8}); // the parameter broadcasts over normalised dims
    checkNorm(layer, {4, 16}, 1, {16}, DType::BF16, 2e-2);
  }
  Owned x = randomTensor({2, 8}), scale = randomTensor({7}), y(DType::F32, {2, 8});
  EXPECT_EQ(runKernel("rms_norm", {&x, &scale}, {&y}),
            "rms_norm: scale of shape 7 does not broadcast to the normalised dims 8");
}

TEST(Normalization, LayerNormStatisticsOutputs) {
  Owned x = randomTensor({3, 6}), scale = randomTensor({6});
  Owned y(DType::F32, {3, 6}), mean(DType::F32, {3, 1}), invStd(DType::F32, {3, 1});
  EXPECT_RUNS("layer_norm", {&x, &scale}, {&y, &mean, &invStd});
  for (int64_t r = 0; r < 3; ++r) {
    double m = 0, v = 0;
    for (int64_t i = 0; i < 6; ++i)
      m += loadValue(x, r * 6 + i) / 6;
    for (int64_t i = 0; i < 6; ++i)
      v += std::pow(loadValue(x, r * 6 + i) - m, 2) / 6;
    EXPECT_NEAR(loadValue(mean, r), m, 1e-6);
    EXPECT_NEAR(loadValue(invStd, r), 1 / std::sqrt(v + 1e-5), 1e-4);
  }
}

// --- rotary and attention ---------------------------------------------------------------

TEST(Attention, RotaryRotateHalfWithBroadcastCosSin) {
  const int64_t B = 2, H = 3, S = 4, D = 6;
  Owned x = randomTensor({B, H, S, D}), cos = randomTensor({S, D}), sin = randomTensor({B, 1, S, D});
  Owned y(DType::F32, {B, H, S, D});
  EXPECT_RUNS("rotary", {&x, &cos, &sin}, {&y});
  for (int64_t i = 0; i < y.numel(); ++i) {
    Shape index = unravel(i, {B, H, S, D});
    const int64_t d = index[3];
    Shape partner = index;
    partner[3] = d < D / 2 ? d + D / 2 : d - D / 2;
    const double rotated = (d < D / 2 ? -1.0 : 1.0) * loadValue(x, ravel(partner, {B, H, S, D}));
    const double want = loadValue(x, i) * loadValue(cos, index[2] * D + d) +
                        rotated * loadValue(sin, ravel({index[0], 0, index[2], d}, {B, 1, S, D}));
    ASSERT_NEAR(loadValue(y, i), want, 1e-5);
  }
  Owned odd = randomTensor({1, 1, 2, 5}), c5 = randomTensor({2, 5}), y5(DType::F32, {1, 1, 2, 5});
  EXPECT_EQ(runKernel("rotary", {&odd, &c5, &c5}, {&y5}), "rotary: last dim must be even, got 1x1x2x5");
}

// softmax(q kᵀ scale + mask, causal upper-left) v in double; all -inf rows give zeros.
std::vector<double> attentionReference(const Owned &q, const Owned &k, const Owned &v,
                                       const Owned *mask, double scale, bool causal) {
  const int64_t B = q.view.shape[0], Hq = q.view.shape[1], S = q.view.shape[2], D = q.view.shape[3];
  const int64_t Hkv = k.view.shape[1], T = k.view.shape[2], Dv = v.view.shape[3];
  std::vector<double> y;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < Hq; ++h)
      for (int64_t i = 0; i < S; ++i) {
        const int64_t kvh = h / (Hq / Hkv);
        std::vector<double> scores(T);
        for (int64_t j = 0; j < T; ++j) {
          double s = 0;
          for (int64_t d = 0; d < D; ++d)
            s += loadValue(q, ravel({b, h, i, d}, q.view.shape)) * loadValue(k, ravel({b, kvh, j, d}, k.view.shape));
          s *= scale;
          if (mask) {
            double m = loadValue(*mask, broadcastSource({b, h, i, j}, mask->view.shape));
            s = mask->view.dtype == DType::Bool ? (m ? s : -INFINITY) : s + m;
          }
          if (causal && j > i)
            s = -INFINITY;
          scores[j] = s;
        }
        double maxScore = -INFINITY;
        for (double s : scores)
          maxScore = std::max(maxScore, s);
        double sum = 0;
        for (double &s : scores) {
          s = maxScore == -INFINITY ? 0.0 : std::exp(s - maxScore);
          sum += s;
        }
        for (int64_t e = 0; e < Dv; ++e) {
          double acc = 0;
          for (int64_t j = 0; j < T; ++j)
            acc += scores[j] * loadValue(v, ravel({b, kvh, j, e}, v.view.shape));
          y.push_back(sum > 0 ? acc / sum : 0.0);
        }
      }
  return y;
}

struct AttentionCase {
  int64_t B, Hq, Hkv, S, T, D, Dv;
  bool causal;
  Shape maskShape; // empty: no mask
};

TEST(Attention, MatchesReferenceAcrossShapesMasksAndCausal) {
  const std::vector<AttentionCase> cases = {
      {1, 2, 2, 5, 5, 8, 8, false, {}},
      {2, 4, 2, 6, 6, 8, 4, true, {}},           // GQA + causal
      {2, 4, 1, 3, 7, 4, 4, false, {2, 1, 3, 7}}, // MQA, S != T, per-batch mask
      {1, 2, 2, 4, 6, 4, 4, true, {4, 6}},        // causal with S < T (upper-left aligned)
      {1, 3, 3, 70, 70, 4, 4, true, {}},          // crosses the 64-row query block
      {1, 2, 1, 65, 9, 4, 2, false, {1, 2, 65, 9}},
      {1, 1, 1, 3, 0, 4, 4, false, {}},            // no keys: zeros
  };
  for (const AttentionCase &c : cases) {
    Owned q = randomTensor({c.B, c.Hq, c.S, c.D}), k = randomTensor({c.B, c.Hkv, c.T, c.D});
    Owned v = randomTensor({c.B, c.Hkv, c.T, c.Dv}), y(DType::F32, {c.B, c.Hq, c.S, c.Dv});
    Owned mask = randomTensor(c.maskShape.empty() ? Shape{1} : c.maskShape, DType::F32, -3, 1);
    std::vector<Owned *> ins = {&q, &k, &v};
    if (!c.maskShape.empty())
      ins.push_back(&mask);
    const double scale = 0.3;
    ASSERT_EQ(runKernel("attention", ins, {&y}, attrsOf({{"scale", scale}, {"causal", c.causal}})), "");
    expectNear(valuesOf(y),
               attentionReference(q, k, v, c.maskShape.empty() ? nullptr : &mask, scale, c.causal), 1e-5,
               ("S=" + std::to_string(c.S)).c_str());
  }
}

// A sliding window (sc.window, causal): query i sees keys i - w < j <= i. With the exact banded
// mask beside it (as sc-raise-attention leaves it) the result is the mask's; with an all-zero
// mask the window alone must exclude the older keys, so the kernel does read it. Windows
// narrower and wider than the 64-row query block, GQA, S = T = 150.
TEST(Attention, SlidingWindowSkipsKeysBeforeTheBand) {
  const int64_t S = 150, D = 8;
  Owned q = randomTensor({1, 4, S, D}), k = randomTensor({1, 2, S, D}), v = randomTensor({1, 2, S, D});
  for (int64_t w : {1, 20, 70, 149}) {
    Owned band(DType::F32, {S, S}), zero(DType::F32, {S, S}), y(DType::F32, {1, 4, S, D});
    for (int64_t i = 0; i < S; ++i)
      for (int64_t j = 0; j < S; ++j) {
        band.as<float>()[i * S + j] = j <= i && i - j < w ? 0.0f : -3.4e38f;
        zero.as<float>()[i * S + j] = 0.0f;
      }
    const std::vector<double> want = attentionReference(q, k, v, &band, 0.3, false);
    Attrs attrs = attrsOf({{"scale", 0.3}, {"causal", true}, {"window", w}});
    EXPECT_RUNS("attention", {&q, &k, &v, &band}, {&y}, attrs);
    expectNear(valuesOf(y), want, 1e-5, ("band w=" + std::to_string(w)).c_str());
    EXPECT_RUNS("attention", {&q, &k, &v, &zero}, {&y}, attrs);
    expectNear(valuesOf(y), want, 1e-5, ("window alone w=" + std::to_string(w)).c_str());
  }
}

TEST(Attention, GqaEqualsExplicitlyExpandedHeads) {
  const int64_t B = 2, Hq = 6, Hkv = 2, S = 5, T = 7, D = 8;
  Owned q = randomTensor({B, Hq, S, D}), k = randomTensor({B, Hkv, T, D}), v = randomTensor({B, Hkv, T, D});
  Owned kx(DType::F32, {B, Hq, T, D}), vx(DType::F32, {B, Hq, T, D});
  for (int64_t i = 0; i < kx.numel(); ++i) {
    Shape index = unravel(i, {B, Hq, T, D});
    index[1] /= Hq / Hkv; // query head h uses kv head h / (Hq / Hkv)
    kx.as<float>()[i] = k.as<float>()[ravel(index, {B, Hkv, T, D})];
    vx.as<float>()[i] = v.as<float>()[ravel(index, {B, Hkv, T, D})];
  }
  Owned grouped(DType::F32, {B, Hq, S, D}), expanded(DType::F32, {B, Hq, S, D});
  Attrs attrs = attrsOf({{"scale", 0.25}, {"causal", true}});
  EXPECT_RUNS("attention", {&q, &k, &v}, {&grouped}, attrs);
  EXPECT_RUNS("attention", {&q, &kx, &vx}, {&expanded}, attrs);
  expectNear(valuesOf(grouped), valuesOf(expanded), 1e-6, "gqa");
}

TEST(Attention, FullyMaskedRowsGiveZerosAndBoolMasks) {
  const int64_t S = 3, T = 4, D = 4;
  Owned q = randomTensor({1, 1, S, D}), k = randomTensor({1, 1, T, D}), v = randomTensor({1, 1, T, D});
  Owned mask = tensorOf(DType::F32, {S, T}, {0, 0, -INFINITY, 0,                     //
                                             -INFINITY, -INFINITY, -INFINITY, -INFINITY, // all masked
                                             0, -1, 0, -INFINITY});
  Owned y(DType::F32, {1, 1, S, D});
  EXPECT_RUNS("attention", {&q, &k, &v, &mask}, {&y}, attrsOf({{"scale", 0.5}}));
  for (int64_t d = 0; d < D; ++d)
    EXPECT_EQ(loadValue(y, 1 * D + d), 0.0);
  expectNear(valuesOf(y), attentionReference(q, k, v, &mask, 0.5, false), 1e-5, "masked");
  Owned keep = tensorOf(DType::Bool, {1, T}, {1, 0, 1, 1});
  EXPECT_RUNS("attention", {&q, &k, &v, &keep}, {&y}, attrsOf({{"scale", 0.5}}));
  expectNear(valuesOf(y), attentionReference(q, k, v, &keep, 0.5, false), 1e-5, "bool mask");
  // No scale attribute: 1/sqrt(D).
  EXPECT_RUNS("attention", {&q, &k, &v}, {&y});
  expectNear(valuesOf(y), attentionReference(q, k, v, nullptr, 0.5, false), 1e-5, "default scale");
}

TEST(Attention, Bf16ComputesThroughF32) {
  Owned q = randomTensor({1, 2, 4, 8}, DType::BF16), k = randomTensor({1, 1, 4, 8}, DType::BF16);
  Owned v = randomTensor({1, 1, 4, 8}, DType::BF16), y(DType::BF16, {1, 2, 4, 8});
  EXPECT_RUNS("attention", {&q, &k, &v}, {&y}, attrsOf({{"scale", 0.35}, {"causal", true}}));
  expectNear(valuesOf(y), attentionReference(q, k, v, nullptr, 0.35, true), 1e-2, "bf16");
}

TEST(Attention, ShapeErrors) {
  Owned q = randomTensor({1, 3, 4, 8}), k = randomTensor({1, 2, 4, 8}), v = randomTensor({1, 2, 4, 8});
  Owned y(DType::F32, {1, 3, 4, 8});
  EXPECT_EQ(runKernel("attention", {&q, &k, &v}, {&y}),
            "attention: 3 query heads are not a multiple of 2 kv heads");
  Owned k4 = randomTensor({1, 3, 4, 6});
  EXPECT_EQ(runKernel("attention", {&q, &k4, &v}, {&y}),
            "attention: inconsistent shapes q 1x3x4x8, k 1x3x4x6, v 1x2x4x8");
  Owned k3 = randomTensor({1, 3, 4, 8}), v3 = randomTensor({1, 3, 4, 8}), mask = randomTensor({2, 4});
  EXPECT_EQ(runKernel("attention", {&q, &k3, &v3, &mask}, {&y}),
            "attention: mask of shape 2x4 does not broadcast to 1x3x4x4");
}

} // namespace

// token_loss against values computed by hand: logits [1, 3, 3] with labels [2, -100, 0].
// Row 0: logits (1, 2, 3), label 2: log(e^1 + e^2 + e^3) - 3 = log(1 + e^-1 + e^-2) = 0.40760596.
// Row 1 is ignored (-100). Row 2: logits (0, 0, 0), label 0: log 3 = 1.09861229.
// Sum 1.50621825, count 2.
TEST(TokenLoss, HandComputedSumAndCount) {
  for (DType dt : {DType::F32, DType::BF16}) {
    Owned x = tensorOf(dt, {1, 3, 3}, {1, 2, 3, 50, -7, 9, 0, 0, 0});
    Owned labels = tensorOf(DType::I64, {1, 3}, {2, -100, 0});
    Owned sum(DType::F32, {}), count(DType::F32, {});
    EXPECT_RUNS("token_loss", {&x, &labels}, {&sum, &count});
    EXPECT_NEAR(sum.as<float>()[0], 0.40760596 + 1.09861229, 1e-6) << dtypeName(dt);
    EXPECT_EQ(count.as<float>()[0], 2.0f) << dtypeName(dt);
  }
}

// A large logit does not overflow: the row's max is subtracted before exp.
TEST(TokenLoss, LargeLogitsAreStable) {
  Owned x = tensorOf(DType::F32, {1, 1, 2}, {1000, 999});
  Owned labels = tensorOf(DType::I64, {1, 1}, {1});
  Owned sum(DType::F32, {}), count(DType::F32, {});
  EXPECT_RUNS("token_loss", {&x, &labels}, {&sum, &count});
  EXPECT_NEAR(sum.as<float>()[0], 1.31326169, 1e-6); // log(1 + e) = softplus(1)
  EXPECT_EQ(count.as<float>()[0], 1.0f);
}

TEST(TokenLoss, LabelOutOfRangeIsAnError) {
  Owned x = tensorOf(DType::F32, {1, 1, 2}, {0, 0});
  Owned labels = tensorOf(DType::I64, {1, 1}, {2});
  Owned sum(DType::F32, {}), count(DType::F32, {});
  EXPECT_EQ(runKernel("token_loss", {&x, &labels}, {&sum, &count}),
            "token_loss: label 2 at position 0 is outside [0, 2) and is not the ignore index -100");
}

// ONNX comparisons, remainders, scans and index ops (IndexOps.cpp, Elementwise.cpp).
TEST(IndexOps, CompareRemaindersAndLeakyRelu) {
  Owned a = tensorOf(DType::F32, {4}, {1, 2, 3, std::nan("")}), b = tensorOf(DType::F32, {1}, {2});
  Owned lt(DType::Bool, {4}), le(DType::Bool, {4});
  EXPECT_RUNS("less", {&a, &b}, {&lt});
  EXPECT_RUNS("less_equal", {&a, &b}, {&le});
  EXPECT_EQ(valuesOf(lt), (std::vector<double>{1, 0, 0, 0}));
  EXPECT_EQ(valuesOf(le), (std::vector<double>{1, 1, 0, 0}));
  Owned x = tensorOf(DType::I64, {4}, {-7, 7, -7, 7}), y = tensorOf(DType::I64, {4}, {3, -3, -1, 3});
  Owned mod(DType::I64, {4}), fmod(DType::I64, {4});
  EXPECT_RUNS("mod", {&x, &y}, {&mod});
  EXPECT_RUNS("fmod", {&x, &y}, {&fmod});
  EXPECT_EQ(valuesOf(mod), (std::vector<double>{2, -2, 0, 1}));   // the divisor's sign
  EXPECT_EQ(valuesOf(fmod), (std::vector<double>{-1, 1, 0, 1}));  // the dividend's sign
  Owned zero = tensorOf(DType::I64, {1}, {0});
  EXPECT_EQ(runKernel("mod", {&x, &zero}, {&mod}), "mod: integer division by zero");
  Owned f = tensorOf(DType::F32, {3}, {-2, 0, 3}), alpha = tensorOf(DType::F32, {}, {0.5}), g(DType::F32, {3});
  EXPECT_RUNS("leaky_relu", {&f, &alpha}, {&g});
  EXPECT_EQ(valuesOf(g), (std::vector<double>{-1, 0, 3}));
}

TEST(IndexOps, CumsumArgMaxScatterNd) {
  Owned x = tensorOf(DType::I32, {2, 3}, {1, 2, 3, 4, 5, 6}), y(DType::I32, {2, 3});
  EXPECT_RUNS("cumsum", {&x}, {&y}, attrsOf({{"axis", int64_t{1}}}));
  EXPECT_EQ(valuesOf(y), (std::vector<double>{1, 3, 6, 4, 9, 15}));
  EXPECT_RUNS("cumsum", {&x}, {&y}, attrsOf({{"axis", int64_t{0}}, {"exclusive", true}, {"reverse", true}}));
  EXPECT_EQ(valuesOf(y), (std::vector<double>{4, 5, 6, 0, 0, 0}));

  Owned v = tensorOf(DType::F32, {2, 3}, {1, 3, 3, std::nan(""), 9, std::nan("")}), idx(DType::I64, {2});
  EXPECT_RUNS("arg_max", {&v}, {&idx}, attrsOf({{"axis", int64_t{1}}, {"keepdims", false}}));
  EXPECT_EQ(valuesOf(idx), (std::vector<double>{1, 0})); // the first of ties; the first NaN
  EXPECT_RUNS("arg_max", {&v}, {&idx}, attrsOf({{"axis", int64_t{1}}, {"select_last_index", true}}));
  EXPECT_EQ(valuesOf(idx)[0], 2);

  Owned data = tensorOf(DType::F32, {3, 2}, {1, 1, 1, 1, 1, 1}), where = tensorOf(DType::I64, {2, 1}, {-1, 0});
  Owned upd = tensorOf(DType::F32, {2, 2}, {5, 6, 7, 8}), out(DType::F32, {3, 2});
  EXPECT_RUNS("scatter_nd", {&data, &where, &upd}, {&out}, attrsOf({{"reduction", std::string("add")}}));
  EXPECT_EQ(valuesOf(out), (std::vector<double>{8, 9, 1, 1, 6, 7}));
  Owned far = tensorOf(DType::I64, {2, 1}, {3, 0});
  EXPECT_EQ(runKernel("scatter_nd", {&data, &far, &upd}, {&out}),
            "scatter_nd: index 3 out of range for dim 0 of size 3");
}
