// The collectives-only test artifact (see CollectivesArtifact.h): manifest and a serial
// reference of what the steps compute.
#include "CollectivesArtifact.h"

#include "ManifestJson.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Npz.h"

#include <cstring>

namespace shardc::rt::fixtures {

namespace {

HostTensor f32(const std::string &name, std::vector<int64_t> shape, const std::vector<float> &v) {
  HostTensor t;
  t.name = name;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data.resize(v.size() * sizeof(float));
  std::memcpy(t.data.data(), v.data(), t.data.size());
  return t;
}

std::string dims(int64_t a, int64_t b) {
  return "[" + std::to_string(a) + ", " + std::to_string(b) + "]";
}

} // namespace

CollectivesArtifact makeCollectivesArtifact(int64_t T) {
  constexpr int64_t R = 4, C = 6; // rows; columns per rank
  const int64_t W = C * T, c = C / T;
  CollectivesArtifact a;
  // x and y are the largest buffers: R * W = R * T * T * c floats. Each buffer gets that much,
  // 64-byte aligned.
  const int64_t slot = (R * W * 4 + 63) / 64 * 64;
  auto buffer = [slot](int id, const char *name, const std::string &shape, const std::string &extra = "") {
    return "    {\"id\": " + std::to_string(id) + ", \"name\": \"" + name +
           "\", \"dtype\": \"f32\", \"shape\": " + shape + ", \"storage\": \"arena\", \"offset\": " +
           std::to_string(id * slot) + extra + "}";
  };
  auto step = [](const char *op, int in, int out, const std::string &attrs, const char *loc) {
    return "    {\"op\": \"" + std::string(op) + "\", \"in\": [" + std::to_string(in) + "], \"out\": [" +
           std::to_string(out) + "], \"attrs\": {\"axes\": [\"tp\"]" + attrs + "}, \"loc\": \"" + loc +
           "\"}";
  };
  std::string t = std::to_string(T);
  a.manifest = "{\n  \"format_version\": 4, \"producer\": \"unit test\", \"source\": \"collectives\",\n"
               "  \"mesh\": {\"dp_replicate\": 1, \"dp_shard\": 1, \"cp\": 1, \"tp\": " + t + "},\n"
               "  \"mesh_axes\": [[\"dp_replicate\", 1], [\"dp_shard\", 1], [\"cp\", 1], [\"tp\", " + t + "]],\n"
               "  \"world_size\": " + t + ",\n  \"weight_files\": [],\n  \"arena_bytes\": " + std::to_string(6 * slot) + ",\n"
               "  \"buffers\": [\n" +
               buffer(0, "x", dims(R, C), ", \"global_shape\": " + dims(R, W) +
                                            ", \"shard\": [{\"dim\": 1, \"axes\": [\"tp\"]}]") + ",\n" +
               buffer(1, "g", dims(R, W)) + ",\n" + buffer(2, "rs", dims(R, C)) + ",\n" +
               buffer(3, "a", dims(R * T, c)) + ",\n" + buffer(4, "ar", dims(R * T, c)) + ",\n" +
               buffer(5, "y", dims(R * T * T, c)) + "\n  ],\n"
               "  \"inputs\": [{\"name\": \"x\", \"buffer\": 0}],\n"
               "  \"outputs\": [{\"name\": \"g\", \"buffer\": 1}, {\"name\": \"y\", \"buffer\": 5}],\n"
               "  \"steps\": [\n" +
               step("all_gather", 0, 1, ", \"dim\": 1", "gather @ m") + ",\n" +
               step("reduce_scatter", 1, 2, ", \"dim\": 1, \"reduce\": \"sum\"", "scatter @ m") + ",\n" +
               step("all_to_all", 2, 3, ", \"split_dim\": 1, \"concat_dim\": 0", "exchange @ m") + ",\n" +
               step("all_reduce", 3, 4, ", \"reduce\": \"sum\"", "reduce @ m") + ",\n" +
               step("all_gather", 4, 5, ", \"dim\": 0", "output @ m") + "\n  ]\n}\n";

  std::vector<float> x(static_cast<size_t>(R * W));
  for (int64_t i = 0; i < R; ++i)
    for (int64_t k = 0; k < W; ++k)
      x[static_cast<size_t>(i * W + k)] = static_cast<float>((i * 7 + k * 3) % 11 - 5);
  // ar[j*R + i, q] = T * sum_r x[i, C*j + c*r + q]; y = ar repeated T times along rows.
  std::vector<float> ar(static_cast<size_t>(R * T * c));
  for (int64_t j = 0; j < T; ++j)
    for (int64_t i = 0; i < R; ++i)
      for (int64_t q = 0; q < c; ++q) {
        float sum = 0;
        for (int64_t r = 0; r < T; ++r)
          sum += static_cast<float>(T) * x[static_cast<size_t>(i * W + C * j + c * r + q)];
        ar[static_cast<size_t>((j * R + i) * c + q)] = sum;
      }
  std::vector<float> y;
  for (int64_t r = 0; r < T; ++r)
    y.insert(y.end(), ar.begin(), ar.end());
  a.inputs = {f32("x", {R, W}, x)};
  a.expected = {f32("g", {R, W}, x), f32("y", {R * T * T, c}, y)};
  return a;
}

std::string writeCollectivesArtifact(const std::string &dir, int64_t tp) {
  CollectivesArtifact a = makeCollectivesArtifact(tp);
  if (std::string err = writeJsonArtifact(dir + "/m.shardc", a.manifest, ""); !err.empty())
    return err;
  if (std::string err = writeNpz(dir + "/in.npz", a.inputs); !err.empty())
    return err;
  return writeNpz(dir + "/expected.npz", a.expected);
}

} // namespace shardc::rt::fixtures
