// A hand-built artifact made of collective steps only, on a tp mesh of any size T that divides
// 6: every step kind, most along a dim other than the outermost, so that the packing copies
// (Backend::copy2D) run. The CUDA backend runs it as well as the CPU one (no compute op), so
// the same artifact checks NCCL and the device packing on a GPU (bench/gpu/run.sh).
#pragma once

#include "shardc/runtime/HostTensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt::fixtures {

// x [4, 6T] (an input split on dim 1 over tp: this rank's [4, 6] is bound) ->
//   g  = all_gather(x, dim 1)                  [4, 6T]   (= x)
//   rs = reduce_scatter(g, dim 1, sum)         [4, 6]    (= T * this rank's columns of x)
//   a  = all_to_all(rs, split 1, concat 0)     [4T, 6/T]
//   ar = all_reduce(a, sum)                    [4T, 6/T]
//   y  = all_gather(ar, dim 0)                 [4T*T, 6/T]
// Outputs g and y (identical on every rank). Values are small integers: exact in f32.
struct CollectivesArtifact {
  std::string manifest;
  std::vector<HostTensor> inputs;   // x
  std::vector<HostTensor> expected; // g, y
};

CollectivesArtifact makeCollectivesArtifact(int64_t tp);
// Writes m.shardc, in.npz and expected.npz into `dir`; "" or an error.
std::string writeCollectivesArtifact(const std::string &dir, int64_t tp);

} // namespace shardc::rt::fixtures
