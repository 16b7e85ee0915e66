// Training checkpoints on disk (docs/training.md#checkpoints, docs/cli.md): what shardc-run's
// --save-state writes and --load-state and `shardc export-weights` read. No Session here (the
// shardc driver links it too); TrainState.cpp moves the State buffers in and out.
//
//   DIR/manifest.json               the committed step: written last, by rank 0, after every rank
//                                   wrote its files and a barrier (tmp + fsync + rename)
//   DIR/step-00000012/rank<R>.npz   rank R's State buffers by name (f16/bf16 as f32)
//   DIR/step-00000012/rank<R>.json  where each of them sits in its logical (global) tensor
#pragma once

#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/HostTensor.h"

#include <cstdint>
#include <string>
#include <vector>

namespace shardc::ckpt {

using namespace shardc::rt;

inline constexpr const char *kFormat = "shardc-checkpoint-1";

// One State buffer of one rank and the part of its logical tensor that it holds.
//   param: a trainable parameter, initialised from the weight `global` (packed parts
//          `<w>.part<i>` are slices of `<w>`), in the stored layout (`transform`: "transpose"
//          when the stored tensor is the transpose of PyTorch's weight);
//   optimizer: a state named after a parameter's (adamw.exp_avg.<p>), laid out as it, or a
//          scalar (optimizer.step);
//   other: any other state; a scalar is whole, else its layout is not known (located false).
// The rank's array is the buffer's chunk `shape`; its leading `sizes` corner is the logical
// tensor's box at `offsets` (the rest is padding of uneven shards).
struct StateSlice {
  std::string name, global, kind, transform;
  std::vector<std::string> tied; // further module paths reading the same parameter
  DType dtype = DType::F32;      // as saved
  std::vector<int64_t> shape, globalShape, offsets, sizes;
  bool located = false;
  int64_t numel() const;
};

// The State buffers of `rank` of `a`, in manifest order, with their place in the logical tensors.
std::vector<StateSlice> stateSlices(const Artifact &a, int64_t rank);

// The JSON of a rank's metadata file and back. parse: "" or a one-line error naming `path`.
struct RankMeta {
  int64_t rank = 0, worldSize = 0, steps = 0;
  std::string checksum, mesh;
  std::vector<StateSlice> states;
};
std::string rankMetaJson(const RankMeta &m);
std::string parseRankMeta(const std::string &path, RankMeta &m);

// DIR/manifest.json.
struct Manifest {
  std::string stepDir, artifact, checksum, mesh;
  int64_t worldSize = 0, steps = 0;
};
std::string manifestPath(const std::string &dir);
std::string manifestJson(const Manifest &m, const DeviceMesh &mesh);
// "" or a one-line error; `missing` says the file is not there at all.
std::string readManifest(const std::string &dir, Manifest &m, bool *missing = nullptr);
std::string stepDirName(int64_t steps);
std::string rankPath(const std::string &stepDir, int64_t rank, const char *ext);

// Writes `bytes` to `path` atomically: PATH.tmp, fsync, rename, fsync of the directory.
std::string writeFileAtomic(const std::string &path, const std::string &bytes);
// Flushes `tmp` to disk and renames it over `path` (then flushes the directory).
std::string commitFile(const std::string &tmp, const std::string &path);
std::string hex(uint64_t v);
std::string jsonText(const std::string &s);

// Copies into `dst` (a chunk described by `to`) the elements of the logical box of `to` that
// `src` (a chunk described by `from`, same logical tensor, same element size) holds; returns
// how many elements it copied.
int64_t copyOverlap(const StateSlice &from, const uint8_t *src, const StateSlice &to, uint8_t *dst,
                    size_t elemSize);

// Assembles, from the saved ranks of a committed checkpoint, each of `wanted` (a chunk of a
// logical tensor: `global`, `globalShape`, `offsets`, `sizes`, `shape`, `dtype` as saved)
// into `out[i]` (the chunk's bytes, padding zero), reading only the rank files that hold a
// part of one. "" or a one-line error (a tensor missing, another global shape, a part that no
// rank holds).
std::string assemble(const std::string &stepDir, const std::vector<RankMeta> &saved,
                     const std::vector<StateSlice> &wanted, std::vector<std::vector<uint8_t>> &out);
// Reads the metadata of the `worldSize` ranks of a step directory.
std::string readRankMetas(const std::string &stepDir, int64_t worldSize, std::vector<RankMeta> &metas);

// `shardc export-weights DIR -o OUT.safetensors [--strip-prefix P]`: the exit status.
int exportWeightsMain(int argc, char **argv);

} // namespace shardc::ckpt
