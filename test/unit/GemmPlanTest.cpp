// Unit tests of the cuBLASLt GEMM plans, on the CPU: a naive column-major GEMM that does what
// cuBLASLt would with the plan's parameters (operand order, transa/transb, layouts, batch
// strides, epilogue) against naive row-major references of the same problem, of the runtime's
// linear and of its matmul; validation messages and warnings; the algorithm cache's key.
#include "GemmReference.h"

#include "shardc/kernels/GemmAlgoCache.h"
#include "shardc/kernels/GemmPlan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>

namespace {

using namespace shardc::kernels;
using gemmref::randomValues;

constexpr double kUnwritten = 12345.0; // D's initial contents: padding must keep it

// A column-major matrix as cuBLASLt sees it: a buffer and an element offset (the pointer).
struct ColMatrix {
  const std::vector<double> *data = nullptr;
  int64_t offset = 0;
  double at(int64_t i) const {
    const int64_t j = offset + i;
    if (j < 0 || j >= static_cast<int64_t>(data->size())) {
      ADD_FAILURE() << "read outside the buffer: element " << j << " of " << data->size();
      return 0;
    }
    return (*data)[j];
  }
};

// What cublasLtMatmul computes, from the plan's cuBLASLt-side fields only, after the checks
// cuBLASLt makes on them: D = epilogue(alpha · op(A) · op(B) + beta · C), column-major.
void columnMajorLt(const GemmPlan &plan, ColMatrix A, ColMatrix B, ColMatrix C, const std::vector<double> &bias,
                   std::vector<double> &D, int64_t offD) {
  const uint64_t m = plan.m, n = plan.n, k = plan.k;
  const bool ta = plan.transa == LtOp::T, tb = plan.transb == LtOp::T;
  ASSERT_EQ(plan.a.rows, ta ? k : m);
  ASSERT_EQ(plan.a.cols, ta ? m : k);
  ASSERT_EQ(plan.b.rows, tb ? n : k);
  ASSERT_EQ(plan.b.cols, tb ? k : n);
  for (const LtLayout *l : {&plan.c, &plan.d}) {
    ASSERT_EQ(l->rows, m);
    ASSERT_EQ(l->cols, n);
  }
  for (const LtLayout *l : {&plan.a, &plan.b, &plan.c, &plan.d}) {
    ASSERT_GE(l->ld, static_cast<int64_t>(l->rows)); // cuBLASLt: ld >= rows (column-major)
    ASSERT_EQ(l->batchCount, plan.d.batchCount);     // cuBLASLt: equal batch counts
  }
  ASSERT_EQ(plan.c.ld, plan.d.ld); // C and D share a layout (in place allowed)
  ASSERT_EQ(plan.c.batchStride, plan.d.batchStride);
  if (plan.usesBias())
    ASSERT_EQ(plan.biasType, plan.d.type);
  for (int64_t bt = 0; bt < plan.d.batchCount; ++bt)
    for (uint64_t j = 0; j < n; ++j)
      for (uint64_t i = 0; i < m; ++i) {
        double s = 0;
        for (uint64_t l = 0; l < k; ++l) {
          const double a = A.at(bt * plan.a.batchStride + (ta ? l + i * plan.a.ld : i + l * plan.a.ld));
          const double b = B.at(bt * plan.b.batchStride + (tb ? j + l * plan.b.ld : l + j * plan.b.ld));
          s += a * b;
        }
        double v = plan.alpha * s;
        if (plan.beta != 0)
          v += plan.beta * C.at(bt * plan.c.batchStride + i + j * plan.c.ld);
        // cuBLASLt's bias has one element per row of its D.
        if (plan.usesBias())
          v += bias.at(i);
        if (plan.epilogue == LtEpilogue::GeluBias)
          v = sc_op_gelu_tanh(v);
        D.at(offD + bt * plan.d.batchStride + i + j * plan.d.ld) = v;
      }
}

// Runs the plan on the runtime's row-major buffers as the CUDA glue does: the plan says which
// of A and B is cuBLASLt's first operand.
void runPlan(const GemmPlan &plan, const std::vector<double> &A, const std::vector<double> &B,
             const std::vector<double> &bias, std::vector<double> &D, int64_t offA = 0, int64_t offB = 0,
             int64_t offC = 0, const std::vector<double> *C = nullptr) {
  ColMatrix ra{&A, offA}, rb{&B, offB};
  ColMatrix first = plan.first == GemmOperand::A ? ra : rb;
  ColMatrix second = plan.second == GemmOperand::A ? ra : rb;
  columnMajorLt(plan, first, second, ColMatrix{C ? C : &D, offC}, bias, D, offC);
}

void expectClose(const std::vector<double> &got, const std::vector<double> &want, const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-12) << what << ", element " << i;
}

