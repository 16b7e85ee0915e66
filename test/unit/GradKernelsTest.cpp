// Unit tests of the backward kernels (runtime/kernels/cpu/Gradients.cpp) and attention's lse
// output: each analytic gradient against central finite differences of a scalar objective
// L = sum(w * f(x)) with random w, in f64 where the kernel computes f64 (attention_grad,
// embedding_grad), against an f64 reference of the loss for token_loss_grad's f32 result;
// 16-bit paths against the f32 ones; and the one-line errors.
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/ManifestSchema.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>

namespace {

using namespace shardc::rt;
using Shape = std::vector<int64_t>;
using Values = std::vector<double>;

constexpr double kInf = std::numeric_limits<double>::infinity();

int64_t numelOf(const Shape &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

// A test tensor that owns its bytes (moving keeps the buffer, so the view stays valid).
struct Owned {
  std::vector<uint8_t> bytes;
  TensorView view;
  Owned(DType dtype, Shape shape) {
    bytes.assign(static_cast<size_t>(numelOf(shape)) * dtypeSize(dtype) + 8, 0xAB);
    view = TensorView{bytes.data(), dtype, std::move(shape)};
  }
  Owned(Owned &&) = default;
  Owned(const Owned &) = delete;
};

void store(Owned &t, int64_t i, double v) {
  void *p = t.view.data;
  switch (t.view.dtype) {
  case DType::F32: static_cast<float *>(p)[i] = static_cast<float>(v); break;
  case DType::F64: static_cast<double *>(p)[i] = v; break;
  case DType::F16: static_cast<uint16_t *>(p)[i] = f32ToF16(static_cast<float>(v)); break;
  case DType::BF16: static_cast<uint16_t *>(p)[i] = f32ToBf16(static_cast<float>(v)); break;
  case DType::I64: static_cast<int64_t *>(p)[i] = static_cast<int64_t>(v); break;
  case DType::I32: static_cast<int32_t *>(p)[i] = static_cast<int32_t>(v); break;
  case DType::Bool: static_cast<uint8_t *>(p)[i] = v != 0; break;
  default: FAIL() << "unused dtype";
  }
}

double load(const Owned &t, int64_t i) {
  const void *p = t.view.data;
  switch (t.view.dtype) {
  case DType::F32: return static_cast<const float *>(p)[i];
  case DType::F64: return static_cast<const double *>(p)[i];
  case DType::F16: return f16ToF32(static_cast<const uint16_t *>(p)[i]);
  case DType::BF16: return bf16ToF32(static_cast<const uint16_t *>(p)[i]);
  case DType::I64: return static_cast<double>(static_cast<const int64_t *>(p)[i]);
  case DType::I32: return static_cast<const int32_t *>(p)[i];
  case DType::Bool: return static_cast<const uint8_t *>(p)[i];
  default: return 0;
  }
}

Owned tensor(DType dtype, Shape shape, const Values &values) {
  Owned t(dtype, std::move(shape));
  EXPECT_EQ(static_cast<int64_t>(values.size()), t.view.numel());
  for (int64_t i = 0; i < t.view.numel(); ++i)
    store(t, i, values[static_cast<size_t>(i)]);
  return t;
}

Values valuesOf(const Owned &t) {
  Values v(static_cast<size_t>(t.view.numel()));
  for (int64_t i = 0; i < t.view.numel(); ++i)
    v[static_cast<size_t>(i)] = load(t, i);
  return v;
}

// `values` as `dtype` would store them (rounded to bf16, f16, f32).
Values roundedTo(DType dtype, const Values &values) {
  return valuesOf(tensor(dtype, {static_cast<int64_t>(values.size())}, values));
}

std::mt19937 &rng() {
  static std::mt19937 gen(20261206);
  return gen;
}

Values randomValues(int64_t n, double lo = -1.0, double hi = 1.0) {
  std::uniform_real_distribution<double> dist(lo, hi);
  Values v(static_cast<size_t>(n));
  for (double &x : v)
    x = dist(rng());
  return v;
}

Attrs attrsOf(std::initializer_list<std::pair<const char *, AttrValue>> values) {
  Attrs a;
  for (const auto &kv : values)
    a.set(kv.first, kv.second);
  return a;
}

std::string runKernel(const std::string &op, std::vector<const Owned *> ins, std::vector<Owned *> outs,
                      const Attrs &attrs = Attrs()) {
  KernelFn fn = lookupCpuKernel(op);
  if (!fn)
    return "no kernel for " + op;
  KernelArgs args;
  for (const Owned *t : ins)
    args.in.push_back(t->view);
  for (Owned *t : outs)
    args.out.push_back(t->view);
  args.attrs = &attrs;
  return fn(args);
}

#define EXPECT_RUNS(...) EXPECT_EQ(runKernel(__VA_ARGS__), "")

// The largest finite |x|.
double maxAbs(const Values &v) {
  double m = 0;
  for (double x : v)
    if (std::isfinite(x))
      m = std::max(m, std::fabs(x));
  return m;
}

// Every element of `got` within atol + rtol * max|want| of `want` (infinities equal).
void expectClose(const Values &got, const Values &want, double rtol, const std::string &what,
                 double atol = 0.0) {
  ASSERT_EQ(got.size(), want.size()) << what;
  const double tol = atol + rtol * maxAbs(want);
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::isinf(want[i]))
      EXPECT_EQ(got[i], want[i]) << what << " at " << i;
    else
      EXPECT_NEAR(got[i], want[i], tol) << what << " at " << i;
  }
}

