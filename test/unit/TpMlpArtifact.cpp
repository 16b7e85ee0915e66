// The tensor-parallel MLP test artifact: manifest text with shard specs, global weights, and a
// serial reference. Used by the unit tests and by shardc-test-artifact (the MPI tests).
#include "TpMlpArtifact.h"

#include "ManifestJson.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Npz.h"

#include <cmath>
#include <cstring>

namespace shardc::rt::fixtures {

namespace {

float valueAt(int64_t seed, int64_t i) {
  // Small, exactly representable, varied values.
  return static_cast<float>(((seed * 7919 + i * 104729) % 97) - 48) / 64.0f;
}

HostTensor f32Tensor(const std::string &name, std::vector<int64_t> shape,
                     const std::vector<float> &values) {
  HostTensor t;
  t.name = name;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(float));
  std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::string ints(std::initializer_list<int64_t> xs) {
  std::string s = "[";
  for (int64_t x : xs)
    s += (s.size() > 1 ? ", " : "") + std::to_string(x);
  return s + "]";
}

} // namespace

TpMlpArtifact makeTpMlpArtifact(int64_t dp, int64_t tp) {
  TpMlpArtifact a;
  constexpr int64_t B = TpMlpArtifact::B, K = TpMlpArtifact::K, H = TpMlpArtifact::H,
                    N = TpMlpArtifact::N;
  std::vector<float> x(B * K), w1(K * H), b1(H), w2(H * N), b2(N);
  for (size_t i = 0; i < x.size(); ++i) x[i] = valueAt(1, static_cast<int64_t>(i));
  for (size_t i = 0; i < w1.size(); ++i) w1[i] = valueAt(2, static_cast<int64_t>(i));
  for (size_t i = 0; i < b1.size(); ++i) b1[i] = valueAt(3, static_cast<int64_t>(i));
  for (size_t i = 0; i < w2.size(); ++i) w2[i] = valueAt(4, static_cast<int64_t>(i));
  for (size_t i = 0; i < b2.size(); ++i) b2[i] = valueAt(5, static_cast<int64_t>(i));
  auto append = [&](const std::vector<float> &v) {
    uint64_t at = a.weights.size();
    a.weights.append(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float));
    return at;
  };
  uint64_t w1At = append(w1), b1At = append(b1), w2At = append(w2), b2At = append(b2);