GemmPlan planOf(const GemmProblem &p) {
  GemmPlan plan;
  std::string err = planGemm(p, plan);
  EXPECT_EQ(err, "") << describeGemm(p);
  EXPECT_TRUE(plan.valid);
  return plan;
}

// ---- The mapping, field by field, on the two linear layouts.

TEST(GemmPlan, LinearMapsToTransposedProduct) {
  GemmProblem p;
  ASSERT_EQ(linearProblem({2, 3, 5}, {5, 7}, false, GemmEpilogue::None, DType::BF16, p), "");
  EXPECT_EQ(p.M, 6);
  EXPECT_EQ(p.N, 7);
  EXPECT_EQ(p.K, 5);
  GemmPlan plan = planOf(p);
  // Dᵀ [7, 6] = Wᵀ [7, 5] · xᵀ [5, 6], column-major.
  EXPECT_EQ(plan.first, GemmOperand::B);
  EXPECT_EQ(plan.second, GemmOperand::A);
  EXPECT_EQ(plan.m, 7u);
  EXPECT_EQ(plan.n, 6u);
  EXPECT_EQ(plan.k, 5u);
  EXPECT_EQ(plan.transa, LtOp::N);
  EXPECT_EQ(plan.transb, LtOp::N);
  EXPECT_EQ(plan.a.rows, 7u);
  EXPECT_EQ(plan.a.cols, 5u);
  EXPECT_EQ(plan.a.ld, 7);
  EXPECT_EQ(plan.b.rows, 5u);
  EXPECT_EQ(plan.b.cols, 6u);
  EXPECT_EQ(plan.b.ld, 5);
  EXPECT_EQ(plan.d.rows, 7u);
  EXPECT_EQ(plan.d.cols, 6u);
  EXPECT_EQ(plan.d.ld, 7);
  EXPECT_EQ(plan.epilogue, LtEpilogue::Default);
  EXPECT_EQ(plan.compute, LtComputeType::F32);
  EXPECT_EQ(plan.scale, LtScaleType::F32);

  // transpose_weight: W [7, 5] is column-major [5, 7]; op T makes it cuBLASLt's [7, 5] A.
  ASSERT_EQ(linearProblem({6, 5}, {7, 5}, true, GemmEpilogue::GeluTanhBias, DType::BF16, p), "");
  plan = planOf(p);
  EXPECT_EQ(plan.transa, LtOp::T);
  EXPECT_EQ(plan.transb, LtOp::N);
  EXPECT_EQ(plan.a.rows, 5u);
  EXPECT_EQ(plan.a.cols, 7u);
  EXPECT_EQ(plan.a.ld, 5);
  EXPECT_EQ(plan.epilogue, LtEpilogue::GeluBias);
  EXPECT_EQ(plan.biasType, DType::BF16);
}

// ---- linear: the column-major run of the plan against the runtime's linear on tensors.

struct LinearCase {
  std::vector<int64_t> x;
  int64_t N;
};

TEST(GemmPlan, LinearMatchesRowMajorReference) {
  const LinearCase cases[] = {{{1, 5}, 3}, {{5}, 3}, {{2, 3, 5}, 3}, {{1, 1}, 1}, {{7, 4}, 9}, {{2, 2, 2, 8}, 16}};
  uint32_t seed = 1;
  for (const LinearCase &c : cases)
    for (bool transW : {false, true})
      for (GemmEpilogue e : {GemmEpilogue::None, GemmEpilogue::Bias, GemmEpilogue::GeluTanhBias}) {
        const int64_t K = c.x.back(), N = c.N;
        GemmProblem p;
        std::vector<int64_t> w = transW ? std::vector<int64_t>{N, K} : std::vector<int64_t>{K, N};
        ASSERT_EQ(linearProblem(c.x, w, transW, e, DType::F32, p), "");
        const int64_t M = p.M;
        auto x = randomValues(M * K, seed++), wv = randomValues(K * N, seed++), bias = randomValues(N, seed++);
        std::vector<double> D(M * N, kUnwritten);
        runPlan(planOf(p), x, wv, bias, D);
        expectClose(D, gemmref::linearReference(x, wv, bias, M, N, K, transW, e),
                    describeGemm(p));
      }
}

