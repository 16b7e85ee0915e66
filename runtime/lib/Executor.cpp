// The step-list executor behind Executor.h: kernel resolution and validation before any
// allocation, weight binding with pread, input checks, and step errors located by index and loc.
#include "shardc/runtime/Executor.h"

#include "FileIO.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
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

std::string quotedList(const std::vector<std::string> &names) {
  std::string s;
  for (const std::string &n : names)
    s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

std::string typeString(DType dtype, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(dtype)) + " " + shapeString(shape);
}

} // namespace

std::string Executor::stepPrefix(size_t index) const {
  const Step &step = artifact_.steps[index];
  std::string where = "step " + std::to_string(index) + " (" + step.op;
  if (!step.loc.empty())
    where += " @ " + step.loc;
  return where + "): ";
}

std::string Executor::create(const Artifact &artifact, Backend &backend,
                             std::unique_ptr<Executor> &out) {
  std::unique_ptr<Executor> ex(new Executor(artifact, backend));
  if (artifact.worldSize != 1)
    return "the artifact is compiled for " + std::to_string(artifact.worldSize) +
           " ranks; this runtime runs single-rank artifacts only";
  // Everything that can be checked is checked before the arena and weights are allocated.
  ex->steps_.resize(artifact.steps.size());
  for (size_t i = 0; i < artifact.steps.size(); ++i) {
    ex->steps_[i].kernel = backend.lookupKernel(artifact.steps[i].op);
    if (!ex->steps_[i].kernel)
      return ex->stepPrefix(i) + "the " + backend.name() + " backend has no kernel for op '" +
             artifact.steps[i].op + "'";
  }
  ex->views_.resize(artifact.buffers.size());
  for (const BufferDesc &b : artifact.buffers)
    ex->views_[static_cast<size_t>(b.id)] = TensorView{nullptr, b.dtype, b.shape};
  if (std::string err = ex->allocateStorage(); !err.empty())
    return err;
  // allocateStorage placed the weights; arena buffers and constants sit at recorded offsets.
  for (const BufferDesc &b : artifact.buffers) {
    TensorView &view = ex->views_[static_cast<size_t>(b.id)];
    if (b.storage == Storage::Arena) {
      view.data = ex->arena_.data() + b.offset;
      ex->arenaPeakBytes_ = std::max(ex->arenaPeakBytes_, b.offset + b.bytes);
    } else if (b.storage == Storage::Constant) {
      view.data = const_cast<uint8_t *>(artifact.constantData(b));
    }
  }

  for (size_t i = 0; i < artifact.steps.size(); ++i) {
    const Step &step = artifact.steps[i];
    KernelArgs &args = ex->steps_[i].args;
    for (int64_t id : step.in)
      args.in.push_back(ex->views_[static_cast<size_t>(id)]);
    for (int64_t id : step.out)
      args.out.push_back(ex->views_[static_cast<size_t>(id)]);
    args.attrs = &step.attrs;
  }
  out = std::move(ex);
  return "";
}

std::string Executor::allocateStorage() {
  // Open and check every weight file before allocating anything, so that a missing or
  // replaced file is reported without first reserving gigabytes.
  struct OpenFile {
    int fd = -1;
    ~OpenFile() {
      if (fd >= 0)
        ::close(fd);
    }
  };
  std::vector<OpenFile> files(artifact_.weightFiles.size());
  for (size_t f = 0; f < files.size(); ++f) {
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

  // Buffers naming the same bytes (tied embeddings) share one copy.
  using Range = std::tuple<int64_t, uint64_t, uint64_t>; // file, offset, bytes
  std::map<Range, uint64_t> placement;                   // range -> offset in weights_
  uint64_t total = 0;
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight) {
      auto inserted = placement.emplace(Range{b.file, b.fileOffset, b.bytes}, total);
      if (inserted.second)
        total = alignUp(total + b.bytes);
    }

  arena_ = backend_.allocate(artifact_.arenaBytes);
  if (!arena_)
    return "cannot allocate the " + std::to_string(artifact_.arenaBytes) + "-byte arena";
  weights_ = backend_.allocate(total);
  if (!weights_)
    return "cannot allocate " + std::to_string(total) + " bytes for the weights";

  for (const auto &[range, offset] : placement) {
    auto [file, fileOffset, bytes] = range;
    if (std::string err = preadFully(files[static_cast<size_t>(file)].fd, weights_.data() + offset,
                                     bytes, fileOffset);
        !err.empty())
      return "weight file '" + artifact_.resolveWeightPath(file) + "': reading " +
             std::to_string(bytes) + " bytes at offset " + std::to_string(fileOffset) +
             " failed: " + err;
  }
  for (const BufferDesc &b : artifact_.buffers)
    if (b.storage == Storage::Weight)
      views_[static_cast<size_t>(b.id)].data =
          weights_.data() + placement.at(Range{b.file, b.fileOffset, b.bytes});
  return "";
}