  // Local shapes; arena buffers each 256 bytes apart (every one is smaller).
  const int64_t b = B / dp, h = H / tp;
  char buf[4096];
  std::snprintf(
      buf, sizeof buf, R"({
  "format_version": 4, "producer": "unit test", "source": "tp_mlp",
  "mesh": {"dp_replicate": 1, "dp_shard": %lld, "cp": 1, "tp": %lld},
  "mesh_axes": [["dp_replicate", 1], ["dp_shard", %lld], ["cp", 1], ["tp", %lld]],
  "world_size": %lld,
  "weight_files": [{"path": "w.bin", "size": %zu}],
  "arena_bytes": 1792,
  "buffers": [
    {"id": 0, "name": "x", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 0,
     "shard": [{"dim": 0, "axes": ["dp_shard"]}], "global_shape": %s},
    {"id": 1, "name": "w1", "dtype": "f32", "shape": %s, "storage": "weight", "file": 0,
     "file_offset": %llu, "shard": [{"dim": 1, "axes": ["tp"]}], "global_shape": %s},
    {"id": 2, "name": "b1", "dtype": "f32", "shape": %s, "storage": "weight", "file": 0,
     "file_offset": %llu, "shard": [{"dim": 0, "axes": ["tp"]}], "global_shape": %s},
    {"id": 3, "name": "w2", "dtype": "f32", "shape": %s, "storage": "weight", "file": 0,
     "file_offset": %llu, "shard": [{"dim": 0, "axes": ["tp"]}], "global_shape": %s},
    {"id": 4, "name": "b2", "dtype": "f32", "shape": %s, "storage": "weight", "file": 0,
     "file_offset": %llu},
    {"id": 5, "name": "h", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 256},
    {"id": 6, "name": "g", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 512},
    {"id": 7, "name": "p", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 768},
    {"id": 8, "name": "r", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 1024},
    {"id": 9, "name": "yl", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 1280},
    {"id": 10, "name": "y", "dtype": "f32", "shape": %s, "storage": "arena", "offset": 1536}
  ],
  "inputs": [{"name": "x", "buffer": 0}],
  "outputs": [{"name": "y", "buffer": 10}],
  "steps": [
    {"op": "linear", "in": [0, 1, 2], "out": [5], "attrs": {}, "loc": "fc1 @ m.mlp.up"},
    {"op": "formula", "in": [5], "out": [6], "attrs": {"formula": "gelu_erf"}, "loc": "act @ m.mlp"},
    {"op": "linear", "in": [6, 3], "out": [7], "attrs": {}, "loc": "fc2 @ m.mlp.down"},
    {"op": "all_reduce", "in": [7], "out": [8], "attrs": {"axes": ["tp"], "reduce": "sum"},
     "loc": "reshard @ m.mlp.down"},
    {"op": "formula", "in": [8, 4], "out": [9], "attrs": {"formula": "add"}, "loc": "bias @ m.mlp.down"},
    {"op": "all_gather", "in": [9], "out": [10], "attrs": {"axes": ["dp_shard"], "dim": 0},
     "loc": "output @ m"}
  ]
})",
      (long long)dp, (long long)tp, (long long)dp, (long long)tp, (long long)(dp * tp),
      a.weights.size(), ints({b, K}).c_str(), ints({B, K}).c_str(), ints({K, h}).c_str(),
      (unsigned long long)w1At, ints({K, H}).c_str(), ints({h}).c_str(), (unsigned long long)b1At,
      ints({H}).c_str(), ints({h, N}).c_str(), (unsigned long long)w2At, ints({H, N}).c_str(),
      ints({N}).c_str(), (unsigned long long)b2At, ints({b, h}).c_str(), ints({b, h}).c_str(),
      ints({b, N}).c_str(), ints({b, N}).c_str(), ints({b, N}).c_str(), ints({B, N}).c_str());
  a.manifest = buf;

  std::vector<float> y(B * N);
  for (int64_t i = 0; i < B; ++i)
    for (int64_t n = 0; n < N; ++n) {
      double acc = b2[n];
      for (int64_t j = 0; j < H; ++j) {
        double pre = b1[j];
        for (int64_t k = 0; k < K; ++k)
          pre += double(x[i * K + k]) * w1[k * H + j];
        double g = 0.5 * pre * (1 + std::erf(pre / std::sqrt(2.0)));
        acc += g * w2[j * N + n];
      }
      y[i * N + n] = static_cast<float>(acc);
    }
  a.inputs = {f32Tensor("x", {B, K}, x)};
  a.expected = {f32Tensor("y", {B, N}, y)};
  return a;
}

std::string writeTpMlpArtifact(const std::string &dir, int64_t dpShard, int64_t tp) {
  TpMlpArtifact a = makeTpMlpArtifact(dpShard, tp);
  if (std::string err = writeJsonArtifact(dir + "/m.shardc", a.manifest, ""); !err.empty())
    return err;
  std::FILE *f = std::fopen((dir + "/w.bin").c_str(), "wb");
  if (!f || std::fwrite(a.weights.data(), 1, a.weights.size(), f) != a.weights.size())
    return dir + "/w.bin: cannot write";
  std::fclose(f);
  if (std::string err = writeNpz(dir + "/in.npz", a.inputs); !err.empty())
    return err;
  return writeNpz(dir + "/expected.npz", a.expected);
}

std::string compareTensors(const std::vector<HostTensor> &got, const std::vector<HostTensor> &want,
                           double tolerance) {
  if (got.size() != want.size())
    return std::to_string(got.size()) + " tensors, expected " + std::to_string(want.size());
  for (size_t t = 0; t < want.size(); ++t) {
    HostTensor g = widenToF32(got[t]), w = widenToF32(want[t]);
    if (g.name != w.name || g.dtype != w.dtype || g.shape != w.shape)
      return "tensor " + std::to_string(t) + ": " + g.name + " " + dtypeName(g.dtype) + " " +
             shapeString(g.shape) + ", expected " + w.name + " " + dtypeName(w.dtype) + " " +
             shapeString(w.shape);
    if (w.dtype != DType::F32)
      continue;
    const float *gv = reinterpret_cast<const float *>(g.data.data());
    const float *wv = reinterpret_cast<const float *>(w.data.data());
    for (int64_t i = 0; i < w.numel(); ++i)
      if (!(std::fabs(gv[i] - wv[i]) <= tolerance * std::max(1.0, std::fabs(double(wv[i])))))
        return w.name + "[" + std::to_string(i) + "] = " + std::to_string(gv[i]) + ", expected " +
               std::to_string(wv[i]);
  }
  return "";
}

} // namespace shardc::rt::fixtures
