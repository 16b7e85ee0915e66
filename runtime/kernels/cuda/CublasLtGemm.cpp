// cuBLASLt glue of the GEMM plans: descriptors from a GemmPlan, one heuristic query per
// problem key, one cublasLtMatmul per run. Host code only (no kernels of its own).
#include "shardc/cuda/CublasLtGemm.h"

#include <cuda_runtime_api.h>

namespace shardc::cuda {

using kernels::GemmAlignment;
using kernels::GemmOperand;
using kernels::GemmPlan;
using kernels::LtComputeType;
using kernels::LtEpilogue;
using kernels::LtLayout;
using kernels::LtOp;
using kernels::LtScaleType;

// The plan's enums carry cuBLASLt's values.
static_assert(int(LtOp::N) == CUBLAS_OP_N && int(LtOp::T) == CUBLAS_OP_T);
static_assert(int(LtEpilogue::Default) == CUBLASLT_EPILOGUE_DEFAULT &&
              int(LtEpilogue::Bias) == CUBLASLT_EPILOGUE_BIAS &&
              int(LtEpilogue::GeluBias) == CUBLASLT_EPILOGUE_GELU_BIAS);
static_assert(int(LtComputeType::F32) == CUBLAS_COMPUTE_32F &&
              int(LtComputeType::F32FastTF32) == CUBLAS_COMPUTE_32F_FAST_TF32);
static_assert(int(LtScaleType::F32) == CUDA_R_32F);

namespace {

cudaDataType_t cudaType(rt::DType t) {
  return t == rt::DType::F32 ? CUDA_R_32F : t == rt::DType::BF16 ? CUDA_R_16BF : CUDA_R_16F;
}

std::string ltError(const std::string &what, cublasStatus_t st) {
  return "gemm: " + what + ": " + cublasLtGetStatusName(st) + " (" + cublasLtGetStatusString(st) + ")";
}

template <typename T>
cublasStatus_t setDesc(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr, const T &v) {
  return cublasLtMatmulDescSetAttribute(desc, attr, &v, sizeof(v));
}

template <typename T>
cublasStatus_t setLayout(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t attr, const T &v) {
  return cublasLtMatrixLayoutSetAttribute(l, attr, &v, sizeof(v));
}

template <typename T>
cublasStatus_t setPref(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attr, const T &v) {
  return cublasLtMatmulPreferenceSetAttribute(p, attr, &v, sizeof(v));
}

cublasStatus_t makeLayout(const LtLayout &l, cublasLtMatrixLayout_t &out) {
  cublasStatus_t st = cublasLtMatrixLayoutCreate(&out, cudaType(l.type), l.rows, l.cols, l.ld);
  if (st != CUBLAS_STATUS_SUCCESS || l.batchCount == 1)
    return st;
  // Every layout carries the batch count (cuBLASLt wants them equal); stride 0 broadcasts.
  st = setLayout(out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, int32_t(l.batchCount));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = setLayout(out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, int64_t(l.batchStride));
  return st;
}

} // namespace

LtDescriptors::~LtDescriptors() {
  for (cublasLtMatrixLayout_t l : {a, b, c, d})
    if (l)
      cublasLtMatrixLayoutDestroy(l);
  if (op)
    cublasLtMatmulDescDestroy(op);
}

std::string makeLtDescriptors(const GemmPlan &plan, const void *bias, LtDescriptors &out) {
  const std::string what = kernels::describeGemm(plan.problem);
  cublasStatus_t st = cublasLtMatmulDescCreate(&out.op, static_cast<cublasComputeType_t>(plan.compute),
                                               static_cast<cudaDataType_t>(plan.scale));
  if (st != CUBLAS_STATUS_SUCCESS)
    return ltError("cublasLtMatmulDescCreate (" + what + ")", st);
  const auto epilogue = static_cast<cublasLtEpilogue_t>(plan.epilogue);
  st = setDesc(out.op, CUBLASLT_MATMUL_DESC_TRANSA, static_cast<int32_t>(plan.transa));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = setDesc(out.op, CUBLASLT_MATMUL_DESC_TRANSB, static_cast<int32_t>(plan.transb));
  if (st == CUBLAS_STATUS_SUCCESS)
    st = setDesc(out.op, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue);
  if (st == CUBLAS_STATUS_SUCCESS && plan.usesBias()) {
    st = setDesc(out.op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(cudaType(plan.biasType)));
    if (st == CUBLAS_STATUS_SUCCESS)
      st = setDesc(out.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias);
  }
  if (st != CUBLAS_STATUS_SUCCESS)
    return ltError("matmul descriptor (" + what + ")", st);
  const std::pair<const LtLayout *, cublasLtMatrixLayout_t *> layouts[] = {
      {&plan.a, &out.a}, {&plan.b, &out.b}, {&plan.c, &out.c}, {&plan.d, &out.d}};
  for (const auto &[layout, made] : layouts)
    if ((st = makeLayout(*layout, *made)) != CUBLAS_STATUS_SUCCESS)
      return ltError("matrix layout (" + what + ")", st);
  return "";
}

struct CublasLtGemm::Entry {
  LtDescriptors desc;
  cublasLtMatmulAlgo_t algo{};
  size_t workspaceNeeded = 0;
};

std::string CublasLtGemm::create(std::unique_ptr<CublasLtGemm> &out, size_t workspaceBytes) {
  std::unique_ptr<CublasLtGemm> g(new CublasLtGemm());
  if (cublasStatus_t st = cublasLtCreate(&g->handle_); st != CUBLAS_STATUS_SUCCESS)
    return ltError("cublasLtCreate", st);
  if (workspaceBytes > 0) {
    if (cudaError_t rc = cudaMalloc(&g->workspace_, workspaceBytes); rc != cudaSuccess)
      return "gemm: cannot allocate the " + std::to_string(workspaceBytes >> 20) +
             " MiB cuBLASLt workspace: " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
  }
  g->workspaceBytes_ = workspaceBytes;
  out = std::move(g);
  return "";
}

CublasLtGemm::~CublasLtGemm() {
  cache_.clear(); // the descriptors go before the handle
  if (workspace_)
    cudaFree(workspace_);
  if (handle_)
    cublasLtDestroy(handle_);
}

std::string CublasLtGemm::prepare(const GemmPlan &plan, const GemmAlignment &align, const void *bias,
                                  std::unique_ptr<Entry> &out) {
  auto e = std::make_unique<Entry>();
  const std::string what = kernels::describeGemm(plan.problem);
  if (std::string err = makeLtDescriptors(plan, bias, e->desc); !err.empty())
    return err;
  cublasLtMatmulPreference_t pref = nullptr;
  cublasStatus_t st = cublasLtMatmulPreferenceCreate(&pref);
  if (st != CUBLAS_STATUS_SUCCESS)
    return ltError("cublasLtMatmulPreferenceCreate", st);
  std::unique_ptr<cublasLtMatmulPreferenceOpaque_t, cublasStatus_t (*)(cublasLtMatmulPreference_t)> prefOwner(
      pref, cublasLtMatmulPreferenceDestroy);
  st = setPref(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, uint64_t(workspaceBytes_));
  // The algorithm must work for pointers aligned as this call's; the key holds them.
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, align.a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, align.b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, align.c},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, align.d}};
  for (const auto &[attr, bytes] : aligns)
    if (st == CUBLAS_STATUS_SUCCESS)
      st = setPref(pref, attr, bytes);
  if (st != CUBLAS_STATUS_SUCCESS)
    return ltError("matmul preference", st);

  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const LtDescriptors &d = e->desc;
  st = cublasLtMatmulAlgoGetHeuristic(handle_, d.op, d.a, d.b, d.c, d.d, pref, 1, &result, &returned);
  if (st != CUBLAS_STATUS_SUCCESS)
    return ltError("cublasLtMatmulAlgoGetHeuristic (" + what + ")", st);
  if (returned == 0 || result.state != CUBLAS_STATUS_SUCCESS)
    return "gemm: cuBLASLt has no algorithm for " + what;
  e->algo = result.algo;
  e->workspaceNeeded = result.workspaceSize;
  out = std::move(e);
  return "";
}

