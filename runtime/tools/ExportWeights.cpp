// `shardc export-weights DIR -o model.safetensors`: the committed checkpoint of DIR's trainable
// parameters (their f32 masters), each consolidated from the ranks' chunks into its global
// tensor, in PyTorch's layout (stored transposes undone) and under Hugging Face's names (the
// module paths without the export wrapper's prefix; a tied weight once), as safetensors: an
// 8-byte little-endian header length, a JSON header (dtype, shape, data_offsets per tensor),
// the raw little-endian data. Format and rules: docs/training.md#export-weights.
#include "Checkpoint.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>

namespace shardc::ckpt {

namespace {

constexpr const char *kUsage =
    "usage: shardc export-weights DIR -o OUT.safetensors [--strip-prefix P]\n"
    "  Writes the trainable parameters of DIR's latest committed checkpoint (shardc-run\n"
    "  --checkpoint-dir/--save-state DIR) as consolidated f32 tensors under their Hugging Face\n"
    "  names: stored transposes undone, a tied weight once, the export wrapper's prefix P\n"
    "  removed (default: 'm.' when every name starts with it; --strip-prefix '' keeps names).\n";

int fail(const std::string &message) {
  std::fprintf(stderr, "shardc export-weights: error: %s\n", message.c_str());
  return 1;
}

// The module path Hugging Face keeps for a tied weight: transformers drops the output
// embedding (its _tied_weights_keys, `lm_head.weight`) and keeps the input embedding.
std::string keptName(const StateSlice &p) {
  if (p.tied.empty())
    return p.global;
  std::vector<std::string> names{p.global};
  names.insert(names.end(), p.tied.begin(), p.tied.end());
  auto isOutput = [](const std::string &n) {
    return n == "lm_head.weight" || (n.size() > 15 && n.compare(n.size() - 15, 15, ".lm_head.weight") == 0);
  };
  for (const std::string &n : names)
    if (!isOutput(n))
      return n;
  return p.global;
}

std::vector<uint8_t> transposed(const std::vector<uint8_t> &in, int64_t rows, int64_t cols) {
  std::vector<uint8_t> out(in.size());
  const float *src = reinterpret_cast<const float *>(in.data());
  float *dst = reinterpret_cast<float *>(out.data());
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j)
      dst[j * rows + i] = src[i * cols + j];
  return out;
}

} // namespace

