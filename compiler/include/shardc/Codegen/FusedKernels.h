// Generated fused kernels: the source of one kernel per distinct sc.fused body, in the
// portable dialect of FusedPrelude.h, and the host build of a module of them for the CPU
// backend. The same source is what the CUDA backend compiles with NVRTC at load.
#pragma once

#include "shardc/Dialect/ScDialect.h"

#include "llvm/Support/Error.h"

#include <string>

namespace shardc {

struct FusedKernelSource {
  std::string name; // sc_fused_<hash of the text>: equal bodies share a kernel
  std::string text; // the kernel and, for the CPU, its `<name>_host(void *const *args)` entry
  // How a GPU launches it: "elements" (a grid-stride loop over `count` elements) or "rows"
  // (one block per row, `count` rows, threads over the row).
  std::string launch = "elements";
  int64_t count = 0;
};

// The kernel computing `op`'s results: one element per iteration of SC_LOOP, inputs read at
// their broadcast positions, bf16/f16 rounded after each op as the library kernels do.
llvm::Expected<FusedKernelSource> generateFusedKernel(sc::FusedOp op);

// The prelude text (runtime/kernels/common/.../FusedPrelude.h), embedded at build time.
llvm::StringRef fusedKernelPrelude();

// The CPU shared object of `source` (a whole module: prelude and kernels), built with the
// host C++ compiler ($SHARDC_CXX, $CXX, or c++ on PATH) and cached by source hash under
// $SHARDC_CACHE_DIR (default $XDG_CACHE_HOME/shardc or ~/.cache/shardc). Returns its bytes.
llvm::Expected<std::string> buildCpuKernelObject(llvm::StringRef source);

// The CPU target name of objects built here and loadable by this runtime ("x86_64-linux").
llvm::StringRef cpuKernelTarget();

} // namespace shardc