// Central differences of `objective` at `x` for the elements `which` (all when empty).
Values finiteDifferences(Values &x, double h, const std::function<double()> &objective,
                         const std::vector<size_t> &which = {}) {
  Values g(x.size(), 0.0);
  auto one = [&](size_t i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = objective();
    x[i] = saved - h;
    const double down = objective();
    x[i] = saved;
    g[i] = (up - down) / (2 * h);
  };
  if (which.empty())
    for (size_t i = 0; i < x.size(); ++i)
      one(i);
  else
    for (size_t i : which)
      one(i);
  return g;
}

double dot(const Values &a, const Values &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i)
    s += a[i] * b[i];
  return s;
}

// --- attention: an f64 reference of the forward (output and lse) -----------------------

struct AttentionProblem {
  int64_t B, Hq, Hkv, S, T, D, Dv;
  bool causal = false;
  double scale = 0; // 0: the default 1/sqrt(D), through an absent attribute
  Shape maskShape;  // empty: no mask
  bool boolMask = false;
  Values q, k, v, mask;

  Shape qShape() const { return {B, Hq, S, D}; }
  Shape kShape() const { return {B, Hkv, T, D}; }
  Shape vShape() const { return {B, Hkv, T, Dv}; }
  Shape outShape() const { return {B, Hq, S, Dv}; }
  Shape lseShape() const { return {B, Hq, S}; }
  double effectiveScale() const { return scale != 0 ? scale : 1.0 / std::sqrt(double(D)); }
  Attrs attrs() const {
    Attrs a;
    if (scale != 0)
      a.set("scale", scale);
    if (causal)
      a.set("causal", true);
    return a;
  }

  double maskAt(int64_t b, int64_t h, int64_t i, int64_t j) const {
    const int64_t full[4] = {b, h, i, j};
    const size_t lead = 4 - maskShape.size();
    int64_t flat = 0;
    for (size_t d = 0; d < maskShape.size(); ++d)
      flat = flat * maskShape[d] + (maskShape[d] == 1 ? 0 : full[lead + d]);
    return mask[static_cast<size_t>(flat)];
  }

  // out [B, Hq, S, Dv] and lse [B, Hq, S] in f64.
  void forward(Values &out, Values &lse) const {
    out.assign(static_cast<size_t>(numelOf(outShape())), 0.0);
    lse.assign(static_cast<size_t>(numelOf(lseShape())), 0.0);
    Values s(static_cast<size_t>(T));
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < Hq; ++h)
        for (int64_t i = 0; i < S; ++i) {
          const int64_t g = h / (Hq / Hkv), row = (b * Hq + h) * S + i;
          double m = -kInf;
          for (int64_t j = 0; j < T; ++j) {
            double x = 0;
            for (int64_t d = 0; d < D; ++d)
              x += q[row * D + d] * k[((b * Hkv + g) * T + j) * D + d];
            x *= effectiveScale();
            if (!maskShape.empty())
              x = boolMask ? (maskAt(b, h, i, j) != 0 ? x : -kInf) : x + maskAt(b, h, i, j);
            if (causal && j > i)
              x = -kInf;
            s[j] = x;
            m = std::max(m, x);
          }
          if (m == -kInf) {
            lse[row] = -kInf;
            continue;
          }
          double sum = 0;
          for (int64_t j = 0; j < T; ++j)
            sum += std::exp(s[j] - m);
          lse[row] = m + std::log(sum);
          for (int64_t j = 0; j < T; ++j) {
            const double p = std::exp(s[j] - lse[row]);
            for (int64_t e = 0; e < Dv; ++e)
              out[row * Dv + e] += p * v[((b * Hkv + g) * T + j) * Dv + e];
          }
        }
  }

  // The additive mask in f32, or f64 for the f64 kernel (the grad kernel takes either).
  Owned maskTensor(DType additive = DType::F32) const {
    return tensor(boolMask ? DType::Bool : additive, maskShape, mask);
  }
};

AttentionProblem randomProblem(int64_t B, int64_t Hq, int64_t Hkv, int64_t S, int64_t T, int64_t D, int64_t Dv) {
  AttentionProblem p{B, Hq, Hkv, S, T, D, Dv};
  p.q = randomValues(numelOf(p.qShape()), -1.5, 1.5);
  p.k = randomValues(numelOf(p.kShape()), -1.5, 1.5);
  p.v = randomValues(numelOf(p.vShape()));
  return p;
}

struct AttentionGrads {
  Values dq, dk, dv;
};

// Runs attention_grad with q, k, v, out, dout in `dtype`, lse in f32 (the contract's form).
AttentionGrads runAttentionGrad(const AttentionProblem &p, DType dtype, const Values &out, const Values &lse,
                                const Values &dout) {
  Owned q = tensor(dtype, p.qShape(), p.q), k = tensor(dtype, p.kShape(), p.k),
        v = tensor(dtype, p.vShape(), p.v), o = tensor(dtype, p.outShape(), out),
        l = tensor(DType::F32, p.lseShape(), lse), d = tensor(dtype, p.outShape(), dout);
  Owned dq(dtype, p.qShape()), dk(dtype, p.kShape()), dv(dtype, p.vShape());
  std::vector<const Owned *> ins = {&q, &k, &v, &o, &l, &d};
  Owned mask = p.maskShape.empty() ? Owned(DType::F32, {}) : p.maskTensor(dtype == DType::F64 ? DType::F64 : DType::F32);
  if (!p.maskShape.empty())
    ins.push_back(&mask);
  EXPECT_EQ(runKernel("attention_grad", ins, {&dq, &dk, &dv}, p.attrs()), "");
  return {valuesOf(dq), valuesOf(dk), valuesOf(dv)};
}

