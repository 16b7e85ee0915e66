// Kernel profiles from per-step times (Executor::stepMilliseconds): steps grouped by what they
// launch (a generated kernel by name; a library kernel by op, dtype and shapes; a collective by
// op, axes and bytes), ranked by time, with their share of the step and, for GEMMs and
// attention, their rate (from each step's recorded FLOPs, Step::flops).
#pragma once

#include "shardc/runtime/Artifact.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt {

struct KernelProfileRow {
  std::string kernel;   // "linear bf16 128x256, 512x256 -> 128x512", "fused sc_fused_1a2b..."
  int64_t calls = 0;    // steps per run
  double ms = 0.0;      // per run, all calls
  double share = 0.0;   // of the run's step time, 0..1
  uint64_t flops = 0;   // per run, all calls (0: not counted)
  std::string firstLoc; // the first step's location
};

// `msPerStep[i]`: step i's time per run. Rows sorted by time, longest first.
std::vector<KernelProfileRow> kernelProfile(const Artifact &artifact, const std::vector<double> &msPerStep);
// The `top` longest rows as a table (share, ms, calls, TFLOP/s, kernel, where).
std::string formatKernelProfile(const std::vector<KernelProfileRow> &rows, size_t top);

} // namespace shardc::rt
