// Executor::allocateStorage: weight files checked before anything is allocated, then the arena,
// the persistent block and the weights, each rank reading only its chunk of each weight (pread
// of the chunk's runs) from the artifact's weight files or, with ExecutorOptions::weights, from
// a Hugging Face safetensors checkpoint bound by parameter name (Safetensors.h).
#include "shardc/runtime/Executor.h"

#include "FileIO.h"
#include "shardc/runtime/Safetensors.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <sys/stat.h>
#include <tuple>
#include <unistd.h>

namespace shardc::rt {

namespace {

uint64_t alignUp(uint64_t v) {
  return (v + MemoryBlock::kAlignment - 1) / MemoryBlock::kAlignment * MemoryBlock::kAlignment;
}

// ExecutorOptions::randomWeights: uniform values in [-0.05, 0.05) in the buffer's dtype
// (integers stay zero), from a xorshift64* stream seeded per buffer and rank.
void fillRandom(uint8_t *dst, const BufferDesc &b, uint64_t seed) {
  uint64_t x = seed | 1;
  auto next = [&x] {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return float(double((x * 0x2545f4914f6cdd1dull) >> 11) / double(1ull << 53) * 0.1 - 0.05);
  };
  int64_t n = b.bytes / std::max<size_t>(1, dtypeSize(b.dtype));
  for (int64_t i = 0; i < n; ++i) {
    float v = next();
    switch (b.dtype) {
    case DType::F32: std::memcpy(dst + i * 4, &v, 4); break;
    case DType::BF16: { uint16_t h = f32ToBf16(v); std::memcpy(dst + i * 2, &h, 2); break; }
    case DType::F16: { uint16_t h = f32ToF16(v); std::memcpy(dst + i * 2, &h, 2); break; }
    case DType::F64: { double d = v; std::memcpy(dst + i * 8, &d, 8); break; }
    default: return;
    }
  }
}

} // namespace

std::string Executor::allocateStorage() {
  // A Hugging Face checkpoint binds the buffers it names (their chunks are read from it); the
  // others read the artifact's weight files.
  Safetensors checkpoint;
  std::vector<BoundWeight> bound(artifact_.buffers.size());
  if (!options_.weights.empty() && !options_.randomWeights) {
    if (std::string err = openSafetensors(options_.weights, checkpoint); !err.empty())
      return err;
    if (std::string err = bindSafetensors(artifact_, checkpoint, bound, weightNotes_); !err.empty())
      return err;
  }
  // Open and check every weight file a buffer reads before allocating anything, so that a
  // missing or replaced file is reported without first reserving gigabytes.
  struct OpenFile {
    int fd = -1;
    ~OpenFile() {
      if (fd >= 0)
        ::close(fd);
    }
  };
  std::vector<OpenFile> files(artifact_.weightFiles.size()), checkpointFiles(checkpoint.files.size());
  std::vector<bool> needed(files.size(), false);
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight && !bound[size_t(b.id)].tensor)
      needed[size_t(b.file)] = true;
  for (size_t f = 0; f < files.size() && !options_.randomWeights; ++f) {
    if (!needed[f])
      continue;
    std::string path = artifact_.resolveWeightPath(static_cast<int64_t>(f));
    std::string where = "weight file '" + path + "' (weight_files[" + std::to_string(f) + "])";
    files[f].fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (files[f].fd < 0)
      return where + ": cannot open: " + std::strerror(errno);
    struct stat st;
    if (::fstat(files[f].fd, &st) != 0)
      return where + ": cannot stat: " + std::strerror(errno);
    uint64_t recorded = artifact_.weightFiles[f].size;
    if (static_cast<uint64_t>(st.st_size) != recorded)
      return where + " is " + std::to_string(st.st_size) + " bytes, the artifact recorded " +
             std::to_string(recorded) + " (was it replaced after compiling?)";
  }
  for (size_t f = 0; f < checkpointFiles.size(); ++f) {
    checkpointFiles[f].fd = ::open(checkpoint.files[f].c_str(), O_RDONLY | O_CLOEXEC);
    if (checkpointFiles[f].fd < 0)
      return checkpoint.files[f] + ": cannot open: " + std::strerror(errno);
  }

