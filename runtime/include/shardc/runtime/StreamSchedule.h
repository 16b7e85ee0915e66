// Two streams for one rank's steps: collectives that run on the device (NCCL) go on a
// communication stream, everything else on the compute stream, so that a collective whose
// inputs are ready (an FSDP all-gather of parameters) proceeds while compute continues.
//
// The order between the streams comes from memory, not from value names: the memory plan
// reuses arena bytes between values whose lifetimes do not overlap, so a step must wait not
// only for the producer of what it reads (read after write) but for every earlier step of
// the other stream that reads or writes bytes it overwrites (write after read, write after
// write). Each step waits at most once per other stream, for the latest conflicting step
// there (a stream runs in order, so that covers the earlier ones), and not at all when an
// earlier wait of its own stream already covers it. Pure C++, planned once per executor.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt {

// A byte range of one memory region (the arena, the persistent block, ...: any distinct ids).
struct ByteRange {
  int region = 0;
  uint64_t begin = 0, end = 0; // [begin, end)
};

struct StepAccess {
  std::vector<ByteRange> reads, writes;
  int stream = 0; // 0: compute, 1: communication
};

struct StreamSchedule {
  static constexpr size_t kNone = SIZE_MAX;
  std::vector<int> stream;   // per step
  std::vector<size_t> waitOn; // per step: the other stream's step to wait for, or kNone
  // Figures: steps on the communication stream, waits between the streams, and for each
  // communication step the compute steps it may run beside: those enqueued after the compute
  // step its stream last waited for and before it (the host runs ahead of the device), and
  // those after it up to the first compute step that waits for it.
  size_t communicationSteps = 0, waits = 0;
  std::vector<size_t> overlap; // per communication step, in step order

  // "12 of 40 steps on the communication stream, 14 waits; overlap (compute steps) min 0,
  // median 3, max 9".
  std::string describe() const;
};

StreamSchedule planStreams(const std::vector<StepAccess> &steps);

} // namespace shardc::rt