// Every element of dq, dk, dv (or `samples` random ones each) against central differences
// of L = sum(w * attention(q, k, v)), with the kernel in f64.
void checkAttentionGradient(AttentionProblem p, const std::string &what, size_t samples = 0) {
  Values out, lse;
  p.forward(out, lse);
  const Values w = randomValues(static_cast<int64_t>(out.size()));
  const AttentionGrads g = runAttentionGrad(p, DType::F64, out, lse, w);
  auto objective = [&] {
    Values o, l;
    p.forward(o, l);
    return dot(w, o);
  };
  auto pick = [&](size_t n) {
    std::vector<size_t> which;
    if (samples == 0)
      return which;
    std::uniform_int_distribution<size_t> dist(0, n - 1);
    for (size_t i = 0; i < samples; ++i)
      which.push_back(dist(rng()));
    return which;
  };
  auto compare = [&](Values &x, const Values &analytic, const char *name) {
    std::vector<size_t> which = pick(x.size());
    Values fd = finiteDifferences(x, 1e-6, objective, which);
    Values got = analytic;
    if (!which.empty()) { // compare only the sampled elements
      Values a, b;
      for (size_t i : which) {
        a.push_back(got[i]);
        b.push_back(fd[i]);
      }
      got = a;
      fd = b;
    }
    ASSERT_GT(maxAbs(fd), 1e-3) << what << " " << name << ": a gradient that is all zero tests nothing";
    expectClose(got, fd, 2e-5, what + " " + name);
  };
  compare(p.q, g.dq, "dq");
  compare(p.k, g.dk, "dk");
  compare(p.v, g.dv, "dv");
}

TEST(AttentionGrad, GqaCausalMatchesFiniteDifferences) {
  AttentionProblem p = randomProblem(2, 4, 2, 5, 5, 3, 4);
  p.causal = true;
  checkAttentionGradient(p, "gqa causal");
}

TEST(AttentionGrad, AdditiveMaskWithMaskedEntriesAndRows) {
  AttentionProblem p = randomProblem(1, 4, 2, 4, 6, 3, 2);
  p.scale = 0.7;
  p.maskShape = {1, 1, 4, 6};
  p.mask = randomValues(24);
  p.mask[3] = -kInf;             // one masked key in row 0
  for (int64_t j = 0; j < 6; ++j) // row 2 sees nothing: lse -inf, zero output and gradient
    p.mask[static_cast<size_t>(2 * 6 + j)] = -kInf;
  checkAttentionGradient(p, "additive mask");
}

TEST(AttentionGrad, BoolMaskAndCausal) {
  AttentionProblem p = randomProblem(1, 2, 1, 4, 4, 2, 3);
  p.causal = true;
  p.maskShape = {1, 2, 4, 4};
  p.boolMask = true;
  for (int64_t x = 0; x < 32; ++x)
    p.mask.push_back((x % 5 == 3) ? 0.0 : 1.0);
  for (int64_t j = 0; j < 4; ++j) // head 1, row 1: nothing to attend to
    p.mask[static_cast<size_t>((1 * 4 + 1) * 4 + j)] = 0.0;
  checkAttentionGradient(p, "bool mask");
}

TEST(AttentionGrad, FewerQueriesThanKeysWithAnExplicitMask) {
  // A KV cache: 3 new queries after 4 cached keys, query i sees keys j <= i + 4.
  AttentionProblem p = randomProblem(2, 4, 2, 3, 7, 4, 3);
  p.maskShape = {3, 7};
  p.boolMask = true;
  for (int64_t i = 0; i < 3; ++i)
    for (int64_t j = 0; j < 7; ++j)
      p.mask.push_back(j <= i + 4 ? 1.0 : 0.0);
  checkAttentionGradient(p, "S < T");
}

TEST(AttentionGrad, SeveralQueryBlocksSampled) {
  // 70 query rows: two blocks of the kernel's 64, causal so the second block sees more keys.
  AttentionProblem p = randomProblem(1, 2, 1, 70, 70, 4, 4);
  p.causal = true;
  checkAttentionGradient(p, "blocks", 40);
}

