// Row-major GEMM problems mapped onto cuBLASLt's column-major description, validated against
// what cuBLASLt can run; the runtime's linear and matmul as such problems; the algorithm key.
#include "shardc/kernels/GemmAlgoCache.h"
#include "shardc/kernels/GemmPlan.h"

#include <algorithm>
#include <iterator>
#include <limits>
#include <utility>

namespace shardc::kernels {

namespace {

// Local names and sizes: rt::dtypeName lives in the CPU kernel library, which this GPU-free
// planning code should not pull in (OpenBLAS).
const char *typeName(DType t) {
  switch (t) {
  case DType::F32: return "f32";
  case DType::F16: return "f16";
  case DType::BF16: return "bf16";
  case DType::F64: return "f64";
  case DType::I64: return "i64";
  case DType::I32: return "i32";
  case DType::I8: return "i8";
  case DType::U8: return "u8";
  case DType::Bool: return "bool";
  }
  return "?";
}

int64_t typeSize(DType t) { return t == DType::F32 ? 4 : 2; } // of the GEMM types only

bool isGemmType(DType t) { return t == DType::F32 || t == DType::F16 || t == DType::BF16; }

std::string shapeText(const std::vector<int64_t> &shape) {
  if (shape.empty())
    return "scalar";
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

std::string num(int64_t v) { return std::to_string(v); }

// Tensor-core kernels load 16-byte vectors; rows or batches that do not start on 16 bytes
// push cuBLASLt to slower kernels (still correct).
void warnUnaligned(std::vector<std::string> &warnings, const char *what, int64_t elements, DType t) {
  const int64_t bytes = elements * typeSize(t);
  if (bytes % 16 != 0)
    warnings.push_back(std::string(what) + "=" + num(elements) + " (" + num(bytes) + " bytes, " +
                       typeName(t) + ") is not a multiple of 16 bytes: cuBLASLt may use a slower kernel");
}

} // namespace

std::string planGemm(const GemmProblem &p, GemmPlan &out) {
  out = GemmPlan{};
  out.problem = p;
  if (p.M < 0 || p.N < 0 || p.K < 0 || p.batch < 0)
    return "gemm: negative size (M=" + num(p.M) + " N=" + num(p.N) + " K=" + num(p.K) +
           " batch=" + num(p.batch) + ")";
  const std::pair<const char *, DType> operands[] = {{"A", p.a}, {"B", p.b}, {"C", p.c}, {"D", p.d}};
  for (const auto &[name, t] : operands)
    if (!isGemmType(t))
      return std::string("gemm: ") + name + " is " + typeName(t) + "; cuBLASLt GEMMs take f32, f16 and bf16";
  if (p.a != p.b)
    return std::string("gemm: A is ") + typeName(p.a) + " and B is " + typeName(p.b) +
           "; cuBLASLt needs one input type";
  if (p.c != p.d)
    return std::string("gemm: C is ") + typeName(p.c) + " and D is " + typeName(p.d) +
           "; cuBLASLt needs C and D of one type";
  if (p.d != p.a && p.d != DType::F32)
    return std::string("gemm: ") + typeName(p.a) + " inputs cannot give a " + typeName(p.d) +
           " output (cuBLASLt gives the input type or f32)";
  if (p.precision == GemmPrecision::F32AllowTF32 && p.a != DType::F32)
    return std::string("gemm: TF32 applies to f32 inputs only, not ") + typeName(p.a);
  const bool bias = p.epilogue != GemmEpilogue::None;
  if (bias && p.bias != p.d)
    return std::string("gemm: the bias is ") + typeName(p.bias) + " but D is " + typeName(p.d) +
           "; cuBLASLt's bias has D's type";
  const int64_t int32Max = std::numeric_limits<int32_t>::max();
  if (p.batch > int32Max)
    return "gemm: batch " + num(p.batch) + " exceeds cuBLASLt's int32 batch count";
  if (p.M > int32Max || p.N > int32Max || p.K > int32Max) // cuBLASLt's rows and cols, in practice
    return "gemm: M=" + num(p.M) + " N=" + num(p.N) + " K=" + num(p.K) + " exceed cuBLASLt's int32 dims";
  if (p.lda < 0 || p.ldb < 0 || p.ldc < 0 || p.strideA < 0 || p.strideB < 0 || p.strideC < 0)
    return "gemm: negative leading dim or batch stride";
  if (p.M == 0 || p.N == 0 || p.batch == 0) {
    out.empty = out.valid = true;
    return "";
  }
  if (p.K == 0)
    return "gemm: K is 0 (D would be beta·C + bias); cuBLASLt needs K >= 1";

  // Row-major storage: A is [M, K] ([K, M] transposed), B is [K, N] ([N, K]), C and D [M, N].
  const int64_t rowA = p.transposeA ? p.M : p.K, rowB = p.transposeB ? p.K : p.N;
  const int64_t lda = p.lda ? p.lda : rowA, ldb = p.ldb ? p.ldb : rowB, ldc = p.ldc ? p.ldc : p.N;
  if (lda < rowA)
    return "gemm: lda=" + num(lda) + " is shorter than A's row length (" + num(rowA) + ")";
  if (ldb < rowB)
    return "gemm: ldb=" + num(ldb) + " is shorter than B's row length (" + num(rowB) + ")";
  if (ldc < p.N)
    return "gemm: ldc=" + num(ldc) + " is shorter than D's row length (" + num(p.N) + ")";
  const int64_t spanD = (p.M - 1) * ldc + p.N;
  if (p.batch > 1 && p.strideC < spanD)
    return "gemm: strideC=" + num(p.strideC) + " makes the batch's outputs overlap (each D spans " +
           num(spanD) + " elements)";

  // Column-major Dᵀ[N, M] = op(B)ᵀ · op(A)ᵀ. Row-major B with row length ldb is, byte for byte,
  // column-major Bᵀ with leading dim ldb: [N, K] as stored (no transpose) or [K, N] (transposed,
  // then op T gives the [N, K] cuBLASLt's A must be). Likewise A becomes cuBLASLt's B, [K, M].
  const int32_t batch = static_cast<int32_t>(p.batch);
  auto stride = [&](int64_t s) { return batch > 1 ? s : int64_t(0); }; // unused at batch 1
  out.first = GemmOperand::B;
  out.second = GemmOperand::A;
  out.m = static_cast<uint64_t>(p.N);
  out.n = static_cast<uint64_t>(p.M);
  out.k = static_cast<uint64_t>(p.K);
  out.transa = p.transposeB ? LtOp::T : LtOp::N;
  out.a = {p.b, uint64_t(p.transposeB ? p.K : p.N), uint64_t(p.transposeB ? p.N : p.K), ldb, batch,
           stride(p.strideB)};
  out.transb = p.transposeA ? LtOp::T : LtOp::N;
  out.b = {p.a, uint64_t(p.transposeA ? p.M : p.K), uint64_t(p.transposeA ? p.K : p.M), lda, batch,
           stride(p.strideA)};
  out.c = {p.c, uint64_t(p.N), uint64_t(p.M), ldc, batch, stride(p.strideC)};
  out.d = {p.d, uint64_t(p.N), uint64_t(p.M), ldc, batch, stride(p.strideC)};
  // cuBLASLt's bias has one element per row of its D, i.e. per column of ours: the linear bias.
  out.epilogue = p.epilogue == GemmEpilogue::None   ? LtEpilogue::Default
                 : p.epilogue == GemmEpilogue::Bias ? LtEpilogue::Bias
                                                    : LtEpilogue::GeluBias;
  out.biasType = p.d;
  out.compute = p.precision == GemmPrecision::F32AllowTF32 ? LtComputeType::F32FastTF32 : LtComputeType::F32;
  out.scale = LtScaleType::F32;
  out.alpha = p.alpha;
  out.beta = p.beta;

  warnUnaligned(out.warnings, "lda", lda, p.a);
  warnUnaligned(out.warnings, "ldb", ldb, p.b);
  warnUnaligned(out.warnings, "ldc", ldc, p.d);
  if (batch > 1) {
    if (p.strideA)
      warnUnaligned(out.warnings, "strideA", p.strideA, p.a);
    if (p.strideB)
      warnUnaligned(out.warnings, "strideB", p.strideB, p.b);
    warnUnaligned(out.warnings, "strideC", p.strideC, p.d);
  }
  out.valid = true;
  return "";
}

std::string describeGemm(const GemmProblem &p) {
  std::string s = std::string(typeName(p.a)) + " M=" + num(p.M) + " N=" + num(p.N) + " K=" + num(p.K);
  if (p.batch != 1)
    s += " batch=" + num(p.batch);
  if (p.transposeA)
    s += " transA";
  if (p.transposeB)
    s += " transB";
  s += std::string(" -> ") + typeName(p.d);
  if (p.epilogue == GemmEpilogue::Bias)
    s += ", bias";
  else if (p.epilogue == GemmEpilogue::GeluTanhBias)
    s += ", bias+gelu";
  if (p.precision == GemmPrecision::F32AllowTF32)
    s += ", tf32";
  return s;
}

std::string linearProblem(const std::vector<int64_t> &xShape, const std::vector<int64_t> &wShape,
                          bool transposeWeight, GemmEpilogue epilogue, DType dtype, GemmProblem &out) {
  out = GemmProblem{};
  if (xShape.empty() || wShape.size() != 2)
    return "linear: expects x [..., K] and a 2-D weight, got " + shapeText(xShape) + " and " +
           shapeText(wShape);
  const int64_t K = xShape.back();
  const int64_t N = transposeWeight ? wShape[0] : wShape[1];
  if ((transposeWeight ? wShape[1] : wShape[0]) != K)
    return "linear: inner dims differ: " + shapeText(xShape) + " · " + shapeText(wShape) +
           (transposeWeight ? "ᵀ" : "");
  int64_t M = 1;
  for (size_t i = 0; i + 1 < xShape.size(); ++i)
    M *= xShape[i];
  out.M = M;
  out.N = N;
  out.K = K;
  out.transposeB = transposeWeight;
  out.a = out.b = out.c = out.d = out.bias = dtype;
  out.epilogue = epilogue;
  return "";
}

std::string matmulProblems(const std::vector<int64_t> &aShape, const std::vector<int64_t> &bShape,
                           DType dtype, MatmulGemms &out) {
  out = MatmulGemms{};
  if (aShape.empty() || bShape.empty())
    return "matmul: operands must have rank >= 1: " + shapeText(aShape) + " · " + shapeText(bShape);
  const size_t ra = aShape.size(), rb = bShape.size();
  // 1-D promotion: a [K] is [1, K] and b [K] is [K, 1]; the added dim is dropped from y.
  const int64_t M = ra >= 2 ? aShape[ra - 2] : 1, K = aShape.back();
  const int64_t Kb = rb >= 2 ? bShape[rb - 2] : bShape[0], N = rb >= 2 ? bShape.back() : 1;
  if (K != Kb)
    return "matmul: inner dims differ: " + shapeText(aShape) + " · " + shapeText(bShape);
  const std::vector<int64_t> batchA(aShape.begin(), aShape.end() - std::min<size_t>(ra, 2));
  const std::vector<int64_t> batchB(bShape.begin(), bShape.end() - std::min<size_t>(rb, 2));
  const size_t rank = std::max(batchA.size(), batchB.size());

  // Broadcast batch dims, with each operand's element stride per dim (0 where it broadcasts).
  struct Dim {
    int64_t size, a, b, c;
  };
  std::vector<Dim> dims(rank);
  int64_t strideA = M * K, strideB = K * N, strideC = M * N;
  for (size_t i = rank; i-- > 0;) {
    const size_t fromEnd = rank - 1 - i;
    const int64_t da = fromEnd < batchA.size() ? batchA[batchA.size() - 1 - fromEnd] : 1;
    const int64_t db = fromEnd < batchB.size() ? batchB[batchB.size() - 1 - fromEnd] : 1;
    if (da != db && da != 1 && db != 1)
      return "matmul: batch dims do not broadcast: " + shapeText(aShape) + " · " + shapeText(bShape);
    const int64_t size = da == 1 ? db : da; // not max: a 0 broadcasts against 1
    dims[i] = {size, da == 1 ? 0 : strideA, db == 1 ? 0 : strideB, strideC};
    strideA *= da;
    strideB *= db;
    strideC *= size;
  }
  for (const Dim &d : dims)
    out.outShape.push_back(d.size);
  if (ra >= 2)
    out.outShape.push_back(M);
  if (rb >= 2)
    out.outShape.push_back(N);

  GemmProblem &p = out.problem;
  p.M = M;
  p.N = N;
  p.K = K;
  p.a = p.b = p.c = p.d = p.bias = dtype;
  int64_t total = 1;
  for (const Dim &d : dims)
    total *= d.size;
  if (total == 0) { // no matrices: nothing to launch
    p.batch = 0;
    return "";
  }

  // Size-1 dims carry nothing; the innermost dims that continue each operand's stride form the
  // strided batch (a dim broadcast in an operand continues a stride of 0 there).
  std::vector<Dim> kept;
  for (const Dim &d : dims)
    if (d.size != 1)
      kept.push_back(d);
  int64_t inner = 1, sa = 0, sb = 0, sc = 0;
  size_t outer = kept.size();
  if (!kept.empty()) {
    const Dim &last = kept.back();
    inner = last.size;
    sa = last.a;
    sb = last.b;
    sc = last.c;
    outer = kept.size() - 1;
    while (outer > 0) {
      const Dim &d = kept[outer - 1];
      if (d.a != sa * inner || d.b != sb * inner || d.c != sc * inner)
        break;
      inner *= d.size;
      --outer;
    }
  }
  p.batch = inner;
  p.strideA = sa;
  p.strideB = sb;
  p.strideC = sc;
  if (inner > 1 && sb == 0 && sa == M * K && sc == M * N) {
    // One B for consecutive A matrices: they are one [inner·M, K] operand, one taller GEMM.
    p.M = M * inner;
    p.batch = 1;
    p.strideA = p.strideB = p.strideC = 0;
  }

  // The looped dims, odometer order (outermost slowest).
  std::vector<int64_t> index(outer, 0);
  for (;;) {
    MatmulLaunch l;
    for (size_t i = 0; i < outer; ++i) {
      l.offsetA += index[i] * kept[i].a;
      l.offsetB += index[i] * kept[i].b;
      l.offsetC += index[i] * kept[i].c;
    }
    out.launches.push_back(l);
    size_t i = outer;
    while (i > 0 && ++index[i - 1] == kept[i - 1].size)
      index[--i] = 0;
    if (i == 0)
      break;
  }
  return "";
}

uint32_t alignmentOf(const void *p) {
  const auto v = reinterpret_cast<uintptr_t>(p);
  if (v == 0)
    return 256;
  return static_cast<uint32_t>(std::min<uintptr_t>(v & (~v + 1), 256)); // lowest set bit
}

GemmAlgoKey gemmAlgoKey(const GemmPlan &plan, const GemmAlignment &align) {
  auto i = [](auto v) { return static_cast<int64_t>(v); };
  const LtLayout &a = plan.a, &b = plan.b, &c = plan.c, &d = plan.d;
  const bool bias = plan.usesBias();
  const int64_t fields[] = {
      i(plan.m), i(plan.n), i(plan.k), i(plan.transa), i(plan.transb),
      i(a.type), i(a.rows), i(a.cols), a.ld, a.batchCount, a.batchStride,
      i(b.type), i(b.rows), i(b.cols), b.ld, b.batchCount, b.batchStride,
      i(c.type), i(c.rows), i(c.cols), c.ld, c.batchCount, c.batchStride,
      i(d.type), i(d.rows), i(d.cols), d.ld, d.batchCount, d.batchStride,
      i(plan.epilogue), bias ? i(plan.biasType) : -1, i(plan.compute), i(plan.scale),
      align.a, align.b, align.c, align.d, bias ? int64_t(align.bias) : 0,
  };
  static_assert(sizeof(fields) / sizeof(fields[0]) == GemmAlgoKey::kFields, "GemmAlgoKey::kFields");
  GemmAlgoKey key;
  std::copy(std::begin(fields), std::end(fields), key.fields.begin());
  return key;
}

size_t GemmAlgoKeyHash::operator()(const GemmAlgoKey &key) const {
  // FNV-1a over the fields' bytes.
  uint64_t h = 1469598103934665603ull;
  for (int64_t f : key.fields) {
    auto v = static_cast<uint64_t>(f);
    for (int i = 0; i < 8; ++i, v >>= 8) {
      h ^= v & 0xff;
      h *= 1099511628211ull;
    }
  }
  return static_cast<size_t>(h);
}

} // namespace shardc::kernels
