// Training runs: --steps (per-run input slices, stacked outputs, the per-step line and
// --losses-out), --data (input_ids from a token file), and the
// training state's checkpoints (--save-state, --load-state): every rank's State buffers by
// name in DIR/rank<R>.npz (f16/bf16 widened to f32, which is exact), rank 0's DIR/state.json
// naming the artifact, the mesh and the steps run. Format: docs/cli.md.
#include "RunCli.h"

#include "shardc/runtime/Npz.h"
#include "shardc/runtime/Session.h"

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <cerrno>
#include <fcntl.h>
#include <unistd.h>

namespace shardc::runcli {

namespace {

std::string typeText(DType t, const std::vector<int64_t> &shape) {
  return std::string(dtypeName(t)) + " " + shapeString(shape);
}

std::vector<int64_t> stacked(int64_t steps, const std::vector<int64_t> &shape) {
  std::vector<int64_t> s{steps};
  s.insert(s.end(), shape.begin(), shape.end());
  return s;
}

bool isStacked(const HostTensor &t, int64_t steps, const std::vector<int64_t> &shape) {
  return t.shape == stacked(steps, shape);
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string rankFile(const std::string &dir, int64_t rank) {
  return (std::filesystem::path(dir) / ("rank" + std::to_string(rank) + ".npz")).string();
}

std::string stateJson(const std::string &dir) { return (std::filesystem::path(dir) / "state.json").string(); }

// Replaces `path` by the file written at `tmp` as one step: the bytes are flushed to disk
// (fsync), then renamed over it and the directory flushed, so a process killed while saving
// leaves either the previous file or the new one, never a torn one.
std::string commitFile(const std::string &tmp, const std::string &path) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0)
      ::close(fd);
    return tmp + ": cannot flush to disk: " + std::strerror(errno);
  }
  ::close(fd);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return path + ": cannot replace it: " + ec.message();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
  return "";
}

// The raw text of `key`'s value in the flat JSON object saveTrainState writes: a number, or a
// string without its quotes; "" when absent.
std::string jsonField(const std::string &text, const std::string &key) {
  size_t at = text.find("\"" + key + "\":");
  if (at == std::string::npos)
    return "";
  at += key.size() + 3;
  while (at < text.size() && text[at] == ' ')
    ++at;
  if (at < text.size() && text[at] == '"') {
    size_t end = text.find('"', at + 1);
    return end == std::string::npos ? "" : text.substr(at + 1, end - at - 1);
  }
  size_t end = text.find_first_of(",}\n", at);
  return text.substr(at, end == std::string::npos ? std::string::npos : end - at);
}

// `s` inside a JSON string (names are informational: only messages read them back).
std::string jsonText(const std::string &s) {
  std::string out;
  for (char c : s)
    if (c == '"' || c == '\\')
      out += std::string("\\") + c;
    else if (static_cast<unsigned char>(c) >= 0x20)
      out += c;
  return out;
}

// The State buffers, in manifest order.
std::vector<const BufferDesc *> stateBuffers(const Artifact &a) {
  std::vector<const BufferDesc *> out;
  for (const BufferDesc &b : a.buffers)
    if (b.storage == Storage::State)
      out.push_back(&b);
  return out;
}

// How a State buffer is saved: f16/bf16 as f32 (exact), every other dtype as itself.
DType savedDType(DType t) { return t == DType::F16 || t == DType::BF16 ? DType::F32 : t; }

} // namespace

std::string checkStepInputs(const Artifact &artifact, const std::string &path,
                            const std::vector<HostTensor> &tensors, int64_t steps) {
  for (const HostTensor &t : tensors) {
    if (t.data.size() != static_cast<uint64_t>(t.numel()) * dtypeSize(t.dtype))
      return path + ": input '" + t.name + "': holds " + std::to_string(t.data.size()) + " bytes, " +
             typeText(t.dtype, t.shape) + " needs " + std::to_string(t.numel() * dtypeSize(t.dtype));
    for (const IoBinding &in : artifact.inputs) {
      const BufferDesc &b = artifact.buffers[static_cast<size_t>(in.buffer)];
      if (in.name == t.name && t.shape != b.globalShape && !isStacked(t, steps, b.globalShape))
        return path + ": input '" + t.name + "': --steps " + std::to_string(steps) + " takes " +
               shapeString(b.globalShape) + " (every run) or " + shapeString(stacked(steps, b.globalShape)) +
               " (run k its slice k), given " + shapeString(t.shape);
    }
  }
  // Names, dtypes: as for one run, on run 0's slices.
  if (std::string err = checkInputs(artifact, stepInputs(artifact, tensors, steps, 0)); !err.empty())
    return path + ": " + err;
  return "";
}