// The f32 path (sgemm) from the f32 forward's own out and lse, against the f64 kernel; and
// bf16 inputs (through the f32 wrapper, three outputs) against f32 on the same rounded values.
TEST(AttentionGrad, Float32AndBf16AgreeWithFloat64) {
  AttentionProblem p = randomProblem(1, 4, 2, 70, 66, 8, 6);
  p.causal = true;
  p.maskShape = {1, 1, 70, 66};
  p.mask = randomValues(70 * 66, -0.5, 0.5);
  p.q = roundedTo(DType::BF16, p.q);
  p.k = roundedTo(DType::BF16, p.k);
  p.v = roundedTo(DType::BF16, p.v);
  Values out64, lse64;
  p.forward(out64, lse64);
  const Values w = roundedTo(DType::BF16, randomValues(static_cast<int64_t>(out64.size())));
  const AttentionGrads want = runAttentionGrad(p, DType::F64, out64, lse64, w);

  Owned q = tensor(DType::F32, p.qShape(), p.q), k = tensor(DType::F32, p.kShape(), p.k),
        v = tensor(DType::F32, p.vShape(), p.v), mask = p.maskTensor();
  Owned y(DType::F32, p.outShape()), lse(DType::F32, p.lseShape());
  ASSERT_EQ(runKernel("attention", {&q, &k, &v, &mask}, {&y, &lse}, p.attrs()), "");
  const AttentionGrads f32 = runAttentionGrad(p, DType::F32, valuesOf(y), valuesOf(lse), w);
  expectClose(f32.dq, want.dq, 1e-4, "f32 dq");
  expectClose(f32.dk, want.dk, 1e-4, "f32 dk");
  expectClose(f32.dv, want.dv, 1e-4, "f32 dv");

  const Values outBf16 = roundedTo(DType::BF16, valuesOf(y));
  const AttentionGrads ref = runAttentionGrad(p, DType::F32, outBf16, valuesOf(lse), w);
  const AttentionGrads bf16 = runAttentionGrad(p, DType::BF16, outBf16, valuesOf(lse), w);
  expectClose(bf16.dq, ref.dq, 1e-2, "bf16 dq");
  expectClose(bf16.dk, ref.dk, 1e-2, "bf16 dk");
  expectClose(bf16.dv, ref.dv, 1e-2, "bf16 dv");
}

// --- attention's lse output ------------------------------------------------------------------

TEST(AttentionLse, MatchesTheDirectComputation) {
  AttentionProblem p = randomProblem(2, 4, 2, 67, 67, 8, 4);
  p.causal = true;
  p.maskShape = {2, 1, 67, 67};
  p.mask = randomValues(2 * 67 * 67);
  for (int64_t j = 0; j < 67; ++j) // batch 1, row 5: all -inf
    p.mask[static_cast<size_t>((67 + 5) * 67 + j)] = -kInf;
  Values out, lse;
  p.forward(out, lse);
  Owned q = tensor(DType::F32, p.qShape(), p.q), k = tensor(DType::F32, p.kShape(), p.k),
        v = tensor(DType::F32, p.vShape(), p.v), mask = p.maskTensor();
  Owned y(DType::F32, p.outShape()), l(DType::F32, p.lseShape()), yOnly(DType::F32, p.outShape());
  ASSERT_EQ(runKernel("attention", {&q, &k, &v, &mask}, {&y, &l}, p.attrs()), "");
  expectClose(valuesOf(l), lse, 1e-6, "lse");
  EXPECT_EQ(load(l, (4 + 2) * 67 + 5), -kInf); // batch 1, any head, row 5
  expectClose(valuesOf(y), out, 1e-5, "y");
  // One output: exactly today's kernel, the same bytes.
  ASSERT_EQ(runKernel("attention", {&q, &k, &v, &mask}, {&yOnly}, p.attrs()), "");
  EXPECT_EQ(std::memcmp(y.view.data, yOnly.view.data, static_cast<size_t>(y.view.numel()) * 4), 0);

  // 16-bit inputs go through the f32 wrapper, which passes the f32 lse through.
  Owned qb = tensor(DType::BF16, p.qShape(), p.q), kb = tensor(DType::BF16, p.kShape(), p.k),
        vb = tensor(DType::BF16, p.vShape(), p.v), yb(DType::BF16, p.outShape());
  p.q = roundedTo(DType::BF16, p.q);
  p.k = roundedTo(DType::BF16, p.k);
  p.v = roundedTo(DType::BF16, p.v);
  p.forward(out, lse);
  ASSERT_EQ(runKernel("attention", {&qb, &kb, &vb, &mask}, {&yb, &l}, p.attrs()), "");
  expectClose(valuesOf(l), lse, 1e-6, "bf16 lse");
}

// The SIMT path is chosen by an environment variable read once per process, so this case runs
// in its own ctest entry (unit.grad_kernels.simt sets it) and is skipped in the others.
TEST(AttentionLse, SimtPathRefusesTwoOutputs) {
  const char *mode = std::getenv("SHARDC_CPU_ATTENTION");
  if (!mode || std::string(mode) != "simt")
    GTEST_SKIP() << "run with SHARDC_CPU_ATTENTION=simt (ctest unit.grad_kernels.simt)";
  Owned q = tensor(DType::BF16, {1, 1, 2, 4}, randomValues(8)), y(DType::BF16, {1, 1, 2, 4}),
        lse(DType::F32, {1, 1, 2});
  EXPECT_EQ(runKernel("attention", {&q, &q, &q}, {&y, &lse}),
            "attention: SHARDC_CPU_ATTENTION=simt does not write the second output lse (unset it for training)");
}

// --- embedding_grad ------------------------------------------------------------------------

