// The CUDA backend's kernels for the steps generated kernels normally absorb (formula, rotary,
// rms_norm, layer_norm, softmax, log_softmax: shardc/kernels/ElementwiseKernels.h, what `shardc compile --no-fuse`
// leaves) run through the Simt.h emulator with the plans the backend makes, against the CPU
// backend's kernels on the same tensors: bit for bit (the same formulas, the row statistics in
// double; softmax within one unit in the last place, see there).
#include "shardc/kernels/ElementwiseKernels.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace shardc;
namespace simt = shardc::simt;
using rt::DType;

using Tensor = test::ByteTensor;

int64_t count(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n;
}

Tensor make(DType dtype, std::vector<int64_t> shape, unsigned seed, float lo = -3.0f, float hi = 3.0f) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(count(t.shape)) * rt::dtypeSize(dtype), 0xCD); // outputs: every element must be written
  if (seed == 0)
    return t;
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  for (int64_t i = 0; i < count(t.shape); ++i) {
    const float f = u(rng);
    if (dtype == DType::F32) {
      std::memcpy(&t.bytes[size_t(i) * 4], &f, 4);
    } else {
      const uint16_t h = rt::f32ToBf16(f);
      std::memcpy(&t.bytes[size_t(i) * 2], &h, 2);
    }
  }
  return t;
}

kernels::ElemType elemType(DType d) { return d == DType::BF16 ? kernels::ElemType::BF16 : kernels::ElemType::F32; }

std::string runCpu(const char *op, std::vector<Tensor *> in, std::vector<Tensor *> out, const rt::Attrs &attrs) {
  return test::runCpuKernel(op, in, out, attrs);
}

// The backend's elementwise launch (SharedKernels.cu's elementwise()), on the emulator.
std::string runElementwise(kernels::ElementwiseParams p, std::vector<Tensor *> in, Tensor &y, bool rotary) {
  std::vector<std::vector<int64_t>> shapes;
  for (Tensor *t : in)
    shapes.push_back(t->shape);
  if (std::string err = kernels::planElementwise(y.shape, shapes, p); !err.empty())
    return err;
  for (size_t i = 0; i < in.size(); ++i) {
    p.in[i].data = in[i]->bytes.data();
    p.in[i].type = elemType(in[i]->dtype);
  }
  p.y = y.bytes.data();
  p.yType = elemType(y.dtype);
  return simt::launch({int(kernels::indexBlocks(p.count)), 1, kernels::kIndexThreads}, [&] {
    if (rotary)
      kernels::rotaryElements(p);
    else
      kernels::formulaElements(p);
  });
}

TEST(ElementwiseKernelsSimt, FormulasMatchCpu) {
  struct Case {
    const char *formula;
    DType dtype;
    std::vector<int64_t> a, b, y; // b empty: unary
  };
  const Case cases[] = {
      {"add", DType::F32, {2, 3, 40}, {40}, {2, 3, 40}},
      {"div", DType::F32, {2, 1, 40}, {3, 1}, {2, 3, 40}},
      {"mul", DType::BF16, {2, 3, 40}, {2, 3, 40}, {2, 3, 40}},
      {"silu", DType::BF16, {3, 70}, {}, {3, 70}},
      {"gelu_tanh", DType::F32, {3, 70}, {}, {3, 70}},
      {"gelu_erf", DType::F32, {3, 70}, {}, {3, 70}},
      {"exp", DType::F32, {3, 70}, {}, {3, 70}},
  };
  for (const Case &c : cases) {
    Tensor a = make(c.dtype, c.a, 1), b = make(c.dtype, c.b.empty() ? std::vector<int64_t>{1} : c.b, 2, 0.5f, 2.0f);
    Tensor want = make(c.dtype, c.y, 0), got = make(c.dtype, c.y, 0);
    std::vector<Tensor *> in{&a};
    if (!c.b.empty())
      in.push_back(&b);
    rt::Attrs attrs;
    attrs.set("formula", std::string(c.formula));
    ASSERT_EQ(runCpu("formula", in, {&want}, attrs), "") << c.formula;
    kernels::ElementwiseParams p;
    int arity = 0;
    ASSERT_TRUE(kernels::findFormula(c.formula, p.formula, arity));
    ASSERT_EQ(size_t(arity), in.size());
    ASSERT_EQ(runElementwise(p, in, got, false), "") << c.formula;
    EXPECT_EQ(got.bytes, want.bytes) << c.formula << " " << rt::dtypeName(c.dtype);
  }
}

TEST(ElementwiseKernelsSimt, RotaryMatchesCpu) {
  for (DType dtype : {DType::F32, DType::BF16}) {
    Tensor x = make(dtype, {2, 3, 5, 8}, 3), cos = make(DType::F32, {5, 8}, 4), sin = make(DType::F32, {1, 1, 5, 8}, 5);
    Tensor want = make(dtype, x.shape, 0), got = make(dtype, x.shape, 0);
    ASSERT_EQ(runCpu("rotary", {&x, &cos, &sin}, {&want}, rt::Attrs()), "");
    ASSERT_EQ(runElementwise(kernels::ElementwiseParams(), {&x, &cos, &sin}, got, true), "");
    EXPECT_EQ(got.bytes, want.bytes) << rt::dtypeName(dtype);
  }
}