TEST(GemmPlan, GeluEpilogueUsesTheSharedFormula) {
  // M=1, N=3, K=5 with a bias that pushes the pre-activations across GELU's bend.
  GemmProblem p;
  ASSERT_EQ(linearProblem({1, 5}, {3, 5}, true, GemmEpilogue::GeluTanhBias, DType::F32, p), "");
  const std::vector<double> x = {1, 0, 0, 0, 0}, w = {1, 0, 0, 0, 0, 2, 0, 0, 0, 0, -3, 0, 0, 0, 0};
  const std::vector<double> bias = {0.5, -1, 2};
  std::vector<double> D(3, kUnwritten);
  runPlan(planOf(p), x, w, bias, D);
  const double pre[] = {1.5, 1, -1};
  for (int j = 0; j < 3; ++j)
    EXPECT_NEAR(D[j], 0.5 * pre[j] * (1 + std::tanh(0.7978845608028654 * (pre[j] + 0.044715 * std::pow(pre[j], 3)))),
                1e-12);
}

// ---- planGemm on general problems: transposed A, padded leading dims, strides, alpha/beta.

TEST(GemmPlan, GeneralProblemsMatchRowMajorReference) {
  uint32_t seed = 100;
  for (bool ta : {false, true})
    for (bool tb : {false, true})
      for (int64_t pad : {0, 3})
        for (int64_t batch : {1, 3})
          for (bool shareB : {false, true})
            for (float beta : {0.0f, 0.5f}) {
              GemmProblem p;
              p.M = 4;
              p.N = 3;
              p.K = 5;
              p.transposeA = ta;
              p.transposeB = tb;
              const int64_t rowA = ta ? p.M : p.K, rowB = tb ? p.K : p.N;
              const int64_t colsA = ta ? p.K : p.M, colsB = tb ? p.N : p.K;
              p.lda = pad ? rowA + pad : 0;
              p.ldb = pad ? rowB + pad + 1 : 0;
              p.ldc = pad ? p.N + pad : 0;
              const int64_t lda = p.lda ? p.lda : rowA, ldb = p.ldb ? p.ldb : rowB, ldc = p.ldc ? p.ldc : p.N;
              p.batch = batch;
              p.strideA = colsA * lda + 2;
              p.strideB = shareB ? 0 : colsB * ldb + 1;
              p.strideC = p.M * ldc + 4;
              p.alpha = 1.5f;
              p.beta = beta;
              p.epilogue = GemmEpilogue::Bias;
              auto A = randomValues(batch * p.strideA + colsA * lda, seed++);
              auto B = randomValues(batch * std::max<int64_t>(p.strideB, 1) + colsB * ldb, seed++);
              auto C = randomValues(batch * p.strideC, seed++);
              auto bias = randomValues(p.N, seed++);
              std::vector<double> got(C.size(), kUnwritten), want = got;
              runPlan(planOf(p), A, B, bias, got, 0, 0, 0, &C);
              gemmref::rowMajorGemm(p, A, B, bias, want, 0, 0, 0, &C);
              expectClose(got, want, describeGemm(p) + " pad " + std::to_string(pad));
            }
}

TEST(GemmPlan, InPlaceAccumulateReadsD) {
  // beta = 1 with C = D: D += A·B (a residual add folded into the GEMM).
  GemmProblem p;
  ASSERT_EQ(linearProblem({3, 5}, {5, 3}, false, GemmEpilogue::None, DType::F32, p), "");
  p.beta = 1.0f;
  auto A = randomValues(15, 7), B = randomValues(15, 8), D = randomValues(9, 9);
  std::vector<double> want = D;
  gemmref::rowMajorGemm(p, A, B, {}, want);
  runPlan(planOf(p), A, B, {}, D);
  expectClose(D, want, "in place");
}

// ---- matmul: 1-D promotion, broadcast batch dims, looped and strided batches.