// dtable of embedding_grad against central differences of L = sum(w * embedding(table, ids)),
// both kernels in f64; `padding` rows (table rows, after row_start) must be zero instead.
void checkEmbeddingGradient(const Owned &ids, int64_t vocab, int64_t hidden, const Owned *rowStart,
                            int64_t vocabSize, int64_t paddingIdx, const std::string &what) {
  Shape dyShape = ids.view.shape;
  dyShape.push_back(hidden);
  const Values w = randomValues(numelOf(dyShape));
  Owned dy = tensor(DType::F64, dyShape, w), dtable(DType::F64, {vocab, hidden});
  Attrs attrs;
  if (rowStart)
    attrs.set("vocab_size", vocabSize);
  Attrs gradAttrs = attrs;
  if (paddingIdx != -1)
    gradAttrs.set("padding_idx", paddingIdx);
  std::vector<const Owned *> gradIns = {&ids, &dy};
  if (rowStart)
    gradIns.push_back(rowStart);
  ASSERT_EQ(runKernel("embedding_grad", gradIns, {&dtable}, gradAttrs), "") << what;

  Values table = randomValues(vocab * hidden);
  auto objective = [&] {
    Owned t = tensor(DType::F64, {vocab, hidden}, table), y(DType::F64, dyShape);
    std::vector<const Owned *> ins = {&t, &ids};
    if (rowStart)
      ins.push_back(rowStart);
    EXPECT_EQ(runKernel("embedding", ins, {&y}, attrs), "");
    return dot(w, valuesOf(y));
  };
  Values fd = finiteDifferences(table, 1e-6, objective);
  const int64_t start = rowStart ? static_cast<int64_t>(load(*rowStart, 0)) : 0;
  if (paddingIdx >= start && paddingIdx < start + vocab)
    std::fill(fd.begin() + (paddingIdx - start) * hidden, fd.begin() + (paddingIdx - start + 1) * hidden, 0.0);
  ASSERT_GT(maxAbs(fd), 0.1) << what;
  expectClose(valuesOf(dtable), fd, 1e-8, what);
}

TEST(EmbeddingGrad, RepeatedIdsMatchFiniteDifferences) {
  Owned ids = tensor(DType::I64, {2, 5}, {1, 3, 1, 0, 5, 3, 3, 2, 1, 4});
  checkEmbeddingGradient(ids, 6, 3, nullptr, 0, -1, "repeated ids");
  Owned ids32 = tensor(DType::I32, {10}, {1, 3, 1, 0, 5, 3, 3, 2, 1, 4});
  checkEmbeddingGradient(ids32, 6, 3, nullptr, 0, -1, "i32 ids");
}

TEST(EmbeddingGrad, PaddingIdxAddsNothing) {
  Owned ids = tensor(DType::I64, {2, 4}, {2, 0, 2, 1, 3, 2, 0, 1});
  checkEmbeddingGradient(ids, 4, 5, nullptr, 0, 2, "padding_idx 2");
  checkEmbeddingGradient(ids, 4, 5, nullptr, 0, 0, "padding_idx 0");
}

TEST(EmbeddingGrad, RowStartSkipsOtherRanksRows) {
  // This rank holds rows [4, 7) of a 10-row table; ids elsewhere add nothing here.
  Owned ids = tensor(DType::I64, {3, 4}, {0, 4, 9, 5, 6, 6, 3, 7, 4, 8, 5, 1});
  Owned start = tensor(DType::I64, {}, {4});
  checkEmbeddingGradient(ids, 3, 2, &start, 10, -1, "row_start");
  checkEmbeddingGradient(ids, 3, 2, &start, 10, 5, "row_start, padding_idx 5");
  checkEmbeddingGradient(ids, 3, 2, &start, 10, 8, "row_start, padding_idx outside the rows");
}

TEST(EmbeddingGrad, VocabularySlicesAreTheSlicesOfTheWhole) {
  // Two ranks of a vocabulary-split table (embedding_rowwise at tp2): rows [0, 5) and [5, 10),
  // each computed from every id (the ids of the other slice skipped, padding_idx 7 included),
  // are exactly the whole table's gradient's rows.
  Owned ids = tensor(DType::I64, {3, 4}, {0, 4, 9, 5, 6, 6, 3, 7, 4, 8, 5, 1});
  const int64_t hidden = 3;
  Owned dy = tensor(DType::F32, {3, 4, hidden}, randomValues(3 * 4 * hidden));
  for (int64_t padding : {int64_t(-1), int64_t(7)}) {
    Attrs whole, part;
    part.set("vocab_size", int64_t(10));
    if (padding != -1) {
      whole.set("padding_idx", padding);
      part.set("padding_idx", padding);
    }
    Owned all(DType::F32, {10, hidden});
    ASSERT_EQ(runKernel("embedding_grad", {&ids, &dy}, {&all}, whole), "");
    const Values expected = valuesOf(all);
    for (int64_t start : {int64_t(0), int64_t(5)}) {
      Owned first = tensor(DType::I64, {}, {double(start)}), slice(DType::F32, {5, hidden});
      ASSERT_EQ(runKernel("embedding_grad", {&ids, &dy, &first}, {&slice}, part), "");
      const Values got = valuesOf(slice);
      for (int64_t i = 0; i < 5 * hidden; ++i)
        EXPECT_EQ(got[i], expected[start * hidden + i]) << "rows from " << start << ", element " << i;
    }
  }
}

