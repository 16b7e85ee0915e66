// The .shardc artifact in memory (docs/artifact-format.md): header checks, the decoded and
// validated manifest, the constant blob, and the writer that produces the same bytes.
#pragma once

#include "shardc/comm/DeviceMesh.h"
#include "shardc/runtime/ArtifactFormat.h"
#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/MemoryBlock.h"
#include "shardc/runtime/Tensor.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace shardc::rt {

struct WeightFile {
  std::string path; // as recorded; see Artifact::resolveWeightPath
  uint64_t size = 0;
};

// Persistent: written once by the load steps (from weights and constants), read by every run.
// State: in the persistent block too, zero at load unless a load step writes it, read and
// written by run steps and kept from run to run (training parameters, optimizer moments).
enum class Storage : uint8_t { Arena, Weight, Constant, Persistent, State };

// One entry of a buffer's "shard" list: `dim` of the global tensor is split into
// product(sizes of `axes`) equal chunks; a rank holds the one at its index in the group.
struct ShardDim {
  int64_t dim = 0;
  std::vector<std::string> axes;
};

struct BufferDesc {
  int64_t id = 0;
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  Storage storage = Storage::Arena;
  uint64_t offset = 0;     // Arena: byte offset in the arena
  int64_t file = 0;        // Weight: index into Artifact::weightFiles
  uint64_t fileOffset = 0; // Weight: byte offset in that file
  std::string transform;   // Weight: informational ("none", "transpose")
  std::vector<std::string> tied; // Weight: further module paths of a tied parameter
  uint64_t blobOffset = 0; // Constant: byte offset in the blob
  // Arena and State: in host memory (CPU offload): the host arena / host persistent block.
  bool host = false;
  uint64_t bytes = 0;      // product(shape) * dtypeSize(dtype), checked against overflow at load
  // Sharded buffers: `shape` is the rank's chunk of a tensor of `globalShape`. Unsharded
  // ones have globalShape == shape and an empty `shard`.
  std::vector<ShardDim> shard;
  std::vector<int64_t> globalShape;
  uint64_t globalBytes = 0;
  // Weight buffers that are a view of the tensor stored in the file: `fileShape` is the
  // stored tensor's shape and `fileStart` where this buffer's global tensor starts in it
  // (one part of a packed projection); global elements past the stored tensor read as zero
  // (padding for even shards, torch.chunk sizes rounded up). Both empty: the file holds
  // exactly the global tensor.
  std::vector<int64_t> fileShape, fileStart;
  // A dim of the global tensor made of the stored dim's blocks of `block` elements, each
  // repeated `times` over (kv heads repeated for tensor parallelism): global index g reads
  // stored index (g / (block * times)) * block + g % block. times 0: none.
  int64_t repeatDim = 0, repeatBlock = 0, repeatTimes = 0;
  bool sharded() const { return globalShape != shape; }
  bool viewed() const { return !fileShape.empty() && (fileShape != globalShape || !fileStart.empty()); }
};

