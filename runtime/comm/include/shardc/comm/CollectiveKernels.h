// The collective step kinds (all_reduce, all_gather, reduce_scatter, all_to_all, shard_slice):
// shape checks at load, and each step as pack -> contiguous collective -> unpack. Shared by
// every backend: a device backend swaps the host copies for its own.
#pragma once

#include "shardc/comm/Communicator.h"
#include "shardc/runtime/Kernel.h"

#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

struct CollectiveArgs {
  TensorView in, out;
  const Attrs *attrs = nullptr;
  Communicator *comm = nullptr;
  const CommGroup *group = nullptr;
  uint8_t *scratch = nullptr; // scratchBytes as check() reported, 64-byte aligned
};

struct CollectiveKernel {
  const char *op;
  // Attributes and shapes against the group size, before anything is allocated; sets the
  // scratch the step needs. Returns "" or a one-line error.
  std::string (*check)(const TensorView &in, const TensorView &out, const Attrs &attrs,
                       int64_t groupSize, uint64_t &scratchBytes);
  std::string (*run)(const CollectiveArgs &args);
};

// The collective kernel for `op`, or nullptr when `op` is not a collective step.
const CollectiveKernel *lookupCollectiveKernel(std::string_view op);
std::vector<std::string> collectiveKernelNames();

// A collective step's `axes` attribute: a list of mesh axis names (a single string is
// accepted as a one-axis list). Sets `error` when the attribute is missing or not strings.
std::vector<std::string> collectiveAxes(const Attrs &attrs, std::string &error);

// Copies chunk `index` of `parts` equal chunks along `dim` of a dense tensor of `shape` to
// contiguous `dst` (extract), or contiguous `src` into that chunk's place in `dst` (insert).
void extractChunk(const uint8_t *src, const std::vector<int64_t> &shape, int64_t dim,
                 int64_t parts, int64_t index, size_t elemSize, uint8_t *dst);
void insertChunk(const uint8_t *src, const std::vector<int64_t> &shape, int64_t dim,
                   int64_t parts, int64_t index, size_t elemSize, uint8_t *dst);

} // namespace shardc::rt