TEST(EmbeddingGrad, SixteenBitAccumulatesInFloat32) {
  // 300 repeats of one id: a bf16 accumulator would stall; f32 then rounding once does not.
  Values idValues(300, 1.0);
  idValues[7] = 0;
  Owned ids = tensor(DType::I64, {300}, idValues);
  const Values w = roundedTo(DType::BF16, randomValues(300 * 2, 0.5, 1.0));
  Owned dy = tensor(DType::BF16, {300, 2}, w), dy32 = tensor(DType::F32, {300, 2}, w);
  Owned d(DType::BF16, {3, 2}), d32(DType::F32, {3, 2});
  EXPECT_RUNS("embedding_grad", {&ids, &dy}, {&d});
  EXPECT_RUNS("embedding_grad", {&ids, &dy32}, {&d32});
  expectClose(valuesOf(d), valuesOf(d32), 4e-3, "bf16");
  EXPECT_EQ(load(d, 4), 0.0);
}

// padding_idx through the manifest (the emitter's writer, the loader): 0 and -1 are stored,
// an absent attribute stays absent, so absent and -1 both mean "none" and 0 means row 0.
Attrs manifestRoundTrip(const std::string &kind, const Attrs &attrs) {
  flatbuffers::FlatBufferBuilder b;
  fb::StepAttrs type;
  flatbuffers::Offset<void> table;
  EXPECT_EQ(buildStepAttrs(b, kind, attrs, type, table), "");
  auto none = b.CreateVector(std::vector<int64_t>{});
  auto step = fb::CreateStep(b, *stepKindByName(kind), none, none, type, table);
  auto steps = b.CreateVector(std::vector<flatbuffers::Offset<fb::Step>>{step});
  auto empty = b.CreateVector(std::vector<flatbuffers::Offset<fb::IoBinding>>{});
  auto m = fb::CreateManifest(b, kArtifactFormatVersion, 0, 0, 0, 1, 0, 0, 0,
                              b.CreateVector(std::vector<flatbuffers::Offset<fb::Buffer>>{}), empty, empty, 0, 0,
                              steps);
  fb::FinishManifestBuffer(b, m);
  Artifact a;
  EXPECT_EQ(parseArtifact(encodeArtifact(std::string_view(reinterpret_cast<const char *>(b.GetBufferPointer()),
                                                          b.GetSize()),
                                         ""),
                          "m.shardc", a),
            "");
  return a.steps.size() == 1 ? a.steps[0].attrs : Attrs();
}

TEST(EmbeddingGrad, PaddingIdxThroughTheManifest) {
  for (int64_t padding : {int64_t(0), int64_t(-1), int64_t(5)}) {
    Attrs attrs = attrsOf({{"padding_idx", padding}});
    EXPECT_EQ(manifestRoundTrip("embedding_grad", attrs).all(), attrs.all()) << padding;
  }
  Attrs vocabOnly = attrsOf({{"vocab_size", int64_t(10)}});
  Attrs loaded = manifestRoundTrip("embedding_grad", vocabOnly);
  EXPECT_EQ(loaded.all(), vocabOnly.all());
  EXPECT_FALSE(loaded.has("padding_idx"));
  // Row 0 as padding_idx, read back from the manifest, adds nothing; absent adds everything.
  Owned ids = tensor(DType::I64, {3}, {0, 1, 0}), dy = tensor(DType::F32, {3, 1}, {1, 2, 4});
  Owned d(DType::F32, {2, 1});
  EXPECT_RUNS("embedding_grad", {&ids, &dy}, {&d}, manifestRoundTrip("embedding_grad", attrsOf({{"padding_idx", int64_t(0)}})));
  EXPECT_EQ(valuesOf(d), (Values{0, 2}));
  EXPECT_RUNS("embedding_grad", {&ids, &dy}, {&d}, manifestRoundTrip("embedding_grad", Attrs()));
  EXPECT_EQ(valuesOf(d), (Values{5, 2}));
  Attrs attention = attrsOf({{"scale", 0.25}, {"causal", true}});
  EXPECT_EQ(manifestRoundTrip("attention_grad", attention).all(), attention.all());
}

// --- token_loss_grad -----------------------------------------------------------------------

// The summed cross-entropy of token_loss, in f64.
double tokenLossReference(const Values &logits, const std::vector<int64_t> &labels, int64_t vocab) {
  double total = 0;
  for (size_t r = 0; r < labels.size(); ++r) {
    if (labels[r] == -100)
      continue;
    const double *row = logits.data() + r * vocab;
    const double m = *std::max_element(row, row + vocab);
    double sum = 0;
    for (int64_t j = 0; j < vocab; ++j)
      sum += std::exp(row[j] - m);
    total += m + std::log(sum) - row[labels[r]];
  }
  return total;
}