// A chunk (at `start`, of `shape`) of a global tensor that is the view starting at
// `fileStart` (empty: at 0) of a stored tensor of `fileShape`, as runs: calls run(file byte
// offset, chunk byte offset, bytes) for each innermost row of the part inside the stored
// tensor; the rest of the chunk is padding (zeros).
template <typename Run>
void forEachViewRun(const std::vector<int64_t> &fileShape, const std::vector<int64_t> &fileStart,
                    const std::vector<int64_t> &chunkStart, const std::vector<int64_t> &shape,
                    size_t elemSize, Run run) {
  size_t rank = shape.size();
  if (rank == 0) {
    run(0, 0, elemSize);
    return;
  }
  std::vector<int64_t> start(rank), valid(rank);
  for (size_t d = 0; d < rank; ++d) {
    start[d] = chunkStart[d] + (fileStart.empty() ? 0 : fileStart[d]);
    valid[d] = std::max<int64_t>(0, std::min<int64_t>(shape[d], fileShape[d] - start[d]));
    if (valid[d] == 0)
      return;
  }
  std::vector<uint64_t> fileStride(rank, 1), chunkStride(rank, 1);
  for (size_t d = rank - 1; d-- > 0;) {
    fileStride[d] = fileStride[d + 1] * static_cast<uint64_t>(fileShape[d + 1]);
    chunkStride[d] = chunkStride[d + 1] * static_cast<uint64_t>(shape[d + 1]);
  }
  std::vector<int64_t> index(rank - 1, 0); // over the valid part's outer dims
  while (true) {
    uint64_t from = static_cast<uint64_t>(start[rank - 1]), to = 0;
    for (size_t d = 0; d + 1 < rank; ++d) {
      from += static_cast<uint64_t>(start[d] + index[d]) * fileStride[d];
      to += static_cast<uint64_t>(index[d]) * chunkStride[d];
    }
    run(from * elemSize, to * elemSize, static_cast<uint64_t>(valid[rank - 1]) * elemSize);
    size_t d = rank - 1;
    while (d-- > 0) {
      if (++index[d] < valid[d])
        break;
      index[d] = 0;
    }
    if (d == static_cast<size_t>(-1))
      return;
  }
}

// Where `rank`'s chunk of `b` starts in the global tensor, one index per dim.
std::vector<int64_t> chunkStart(const BufferDesc &b, const DeviceMesh &mesh, int64_t rank);
// The chunk of a dense tensor of `globalShape` that starts at `start` and has `shape`, as
// contiguous runs: calls run(global byte offset, chunk byte offset, bytes) in order, one call
// per run (a run covers the innermost split dim and every dim inside it).
template <typename Run>
void forEachChunkRun(const std::vector<int64_t> &globalShape, const std::vector<int64_t> &start,
                     const std::vector<int64_t> &shape, size_t elemSize, Run run) {
  size_t rank = shape.size();
  size_t split = 0; // dims [split, rank) are whole after the innermost split dim
  for (size_t d = 0; d < rank; ++d)
    if (shape[d] != globalShape[d])
      split = d;
  uint64_t runElems = 1, globalStride = 1;
  std::vector<uint64_t> stride(rank, 1); // global strides in elements
  for (size_t d = rank; d-- > 0;) {
    stride[d] = globalStride;
    globalStride *= static_cast<uint64_t>(globalShape[d]);
    if (d >= split)
      runElems *= static_cast<uint64_t>(shape[d]);
  }
  uint64_t runs = 1;
  for (size_t d = 0; d < split; ++d)
    runs *= static_cast<uint64_t>(shape[d]);
  if (runElems == 0 || runs == 0)
    return;
  std::vector<int64_t> index(split, 0); // position among the runs, over dims [0, split)
  for (uint64_t r = 0; r < runs; ++r) {
    uint64_t at = rank ? static_cast<uint64_t>(start[split]) * stride[split] : 0;
    for (size_t d = 0; d < split; ++d)
      at += static_cast<uint64_t>(start[d] + index[d]) * stride[d];
    run(at * elemSize, r * runElems * elemSize, runElems * elemSize);
    for (size_t d = split; d-- > 0;) {
      if (++index[d] < shape[d])
        break;
      index[d] = 0;
    }
  }
}


struct IoBinding {
  std::string name;
  int64_t buffer = 0;
};

struct Step {
  std::string op;
  std::vector<int64_t> in, out;
  Attrs attrs;
  std::string loc;
  // The op's cost as the compiler defined it (StepOpInterface::getCost): floating-point
  // operations and bytes read plus written per run; 0 when not recorded.
  uint64_t flops = 0, bytes = 0;
  // Runs on the host with the CPU kernels, on host buffers, whatever the backend (CPU
  // offload's optimizer step).
  bool host = false;
};

