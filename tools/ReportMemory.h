// Memory per rank of a compiled artifact, for `shardc report`: the buffers one rank holds, the
// live peak of its step list, and for a training step the terms of FSDP's memory formula.
#pragma once

#include "shardc/runtime/Artifact.h"

#include "llvm/ADT/StringRef.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc {

struct MemoryBreakdown {
  uint64_t weightBytes = 0;     // Weight buffers (read at load; the initial values of a train step's masters)
  uint64_t persistentBytes = 0; // the persistent block: states and load-time casts
  uint64_t arenaBytes = 0;      // the memory plan's arena
  uint64_t livePeakBytes = 0;   // the most arena bytes live at once (a lower bound for any packing)
  int64_t livePeakStep = 0;
  std::string livePeakLoc;
  struct Live {
    std::string name, writer; // the buffer, and the loc of the step that wrote it
    uint64_t bytes = 0;
  };
  std::vector<Live> largestAtPeak; // the largest buffers live at the peak, largest first
  // Training (states present):
  bool training = false;
  int64_t trainableParams = 0;
  uint64_t masterBytes = 0;         // the parameters' master shards
  uint64_t optimizerStateBytes = 0; // AdamW's moments and the step count
  uint64_t gradientBytes = 0;       // gradient shards in reduce_dtype (as many elements as the masters)
  std::string reduceDtype;
  uint64_t largestGatheredGroupBytes = 0; // one layer's FSDP all-gathers in forward
  int64_t largestGatheredGroupLayer = -1;
  uint64_t savedGatheredBytes = 0;   // gathered parameters the forward keeps for the backward
  uint64_t savedActivationBytes = 0; // other forward values the backward reads
  uint64_t formulaBytes = 0;         // the sum of the terms above (masters .. saved); with
                                     // CPU offload the device's terms only (gathered, saved)
  // CPU offload (offload_policy: cpu): the host memory the artifact plans beside the device's
  // (the figures above are then the device's), and the formula's terms that moved there.
  bool offload = false;
  uint64_t hostPersistentBytes = 0; // host states: masters, moments, step count
  uint64_t hostArenaBytes = 0;      // gradient shards and the update's temporaries
  uint64_t offloadedBytes = 0;      // masters + gradients + optimizer state
};

MemoryBreakdown analyzeMemory(const rt::Artifact &art);

// A step's loc is "<node> @ <module path>", with " (backward)" for a training step's backward.
int64_t layerOfStepLoc(llvm::StringRef loc); // the decoder/encoder layer, -1 outside layers
bool isBackwardLoc(llvm::StringRef loc);

} // namespace shardc
