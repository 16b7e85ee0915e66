// A hand-built sharded artifact for tests: an MLP with a column-parallel and a row-parallel
// linear (+ all_reduce over tp) on a batch split over dp_shard (+ all_gather), any mesh size.
#pragma once

#include "shardc/runtime/HostTensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::rt::fixtures {

struct TpMlpArtifact {
  // y = gelu(x·w1 + b1)·w2 + b2 with x [B, K], w1 [K, H], w2 [H, N]: B = 4, K = 6, H = 8, N = 5.
  static constexpr int64_t B = 4, K = 6, H = 8, N = 5;
  std::string manifest;               // JSON
  std::string weights;                // the bytes of w.bin: w1, b1, w2, b2 (global, f32)
  std::vector<HostTensor> inputs;     // x
  std::vector<HostTensor> expected;   // y, computed serially in double
};

// For a mesh of dp_shard x tp ranks (each must divide B and H respectively). The all_reduce
// is step 3 and the all_gather step 5.
TpMlpArtifact makeTpMlpArtifact(int64_t dpShard, int64_t tp);
// Writes m.shardc, w.bin, in.npz and expected.npz into `dir`; returns "" or an error.
std::string writeTpMlpArtifact(const std::string &dir, int64_t dpShard, int64_t tp);
// Whether `got` has `want`'s names, dtypes and shapes and values within `tolerance`
// (relative to max(1, |want|)); "" or the first difference.
std::string compareTensors(const std::vector<HostTensor> &got, const std::vector<HostTensor> &want,
                           double tolerance);

} // namespace shardc::rt::fixtures
