// Liveness-based memory plan: buffers with disjoint lifetimes share arena bytes. The plan
// is made by the compiler and recorded in the artifact; the runtime allocates one arena.
#pragma once

#include <cstdint>
#include <vector>

namespace shardc {

struct BufferLifetime {
  int64_t bytes = 0;
  int64_t firstStep = 0; // defined by this step (-1: before the first step, e.g. inputs)
  int64_t lastStep = 0;  // last read (inclusive); the step count for program outputs
};

struct MemoryPlan {
  std::vector<int64_t> offsets; // per buffer, 64-byte aligned
  int64_t arenaBytes = 0;       // peak
  int64_t naiveBytes = 0;       // sum of all buffers, for the report
};

// Greedy best fit by decreasing size: each buffer goes to the lowest aligned offset that
// does not collide with an already placed buffer whose lifetime overlaps.
MemoryPlan planMemory(const std::vector<BufferLifetime> &buffers, int64_t alignment = 64);

} // namespace shardc