std::vector<HostTensor> stepInputs(const Artifact &artifact, const std::vector<HostTensor> &tensors,
                                   int64_t steps, int64_t k) {
  std::vector<HostTensor> out;
  out.reserve(tensors.size());
  for (const HostTensor &t : tensors) {
    // Sliced: an input given as [N, *shape] (one of the input's own shape feeds every run).
    bool slice = false;
    for (const IoBinding &in : artifact.inputs) {
      const std::vector<int64_t> &shape = artifact.buffers[static_cast<size_t>(in.buffer)].globalShape;
      slice |= in.name == t.name && t.shape != shape && isStacked(t, steps, shape);
    }
    if (slice) {
      HostTensor s;
      s.name = t.name;
      s.dtype = t.dtype;
      s.shape.assign(t.shape.begin() + 1, t.shape.end());
      size_t bytes = t.data.size() / static_cast<size_t>(steps);
      s.data.assign(t.data.begin() + static_cast<ptrdiff_t>(bytes * static_cast<size_t>(k)),
                    t.data.begin() + static_cast<ptrdiff_t>(bytes * static_cast<size_t>(k + 1)));
      out.push_back(std::move(s));
    } else {
      out.push_back(t);
    }
  }
  return out;
}

void stackOutputs(std::vector<HostTensor> &all, const std::vector<HostTensor> &outputs, int64_t steps, int64_t k) {
  if (k == 0) {
    all.clear();
    for (const HostTensor &t : outputs) {
      HostTensor s{t.name, t.dtype, stacked(steps, t.shape), {}};
      s.data.resize(t.data.size() * static_cast<size_t>(steps));
      all.push_back(std::move(s));
    }
  }
  for (size_t i = 0; i < outputs.size() && i < all.size(); ++i)
    std::memcpy(all[i].data.data() + outputs[i].data.size() * static_cast<size_t>(k), outputs[i].data.data(),
                outputs[i].data.size());
}

namespace {

// The value of `outputs`' f32 scalar named `name`, if there is one.
bool scalarOutput(const std::vector<HostTensor> &outputs, const char *name, double &value) {
  for (const HostTensor &t : outputs)
    if (t.name == name && t.dtype == DType::F32 && t.shape.empty() && t.data.size() == sizeof(float)) {
      float v;
      std::memcpy(&v, t.data.data(), sizeof v);
      value = static_cast<double>(v);
      return true;
    }
  return false;
}

// %.9g, non-finite values as Python's json module writes them.
std::string number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "Infinity" : "-Infinity";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

} // namespace

void reportStep(const RankOutput &say, int64_t step, const std::vector<HostTensor> &outputs, StepFigures &figures) {
  double loss = 0, gradNorm = 0, lr = 0;
  bool hasLoss = scalarOutput(outputs, "loss", loss), hasNorm = scalarOutput(outputs, "grad_norm", gradNorm),
       hasLr = scalarOutput(outputs, "lr", lr);
  if (hasLoss)
    figures.loss.push_back(loss);
  if (hasNorm)
    figures.gradNorm.push_back(gradNorm);
  if (hasLr)
    figures.lr.push_back(lr);
  if (!hasLoss)
    return;
  std::string line = "step " + std::to_string(step) + " loss " + number(loss);
  if (hasNorm)
    line += " grad_norm " + number(gradNorm);
  if (hasLr)
    line += " lr " + number(lr);
  say.out(line);
  std::fflush(stdout);
}

std::string writeLossesJson(const std::string &path, const StepFigures &figures) {
  std::string json;
  for (const auto &[key, values] : {std::pair<const char *, const std::vector<double> *>{"loss", &figures.loss},
                                    {"grad_norm", &figures.gradNorm},
                                    {"lr", &figures.lr}}) {
    if (values->empty())
      continue;
    json += std::string(json.empty() ? "{" : ",\n ") + "\"" + key + "\": [";
    for (size_t i = 0; i < values->size(); ++i)
      json += (i ? ", " : "") + number((*values)[i]);
    json += "]";
  }
  json += json.empty() ? "{}\n" : "}\n";
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f << json;
  f.close();
  if (!f)
    return "--losses-out " + path + ": cannot write";
  return "";
}