struct MatmulCase {
  std::vector<int64_t> a, b;
  size_t launches;
  int64_t batch; // of the strided problem
};

TEST(GemmPlan, MatmulMatchesBroadcastReference) {
  const MatmulCase cases[] = {
      {{3, 5}, {5, 2}, 1, 1},
      {{4, 3, 5}, {5, 2}, 1, 1},          // one B for every A: a tall [12, 5] GEMM
      {{4, 3, 5}, {4, 5, 2}, 1, 4},       // plain strided batch
      {{3, 5}, {4, 5, 2}, 1, 4},          // A broadcast: strideA = 0
      {{2, 3, 3, 5}, {3, 5, 2}, 2, 3},    // B shared across the outer dim only: looped
      {{2, 1, 3, 5}, {1, 4, 5, 2}, 2, 4}, // both broadcast, in different dims
      {{2, 4, 3, 5}, {2, 4, 5, 2}, 1, 8}, // two dims merged into one strided batch
      {{1, 3, 5}, {1, 5, 2}, 1, 1},       // size-1 batch dims
      {{5}, {2, 5, 3}, 1, 2},             // 1-D A: M = 1
      {{2, 3, 5}, {5}, 1, 1},             // 1-D B: N = 1, one B for both A
      {{5}, {5}, 1, 1},                   // a dot product
      {{1, 5}, {5, 3}, 1, 1},             // M=1, N=3, K=5
      {{2, 1, 3, 1, 5}, {4, 1, 5, 2}, 8, 1}, // looped twice over, then one B for 3 rows
  };
  uint32_t seed = 500;
  for (const MatmulCase &c : cases) {
    SCOPED_TRACE(::testing::PrintToString(c.a) + " · " + ::testing::PrintToString(c.b));
    MatmulGemms mm;
    ASSERT_EQ(matmulProblems(c.a, c.b, DType::F32, mm), "");
    int64_t na = 1, nb = 1;
    for (int64_t d : c.a)
      na *= d;
    for (int64_t d : c.b)
      nb *= d;
    auto A = randomValues(na, seed++), B = randomValues(nb, seed++);
    std::vector<int64_t> outShape;
    std::vector<double> want = gemmref::matmulReference(A, c.a, B, c.b, outShape);
    EXPECT_EQ(mm.outShape, outShape);
    EXPECT_EQ(mm.launches.size(), c.launches);
    EXPECT_EQ(mm.problem.batch, c.batch);
    GemmPlan plan = planOf(mm.problem);
    std::vector<double> got(want.size(), kUnwritten), rowMajor = got;
    for (const MatmulLaunch &l : mm.launches) {
      runPlan(plan, A, B, {}, got, l.offsetA, l.offsetB, l.offsetC);
      gemmref::rowMajorGemm(mm.problem, A, B, {}, rowMajor, l.offsetA, l.offsetB, l.offsetC);
    }
    expectClose(got, want, "column-major plan vs matmul");
    expectClose(rowMajor, want, "row-major problem vs matmul");
  }
}

TEST(GemmPlan, MatmulStridesAndErrors) {
  MatmulGemms mm;
  ASSERT_EQ(matmulProblems({3, 5}, {4, 5, 2}, DType::BF16, mm), "");
  EXPECT_EQ(mm.problem.strideA, 0);
  EXPECT_EQ(mm.problem.strideB, 10);
  EXPECT_EQ(mm.problem.strideC, 6);
  ASSERT_EQ(matmulProblems({4, 3, 5}, {5, 2}, DType::BF16, mm), "");
  EXPECT_EQ(mm.problem.M, 12);
  EXPECT_EQ(mm.problem.batch, 1);
  ASSERT_EQ(matmulProblems({0, 3, 5}, {5, 2}, DType::F32, mm), "");
  EXPECT_TRUE(mm.launches.empty());
  GemmPlan plan;
  ASSERT_EQ(planGemm(mm.problem, plan), "");
  EXPECT_TRUE(plan.empty);
  EXPECT_EQ(matmulProblems({3, 5}, {4, 2}, DType::F32, mm), "matmul: inner dims differ: 3x5 · 4x2");
  EXPECT_EQ(matmulProblems({2, 3, 5}, {3, 5, 2}, DType::F32, mm),
            "matmul: batch dims do not broadcast: 2x3x5 · 3x5x2");
  EXPECT_EQ(matmulProblems({}, {5, 2}, DType::F32, mm), "matmul: operands must have rank >= 1: scalar · 5x2");
  GemmProblem p;
  EXPECT_EQ(linearProblem({3, 5}, {4, 5}, false, GemmEpilogue::None, DType::F32, p),
            "linear: inner dims differ: 3x5 · 4x5");
  EXPECT_EQ(linearProblem({3, 5}, {5}, false, GemmEpilogue::None, DType::F32, p),
            "linear: expects x [..., K] and a 2-D weight, got 3x5 and 5");
}

