// The SIMT kernels the CUDA backend launches for slice, concat, transpose, expand and the
// reductions (shardc/kernels/IndexKernels.h), run here through the Simt.h emulator with the
// plans the backend makes, against the CPU backend's kernels on the same tensors: bit for bit.
#include "shardc/kernels/IndexKernels.h"
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

Tensor make(DType dtype, std::vector<int64_t> shape, unsigned seed) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.resize(size_t(t.numel()) * rt::dtypeSize(dtype));
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-4.0f, 4.0f);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const float f = u(rng);
    switch (dtype) {
    case DType::F32: std::memcpy(&t.bytes[size_t(i) * 4], &f, 4); break;
    case DType::BF16: { uint16_t h = rt::f32ToBf16(f); std::memcpy(&t.bytes[size_t(i) * 2], &h, 2); break; }
    case DType::I64: { int64_t v = int64_t(rng() % 1000) - 500; std::memcpy(&t.bytes[size_t(i) * 8], &v, 8); break; }
    default: t.bytes[size_t(i)] = uint8_t(rng()); break;
    }
  }
  return t;
}

Tensor zeros(DType dtype, std::vector<int64_t> shape) {
  Tensor t{dtype, std::move(shape), {}};
  t.bytes.assign(size_t(t.numel()) * rt::dtypeSize(dtype), 0xAB); // not zero: every element must be written
  return t;
}

std::string runCpu(const char *op, std::vector<Tensor *> in, Tensor &out, const rt::Attrs &attrs) {
  return test::runCpuKernel<Tensor>(op, in, {&out}, attrs);
}

std::string runCopy(kernels::StridedCopyParams p, void *dst, const void *src) {
  p.dst = dst;
  p.src = src;
  return simt::launch({int(kernels::indexBlocks(p.count)), 1, kernels::kIndexThreads},
                      [&] { kernels::stridedCopy(p); });
}

TEST(IndexKernelsSimt, SliceWithStepsMatchesCpu) {
  for (DType dtype : {DType::F32, DType::I64, DType::BF16}) {
    Tensor x = make(dtype, {4, 10, 3}, 1);
    Tensor want = zeros(dtype, {2, 3, 3}), got = zeros(dtype, {2, 3, 3});
    rt::Attrs attrs;
    attrs.set("starts", std::vector<int64_t>{1, 9, 0});
    attrs.set("steps", std::vector<int64_t>{2, -3, 1});
    ASSERT_EQ(runCpu("slice", {&x}, want, attrs), "");
    kernels::StridedCopyParams p;
    ASSERT_EQ(kernels::planSlice(x.shape, got.shape, {1, 9, 0}, {2, -3, 1}, int(rt::dtypeSize(dtype)), p), "");
    ASSERT_EQ(runCopy(p, got.bytes.data(), x.bytes.data()), "");
    EXPECT_EQ(got.bytes, want.bytes) << rt::dtypeName(dtype);
  }
}

TEST(IndexKernelsSimt, ConcatPartsMatchCpu) {
  for (int64_t axis : {0, 1, 2}) {
    std::vector<int64_t> a{2, 3, 4}, b{2, 3, 4};
    a[size_t(axis)] = 1;
    b[size_t(axis)] = 5;
    std::vector<int64_t> whole{2, 3, 4};
    whole[size_t(axis)] = 6;
    Tensor x = make(DType::I64, a, 2), y = make(DType::I64, b, 3);
    Tensor want = zeros(DType::I64, whole), got = zeros(DType::I64, whole);
    rt::Attrs attrs;
    attrs.set("axis", axis);
    ASSERT_EQ(runCpu("concat", {&x, &y}, want, attrs), "");
    int64_t offset = 0;
    for (Tensor *part : {&x, &y}) {
      kernels::StridedCopyParams p;
      ASSERT_EQ(kernels::planConcatPart(whole, part->shape, axis, offset, 8, p), "");
      ASSERT_EQ(runCopy(p, got.bytes.data(), part->bytes.data()), "");
      offset += part->shape[size_t(axis)];
    }
    EXPECT_EQ(got.bytes, want.bytes) << "axis " << axis;
  }
}

