// Training runs: --steps (per-run input slices, stacked outputs, the per-step line and
// --losses-out) and --data (input_ids from a token file). The training state's checkpoints
// (--save-state, --load-state) are CheckpointIo.cpp's.
#include "RunCli.h"

#include "shardc/runtime/Npz.h"
#include "shardc/runtime/Session.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

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
  double loss = 0, aux = 0, gradNorm = 0, lr = 0;
  bool hasLoss = scalarOutput(outputs, "loss", loss), hasNorm = scalarOutput(outputs, "grad_norm", gradNorm),
       hasLr = scalarOutput(outputs, "lr", lr), hasAux = scalarOutput(outputs, "aux", aux);
  if (hasLoss)
    figures.loss.push_back(loss);
  if (hasAux)
    figures.aux.push_back(aux);
  if (hasNorm)
    figures.gradNorm.push_back(gradNorm);
  if (hasLr)
    figures.lr.push_back(lr);
  if (!hasLoss)
    return;
  std::string line = "step " + std::to_string(step) + " loss " + number(loss);
  if (hasAux)
    line += " aux " + number(aux);
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
                                    {"aux", &figures.aux},
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
  // [B, S], or [g, B, S] with gradient_accumulation_steps g (micro-batch j: the step's tokens
  // [j*B*S, (j+1)*B*S)).
  if (!in || artifact.inputs[0].name != "input_ids" || in->dtype != DType::I64 ||
      (in->globalShape.size() != 2 && in->globalShape.size() != 3)) {
    std::string have;
    for (const IoBinding &b : artifact.inputs) {
      const BufferDesc &d = artifact.buffers[static_cast<size_t>(b.buffer)];
      have += (have.empty() ? "" : ", ") + b.name + " " + typeText(d.dtype, d.globalShape);
    }
    return "--data " + o.data + ": " + o.model + " needs exactly one input, an i64 [B, S] (or [g, B, S]) named "
           "input_ids; its "
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

} // namespace shardc::runcli