// ---- Validation: what cuBLASLt cannot do, in one line each.

GemmProblem small(DType in, DType out) {
  GemmProblem p;
  p.M = 16;
  p.N = 16;
  p.K = 16;
  p.a = p.b = in;
  p.c = p.d = p.bias = out;
  return p;
}

std::string planError(const GemmProblem &p) {
  GemmPlan plan;
  return planGemm(p, plan);
}

TEST(GemmPlan, RejectsWhatCublasLtCannotDo) {
  struct Bad {
    std::function<void(GemmProblem &)> edit;
    std::string error;
  };
  const Bad bad[] = {
      {[](GemmProblem &p) { p.c = p.d = p.bias = DType::BF16; },
       "gemm: f32 inputs cannot give a bf16 output (cuBLASLt gives the input type or f32)"},
      {[](GemmProblem &p) { p.b = DType::BF16; }, "gemm: A is f32 and B is bf16; cuBLASLt needs one input type"},
      {[](GemmProblem &p) { p.c = DType::F16; }, "gemm: C is f16 and D is f32; cuBLASLt needs C and D of one type"},
      {[](GemmProblem &p) { p.a = DType::I64; }, "gemm: A is i64; cuBLASLt GEMMs take f32, f16 and bf16"},
      {[](GemmProblem &p) { p.a = p.b = DType::BF16, p.precision = GemmPrecision::F32AllowTF32; },
       "gemm: TF32 applies to f32 inputs only, not bf16"},
      {[](GemmProblem &p) { p.a = p.b = DType::F16, p.c = p.d = DType::F16, p.epilogue = GemmEpilogue::Bias; },
       "gemm: the bias is f32 but D is f16; cuBLASLt's bias has D's type"},
      {[](GemmProblem &p) { p.a = p.b = DType::F16, p.c = p.d = p.bias = DType::BF16; },
       "gemm: f16 inputs cannot give a bf16 output (cuBLASLt gives the input type or f32)"},
      {[](GemmProblem &p) { p.K = 0; }, "gemm: K is 0 (D would be beta·C + bias); cuBLASLt needs K >= 1"},
      {[](GemmProblem &p) { p.M = -1; }, "gemm: negative size (M=-1 N=16 K=16 batch=1)"},
      {[](GemmProblem &p) { p.lda = 8; }, "gemm: lda=8 is shorter than A's row length (16)"},
      {[](GemmProblem &p) { p.transposeB = true, p.ldb = 15; }, "gemm: ldb=15 is shorter than B's row length (16)"},
      {[](GemmProblem &p) { p.ldc = 4; }, "gemm: ldc=4 is shorter than D's row length (16)"},
      {[](GemmProblem &p) { p.batch = 2, p.strideC = 255; },
       "gemm: strideC=255 makes the batch's outputs overlap (each D spans 256 elements)"},
      {[](GemmProblem &p) { p.batch = int64_t(1) << 31; }, "gemm: batch 2147483648 exceeds cuBLASLt's int32 batch count"},
      {[](GemmProblem &p) { p.strideA = -1; }, "gemm: negative leading dim or batch stride"},
      {[](GemmProblem &p) { p.M = int64_t(1) << 32; }, "gemm: M=4294967296 N=16 K=16 exceed cuBLASLt's int32 dims"},
  };
  for (const Bad &b : bad) {
    GemmProblem p = small(DType::F32, DType::F32);
    b.edit(p);
    GemmPlan plan;
    const std::string err = planGemm(p, plan);
    EXPECT_EQ(err, b.error);
    EXPECT_EQ(err.find('\n'), std::string::npos);
    EXPECT_FALSE(plan.valid);
  }
}