std::string openTokenStream(const Options &o, const Artifact &artifact, TokenStream &stream) {
  stream = TokenStream{};
  stream.path = o.data;
  const BufferDesc *in = artifact.inputs.size() == 1
                             ? &artifact.buffers[static_cast<size_t>(artifact.inputs[0].buffer)]
                             : nullptr;
  if (!in || artifact.inputs[0].name != "input_ids" || in->dtype != DType::I64 || in->globalShape.size() != 2) {
    std::string have;
    for (const IoBinding &b : artifact.inputs) {
      const BufferDesc &d = artifact.buffers[static_cast<size_t>(b.buffer)];
      have += (have.empty() ? "" : ", ") + b.name + " " + typeText(d.dtype, d.globalShape);
    }
    return "--data " + o.data + ": " + o.model + " needs exactly one input, an i64 [B, S] named input_ids; its "
           "inputs: " + (have.empty() ? std::string("none") : have);
  }
  stream.input = artifact.inputs[0].name;
  stream.shape = in->globalShape;
  std::error_code ec;
  uintmax_t bytes = std::filesystem::file_size(o.data, ec);
  if (ec)
    return o.data + ": cannot read the token file (--data): " + ec.message();
  if (bytes == 0 || bytes % 4 != 0)
    return o.data + ": " + (bytes == 0 ? std::string("empty") : std::to_string(bytes) + " bytes, not a multiple of 4") +
           " (--data takes raw little-endian int32 token ids)";
  stream.fileTokens = static_cast<int64_t>(bytes / 4);
  return "";
}

std::string readTokenBatch(const TokenStream &stream, int64_t k, std::vector<HostTensor> &inputs) {
  const int64_t n = stream.batchTokens(), total = stream.fileTokens;
  HostTensor ids{stream.input, DType::I64, stream.shape, {}};
  ids.data.resize(static_cast<size_t>(n) * sizeof(int64_t));
  std::ifstream f(stream.path, std::ios::binary);
  if (!f)
    return stream.path + ": cannot open the token file (--data)";
  // Run k starts at k*B*S modulo the file's length (without overflowing int64).
  int64_t at = static_cast<int64_t>((static_cast<unsigned __int128>(k) * static_cast<unsigned __int128>(n)) %
                                    static_cast<unsigned __int128>(total));
  std::vector<uint8_t> raw;
  for (int64_t done = 0; done < n;) {
    int64_t chunk = std::min(n - done, total - at);
    raw.resize(static_cast<size_t>(chunk) * 4);
    f.clear();
    f.seekg(static_cast<std::streamoff>(at) * 4);
    if (!f.read(reinterpret_cast<char *>(raw.data()), static_cast<std::streamsize>(raw.size())))
      return stream.path + ": cannot read tokens [" + std::to_string(at) + ", " + std::to_string(at + chunk) +
             ") of " + std::to_string(total) + " (--data; did the file change?)";
    for (int64_t i = 0; i < chunk; ++i) {
      const uint8_t *b = raw.data() + i * 4;
      int64_t v = static_cast<int32_t>(static_cast<uint32_t>(b[0]) | static_cast<uint32_t>(b[1]) << 8 |
                                       static_cast<uint32_t>(b[2]) << 16 | static_cast<uint32_t>(b[3]) << 24);
      std::memcpy(ids.data.data() + static_cast<size_t>(done + i) * 8, &v, 8);
    }
    done += chunk;
    at = 0;
  }
  inputs.clear();
  inputs.push_back(std::move(ids));
  return "";
}