std::string CublasLtGemm::run(const GemmPlan &plan, const void *A, const void *B, const void *bias,
                              const void *C, void *D, cudaStream_t stream) {
  if (!plan.valid)
    return "gemm: the plan is not valid (planGemm failed on it)";
  if (plan.empty)
    return "";
  if (!A || !B || !D)
    return "gemm: A, B and D must be device pointers (" + kernels::describeGemm(plan.problem) + ")";
  if (plan.usesBias() && !bias)
    return "gemm: the epilogue adds a bias but none was given (" + kernels::describeGemm(plan.problem) + ")";
  if (plan.readsC() && !C)
    return "gemm: beta is not 0 but C is null (" + kernels::describeGemm(plan.problem) + ")";
  if (!plan.readsC())
    C = D; // not read, but cuBLASLt takes a C pointer with D's alignment
  if (!plan.usesBias())
    bias = nullptr;
  const void *first = plan.first == GemmOperand::A ? A : B;
  const void *second = plan.second == GemmOperand::A ? A : B;
  const GemmAlignment align{kernels::alignmentOf(first), kernels::alignmentOf(second), kernels::alignmentOf(C),
                            kernels::alignmentOf(D), kernels::alignmentOf(bias)};
  const kernels::GemmAlgoKey key = kernels::gemmAlgoKey(plan, align);

  Entry *entry = nullptr;
  if (std::unique_ptr<Entry> *found = cache_.find(key)) {
    entry = found->get();
  } else {
    std::unique_ptr<Entry> made;
    if (std::string err = prepare(plan, align, bias, made); !err.empty())
      return err;
    entry = cache_.insert(key, std::move(made)).get();
  }
  if (plan.usesBias())
    if (cublasStatus_t st = setDesc(entry->desc.op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias); st != CUBLAS_STATUS_SUCCESS)
      return ltError("bias pointer", st);
  // Host scalars (the default pointer mode) are read before cublasLtMatmul returns.
  const float alpha = plan.alpha, beta = plan.beta;
  cublasStatus_t st = cublasLtMatmul(handle_, entry->desc.op, &alpha, first, entry->desc.a, second, entry->desc.b,
                                     &beta, C, entry->desc.c, D, entry->desc.d, &entry->algo, workspace_, workspaceBytes_, stream);
  return st == CUBLAS_STATUS_SUCCESS ? "" : ltError("cublasLtMatmul (" + kernels::describeGemm(plan.problem) + ")", st);
}

} // namespace shardc::cuda