int exportWeightsMain(int argc, char **argv) {
  std::string dir, out, prefix = "auto";
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    }
    if ((a == "-o" || a == "--output" || a == "--strip-prefix") && i + 1 < argc)
      (a == "--strip-prefix" ? prefix : out) = argv[++i];
    else if (a.rfind("-", 0) == 0)
      return fail("unknown option '" + a + "'\n" + kUsage);
    else if (dir.empty())
      dir = a;
    else
      return fail("one checkpoint directory expected, given '" + dir + "' and '" + a + "'");
  }
  if (dir.empty() || out.empty())
    return fail(std::string("needs a checkpoint directory and -o OUT.safetensors\n") + kUsage);
  Manifest m;
  if (std::string err = readManifest(dir, m); !err.empty())
    return fail(err);
  const std::string stepDir = (std::filesystem::path(dir) / m.stepDir).string();
  std::vector<RankMeta> metas;
  if (std::string err = readRankMetas(stepDir, m.worldSize, metas); !err.empty())
    return fail(err);

  // Every trainable parameter once, as a whole tensor.
  std::map<std::string, StateSlice> params; // by global name
  for (const RankMeta &r : metas)
    for (const StateSlice &s : r.states) {
      if (s.kind != "param")
        continue;
      if (!s.located)
        return fail(rankPath(stepDir, r.rank, "json") + ": parameter state '" + s.name +
                    "' has no recorded place in its tensor (a repeated view): it cannot be consolidated");
      if (params.count(s.global))
        continue;
      StateSlice whole = s;
      whole.name = s.global;
      whole.shape = whole.sizes = s.globalShape;
      whole.offsets.assign(s.globalShape.size(), 0);
      params[s.global] = whole;
    }
  if (params.empty())
    return fail(stepDir + ": the checkpoint holds no trainable parameter");
  std::vector<StateSlice> wanted;
  for (auto &[name, p] : params) {
    if (p.dtype != DType::F32)
      return fail(stepDir + ": parameter '" + name + "' is saved as " + dtypeName(p.dtype) + ", not f32");
    wanted.push_back(p);
  }
  std::vector<std::vector<uint8_t>> data;
  if (std::string err = assemble(stepDir, metas, wanted, data); !err.empty())
    return fail(err);

  // Hugging Face names and layouts.
  std::vector<std::string> names;
  for (const StateSlice &p : wanted)
    names.push_back(keptName(p));
  if (prefix == "auto")
    prefix = std::all_of(names.begin(), names.end(), [](const std::string &n) { return n.rfind("m.", 0) == 0; })
                 ? "m."
                 : "";
  struct Tensor {
    std::string name;
    std::vector<int64_t> shape;
    const std::vector<uint8_t> *bytes;
  };
  std::vector<Tensor> tensors;
  std::vector<std::vector<uint8_t>> flipped(wanted.size());
  for (size_t i = 0; i < wanted.size(); ++i) {
    std::string name = names[i];
    if (!prefix.empty()) {
      if (name.rfind(prefix, 0) != 0)
        return fail("parameter '" + name + "' does not start with --strip-prefix '" + prefix + "'");
      name = name.substr(prefix.size());
    }
    Tensor t{name, wanted[i].globalShape, &data[i]};
    if (wanted[i].transform == "transpose") {
      if (t.shape.size() != 2)
        return fail("parameter '" + wanted[i].global + "' is a stored transpose but not 2-D");
      flipped[i] = transposed(data[i], t.shape[0], t.shape[1]);
      std::swap(t.shape[0], t.shape[1]);
      t.bytes = &flipped[i];
    } else if (wanted[i].transform != "none") {
      return fail("parameter '" + wanted[i].global + "': unknown stored transform '" + wanted[i].transform + "'");
    }
    tensors.push_back(t);
  }
  std::sort(tensors.begin(), tensors.end(), [](const Tensor &a, const Tensor &b) { return a.name < b.name; });
  for (size_t i = 1; i < tensors.size(); ++i)
    if (tensors[i].name == tensors[i - 1].name)
      return fail("two parameters are both named '" + tensors[i].name + "'");

  // safetensors: u64 LE header size, the JSON header (padded with spaces to 8 bytes), the data.
  std::string header = "{\"__metadata__\":{\"format\":\"pt\",\"producer\":\"shardc export-weights\",\"steps\":\"" +
                       std::to_string(m.steps) + "\"}";
  uint64_t at = 0;
  for (const Tensor &t : tensors) {
    header += ",\"" + jsonText(t.name) + "\":{\"dtype\":\"F32\",\"shape\":[";
    for (size_t d = 0; d < t.shape.size(); ++d)
      header += (d ? "," : "") + std::to_string(t.shape[d]);
    header += "],\"data_offsets\":[" + std::to_string(at) + "," + std::to_string(at + t.bytes->size()) + "]}";
    at += t.bytes->size();
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  for (int b = 0; b < 8; ++b)
    file[static_cast<size_t>(b)] = static_cast<char>((static_cast<uint64_t>(header.size()) >> (8 * b)) & 0xff);
  file += header;
  file.reserve(file.size() + at);
  int64_t elements = 0;
  for (const Tensor &t : tensors) {
    file.append(reinterpret_cast<const char *>(t.bytes->data()), t.bytes->size());
    elements += static_cast<int64_t>(t.bytes->size() / 4);
  }
  if (std::string err = writeFileAtomic(out, file); !err.empty())
    return fail(err);
  std::printf("wrote %s: %zu tensors, %lld f32 elements, from %s (step %lld, %lld ranks, mesh %s)\n", out.c_str(),
              tensors.size(), static_cast<long long>(elements), stepDir.c_str(), static_cast<long long>(m.steps),
              static_cast<long long>(m.worldSize), m.mesh.c_str());
  return 0;
}

} // namespace shardc::ckpt
