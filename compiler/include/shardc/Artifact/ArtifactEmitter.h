// Emits the .shardc artifact (docs/artifact-format.md) from a single-rank program of sc ops:
// one step per op, buffers for every value, the memory plan, weights as file references.
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "llvm/Support/Error.h"
#include "shardc/runtime/ArtifactFormat.h"

#include <string>
#include <vector>

namespace shardc {

using rt::kArtifactFormatVersion; // one definition: shardc/runtime/ArtifactFormat.h

struct EmitStats {
  int64_t steps = 0;
  int64_t buffers = 0;
  int64_t arenaBytes = 0;     // peak, from the memory plan
  int64_t naiveArenaBytes = 0; // without reuse
  int64_t weightBytes = 0;
  int64_t constantBytes = 0;
  int64_t fusedKernels = 0; // distinct generated kernels
  int64_t loadSteps = 0;       // run once at load (weights and constants only)
  int64_t persistentBytes = 0; // what they write
  int64_t hostArenaBytes = 0, hostPersistentBytes = 0; // CPU offload's host memory
  std::string kernelSource; // their module source (prelude and kernels), "" without any
};

// One program's finished manifest and blob, in memory (a nested program of a several-shapes
// artifact).
struct ProgramBytes {
  std::string shapes; // the --shapes set it was compiled for
  std::string manifest, blob;
};

struct EmitOptions {
  // Weight files in the artifact's directory (or below it) are recorded relative to it, so
  // the directory can be moved or copied to another machine as a whole; others stay absolute.
  bool relativeWeights = false;
  // Several shape sets (`--shapes`, docs/artifact-format.md#several-programs): this program's
  // set, and the other sets' programs (emitProgram), nested in the manifest.
  std::string shapes;
  std::vector<ProgramBytes> programs;
};

// The artifact's manifest and blob without writing them (`outPath` anchors relative weights).
llvm::Expected<ProgramBytes> emitProgram(mlir::ModuleOp module, llvm::StringRef outPath, EmitStats &stats,
                                         const EmitOptions &options = {});

// Writes the artifact to `outPath`. Errors name the op's ONNX node and module path.
llvm::Error emitArtifact(mlir::ModuleOp module, llvm::StringRef outPath, EmitStats &stats,
                         const EmitOptions &options = {});

} // namespace shardc