TEST(IndexKernelsSimt, TransposeAndExpandMatchCpu) {
  Tensor x = make(DType::BF16, {3, 4, 5}, 4);
  Tensor want = zeros(DType::BF16, {5, 3, 4}), got = zeros(DType::BF16, {5, 3, 4});
  rt::Attrs attrs;
  attrs.set("perm", std::vector<int64_t>{2, 0, 1});
  ASSERT_EQ(runCpu("transpose", {&x}, want, attrs), "");
  kernels::StridedCopyParams p;
  ASSERT_EQ(kernels::planTranspose(x.shape, {2, 0, 1}, 2, p), "");
  ASSERT_EQ(runCopy(p, got.bytes.data(), x.bytes.data()), "");
  EXPECT_EQ(got.bytes, want.bytes);

  Tensor e = make(DType::F32, {3, 1}, 5);
  Tensor wantE = zeros(DType::F32, {2, 3, 7}), gotE = zeros(DType::F32, {2, 3, 7});
  ASSERT_EQ(runCpu("expand", {&e}, wantE, rt::Attrs()), "");
  kernels::StridedCopyParams q;
  ASSERT_EQ(kernels::planExpand(e.shape, gotE.shape, 4, q), "");
  ASSERT_EQ(runCopy(q, gotE.bytes.data(), e.bytes.data()), "");
  EXPECT_EQ(gotE.bytes, wantE.bytes);
}

TEST(IndexKernelsSimt, ReductionsMatchCpu) {
  struct Case {
    const char *op;
    kernels::ReduceKind kind;
    DType dtype;
    std::vector<int64_t> axes, yShape;
  };
  const std::vector<int64_t> xShape{2, 3, 270}; // rows longer than a block
  const Case cases[] = {
      {"reduce_sum", kernels::ReduceKind::Sum, DType::F32, {-1}, {2, 3, 1}},
      {"reduce_mean", kernels::ReduceKind::Mean, DType::F32, {0, 2}, {1, 3, 1}},
      {"reduce_max", kernels::ReduceKind::Max, DType::F32, {0, 1}, {1, 1, 270}},
      {"reduce_sum", kernels::ReduceKind::Sum, DType::F32, {}, {1, 1, 1}},
      {"reduce_mean", kernels::ReduceKind::Mean, DType::BF16, {-1}, {2, 3, 1}},
      {"reduce_sum", kernels::ReduceKind::Sum, DType::BF16, {0, 1}, {1, 1, 270}},
  };
  for (const Case &c : cases) {
    Tensor x = make(c.dtype, xShape, 6);
    if (c.kind == kernels::ReduceKind::Max) { // a NaN wins its output
      const float nan = std::nanf("");
      std::memcpy(&x.bytes[4 * (1 * 3 * 270 + 2 * 270 + 7)], &nan, 4);
    }
    Tensor want = zeros(c.dtype, c.yShape), got = zeros(c.dtype, c.yShape);
    rt::Attrs attrs;
    attrs.set("axes", c.axes);
    attrs.set("keepdims", true);
    ASSERT_EQ(runCpu(c.op, {&x}, want, attrs), "") << c.op;
    kernels::ReduceParams p;
    ASSERT_EQ(kernels::planReduce(xShape, c.axes, got.numel(), p), "");
    p.x = x.bytes.data();
    p.y = got.bytes.data();
    p.kind = c.kind;
    p.type = c.dtype == DType::BF16 ? kernels::ReduceType::BF16 : kernels::ReduceType::F32;
    ASSERT_EQ(simt::launch({int(p.outputs), 1, kernels::kIndexThreads}, [&] { kernels::reduceRows(p); }), "");
    EXPECT_EQ(got.bytes, want.bytes) << c.op << " " << rt::dtypeName(c.dtype) << " over " << c.axes.size()
                                     << " axes";
  }
}

} // namespace
