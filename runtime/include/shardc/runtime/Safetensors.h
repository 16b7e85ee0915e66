// Hugging Face checkpoints in the safetensors format, bound to an artifact's weight buffers by
// name (shardc-run --weights, SessionOptions::weights): a file is an 8-byte little-endian
// header length, a JSON header ({"name": {"dtype", "shape", "data_offsets": [begin, end]}},
// optional "__metadata__") and the raw little-endian data the offsets index. A directory holds
// one such file, or shards listed by `model.safetensors.index.json` ({"weight_map": {name:
// file}}). Only headers are read here; each rank later preads its chunk of each tensor
// (readWeightChunk). Rules and messages: docs/runtime.md#hugging-face-checkpoints.
#pragma once

#include "shardc/runtime/Artifact.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace shardc::rt {

struct CheckpointTensor {
  std::string name;
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  size_t file = 0;     // index into Safetensors::files
  uint64_t offset = 0; // absolute byte offset of the data in that file
  uint64_t bytes = 0;
};

struct Safetensors {
  std::string where;              // the path as given, for messages
  std::vector<std::string> files; // the safetensors files
  std::vector<CheckpointTensor> tensors;
  std::map<std::string, size_t> byName; // -> index into tensors
  const CheckpointTensor *find(const std::string &name) const {
    auto it = byName.find(name);
    return it == byName.end() ? nullptr : &tensors[it->second];
  }
  // The file a tensor of this name is in, for messages ("model-00001-of-00002.safetensors").
  std::string fileOf(const CheckpointTensor &t) const;
};

// Reads the headers of `path`: a .safetensors file, or a directory with
// model.safetensors.index.json or exactly one *.safetensors file. Checks every header (length,
// JSON, dtype, shape, offsets inside the file and matching the shape) and that the index's
// files hold the names it maps to them. "" or one line starting with the file at fault.
[[nodiscard]] std::string openSafetensors(const std::string &path, Safetensors &out);

// How one Weight buffer reads from the checkpoint.
struct BoundWeight {
  const CheckpointTensor *tensor = nullptr; // nullptr: from the artifact's weight file
  bool transposed = false;                  // the checkpoint holds the 2-D transpose (PyTorch's [out, in])
};

// Binds every Weight buffer of `artifact` whose module path (or one of its tied paths) is a
// parameter name: the path without the export wrapper's prefix `m.` (when every such name has
// it, as shardc export-weights) and without a packed part's `.part<i>` (the part is a view of
// the whole stored tensor). Buffers that are no module parameter (`val_12`, `onnx::`
// names, paths not ending in `.weight`/`.bias` that the checkpoint lacks) keep their artifact
// file. `bound` gets one entry per buffer. Errors: a parameter the checkpoint lacks (with the
// nearest names), a shape other than the buffer's stored tensor (transposed for `transform:
// transpose`), a dtype that does not convert. `notes` gets the dtype conversions and the
// checkpoint tensors the graph does not use, one line each.
[[nodiscard]] std::string bindSafetensors(const Artifact &artifact, const Safetensors &checkpoint,
                                          std::vector<BoundWeight> &bound, std::vector<std::string> &notes);

// One rank's chunk of a weight, in the buffer's layout: the chunk at `start` (empty: the
// whole tensor) of `shape` of a global tensor of `globalShape` that is the view at `fileStart`
// (empty: 0) of a stored tensor of `fileShape` (repeats already folded into `fileStart`).
struct WeightChunk {
  std::vector<int64_t> globalShape, start, shape, fileShape, fileStart;
};

// Reads `chunk` of the tensor at byte `offset` of `fd`, stored as `stored` in the buffer's
// layout or, when `transposed`, as its 2-D transpose, into `dst` (the chunk, dense, as
// `dtype`): preads of the chunk's runs only, then an in-memory transpose and dtype conversion
// (f32/bf16/f16/f64 among themselves) where needed; elements outside the stored tensor are
// zero. "" or the reason.
[[nodiscard]] std::string readWeightChunk(int fd, uint64_t offset, DType stored, bool transposed,
                                          const WeightChunk &chunk, DType dtype, uint8_t *dst);

} // namespace shardc::rt