TEST(TokenLossGrad, MatchesFiniteDifferencesOfTheLoss) {
  const int64_t B = 2, S = 3, V = 7;
  const std::vector<int64_t> labels = {3, -100, 0, 6, 2, -100};
  Values x = roundedTo(DType::F32, randomValues(B * S * V, -3, 3));
  const double dsum = 0.8;
  Owned logits = tensor(DType::F32, {B, S, V}, x), lab(DType::I64, {B, S}), ds = tensor(DType::F32, {}, {dsum});
  for (size_t r = 0; r < labels.size(); ++r)
    lab.view.as<int64_t>()[r] = labels[r];
  Owned dx(DType::F32, {B, S, V}), sum(DType::F32, {}), count(DType::F32, {});
  ASSERT_EQ(runKernel("token_loss_grad", {&logits, &lab, &ds}, {&dx}), "");
  // The forward kernel computes the loss the reference does.
  ASSERT_EQ(runKernel("token_loss", {&logits, &lab}, {&sum, &count}), "");
  EXPECT_NEAR(load(sum, 0), tokenLossReference(x, labels, V), 1e-5);
  const Values fd = finiteDifferences(x, 1e-6, [&] { return dsum * tokenLossReference(x, labels, V); });
  expectClose(valuesOf(dx), fd, 0, "f32 dlogits", 1e-6);
  for (int64_t j = 0; j < V; ++j) // label -100: exactly zero
    EXPECT_EQ(load(dx, 1 * V + j), 0.0);

  // 16-bit logits are read in place and the gradient written in their dtype.
  for (DType dtype : {DType::BF16, DType::F16}) {
    Owned x16 = tensor(dtype, {B, S, V}, x), d16(dtype, {B, S, V});
    Owned x32 = tensor(DType::F32, {B, S, V}, valuesOf(x16)), d32(DType::F32, {B, S, V});
    ASSERT_EQ(runKernel("token_loss_grad", {&x16, &lab, &ds}, {&d16}), "");
    ASSERT_EQ(runKernel("token_loss_grad", {&x32, &lab, &ds}, {&d32}), "");
    expectClose(valuesOf(d16), valuesOf(d32), dtype == DType::BF16 ? 8e-3 : 1e-3, dtypeName(dtype));
  }
}

// --- the vocabulary-parallel loss (LossStats.cpp) -----------------------------------------

// token_loss_stats over two vocabulary slices (vocab_start 0 and 4) adds up to the whole rows;
// token_loss_combine of the sums equals token_loss; token_loss_stats_grad with the combine's
// VJP (dsumexp = dsum / sumexp, dpicked = -dsum on counted rows) equals token_loss_grad, slice
// by slice.
TEST(VocabParallelLoss, SlicesAddUpToTokenLossAndItsGradient) {
  const int64_t B = 2, S = 3, V = 8, H = V / 2;
  const std::vector<int64_t> labels = {3, -100, 0, 7, 4, 5};
  const Values x = roundedTo(DType::F32, randomValues(B * S * V, -3, 3));
  Owned lab(DType::I64, {B, S});
  for (size_t r = 0; r < labels.size(); ++r)
    lab.view.as<int64_t>()[r] = labels[r];
  Values rowMax(B * S), half[2];
  for (int64_t r = 0; r < B * S; ++r)
    rowMax[r] = *std::max_element(x.begin() + r * V, x.begin() + (r + 1) * V);
  for (int h = 0; h < 2; ++h)
    for (int64_t r = 0; r < B * S; ++r)
      half[h].insert(half[h].end(), x.begin() + r * V + h * H, x.begin() + r * V + (h + 1) * H);
  Owned max = tensor(DType::F32, {B, S}, rowMax);
  Values sumexp(B * S, 0.0), picked(B * S, 0.0);
  for (int h = 0; h < 2; ++h) {
    Owned slice = tensor(DType::F32, {B, S, H}, half[h]), start = tensor(DType::I64, {}, {double(h * H)});
    Owned se(DType::F32, {B, S}), pk(DType::F32, {B, S});
    ASSERT_EQ(runKernel("token_loss_stats", {&slice, &lab, &max, &start}, {&se, &pk}), "");
    for (int64_t r = 0; r < B * S; ++r) {
      sumexp[r] += load(se, r);
      picked[r] += load(pk, r);
    }
  }
  Owned se = tensor(DType::F32, {B, S}, sumexp), pk = tensor(DType::F32, {B, S}, picked);
  Owned sum(DType::F32, {}), count(DType::F32, {});
  ASSERT_EQ(runKernel("token_loss_combine", {&se, &pk, &max, &lab}, {&sum, &count}), "");
  EXPECT_NEAR(load(sum, 0), tokenLossReference(x, labels, V), 1e-5);
  EXPECT_EQ(load(count, 0), 5.0);

  const double dsum = 0.8;
  Values dsumexp(B * S), dpicked(B * S);
  for (int64_t r = 0; r < B * S; ++r) {
    const bool counted = labels[r] != -100;
    dsumexp[r] = counted ? dsum / sumexp[r] : 0.0;
    dpicked[r] = counted ? -dsum : 0.0;
  }
  Owned whole = tensor(DType::F32, {B, S, V}, x), ds = tensor(DType::F32, {}, {dsum}), want(DType::F32, {B, S, V});
  ASSERT_EQ(runKernel("token_loss_grad", {&whole, &lab, &ds}, {&want}), "");
  Owned dse = tensor(DType::F32, {B, S}, dsumexp), dpk = tensor(DType::F32, {B, S}, dpicked);
  for (int h = 0; h < 2; ++h) {
    Owned slice = tensor(DType::F32, {B, S, H}, half[h]), start = tensor(DType::I64, {}, {double(h * H)});
    Owned d(DType::F32, {B, S, H});
    ASSERT_EQ(runKernel("token_loss_stats_grad", {&slice, &lab, &max, &dse, &dpk, &start}, {&d}), "");
    for (int64_t r = 0; r < B * S; ++r)
      for (int64_t j = 0; j < H; ++j)
        EXPECT_NEAR(load(d, r * H + j), load(want, r * V + h * H + j), 1e-6) << "row " << r << " column " << h * H + j;
  }
  // One-line errors: a max of another dtype, a vocab_start that is not one i64.
  Owned maxBf16 = tensor(DType::BF16, {B, S}, rowMax), badStart = tensor(DType::F32, {}, {0});
  EXPECT_EQ(runKernel("token_loss_stats", {&whole, &lab, &maxBf16}, {&se, &pk}),
            "token_loss_stats: max must have the logits' dtype, got bf16 2x3");
  EXPECT_EQ(runKernel("token_loss_stats", {&whole, &lab, &max, &badStart}, {&se, &pk}),
            "token_loss_stats: vocab_start must be one i64, got f32 scalar");
}

