// The CUDA backend's kernels for where, equal, isnan, gather_elements and trilu
// (shardc/kernels/SelectKernels.h) and for silu_mul and pow (ElementwiseKernels.h), run
// through the Simt.h emulator with the plans the backend makes, against the CPU backend's
// kernels on the same tensors: bit for bit.
#include "shardc/kernels/ElementwiseKernels.h"
#include "shardc/kernels/SelectKernels.h"
#include "shardc/kernels/Simt.h"
#include "shardc/runtime/Kernel.h"

#include "KernelTestTensor.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace {

using namespace shardc;
namespace simt = shardc::simt;
using rt::DType;

using Tensor = test::ByteTensor;

// Values from a small set (so that equal finds equal pairs), NaNs and signed zeros among them.
Tensor make(DType dtype, std::vector<int64_t> shape, unsigned seed, int64_t range = 4) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(t.numel()) * rt::dtypeSize(dtype), 0xEE);
  if (seed == 0)
    return t;
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t v = int64_t(rng() % uint32_t(range)) - range / 2;
    float f = float(v) * 0.5f;
    if (rng() % 9 == 0)
      f = std::nanf("");
    if (f == 0.0f && rng() % 2)
      f = -0.0f;
    switch (dtype) {
    case DType::F32: std::memcpy(&t.bytes[size_t(i) * 4], &f, 4); break;
    case DType::BF16: { uint16_t h = rt::f32ToBf16(f); std::memcpy(&t.bytes[size_t(i) * 2], &h, 2); break; }
    case DType::I64: std::memcpy(&t.bytes[size_t(i) * 8], &v, 8); break;
    case DType::I32: { int32_t w = int32_t(v); std::memcpy(&t.bytes[size_t(i) * 4], &w, 4); break; }
    default: t.bytes[size_t(i)] = uint8_t(rng() % 2); break; // bool
    }
  }
  return t;
}

std::string runCpu(const char *op, std::vector<Tensor *> in, Tensor &out, const rt::Attrs &attrs) {
  return test::runCpuKernel<Tensor>(op, in, {&out}, attrs);
}

template <typename Body> std::string launch(int64_t count, Body body) {
  return simt::launch({int(kernels::indexBlocks(count)), 1, kernels::kIndexThreads}, body);
}

std::string runSelect(kernels::SelectOp op, std::vector<Tensor *> in, Tensor &y) {
  kernels::SelectParams p;
  std::vector<std::vector<int64_t>> shapes;
  for (Tensor *t : in)
    shapes.push_back(t->shape);
  if (std::string err = kernels::planSelect(y.shape, shapes, p); !err.empty())
    return err;
  for (size_t i = 0; i < in.size(); ++i) {
    p.in[i].data = in[i]->bytes.data();
    p.in[i].type = kernels::AnyType(int(in[i]->dtype));
  }
  p.y = y.bytes.data();
  p.yType = kernels::AnyType(int(y.dtype));
  p.op = op;
  return launch(p.count, [&] { kernels::selectElements(p); });
}

TEST(SelectKernelsSimt, WhereEqualIsnanMatchCpu) {
  for (DType dtype : {DType::F32, DType::BF16, DType::I64}) {
    Tensor c = make(DType::Bool, {3, 1, 20}, 1), a = make(dtype, {2, 20}, 2), b = make(dtype, {3, 2, 1}, 3);
    Tensor want = make(dtype, {3, 2, 20}, 0), got = make(dtype, {3, 2, 20}, 0);
    ASSERT_EQ(runCpu("where", {&c, &a, &b}, want, rt::Attrs()), "");
    ASSERT_EQ(runSelect(kernels::SelectOp::Where, {&c, &a, &b}, got), "");
    EXPECT_EQ(got.bytes, want.bytes) << "where " << rt::dtypeName(dtype);

    Tensor x = make(dtype, {3, 2, 20}, 4), z = make(dtype, {2, 20}, 5);
    Tensor wantEq = make(DType::Bool, {3, 2, 20}, 0), gotEq = wantEq;
    ASSERT_EQ(runCpu("equal", {&x, &z}, wantEq, rt::Attrs()), "");
    ASSERT_EQ(runSelect(kernels::SelectOp::Equal, {&x, &z}, gotEq), "");
    EXPECT_EQ(gotEq.bytes, wantEq.bytes) << "equal " << rt::dtypeName(dtype);
    size_t equal = 0;
    for (uint8_t e : wantEq.bytes)
      equal += e;
    EXPECT_GT(equal, 0u); // the case has equal pairs

    Tensor wantNan = make(DType::Bool, x.shape, 0), gotNan = wantNan;
    ASSERT_EQ(runCpu("isnan", {&x}, wantNan, rt::Attrs()), "");
    ASSERT_EQ(runSelect(kernels::SelectOp::IsNan, {&x}, gotNan), "");
    EXPECT_EQ(gotNan.bytes, wantNan.bytes) << "isnan " << rt::dtypeName(dtype);
  }
}

