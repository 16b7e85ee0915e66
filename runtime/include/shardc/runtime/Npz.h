// .npz input and output files (a zip of .npy arrays, as numpy.savez writes them), so that
// shardc-run exchanges tensors with numpy and the e2e tests without any Python in the loop.
#pragma once

#include "shardc/runtime/HostTensor.h"

#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

// Reads every member of an .npz. Members may be stored or deflated (savez_compressed) and
// zip64; arrays are .npy v1/v2/v3, C order, dtype one of <f4 <f8 <f2 <i8 <i4 |i1 |u1 |b1.
// Tensor names are the member names without ".npy"; order is the archive's. Returns "" or a
// one-line error starting with `path` (and naming the member where one is at fault).
[[nodiscard]] std::string readNpz(const std::string &path, std::vector<HostTensor> &out);
// The same for an archive already in memory; `path` only names it in errors.
[[nodiscard]] std::string parseNpz(std::string_view bytes, const std::string &path,
                                   std::vector<HostTensor> &out);

// An uncompressed (stored) zip that numpy.load reads; bf16 tensors, which numpy has no dtype
// for, are written as f32. Refuses archives zip64 would be needed for (over 4 GiB).
[[nodiscard]] std::string encodeNpz(const std::vector<HostTensor> &tensors, std::string &bytes);
[[nodiscard]] std::string writeNpz(const std::string &path, const std::vector<HostTensor> &tensors);

// A copy with f16 and bf16 widened to f32; other dtypes are returned unchanged.
HostTensor widenToF32(const HostTensor &t);

} // namespace shardc::rt
