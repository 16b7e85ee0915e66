// The arithmetic of a step, for reports and profiles: the floating-point operations (a
// multiply and an add count two) that the compiler recorded for it from the op's own cost
// (StepOpInterface::getCost, compiler/lib/Dialect/ScStepLowering.cpp): 2 M N K for linear,
// matmul and gemm; 2 (D + Dv) per query-key pair that attention scores (all S x T pairs, or for
// a causal step the pairs on and below the upper-left diagonal); 0 for steps bound by memory
// (elementwise, normalisations, data movement). The runtime has no formula of its own, so the
// two cannot disagree.
#pragma once

#include "shardc/runtime/Artifact.h"

#include <cstdint>

namespace shardc::rt {

inline uint64_t stepFlops(const Artifact &, const Step &step) { return step.flops; }

inline uint64_t stepListFlops(const Artifact &artifact) {
  uint64_t total = 0;
  for (const Step &s : artifact.steps)
    total += stepFlops(artifact, s);
  return total;
}

} // namespace shardc::rt
