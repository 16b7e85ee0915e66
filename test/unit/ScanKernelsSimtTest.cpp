// The CUDA backend's kernels for the ONNX comparisons (less, less_equal: SelectKernels.h) and
// scans and index ops (cumsum, arg_max, scatter_nd: ScanKernels.h), run through the Simt.h
// emulator with the plans the backend makes, against the CPU backend's kernels on the same
// tensors: bit for bit.
#include "shardc/kernels/ScanKernels.h"
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

// Values from a small set (ties for arg_max and the comparisons), with NaNs among the floats.
Tensor make(DType dtype, std::vector<int64_t> shape, unsigned seed, int64_t range = 6) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(t.numel()) * rt::dtypeSize(dtype), 0xEE);
  if (seed == 0)
    return t;
  std::mt19937 rng(seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const int64_t v = int64_t(rng() % uint32_t(range)) - range / 2;
    float f = float(v) * 0.5f;
    if (rng() % 11 == 0)
      f = std::nanf("");
    switch (dtype) {
    case DType::F32: std::memcpy(&t.bytes[size_t(i) * 4], &f, 4); break;
    case DType::BF16: { uint16_t h = rt::f32ToBf16(f); std::memcpy(&t.bytes[size_t(i) * 2], &h, 2); break; }
    case DType::I64: std::memcpy(&t.bytes[size_t(i) * 8], &v, 8); break;
    case DType::I32: { int32_t w = int32_t(v); std::memcpy(&t.bytes[size_t(i) * 4], &w, 4); break; }
    default: t.bytes[size_t(i)] = uint8_t(v); break; // u8, i8
    }
  }
  return t;
}

std::string runCpu(const char *op, std::vector<Tensor *> in, Tensor &out, const rt::Attrs &attrs) {
  return test::runCpuKernel<Tensor>(op, in, {&out}, attrs);
}

template <typename Body> std::string launch(int64_t count, Body body) {
  return simt::launch({int(kernels::indexBlocks(count < 1 ? 1 : count)), 1, kernels::kIndexThreads}, body);
}

kernels::AnyType anyType(DType d) { return kernels::AnyType(int(d)); }

TEST(ScanKernelsSimt, LessAndLessEqualMatchCpu) {
  for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::U8})
    for (auto [op, which] : {std::pair{"less", kernels::SelectOp::Less}, {"less_equal", kernels::SelectOp::LessEqual}}) {
      Tensor x = make(dtype, {3, 2, 20}, 4), z = make(dtype, {2, 20}, 5);
      Tensor want = make(DType::Bool, {3, 2, 20}, 0), got = want;
      ASSERT_EQ(runCpu(op, {&x, &z}, want, rt::Attrs()), "");
      kernels::SelectParams p;
      ASSERT_EQ(kernels::planSelect(got.shape, {x.shape, z.shape}, p), "");
      p.in[0].data = x.bytes.data();
      p.in[1].data = z.bytes.data();
      p.in[0].type = p.in[1].type = anyType(dtype);
      p.y = got.bytes.data();
      p.op = which;
      ASSERT_EQ(launch(p.count, [&] { kernels::selectElements(p); }), "");
      EXPECT_EQ(got.bytes, want.bytes) << op << " " << rt::dtypeName(dtype);
      size_t trues = 0;
      for (uint8_t e : want.bytes)
        trues += e;
      EXPECT_GT(trues, 0u);
      EXPECT_LT(trues, want.bytes.size());
    }
}

TEST(ScanKernelsSimt, CumsumAndArgMaxMatchCpu) {
  for (DType dtype : {DType::F32, DType::BF16, DType::I64, DType::I32})
    for (int64_t axis : {0, 1, 2})
      for (int flags = 0; flags < 4; ++flags) {
        Tensor x = make(dtype, {3, 5, 4}, 11 + unsigned(axis)), want = make(dtype, x.shape, 0), got = want;
        rt::Attrs attrs;
        attrs.set("axis", axis);
        attrs.set("exclusive", bool(flags & 1));
        attrs.set("reverse", bool(flags & 2));
        ASSERT_EQ(runCpu("cumsum", {&x}, want, attrs), "");
        kernels::AxisLinesParams p;
        ASSERT_EQ(kernels::planAxisLines(x.shape, axis, p), "");
        p.x = x.bytes.data();
        p.y = got.bytes.data();
        p.type = anyType(dtype);
        p.exclusive = flags & 1;
        p.reverse = (flags & 2) != 0;
        ASSERT_EQ(launch(p.outer * p.inner, [&] { kernels::cumsumLines(p); }), "");
        EXPECT_EQ(got.bytes, want.bytes) << "cumsum " << rt::dtypeName(dtype) << " axis " << axis << " flags " << flags;

        std::vector<int64_t> reduced = x.shape;
        reduced[size_t(axis)] = 1;
        Tensor wantArg = make(DType::I64, reduced, 0), gotArg = wantArg;
        rt::Attrs argAttrs;
        argAttrs.set("axis", axis);
        argAttrs.set("select_last_index", bool(flags & 1));
        ASSERT_EQ(runCpu("arg_max", {&x}, wantArg, argAttrs), "");
        p.y = gotArg.bytes.data();
        p.selectLast = flags & 1;
        ASSERT_EQ(launch(p.outer * p.inner, [&] { kernels::argMaxLines(p); }), "");
        EXPECT_EQ(gotArg.bytes, wantArg.bytes) << "arg_max " << rt::dtypeName(dtype) << " axis " << axis;
      }
}

TEST(ScanKernelsSimt, ScatterNdMatchesCpu) {
  for (const char *reduction : {"none", "add", "mul", "max", "min"})
    for (DType dtype : {DType::F32, DType::I64}) {
      Tensor data = make(dtype, {4, 3, 5}, 21), upd = make(dtype, {2, 3, 3, 5}, 22);
      Tensor idx{DType::I64, {2, 3, 1}, {}};
      const std::vector<int64_t> rows{1, -1, 0, 1, 2, 3}; // row 1 twice: the order matters
      idx.bytes.resize(rows.size() * 8);
      std::memcpy(idx.bytes.data(), rows.data(), idx.bytes.size());
      Tensor want = make(dtype, data.shape, 0), got = want;
      rt::Attrs attrs;
      attrs.set("reduction", std::string(reduction));
      ASSERT_EQ(runCpu("scatter_nd", {&data, &idx, &upd}, want, attrs), "");
      kernels::ScatterNdParams p;
      ASSERT_EQ(kernels::planScatterNd(data.shape, idx.shape, reduction, p), "");
      got.bytes = data.bytes; // the backend copies data into y first
      p.indices = reinterpret_cast<const int64_t *>(idx.bytes.data());
      p.updates = upd.bytes.data();
      p.y = got.bytes.data();
      p.type = anyType(dtype);
      ASSERT_EQ(launch(p.slice, [&] { kernels::scatterNdSlices(p); }), "");
      EXPECT_EQ(got.bytes, want.bytes) << "scatter_nd " << reduction << " " << rt::dtypeName(dtype);
    }
}

} // namespace