// Generated fused kernels: one source for every backend (the CUDA backend compiles it with
// NVRTC) and prebuilt objects per CPU target, all in the blob.
struct KernelObject {
  std::string target; // "x86_64-linux"
  uint64_t offset = 0, bytes = 0;
};
struct KernelModule {
  uint64_t sourceOffset = 0, sourceBytes = 0;
  std::vector<KernelObject> objects;
  bool empty() const { return sourceBytes == 0; }
};

// One program of an artifact compiled for several shape sets (`shardc compile --shapes`):
// its set and its inputs' global shapes, which select it (matchProgram).
struct ProgramInfo {
  std::string shapes; // "batch=2,seq=64"
  std::vector<std::pair<std::string, std::vector<int64_t>>> inputs;
};

struct Artifact {
  std::string path; // the file it was loaded from, for messages and for weight paths
  // Several shape sets: every program of the file ([0] the manifest's own, then its nested
  // ones), and the one this Artifact holds (loadArtifact's `program`). Empty: one program.
  std::vector<ProgramInfo> programs;
  int64_t program = 0;
  std::string producer, source;
  // The header's manifest checksum: the artifact's identity (shardc-run's saved state).
  uint64_t manifestChecksum = 0;
  DeviceMesh deviceMesh; // the manifest's mesh axes, outermost first
  int64_t worldSize = 1;
  std::vector<WeightFile> weightFiles;
  uint64_t arenaBytes = 0;
  uint64_t persistentBytes = 0; // the block the load steps write
  // CPU offload: the host arena and the host persistent block (host State buffers).
  uint64_t hostArenaBytes = 0, hostPersistentBytes = 0;
  std::vector<BufferDesc> buffers; // buffers[i].id == i
  std::vector<IoBinding> inputs, outputs;
  std::vector<Step> steps;
  // Run once when the artifact is loaded, on weights and constants only (parameter casts
  // and the like); they write persistent buffers.
  std::vector<Step> loadSteps;
  MemoryBlock blob; // 64-byte aligned host copy of the blob section
  KernelModule kernels;

  // weightFiles[file].path, resolved against the artifact's directory when relative.
  std::string resolveWeightPath(int64_t file) const;
  // Where a constant buffer's bytes live in the blob.
  const uint8_t *constantData(const BufferDesc &b) const { return blob.data() + b.blobOffset; }
  std::string_view kernelSource() const {
    return {reinterpret_cast<const char *>(blob.data()) + kernels.sourceOffset, kernels.sourceBytes};
  }
};

// Reads and validates `path`: header, lengths against the file size, both checksums, the
// manifest's structure (the FlatBuffers verifier) and every cross-reference (buffer ids, arena/blob/weight-file ranges,
// step operands), so that binding and execution never index out of range. Kernel
// availability is the backend's business (Executor::create checks it before allocating).
// Returns "" or a one-line error that starts with the file name.
// `program` picks one program of a several-shapes artifact (an index into out.programs).
[[nodiscard]] std::string loadArtifact(const std::string &path, Artifact &out, int64_t program = 0);
// The same for bytes already in memory; `path` names them in errors and anchors weight paths.
[[nodiscard]] std::string parseArtifact(std::string_view bytes, const std::string &path,
                                        Artifact &out, int64_t program = 0);
// The program of `a` (loaded with any `program`) whose inputs have exactly these names and
// shapes; -1 and a one-line `error` listing the sets when none has.
int64_t matchProgram(const Artifact &a,
                     const std::vector<std::pair<std::string, std::vector<int64_t>>> &inputs,
                     std::string &error);

// The artifact file's bytes: header (magic, version, lengths, checksums), manifest (a
// finished FlatBuffer of runtime/schema/artifact.fbs), blob.
std::string encodeArtifact(std::string_view manifest, std::string_view blob);
// Writes encodeArtifact's bytes to `path`; returns "" or a one-line error.
[[nodiscard]] std::string writeArtifact(const std::string &path, std::string_view manifest,
                                        std::string_view blob);

} // namespace shardc::rt
