// CublasLtGemm's GPU-free half, on the CPU: the matmul descriptor and layouts made from a plan,
// read back from cuBLASLt attribute by attribute (types, transposes, epilogue, bias, rows,
// cols, leading dims, batches), and create()'s one-line error on a machine without a GPU.
// cuBLASLt makes descriptors without a handle or a device.
#include "shardc/cuda/CublasLtGemm.h"

#include <gtest/gtest.h>

#include <cuda_runtime_api.h>

namespace {

using namespace shardc::kernels;
using shardc::cuda::LtDescriptors;
using shardc::cuda::makeLtDescriptors;

template <typename T> T descAttr(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr) {
  T v{};
  size_t written = 0;
  EXPECT_EQ(cublasLtMatmulDescGetAttribute(d, attr, &v, sizeof(v), &written), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(written, sizeof(v));
  return v;
}

template <typename T> T layoutAttr(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr) {
  T v{};
  size_t written = 0;
  EXPECT_EQ(cublasLtMatrixLayoutGetAttribute(l, attr, &v, sizeof(v), &written), CUBLAS_STATUS_SUCCESS);
  EXPECT_EQ(written, sizeof(v));
  return v;
}

cudaDataType_t cudaTypeOf(DType t) {
  return t == DType::F32 ? CUDA_R_32F : t == DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

void expectLayout(cublasLtMatrixLayout_t l, const LtLayout &want, const char *which) {
  SCOPED_TRACE(which);
  ASSERT_NE(l, nullptr);
  EXPECT_EQ(layoutAttr<uint32_t>(l, CUBLASLT_MATRIX_LAYOUT_TYPE), uint32_t(cudaTypeOf(want.type)));
  EXPECT_EQ(layoutAttr<int32_t>(l, CUBLASLT_MATRIX_LAYOUT_ORDER), int32_t(CUBLASLT_ORDER_COL));
  EXPECT_EQ(layoutAttr<uint64_t>(l, CUBLASLT_MATRIX_LAYOUT_ROWS), want.rows);
  EXPECT_EQ(layoutAttr<uint64_t>(l, CUBLASLT_MATRIX_LAYOUT_COLS), want.cols);
  EXPECT_EQ(layoutAttr<int64_t>(l, CUBLASLT_MATRIX_LAYOUT_LD), want.ld);
  EXPECT_EQ(layoutAttr<int32_t>(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT), want.batchCount);
  EXPECT_EQ(layoutAttr<int64_t>(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET), want.batchStride);
}

void expectDescriptors(const GemmPlan &plan, const void *bias) {
  SCOPED_TRACE(describeGemm(plan.problem));
  LtDescriptors d;
  ASSERT_EQ(makeLtDescriptors(plan, bias, d), "");
  EXPECT_EQ(descAttr<int32_t>(d.op, CUBLASLT_MATMUL_DESC_COMPUTE_TYPE), int32_t(plan.compute));
  EXPECT_EQ(descAttr<int32_t>(d.op, CUBLASLT_MATMUL_DESC_SCALE_TYPE), int32_t(CUDA_R_32F));
  EXPECT_EQ(descAttr<int32_t>(d.op, CUBLASLT_MATMUL_DESC_TRANSA), int32_t(plan.transa));
  EXPECT_EQ(descAttr<int32_t>(d.op, CUBLASLT_MATMUL_DESC_TRANSB), int32_t(plan.transb));
  EXPECT_EQ(descAttr<uint32_t>(d.op, CUBLASLT_MATMUL_DESC_EPILOGUE), uint32_t(plan.epilogue));
  if (plan.usesBias()) {
    EXPECT_EQ(descAttr<int32_t>(d.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE), int32_t(cudaTypeOf(plan.d.type)));
    EXPECT_EQ(descAttr<const void *>(d.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER), bias);
  }
  expectLayout(d.a, plan.a, "A");
  expectLayout(d.b, plan.b, "B");
  expectLayout(d.c, plan.c, "C");
  expectLayout(d.d, plan.d, "D");
}

GemmPlan planOf(const GemmProblem &p) {
  GemmPlan plan;
  EXPECT_EQ(planGemm(p, plan), "");
  return plan;
}

TEST(CublasLtDescriptors, MatchThePlan) {
  const void *bias = reinterpret_cast<const void *>(uintptr_t(0x7f0000001040));
  GemmProblem p;
  ASSERT_EQ(linearProblem({2, 3, 64}, {96, 64}, true, GemmEpilogue::GeluTanhBias, DType::BF16, p), "");
  expectDescriptors(planOf(p), bias);
  ASSERT_EQ(linearProblem({1, 5}, {5, 3}, false, GemmEpilogue::Bias, DType::F32, p), "");
  p.precision = GemmPrecision::F32AllowTF32;
  expectDescriptors(planOf(p), bias);
  MatmulGemms mm;
  ASSERT_EQ(matmulProblems({2, 1, 8, 32}, {1, 4, 32, 16}, DType::F16, mm), "");
  mm.problem.c = mm.problem.d = DType::F32;
  GemmPlan plan = planOf(mm.problem);
  ASSERT_EQ(plan.d.batchCount, 4);
  ASSERT_EQ(plan.b.batchStride, 0); // A broadcast over the strided batch
  expectDescriptors(plan, nullptr);
}

TEST(CublasLtDescriptors, CreateFailsInOneLineWithoutAGpu) {
  int devices = 0;
  // What this checks (the one-line error of create()) only exists without a GPU; on a GPU
  // machine gpu.gemm.cublaslt covers create() succeeding.
  if (cudaGetDeviceCount(&devices) == cudaSuccess && devices > 0)
    GTEST_SKIP() << "a GPU is present";
  std::unique_ptr<shardc::cuda::CublasLtGemm> gemm;
  const std::string err = shardc::cuda::CublasLtGemm::create(gemm);
  EXPECT_EQ(err.rfind("gemm: ", 0), 0u) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
  EXPECT_EQ(gemm, nullptr);
}

} // namespace