TEST(ElementwiseKernelsSimt, NormsMatchCpu) {
  for (DType dtype : {DType::F32, DType::BF16})
    for (bool layer : {false, true}) {
      const std::vector<int64_t> xShape{2, 3, 300}; // rows longer than a block
      Tensor x = make(dtype, xShape, 6), scale = make(dtype, {300}, 7), bias = make(dtype, {300}, 8);
      Tensor want = make(dtype, xShape, 0), got = make(dtype, xShape, 0);
      Tensor mean = make(DType::F32, {2, 3, 1}, 0), invStd = make(DType::F32, {2, 3, 1}, 0);
      Tensor gotMean = mean, gotInv = invStd;
      rt::Attrs attrs;
      attrs.set("epsilon", 1e-6);
      attrs.set("axis", int64_t(-1));
      const char *op = layer ? "layer_norm" : "rms_norm";
      std::vector<Tensor *> in{&x, &scale};
      std::vector<Tensor *> out{&want};
      if (layer) {
        in.push_back(&bias);
        if (dtype == DType::F32)
          out = {&want, &mean, &invStd};
      }
      ASSERT_EQ(runCpu(op, in, out, attrs), "") << op;
      kernels::NormParams p;
      ASSERT_EQ(kernels::planNorm(xShape, -1, scale.shape, layer ? &bias.shape : nullptr, p), "");
      p.layer = layer;
      p.epsilon = 1e-6;
      p.x = {x.bytes.data(), elemType(dtype), {}};
      p.scale.data = scale.bytes.data();
      p.scale.type = elemType(dtype);
      if (layer) {
        p.bias.data = bias.bytes.data();
        p.bias.type = elemType(dtype);
      }
      p.y = got.bytes.data();
      p.yType = elemType(dtype);
      if (out.size() > 1) {
        p.mean = reinterpret_cast<float *>(gotMean.bytes.data());
        p.invStd = reinterpret_cast<float *>(gotInv.bytes.data());
      }
      ASSERT_EQ(simt::launch({int(p.rows), 1, kernels::kIndexThreads}, [&] { kernels::normRows(p); }), "");
      EXPECT_EQ(got.bytes, want.bytes) << op << " " << rt::dtypeName(dtype);
      if (out.size() > 1) {
        EXPECT_EQ(gotMean.bytes, mean.bytes) << op << " mean";
        EXPECT_EQ(gotInv.bytes, invStd.bytes) << op << " inverse std";
      }
    }
}

// Within one unit in the last place: the row sums run in double in another order than the
// CPU's, which (rarely: many short rows of far-apart values) changes the double's last bit and
// so a rounding to f32 or bf16.
TEST(ElementwiseKernelsSimt, SoftmaxesMatchCpu) {
  struct Shape {
    std::vector<int64_t> x;
    int64_t axis;
  };
  const Shape shapes[] = {{{3, 270}, -1}, {{2, 300, 3}, 1}, {{60, 3}, -1}}; // long rows; many short ones
  for (DType dtype : {DType::F32, DType::BF16})
    for (bool logarithm : {false, true})
      for (const Shape &shape : shapes) {
        Tensor x = make(dtype, shape.x, 9, -30.0f, 30.0f);
        Tensor want = make(dtype, shape.x, 0), got = make(dtype, shape.x, 0);
        rt::Attrs attrs;
        attrs.set("axis", shape.axis);
        const char *op = logarithm ? "log_softmax" : "softmax";
        ASSERT_EQ(runCpu(op, {&x}, {&want}, attrs), "") << op;
        kernels::SoftmaxParams p;
        ASSERT_EQ(kernels::planSoftmax(shape.x, shape.axis, p), "");
        p.x.data = x.bytes.data();
        p.x.type = elemType(dtype);
        p.y = got.bytes.data();
        p.yType = elemType(dtype);
        p.logarithm = logarithm;
        ASSERT_EQ(simt::launch({int(p.outer * p.inner), 1, kernels::kIndexThreads}, [&] { kernels::softmaxRows(p); }), "");
        // One unit in the last place, or 1e-6 absolute (log_softmax's ~0 at a row's maximum is
        // log(1 + tiny): the double sum's last bit decides it).
        const double ulp = dtype == DType::F32 ? 0x1p-23 : 0x1p-8;
        size_t bad = 0, differing = 0;
        for (int64_t i = 0; i < count(shape.x); ++i) {
          float g = 0, w = 0;
          if (dtype == DType::F32) {
            std::memcpy(&g, &got.bytes[size_t(i) * 4], 4);
            std::memcpy(&w, &want.bytes[size_t(i) * 4], 4);
          } else {
            uint16_t hg, hw;
            std::memcpy(&hg, &got.bytes[size_t(i) * 2], 2);
            std::memcpy(&hw, &want.bytes[size_t(i) * 2], 2);
            g = rt::bf16ToF32(hg);
            w = rt::bf16ToF32(hw);
          }
          differing += g != w;
          bad += !(std::fabs(double(g) - w) <= std::max(1e-6, ulp * std::fabs(double(w))));
        }
        EXPECT_EQ(bad, 0u) << op << " " << rt::dtypeName(dtype) << " " << shape.x.size() << "-D";
        EXPECT_LE(differing, size_t(count(shape.x)) / 50) << op; // rare
      }
}

} // namespace