TEST(GemmPlan, AcceptsWhatCublasLtDoes) {
  for (DType in : {DType::F32, DType::F16, DType::BF16})
    for (GemmEpilogue e : {GemmEpilogue::None, GemmEpilogue::Bias, GemmEpilogue::GeluTanhBias}) {
      GemmProblem p = small(in, in);
      p.epilogue = e;
      EXPECT_EQ(planError(p), "") << describeGemm(p);
      p.c = p.d = p.bias = DType::F32; // 16-bit inputs, f32 output (and bias)
      EXPECT_EQ(planError(p), "") << describeGemm(p);
    }
  GemmProblem p = small(DType::F32, DType::F32);
  p.M = 0; // nothing to do: a plan that launches nothing
  GemmPlan plan;
  ASSERT_EQ(planGemm(p, plan), "");
  EXPECT_TRUE(plan.empty);
  p = small(DType::F32, DType::F32);
  p.batch = 0;
  ASSERT_EQ(planGemm(p, plan), "");
  EXPECT_TRUE(plan.empty);
}

TEST(GemmPlan, Tf32OnlyWhenAsked) {
  GemmProblem p = small(DType::F32, DType::F32);
  EXPECT_EQ(planOf(p).compute, LtComputeType::F32);
  p.precision = GemmPrecision::F32AllowTF32;
  EXPECT_EQ(planOf(p).compute, LtComputeType::F32FastTF32);
  EXPECT_EQ(planOf(small(DType::BF16, DType::BF16)).compute, LtComputeType::F32);
}

TEST(GemmPlan, WarnsOffTheFastPath) {
  EXPECT_TRUE(planOf(small(DType::BF16, DType::BF16)).warnings.empty());
  GemmProblem p;
  ASSERT_EQ(linearProblem({1, 5}, {3, 5}, true, GemmEpilogue::None, DType::BF16, p), "");
  GemmPlan plan = planOf(p);
  ASSERT_EQ(plan.warnings.size(), 3u);
  EXPECT_EQ(plan.warnings[0], "lda=5 (10 bytes, bf16) is not a multiple of 16 bytes: cuBLASLt may use a slower kernel");
  EXPECT_EQ(plan.warnings[1].rfind("ldb=5 ", 0), 0u);
  EXPECT_EQ(plan.warnings[2].rfind("ldc=3 ", 0), 0u);
  p = small(DType::F32, DType::F32);
  p.batch = 2;
  p.strideA = 16 * 16 + 1;
  p.strideC = 16 * 16;
  plan = planOf(p);
  ASSERT_EQ(plan.warnings.size(), 1u);
  EXPECT_EQ(plan.warnings[0].rfind("strideA=257 ", 0), 0u);
}

TEST(GemmPlan, DescribesProblems) {
  GemmProblem p;
  ASSERT_EQ(linearProblem({2, 3, 5}, {4, 5}, true, GemmEpilogue::GeluTanhBias, DType::BF16, p), "");
  EXPECT_EQ(describeGemm(p), "bf16 M=6 N=4 K=5 transB -> bf16, bias+gelu");
}

// ---- The algorithm cache.

TEST(GemmAlgoCache, AlignmentOfPointers) {
  auto at = [](uintptr_t v) { return alignmentOf(reinterpret_cast<const void *>(v)); };
  EXPECT_EQ(alignmentOf(nullptr), 256u);
  EXPECT_EQ(at(0x7f0000001000), 256u);
  EXPECT_EQ(at(0x7f0000001080), 128u);
  EXPECT_EQ(at(0x7f0000001010), 16u);
  EXPECT_EQ(at(0x7f0000001002), 2u);
  EXPECT_EQ(at(0x7f0000001001), 1u);
}

TEST(GemmAlgoCache, SameProblemSameKey) {
  GemmProblem p;
  ASSERT_EQ(linearProblem({8, 64}, {32, 64}, true, GemmEpilogue::Bias, DType::BF16, p), "");
  const GemmAlgoKey k1 = gemmAlgoKey(planOf(p), {}), k2 = gemmAlgoKey(planOf(p), {});
  EXPECT_EQ(k1, k2);
  EXPECT_EQ(GemmAlgoKeyHash()(k1), GemmAlgoKeyHash()(k2));
  // alpha and beta are not seen by the heuristic.
  GemmProblem scaled = p;
  scaled.alpha = 2.0f;
  scaled.beta = 1.0f;
  EXPECT_EQ(gemmAlgoKey(planOf(scaled), {}), k1);
  // The bias alignment counts only with a bias epilogue.
  GemmProblem plain = p;
  plain.epilogue = GemmEpilogue::None;
  GemmAlignment odd;
  odd.bias = 2;
  EXPECT_EQ(gemmAlgoKey(planOf(plain), odd), gemmAlgoKey(planOf(plain), {}));
  EXPECT_NE(gemmAlgoKey(planOf(p), odd), k1);
}