// --- errors --------------------------------------------------------------------------------

TEST(GradKernelErrors, OneLineErrorsNotCrashes) {
  AttentionProblem p = randomProblem(1, 2, 1, 3, 4, 2, 3);
  Owned q = tensor(DType::F32, p.qShape(), p.q), k = tensor(DType::F32, p.kShape(), p.k),
        v = tensor(DType::F32, p.vShape(), p.v), o(DType::F32, p.outShape()), l(DType::F32, p.lseShape());
  Owned dq(DType::F32, p.qShape()), dk(DType::F32, p.kShape()), dv(DType::F32, p.vShape());
  Owned badLse(DType::F32, {1, 2, 4}), lseI64(DType::I64, p.lseShape()), i64(DType::I64, {1, 2, 3, 3});
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &l}, {&dq, &dk, &dv}),
            "attention_grad: expects 6..7 inputs, got 5");
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &l, &o}, {&dq, &dk}),
            "attention_grad: expects 3 outputs, got 2");
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &badLse, &o}, {&dq, &dk, &dv}),
            "attention_grad: lse has shape 1x2x4, expected 1x2x3");
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &l, &o}, {&dq, &dv, &dk}),
            "attention_grad: dk has shape 1x1x4x3, expected 1x1x4x2");
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &l, &o, &l}, {&dq, &dk, &dv}),
            "attention_grad: mask of shape 1x2x3 does not broadcast to 1x2x3x4");
  EXPECT_EQ(runKernel("attention_grad", {&q, &k, &v, &o, &l, &i64}, {&dq, &dk, &dv}),
            "attention_grad: dtypes differ: q is f32, dout is i64");
  EXPECT_EQ(runKernel("attention", {&q, &k, &v}, {&o, &lseI64}), "attention: lse must be f32, not i64");
  EXPECT_EQ(runKernel("attention", {&q, &k, &v}, {&o, &l, &l}), "attention: expects 1..2 outputs, got 3");

  Owned ids = tensor(DType::I64, {2}, {1, 6}), dy(DType::F32, {2, 3}), dt(DType::F32, {6, 3});
  Owned fids = tensor(DType::F32, {2}, {1, 2}), dyBad(DType::F32, {2, 4}), start = tensor(DType::I64, {}, {2});
  EXPECT_EQ(runKernel("embedding_grad", {&ids, &dy}, {&dt}), "embedding_grad: id 6 is outside the vocabulary [0, 6)");
  EXPECT_EQ(runKernel("embedding_grad", {&ids, &dy, &start}, {&dt}, attrsOf({{"vocab_size", int64_t(6)}})),
            "embedding_grad: id 6 is outside the vocabulary [0, 6)");
  EXPECT_EQ(runKernel("embedding_grad", {&ids, &dy, &start}, {&dt}),
            "embedding_grad: a row_start needs the attribute vocab_size");
  EXPECT_EQ(runKernel("embedding_grad", {&fids, &dy}, {&dt}), "embedding_grad: ids must be i64 or i32, not f32");
  EXPECT_EQ(runKernel("embedding_grad", {&ids, &dyBad}, {&dt}), "embedding_grad: dy has shape 2x4, expected 2x3");
  EXPECT_EQ(runKernel("embedding_grad", {&ids}, {&dt}), "embedding_grad: expects 2..3 inputs, got 1");
  EXPECT_EQ(runKernel("embedding_grad", {&ids, &dy}, {&dt}, attrsOf({{"padding_idx", int64_t(-3)}})),
            "embedding_grad: padding_idx -3 is negative (-1 means none)");

  Owned logits = tensor(DType::F32, {1, 2, 3}, randomValues(6)), labels = tensor(DType::I64, {1, 2}, {0, 3});
  Owned ds = tensor(DType::F32, {}, {1}), ds64 = tensor(DType::F64, {}, {1}), dx(DType::F32, {1, 2, 3});
  Owned dxBf16(DType::BF16, {1, 2, 3});
  EXPECT_EQ(runKernel("token_loss_grad", {&logits, &labels, &ds}, {&dx}),
            "token_loss_grad: label 3 at position 1 is outside [0, 3) and is not the ignore index -100");
  EXPECT_EQ(runKernel("token_loss_grad", {&logits, &labels, &ds64}, {&dx}),
            "token_loss_grad: dsum must be one f32, got f64 scalar");
  EXPECT_EQ(runKernel("token_loss_grad", {&logits, &labels, &ds}, {&dxBf16}),
            "token_loss_grad: dtypes differ: logits is f32, dlogits is bf16");
  EXPECT_EQ(runKernel("token_loss_grad", {&logits, &labels}, {&dx}), "token_loss_grad: expects 3 inputs, got 2");
}

} // namespace
