// GEMMs through cuBLASLt for the CUDA backend. A GemmPlan (shardc/kernels/GemmPlan.h, planned
// and tested on the CPU) becomes a matmul descriptor and four matrix layouts; cuBLASLt's
// heuristic is asked once per problem key (GemmAlgoCache.h) and its algorithm reused; each run
// enqueues one cublasLtMatmul. Compiled and linked wherever nvcc is; not yet run on a GPU.
#pragma once

#include "shardc/kernels/GemmAlgoCache.h"
#include "shardc/kernels/GemmPlan.h"

#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace shardc::cuda {

// The matmul descriptor and the four layouts of a plan. Making them needs no handle and no
// GPU, so they are checked on the CPU (attributes read back from cuBLASLt).
struct LtDescriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr, d = nullptr;

  LtDescriptors() = default;
  LtDescriptors(const LtDescriptors &) = delete;
  LtDescriptors &operator=(const LtDescriptors &) = delete;
  ~LtDescriptors();
};

// Fills `out` for `plan`; `bias` is set as the bias pointer (its alignment guides the
// heuristic). Returns "" or a one-line error.
[[nodiscard]] std::string makeLtDescriptors(const kernels::GemmPlan &plan, const void *bias, LtDescriptors &out);

class CublasLtGemm {
public:
  static constexpr size_t kDefaultWorkspaceBytes = size_t(32) << 20;

  // Creates the cuBLASLt handle and the workspace on the current device. Fails with a one-line
  // error (no GPU, no memory). The workspace is fixed, so that runs can be graph-captured.
  [[nodiscard]] static std::string create(std::unique_ptr<CublasLtGemm> &out,
                                          size_t workspaceBytes = kDefaultWorkspaceBytes);
  ~CublasLtGemm();
  CublasLtGemm(const CublasLtGemm &) = delete;
  CublasLtGemm &operator=(const CublasLtGemm &) = delete;

  // Enqueues D = epilogue(alpha · op(A) · op(B) + beta · C) on `stream`, for the row-major
  // operands of plan.problem: A and B as the runtime sees them (the plan says which one goes
  // first), `bias` (N elements of D's type) when the epilogue has one, C when beta != 0 (it
  // may be D). Device pointers. Never synchronises with the host. Not thread-safe: one
  // instance per thread, as the backend's cuBLAS handles.
  [[nodiscard]] std::string run(const kernels::GemmPlan &plan, const void *A, const void *B,
                                const void *bias, const void *C, void *D, cudaStream_t stream);

  uint64_t cacheHits() const { return cache_.hits(); }
  uint64_t cacheMisses() const { return cache_.misses(); }
  size_t cachedProblems() const { return cache_.size(); }
  size_t workspaceBytes() const { return workspaceBytes_; }

private:
  struct Entry; // descriptors, layouts and the chosen algorithm of one key
  CublasLtGemm() = default;
  std::string prepare(const kernels::GemmPlan &plan, const kernels::GemmAlignment &align,
                      const void *bias, std::unique_ptr<Entry> &out);

  cublasLtHandle_t handle_ = nullptr;
  void *workspace_ = nullptr;
  size_t workspaceBytes_ = 0;
  kernels::GemmAlgoCache<std::unique_ptr<Entry>> cache_;
};

} // namespace shardc::cuda
