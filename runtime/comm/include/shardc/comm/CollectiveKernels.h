// The collective step kinds (all_reduce, all_gather, reduce_scatter, all_to_all):
// shape checks at load, and each step as pack -> contiguous collective -> unpack. Shared by
// every backend: packing goes through the backend's copy2D when one is given (device memory
// for a communicator that takes device pointers), host memcpy otherwise.
#pragma once

#include "shardc/comm/Communicator.h"
#include "shardc/runtime/Kernel.h"

#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

class Backend;

struct CollectiveArgs {
  TensorView in, out;
  const Attrs *attrs = nullptr;
  Communicator *comm = nullptr;
  const CommGroup *group = nullptr;
  uint8_t *scratch = nullptr; // scratchBytes as check() reported, 64-byte aligned
  // Moves the packed chunks (Backend::copy2D): the backend owning `in`, `out` and `scratch`.
  // nullptr: they are host memory, copied with memcpy.
  Backend *copier = nullptr;
  // Every operand and result (in == ins[0], out == outs[0]): the expert-parallel steps
  // moe_dispatch and moe_combine read counts beside their rows.
  std::vector<TensorView> ins, outs;
};

struct CollectiveKernel {
  const char *op;
  // Attributes and shapes against the group size, before anything is allocated; sets the
  // scratch the step needs. Returns "" or a one-line error.
  std::string (*check)(const TensorView &in, const TensorView &out, const Attrs &attrs,
                       int64_t groupSize, uint64_t &scratchBytes);
  std::string (*run)(const CollectiveArgs &args);
  // The bytes each rank puts on the wire in a ring over `groupSize` ranks, given the step's
  // input and output bytes (`shardc report`'s figure).
  uint64_t (*wireBytes)(uint64_t inBytes, uint64_t outBytes, int64_t groupSize);
  int inputs = 1, outputs = 1; // the step's operand and result counts
};

// The collective kernel for `op`, or nullptr when `op` is not a collective step.
const CollectiveKernel *lookupCollectiveKernel(std::string_view op);
// A collective step, which moves data between ranks (every row of the table does; local
// slices are sc-partition's dynamic_slice): the executor's communication stream,
// sc-hoist-load-steps and `shardc report` ask this.
bool communicatesBetweenRanks(std::string_view op);
std::vector<std::string> collectiveKernelNames();

// Expert parallelism's measured traffic of world rank `rank` since the process started: the
// token rows its moe_dispatch steps sent to other members of their group and their bytes (the
// combine sends the same rows back), and the rows each of its local experts received (all
// layers summed). shardc-run prints them.
struct MoeTraffic {
  uint64_t rows = 0, bytes = 0, dispatches = 0;
  std::vector<int64_t> rowsPerLocalExpert;
};
MoeTraffic moeTraffic(int64_t rank);

// A collective step's `axes` attribute: a list of mesh axis names (a single string is
// accepted as a one-axis list). Sets `error` when the attribute is missing or not strings.
std::vector<std::string> collectiveAxes(const Attrs &attrs, std::string &error);

// Copies chunk `index` of `parts` equal chunks along `dim` of a dense tensor of `shape` to
// contiguous `dst` (extract), or contiguous `src` into that chunk's place in `dst` (insert).
// One 2-D copy: height = the product of the dims before `dim`, width = the chunk's bytes per
// row, through `copier`'s copy2D (nullptr: host memcpy). "" or the copier's error.
[[nodiscard]] std::string extractChunk(const uint8_t *src, const std::vector<int64_t> &shape,
                                       int64_t dim, int64_t parts, int64_t index, size_t elemSize,
                                       uint8_t *dst, Backend *copier = nullptr);
[[nodiscard]] std::string insertChunk(const uint8_t *src, const std::vector<int64_t> &shape,
                                      int64_t dim, int64_t parts, int64_t index, size_t elemSize,
                                      uint8_t *dst, Backend *copier = nullptr);

} // namespace shardc::rt