std::string saveTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t stepsDone) {
  std::error_code ec;
  std::filesystem::create_directories(o.saveState, ec);
  if (ec)
    return "--save-state " + o.saveState + ": cannot create the directory: " + ec.message();
  std::vector<HostTensor> tensors;
  std::map<std::string, int> names;
  for (const BufferDesc *b : stateBuffers(artifact)) {
    if (b->name.empty() || names[b->name]++)
      return "--save-state: the artifact's state buffer " + std::to_string(b->id) + " ('" + b->name +
             "') has no name of its own to save it by";
    HostTensor t{b->name, b->dtype, b->shape, {}};
    if (std::string err = session.executor().readState(b->id, t.data); !err.empty())
      return "--save-state: " + err;
    tensors.push_back(widenToF32(t));
  }
  const std::string file = rankFile(o.saveState, session.rank());
  if (std::string err = writeNpz(file + ".tmp", tensors); !err.empty())
    return err;
  if (std::string err = commitFile(file + ".tmp", file); !err.empty())
    return "--save-state: " + err;
  if (session.rank() != 0)
    return "";
  std::string axes;
  for (const MeshAxis &axis : artifact.deviceMesh.axes())
    axes += (axes.empty() ? "" : ", ") + std::string("[\"") + jsonText(axis.name) + "\", " + std::to_string(axis.size) + "]";
  std::ostringstream json;
  json << "{\n  \"format\": \"shardc-state-1\",\n"
       << "  \"artifact\": \"" << jsonText(std::filesystem::path(artifact.path).filename().string()) << "\",\n"
       << "  \"manifest_checksum\": \"" << hex(artifact.manifestChecksum) << "\",\n"
       << "  \"world_size\": " << artifact.worldSize << ",\n"
       << "  \"mesh\": \"" << jsonText(artifact.deviceMesh.describe()) << "\",\n"
       << "  \"mesh_axes\": [" << axes << "],\n"
       << "  \"steps\": " << stepsDone << "\n}\n";
  const std::string tmp = stateJson(o.saveState) + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f << json.str();
  f.close();
  if (!f)
    return tmp + ": cannot write";
  if (std::string err = commitFile(tmp, stateJson(o.saveState)); !err.empty())
    return "--save-state: " + err;
  return "";
}

std::string loadTrainState(const Options &o, const Artifact &artifact, Session &session, int64_t &stepsDone) {
  const std::string jsonPath = stateJson(o.loadState);
  std::ifstream f(jsonPath, std::ios::binary);
  if (!f)
    return jsonPath + ": cannot open (--load-state takes a directory --save-state wrote)";
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (jsonField(text, "format") != "shardc-state-1")
    return jsonPath + ": not a shardc-run state file (format \"shardc-state-1\" expected)";
  std::string world = jsonField(text, "world_size");
  if (world != std::to_string(artifact.worldSize))
    return jsonPath + ": the state was saved by " + world + " ranks (mesh " + jsonField(text, "mesh") +
           "), this artifact runs on " + std::to_string(artifact.worldSize) + " (mesh " +
           artifact.deviceMesh.describe() + ")";
  std::string checksum = jsonField(text, "manifest_checksum");
  if (checksum != hex(artifact.manifestChecksum))
    return jsonPath + ": the state was saved from another artifact ('" + jsonField(text, "artifact") +
           "', manifest checksum " + checksum + "; " + artifact.path + ": " + hex(artifact.manifestChecksum) + ")";
  stepsDone = std::strtoll(jsonField(text, "steps").c_str(), nullptr, 10);

  const std::string npz = rankFile(o.loadState, session.rank());
  std::vector<HostTensor> saved;
  if (std::string err = readNpz(npz, saved); !err.empty())
    return err;
  std::vector<const BufferDesc *> buffers = stateBuffers(artifact);
  for (const HostTensor &t : saved)
    if (std::none_of(buffers.begin(), buffers.end(), [&](const BufferDesc *b) { return b->name == t.name; }))
      return npz + ": '" + t.name + "' is not a state buffer of " + artifact.path;
  for (const BufferDesc *b : buffers) {
    auto it = std::find_if(saved.begin(), saved.end(), [&](const HostTensor &t) { return t.name == b->name; });
    if (it == saved.end())
      return npz + ": state '" + b->name + "' is missing (" + std::to_string(saved.size()) +
             " arrays in the file, " + std::to_string(buffers.size()) + " state buffers in " + artifact.path + ")";
    DType want = savedDType(b->dtype);
    if (it->dtype != want || it->shape != b->shape)
      return npz + ": state '" + b->name + "': the artifact's is " + typeText(b->dtype, b->shape) +
             (want != b->dtype ? " (saved as f32)" : "") + ", the file's " + typeText(it->dtype, it->shape);
    std::vector<uint8_t> bytes = it->data;
    if (want != b->dtype) { // f32 back to f16/bf16: exact for values saved from them
      size_t n = static_cast<size_t>(it->numel());
      bytes.resize(n * 2);
      for (size_t i = 0; i < n; ++i) {
        float v;
        std::memcpy(&v, it->data.data() + i * 4, 4);
        uint16_t h = b->dtype == DType::BF16 ? f32ToBf16(v) : f32ToF16(v);
        std::memcpy(bytes.data() + i * 2, &h, 2);
      }
    }
    if (std::string err = session.executor().writeState(b->id, bytes.data(), bytes.size()); !err.empty())
      return npz + ": " + err;
  }
  return "";
}

} // namespace shardc::runcli