TEST(GemmAlgoCache, AnyFieldChangesTheKey) {
  GemmProblem base = small(DType::BF16, DType::F32);
  base.batch = 2;
  base.strideA = base.strideB = base.strideC = 16 * 16;
  base.epilogue = GemmEpilogue::Bias;
  const GemmAlgoKey key = gemmAlgoKey(planOf(base), {});
  const std::pair<const char *, std::function<void(GemmProblem &)>> edits[] = {
      {"M", [](GemmProblem &p) { p.M = 8; }},
      {"N", [](GemmProblem &p) { p.N = 8; }},
      {"K", [](GemmProblem &p) { p.K = 8; }},
      {"transposeA", [](GemmProblem &p) { p.transposeA = true; }},
      {"transposeB", [](GemmProblem &p) { p.transposeB = true; }},
      {"lda", [](GemmProblem &p) { p.lda = 24; }},
      {"ldb", [](GemmProblem &p) { p.ldb = 24; }},
      {"ldc", [](GemmProblem &p) { p.ldc = 24, p.strideC = 24 * 16; }},
      {"batch", [](GemmProblem &p) { p.batch = 3; }},
      {"strideA", [](GemmProblem &p) { p.strideA = 0; }},
      {"strideB", [](GemmProblem &p) { p.strideB = 512; }},
      {"strideC", [](GemmProblem &p) { p.strideC = 512; }},
      {"A/B type", [](GemmProblem &p) { p.a = p.b = DType::F16; }},
      {"C/D type", [](GemmProblem &p) { p.c = p.d = p.bias = DType::BF16; }},
      {"epilogue none", [](GemmProblem &p) { p.epilogue = GemmEpilogue::None; }},
      {"epilogue gelu", [](GemmProblem &p) { p.epilogue = GemmEpilogue::GeluTanhBias; }},
  };
  for (const auto &[name, edit] : edits) {
    GemmProblem p = base;
    edit(p);
    EXPECT_NE(gemmAlgoKey(planOf(p), {}), key) << name;
  }
  GemmProblem f32 = small(DType::F32, DType::F32), tf32 = f32;
  tf32.precision = GemmPrecision::F32AllowTF32;
  EXPECT_NE(gemmAlgoKey(planOf(f32), {}), gemmAlgoKey(planOf(tf32), {})) << "precision";
  for (int which = 0; which < 5; ++which) {
    GemmAlignment a;
    uint32_t *field[] = {&a.a, &a.b, &a.c, &a.d, &a.bias};
    *field[which] = 4;
    EXPECT_NE(gemmAlgoKey(planOf(base), a), key) << "alignment " << which;
  }
}

TEST(GemmAlgoCache, CountsHitsAndMisses) {
  GemmAlgoCache<int> cache;
  const GemmAlgoKey a = gemmAlgoKey(planOf(small(DType::BF16, DType::BF16)), {});
  const GemmAlgoKey b = gemmAlgoKey(planOf(small(DType::F16, DType::F16)), {});
  EXPECT_EQ(cache.find(a), nullptr);
  EXPECT_EQ(cache.misses(), 1u);
  cache.insert(a, 7);
  ASSERT_NE(cache.find(a), nullptr);
  EXPECT_EQ(*cache.find(a), 7);
  EXPECT_EQ(cache.hits(), 2u);
  EXPECT_EQ(cache.find(b), nullptr);
  cache.insert(b, 9);
  EXPECT_EQ(*cache.find(b), 9);
  EXPECT_EQ(cache.size(), 2u);
  EXPECT_EQ(cache.hits(), 3u);
  EXPECT_EQ(cache.misses(), 2u);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
  EXPECT_EQ(cache.hits() + cache.misses(), 0u);
}

} // namespace