  // Buffers naming the same bytes (tied embeddings) share one copy; a sharded buffer names its
  // chunk of the global tensor (an unsharded one has an empty start, global shape and shape).
  // A viewed weight's chunk also names the stored tensor's shape and the view's start.
  using Chunk = std::tuple<std::vector<int64_t>, std::vector<int64_t>, std::vector<int64_t>,
                           std::vector<int64_t>, std::vector<int64_t>>; // global shape, start,
                                                                      // shape, file shape, file start
  // file, offset, bytes, element size (0: unsharded), chunk, checkpoint tensor (-1: none), transposed
  using Range = std::tuple<int64_t, uint64_t, uint64_t, size_t, Chunk, int64_t, bool>;
  std::map<Range, uint64_t> placement; // range -> offset in weights_
  auto rangeOf = [&](const BufferDesc &b) {
    Chunk chunk;
    bool split = b.sharded() || b.viewed();
    if (split) {
      std::vector<int64_t> start = chunkStart(b, artifact_.deviceMesh, comm_->rank()), fileStart = b.fileStart;
      if (b.repeatTimes > 0) { // the chunk lies in one repeated block: shift it onto the stored one
        if (fileStart.empty())
          fileStart.assign(b.shape.size(), 0);
        size_t d = size_t(b.repeatDim);
        int64_t s = start[d], group = b.repeatBlock * b.repeatTimes;
        fileStart[d] += (s / group) * b.repeatBlock + s % b.repeatBlock - s;
      }
      chunk = Chunk{b.globalShape, start, b.shape, b.viewed() ? b.fileShape : std::vector<int64_t>{}, fileStart};
    }
    const BoundWeight &w = bound[size_t(b.id)];
    if (!w.tensor)
      return Range{b.file, b.fileOffset, b.bytes, split ? dtypeSize(b.dtype) : 0, chunk, -1, false};
    if (!split)
      chunk = Chunk{b.globalShape, {}, b.shape, {}, {}};
    return Range{-1, w.tensor->offset, b.bytes, dtypeSize(b.dtype), chunk,
                 int64_t(w.tensor - checkpoint.tensors.data()), w.transposed};
  };
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight && b.repeatTimes > 0) {
      int64_t s = chunkStart(b, artifact_.deviceMesh, comm_->rank())[size_t(b.repeatDim)];
      if (s % b.repeatBlock + b.shape[size_t(b.repeatDim)] > b.repeatBlock)
        return "weight '" + b.name + "': this rank's chunk of dim " + std::to_string(b.repeatDim) +
               " spans two repeated blocks of " + std::to_string(b.repeatBlock);
    }
  uint64_t total = 0;
  std::map<Range, DType> dtypeOf;
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight) {
      Range range = rangeOf(b);
      auto inserted = placement.emplace(range, total);
      if (inserted.second)
        total = alignUp(total + b.bytes);
      dtypeOf[range] = b.dtype;
    }

  arena_ = backend_.allocate(artifact_.arenaBytes);
  if (!arena_)
    return "cannot allocate the " + std::to_string(artifact_.arenaBytes) + "-byte arena";
  // Backend::allocate zero-fills (the CUDA backend memsets on its stream, before the load
  // steps): State buffers no load step writes start at zero.
  persistent_ = backend_.allocate(artifact_.persistentBytes);
  if (!persistent_ && artifact_.persistentBytes)
    return "cannot allocate the " + std::to_string(artifact_.persistentBytes) + "-byte persistent block";
  weights_ = backend_.allocate(total);
  if (!weights_)
    return "cannot allocate " + std::to_string(total) + " bytes for the weights";

  std::vector<uint8_t> staging; // one weight range on the host, for a device backend
  if (options_.randomWeights)
    for (const BufferDesc &b : artifact_.buffers) {
      if (b.storage != Storage::Weight)
        continue;
      staging.assign(b.bytes, 0);
      fillRandom(staging.data(), b, (b.fileOffset * 0x9e3779b97f4a7c15ull) ^ (uint64_t(comm_->rank()) << 48));
      if (std::string e = backend_.copyIn(weights_.data() + placement.at(rangeOf(b)), staging.data(), b.bytes);
          !e.empty())
        return "random weights: " + e;
    }
  for (const auto &[range, offset] : placement) {
    if (options_.randomWeights)
      break;
    const auto &[file, fileOffset, bytes, elemSize, chunk, tensor, transposed] = range;
    uint8_t *dst = weights_.data() + offset;
    if (!backend_.hostAddressable()) {
      staging.assign(bytes, 0);
      dst = staging.data();
    }
    const auto &[globalShape, start, shape, fileShape, fileStart] = chunk;
    std::string err;
    if (tensor >= 0) { // from the checkpoint, converted and transposed as bound
      const CheckpointTensor &t = checkpoint.tensors[size_t(tensor)];
      err = readWeightChunk(checkpointFiles[t.file].fd, t.offset, t.dtype, transposed,
                            WeightChunk{globalShape, start, shape, fileShape, fileStart}, dtypeOf.at(range), dst);
      if (err.empty() && !backend_.hostAddressable())
        err = backend_.copyIn(weights_.data() + offset, staging.data(), bytes);
      if (!err.empty())
        return checkpoint.files[t.file] + ": tensor '" + t.name + "': " + err;
      continue;
    }
    int fd = files[static_cast<size_t>(file)].fd;
    auto read = [&](uint64_t at, uint64_t to, uint64_t n) {
      if (err.empty())
        if (std::string e = preadFully(fd, dst + to, n, fileOffset + at); !e.empty())
          err = "reading " + std::to_string(n) + " bytes at offset " +
                std::to_string(fileOffset + at) + " failed: " + e;
    };
    if (elemSize == 0) // unsharded: one run
      read(0, 0, bytes);
    else if (!fileShape.empty()) // a view: the rows inside the stored tensor; the rest stays zero
      forEachViewRun(fileShape, fileStart, start, shape, elemSize, read);
    else // one pread per contiguous run of the rank's chunk
      forEachChunkRun(globalShape, start, shape, elemSize, read);
    if (!err.empty())
      return "weight file '" + artifact_.resolveWeightPath(file) + "': " + err;
    if (!backend_.hostAddressable())
      if (std::string e = backend_.copyIn(weights_.data() + offset, staging.data(), bytes); !e.empty())
        return "weight file '" + artifact_.resolveWeightPath(file) + "': " + e;
  }
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight)
      views_[static_cast<size_t>(b.id)].data = weights_.data() + placement.at(rangeOf(b));
  return "";
}

} // namespace shardc::rt