std::string checkInputs(const Artifact &artifact, const std::vector<HostTensor> &inputs) {
  std::vector<std::string> missing, unexpected, expectedNames;
  for (const IoBinding &in : artifact.inputs) {
    expectedNames.push_back(in.name);
    if (std::none_of(inputs.begin(), inputs.end(),
                     [&](const HostTensor &t) { return t.name == in.name; }))
      missing.push_back(in.name);
  }
  for (const HostTensor &t : inputs)
    if (std::none_of(artifact.inputs.begin(), artifact.inputs.end(),
                     [&](const IoBinding &in) { return in.name == t.name; }))
      unexpected.push_back(t.name);
  if (!missing.empty() || !unexpected.empty()) {
    std::string err;
    if (!missing.empty())
      err = "missing input" + std::string(missing.size() > 1 ? "s " : " ") + quotedList(missing);
    if (!unexpected.empty())
      err += (err.empty() ? "" : "; ") + std::string("unexpected input") +
             (unexpected.size() > 1 ? "s " : " ") + quotedList(unexpected);
    return err + " (the artifact's inputs: " + quotedList(expectedNames) + ")";
  }

  for (const IoBinding &in : artifact.inputs) {
    const BufferDesc &b = artifact.buffers[static_cast<size_t>(in.buffer)];
    const HostTensor &t =
        *std::find_if(inputs.begin(), inputs.end(), [&](const HostTensor &x) { return x.name == in.name; });
    bool widenI32 = b.dtype == DType::I64 && t.dtype == DType::I32;
    if ((t.dtype != b.dtype && !widenI32) || t.shape != b.shape)
      return "input '" + in.name + "': expected " + typeString(b.dtype, b.shape) + ", given " +
             typeString(t.dtype, t.shape);
    if (t.data.size() != static_cast<uint64_t>(t.numel()) * dtypeSize(t.dtype))
      return "input '" + in.name + "': holds " + std::to_string(t.data.size()) + " bytes, " +
             typeString(t.dtype, t.shape) + " needs " +
             std::to_string(t.numel() * dtypeSize(t.dtype));
  }
  return "";
}

std::string Executor::copyInputs(const std::vector<HostTensor> &inputs) {
  if (std::string err = checkInputs(artifact_, inputs); !err.empty())
    return err;
  for (const IoBinding &in : artifact_.inputs) {
    const BufferDesc &b = artifact_.buffers[static_cast<size_t>(in.buffer)];
    const HostTensor &t =
        *std::find_if(inputs.begin(), inputs.end(), [&](const HostTensor &x) { return x.name == in.name; });
    uint8_t *dst = arena_.data() + b.offset;
    if (t.dtype != b.dtype) { // checkInputs allows only i32 given for i64
      for (int64_t i = 0; i < t.numel(); ++i) {
        int32_t v;
        std::memcpy(&v, t.data.data() + 4 * i, 4);
        int64_t w = v;
        std::memcpy(dst + 8 * i, &w, 8);
      }
    } else if (!t.data.empty()) {
      std::memcpy(dst, t.data.data(), t.data.size());
    }
  }
  return "";
}

std::string Executor::run(const std::vector<HostTensor> &inputs, std::vector<HostTensor> &outputs) {
  outputs.clear();
  if (std::string err = copyInputs(inputs); !err.empty())
    return err;
  for (size_t i = 0; i < steps_.size(); ++i) {
    std::string err;
    // Kernels report errors as strings; an exception (bad_alloc in a scratch buffer) must still
    // end as a located error rather than an abort.
    try {
      err = steps_[i].kernel(steps_[i].args);
    } catch (const std::exception &e) {
      err = std::string("kernel threw: ") + e.what();
    }
    if (!err.empty())
      return stepPrefix(i) + err;
  }
  for (const IoBinding &o : artifact_.outputs) {
    const BufferDesc &b = artifact_.buffers[static_cast<size_t>(o.buffer)];
    HostTensor t;
    t.name = o.name;
    t.dtype = b.dtype;
    t.shape = b.shape;
    const uint8_t *src = arena_.data() + b.offset;
    t.data.assign(src, src + b.bytes);
    outputs.push_back(std::move(t));
  }
  return "";
}

} // namespace shardc::rt
