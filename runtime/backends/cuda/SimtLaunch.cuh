// Launch helpers of the CUDA backend's SIMT kernels (SharedKernels.cu, MoeKernels.cu): the
// kernels are the shared headers' device functions (shardc/kernels/*.h), one thread per element
// on the thread's stream.
#pragma once

#include "CudaBackend.h"
#include "shardc/kernels/IndexKernels.h"
#include "shardc/kernels/SelectKernels.h"

#include <cuda_runtime.h>

#include <cstdint>
#include <string>

namespace shardc::cuda::simt_launch {

static_assert(int(kernels::AnyType::Bool) == int(rt::DType::Bool) &&
                  int(kernels::AnyType::I64) == int(rt::DType::I64) &&
                  int(kernels::AnyType::BF16) == int(rt::DType::BF16),
              "kernels::AnyType follows rt::DType");
inline kernels::AnyType anyType(rt::DType d) { return kernels::AnyType(int(d)); }

// "" or the last launch's error, named after `op`.
inline std::string launched(const char *op) {
  cudaError_t rc = cudaGetLastError();
  return rc == cudaSuccess ? "" : std::string(op) + ": " + cudaGetErrorName(rc) + ": " + cudaGetErrorString(rc);
}

// One element per thread over `count` elements; "" or the launch's error.
template <typename Params, typename Kernel>
std::string perElement(const char *op, Kernel kernel, const Params &p, int64_t count) {
  if (count == 0)
    return "";
  const int64_t blocks = kernels::indexBlocks(count);
  if (blocks > int64_t(0x7fffffff))
    return std::string(op) + ": " + std::to_string(count) + " elements exceed one launch";
  kernel<<<unsigned(blocks), kernels::kIndexThreads, 0, threadContext().stream>>>(p);
  return launched(op);
}

} // namespace shardc::cuda::simt_launch
