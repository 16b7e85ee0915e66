// Compiling an artifact's generated kernel source for a GPU architecture with NVRTC, the
// step the CUDA backend runs at load. NVRTC needs no GPU, so this part is built and tested on
// every machine; loading the result (cuModuleLoadData) is the thin GPU-only part.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace shardc::cuda {

struct NvrtcResult {
  std::string cubin;               // the compiled module (SASS for `arch`)
  std::string log;                 // NVRTC's log, warnings included
  std::vector<std::string> kernels; // entry points found in the source (SC_KERNEL names)
  bool fromCache = false;
};

// Compiles `source` (FusedPrelude.h and kernels) for `arch` ("sm_90a"), with the options the
// backend uses (-std=c++17, no FMA contraction, so the GPU rounds as the CPU build does).
// With a non-empty `cacheDir`, the cubin is kept there under a key of the source, the arch,
// the options and NVRTC's version, and reused. Returns "" or a one-line error (the first
// error line of NVRTC's log).
[[nodiscard]] std::string compileWithNvrtc(std::string_view source, const std::string &arch,
                                           const std::string &cacheDir, NvrtcResult &out);

// The SC_KERNEL entry points of a generated source, in order.
std::vector<std::string> kernelNames(std::string_view source);

} // namespace shardc::cuda