TEST(SelectKernelsSimt, GatherElementsAndTriluMatchCpu) {
  for (int64_t axis : {0, 1, -1}) {
    Tensor data = make(DType::I64, {4, 5, 6}, 6, 1000);
    std::vector<int64_t> shape{3, 4, 5};
    const int64_t len = data.shape[size_t(axis < 0 ? axis + 3 : axis)];
    Tensor idx = make(DType::I32, shape, 7, 2 * len); // in [-len, len)
    Tensor want = make(DType::I64, shape, 0), got = make(DType::I64, shape, 0);
    rt::Attrs attrs;
    attrs.set("axis", axis);
    ASSERT_EQ(runCpu("gather_elements", {&data, &idx}, want, attrs), "") << axis;
    kernels::GatherElementsParams p;
    ASSERT_EQ(kernels::planGatherElements(data.shape, idx.shape, axis, 8, p), "");
    p.data = data.bytes.data();
    p.indices = idx.bytes.data();
    p.indices64 = 0;
    p.y = got.bytes.data();
    ASSERT_EQ(launch(p.count, [&] { kernels::gatherElements(p); }), "");
    EXPECT_EQ(got.bytes, want.bytes) << "gather_elements axis " << axis;
  }
  for (bool upper : {true, false})
    for (int64_t k : {-1, 0, 2}) {
      Tensor x = make(DType::BF16, {2, 5, 7}, 8), want = make(DType::BF16, {2, 5, 7}, 0), got = want;
      rt::Attrs attrs;
      attrs.set("upper", upper);
      attrs.set("k", k);
      ASSERT_EQ(runCpu("trilu", {&x}, want, attrs), "");
      kernels::TriluParams p;
      ASSERT_EQ(kernels::planTrilu(x.shape, upper, k, 2, p), "");
      p.x = x.bytes.data();
      p.y = got.bytes.data();
      ASSERT_EQ(launch(p.count, [&] { kernels::triluElements(p); }), "");
      EXPECT_EQ(got.bytes, want.bytes) << "trilu upper " << upper << " k " << k;
    }
}

TEST(SelectKernelsSimt, SiluMulAndPowMatchCpu) {
  for (const char *op : {"silu_mul", "pow"})
    for (DType dtype : {DType::F32, DType::BF16}) {
      Tensor a = make(dtype, {3, 40}, 9, 9), b = make(dtype, {40}, 10, 5);
      Tensor want = make(dtype, {3, 40}, 0), got = want;
      ASSERT_EQ(runCpu(op, {&a, &b}, want, rt::Attrs()), "") << op;
      kernels::ElementwiseParams p;
      ASSERT_EQ(kernels::planElementwise(got.shape, {a.shape, b.shape}, p), "");
      p.siluMul = std::string(op) == "silu_mul";
      p.formula = kernels::FormulaId::pow;
      const kernels::ElemType t = dtype == DType::BF16 ? kernels::ElemType::BF16 : kernels::ElemType::F32;
      p.in[0].data = a.bytes.data();
      p.in[1].data = b.bytes.data();
      p.in[0].type = p.in[1].type = p.yType = t;
      p.y = got.bytes.data();
      ASSERT_EQ(launch(p.count, [&] { kernels::formulaElements(p); }), "");
      if (!p.siluMul) {
        EXPECT_EQ(got.bytes, want.bytes) << op << " " << rt::dtypeName(dtype);
        continue;
      }
      // silu_mul: bit for bit in the optimised build; the sanitizer builds compile the CPU
      // kernel and this header at other optimisation levels, where expf's last bit and a NaN's
      // sign may differ, so one unit in the last place and any NaN for a NaN.
      const double ulp = dtype == DType::F32 ? 0x1p-23 : 0x1p-8;
      const size_t width = dtype == DType::F32 ? 4 : 2;
      size_t bad = 0;
      for (size_t i = 0; i < got.bytes.size() / width; ++i) {
        float g = 0, w = 0;
        if (width == 4) {
          std::memcpy(&g, &got.bytes[i * 4], 4);
          std::memcpy(&w, &want.bytes[i * 4], 4);
        } else {
          uint16_t hg, hw;
          std::memcpy(&hg, &got.bytes[i * 2], 2);
          std::memcpy(&hw, &want.bytes[i * 2], 2);
          g = rt::bf16ToF32(hg);
          w = rt::bf16ToF32(hw);
        }
        // Identical bytes, or both NaN (the sign of a NaN differs there too), or one ulp.
        bool same = std::memcmp(&got.bytes[i * width], &want.bytes[i * width], width) == 0 || (g != g && w != w);
        bad += !(same || std::fabs(double(g) - w) <= ulp * std::fabs(double(w)));
      }
      EXPECT_EQ(bad, 0u) << op << " " << rt::dtypeName(dtype);
    }
}

} // namespace
