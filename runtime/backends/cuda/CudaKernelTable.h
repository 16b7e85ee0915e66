// The CUDA backend's library kernels as one table: each step kind, its entry point, and what
// it takes (dtypes, ranks, attributes). The backend dispatches through it (lookupCudaKernel:
// every launch first asks the entry's `accepts`), and `shardc-run --check-backend cuda` reads
// it to list, without a GPU, the steps of an artifact the backend could not run. Plain C++
// (no CUDA header).
#pragma once

#include "shardc/runtime/Kernel.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardc::cuda {

struct CudaKernelEntry {
  std::string_view op;
  rt::KernelFn run;
  // "" when `run` takes these operands (their counts already checked), else why not (one
  // line). Reads only dtypes, shapes and attributes: --check-backend calls it on views
  // without data.
  std::string (*accepts)(const rt::KernelArgs &);
  // The dtypes of the step's first operand that it takes, as docs and messages name them.
  const char *dtypes;
  size_t inMin, inMax, outMin, outMax; // operand counts
};

// "" when entry `e`'s kernel takes the step's operands (counts, then `accepts`), else why not:
// what every launch through the table and --check-backend ask.
std::string cudaKernelAccepts(const CudaKernelEntry &e, const rt::KernelArgs &a);

// The entry for `op`, or nullptr: the CUDA backend has no library kernel for it.
const CudaKernelEntry *findCudaKernel(std::string_view op);
// Every entry, in table order.
const CudaKernelEntry *cudaKernelTable(size_t &count);

} // namespace shardc::cuda
