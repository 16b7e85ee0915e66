// Safetensors.h: header checks, binding by name, and one rank's chunk read with the transpose,
// the view's padding and the dtype conversions both ways (f32 checkpoint into a bf16 buffer,
// bf16 into f32), on files written here by hand.
#include "TempDir.h"

#include "shardc/runtime/Safetensors.h"

#include <gtest/gtest.h>

#include <cstring>
#include <fcntl.h>
#include <fstream>
#include <unistd.h>

using namespace shardc::rt;

namespace {

struct St {
  std::string name, dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

std::string writeSt(const std::string &path, const std::vector<St> &tensors, const std::string &headerOverride = "") {
  std::string header = "{\"__metadata__\":{\"format\":\"pt\"}", data;
  for (const St &t : tensors) {
    header += ",\"" + t.name + "\":{\"dtype\":\"" + t.dtype + "\",\"shape\":[";
    for (size_t i = 0; i < t.shape.size(); ++i)
      header += (i ? "," : "") + std::to_string(t.shape[i]);
    header += "],\"data_offsets\":[" + std::to_string(data.size()) + "," + std::to_string(data.size() + t.bytes.size()) + "]}";
    data += t.bytes;
  }
  header += "}";
  if (!headerOverride.empty())
    header = headerOverride;
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i)
    file[size_t(i)] = char((uint64_t(header.size()) >> (8 * i)) & 0xff);
  std::ofstream(path, std::ios::binary) << file << header << data;
  return path;
}

// A [4, 6] f32 tensor (PyTorch's [out, in]) with value 10 * row + column.
std::string f32Matrix() {
  std::string s;
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 6; ++c) {
      float v = float(10 * r + c);
      s.append(reinterpret_cast<const char *>(&v), 4);
    }
  return s;
}

} // namespace

TEST(Safetensors, TransposedChunkConvertedToBf16AndPadded) {
  TempDir dir("shardc-st");
  Safetensors ck;
  ASSERT_EQ(openSafetensors(writeSt(dir.file("a.safetensors"), {{"w", "F32", {4, 6}, f32Matrix()}}), ck), "");
  const CheckpointTensor *t = ck.find("w");
  ASSERT_NE(t, nullptr);
  int fd = ::open(ck.files[0].c_str(), O_RDONLY);
  // The buffer holds the transpose [6, 4]; this rank's chunk is its columns 2..3 (rows 2..3 of
  // the checkpoint's tensor), as bf16.
  std::vector<uint16_t> out(12);
  ASSERT_EQ(readWeightChunk(fd, t->offset, DType::F32, true, WeightChunk{{6, 4}, {0, 2}, {6, 2}, {}, {}}, DType::BF16,
                            reinterpret_cast<uint8_t *>(out.data())),
            "");
  for (int i = 0; i < 6; ++i)
    for (int j = 0; j < 2; ++j)
      EXPECT_EQ(bf16ToF32(out[size_t(i * 2 + j)]), float(10 * (j + 2) + i)) << i << "," << j;
  // A view padded past the stored tensor: global [8, 4] over stored [6, 4]; rows 4..7 of it,
  // rows 6..7 zero.
  std::vector<float> pad(16, -1.0f);
  ASSERT_EQ(readWeightChunk(fd, t->offset, DType::F32, true, WeightChunk{{8, 4}, {4, 0}, {4, 4}, {6, 4}, {}}, DType::F32,
                            reinterpret_cast<uint8_t *>(pad.data())),
            "");
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 4; ++j)
      EXPECT_EQ(pad[size_t(i * 4 + j)], i + 4 < 6 ? float(10 * j + i + 4) : 0.0f) << i << "," << j;
  ::close(fd);
}

TEST(Safetensors, Bf16IntoF32) {
  TempDir dir("shardc-st");
  std::string bytes;
  for (float v : {1.5f, -2.25f, 3.0f}) {
    uint16_t h = f32ToBf16(v);
    bytes.append(reinterpret_cast<const char *>(&h), 2);
  }
  Safetensors ck;
  ASSERT_EQ(openSafetensors(writeSt(dir.file("b.safetensors"), {{"n", "BF16", {3}, bytes}}), ck), "");
  int fd = ::open(ck.files[0].c_str(), O_RDONLY);
  std::vector<float> out(3);
  ASSERT_EQ(readWeightChunk(fd, ck.find("n")->offset, DType::BF16, false, WeightChunk{{3}, {}, {3}, {}, {}}, DType::F32,
                            reinterpret_cast<uint8_t *>(out.data())),
            "");
  ::close(fd);
  EXPECT_EQ(out, (std::vector<float>{1.5f, -2.25f, 3.0f}));
}

TEST(Safetensors, MalformedFilesAreOneLineErrors) {
  TempDir dir("shardc-st");
  Safetensors ck;
  std::string err = openSafetensors(writeSt(dir.file("c.safetensors"), {}, "{\"w\": [1, 2"), ck);
  EXPECT_NE(err.find("the header is not valid JSON"), std::string::npos) << err;
  err = openSafetensors(writeSt(dir.file("d.safetensors"), {{"w", "F32", {4, 5}, f32Matrix()}}), ck);
  EXPECT_NE(err.find("tensor 'w': data_offsets span 96 bytes, F32 [4, 5] needs 80"), std::string::npos) << err;
  std::ofstream(dir.file("e.safetensors"), std::ios::binary) << std::string("\xff\xff\0\0\0\0\0\0{}", 10);
  err = openSafetensors(dir.file("e.safetensors"), ck);
  EXPECT_NE(err.find("not a safetensors file (header length 65535"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos);
}

TEST(Safetensors, BindsByNameTiedAndTransposed) {
  TempDir dir("shardc-st");
  writeSt(dir.file("model-1.safetensors"), {{"model.embed.weight", "F32", {4, 6}, f32Matrix()}});
  writeSt(dir.file("model-2.safetensors"), {{"proj.weight", "F32", {4, 6}, f32Matrix()}, {"extra", "F32", {1}, "abcd"}});
  std::ofstream(dir.file("model.safetensors.index.json"))
      << "{\"weight_map\": {\"model.embed.weight\": \"model-1.safetensors\", \"proj.weight\": \"model-2.safetensors\","
         " \"extra\": \"model-2.safetensors\"}}";
  Safetensors ck;
  ASSERT_EQ(openSafetensors(dir.path(), ck), "");
  Artifact a;
  auto weight = [&](std::string name, std::vector<int64_t> shape, std::string transform, std::vector<std::string> tied) {
    BufferDesc b;
    b.id = int64_t(a.buffers.size());
    b.name = std::move(name);
    b.storage = Storage::Weight;
    b.shape = b.globalShape = std::move(shape);
    b.transform = std::move(transform);
    b.tied = std::move(tied);
    a.buffers.push_back(b);
  };
  weight("m.lm_head.weight", {4, 6}, "none", {"m.model.embed.weight"});
  weight("m.proj.weight", {6, 4}, "transpose", {});
  weight("val_7", {2}, "none", {});
  std::vector<BoundWeight> bound;
  std::vector<std::string> notes;
  ASSERT_EQ(bindSafetensors(a, ck, bound, notes), "");
  EXPECT_EQ(bound[0].tensor, ck.find("model.embed.weight"));
  EXPECT_TRUE(bound[1].transposed);
  EXPECT_EQ(bound[2].tensor, nullptr);
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_EQ(notes[0], "weights: 1 weight is no parameter of the checkpoint and keeps the artifact's values: val_7");
  EXPECT_EQ(notes[1], "weights: 1 tensor of " + dir.path().substr(dir.path().rfind('/') + 1) +
                          " not used by the graph: extra");
  a.buffers[1].shape = a.buffers[1].globalShape = {4, 6};
  std::string err = bindSafetensors(a, ck, bound, notes);
  EXPECT_NE(err.find("weight 'proj.weight' (module path m.proj.weight) has shape [4, 6] in model-2.safetensors, "
                     "the graph wants [6, 4] (stored transposed)"),
            std::string::npos)
      << err;
  a.buffers[1].name = "m.proj.bias";
  err = bindSafetensors(a, ck, bound, notes);
  EXPECT_NE(err.find("weight 'proj.bias' (module path m.proj.bias) is not in "), std::string::npos) << err;
  EXPECT_NE(err.find("; nearest: 'proj.weight'"), std::string::npos) << err;
  // A packed projection's part binds to the whole stored tensor, which its view indexes.
  a.buffers[1].name = "m.proj.weight.part1";
  a.buffers[1].shape = a.buffers[1].globalShape = {6, 2};
  a.buffers[1].fileShape = {6, 4};
  a.buffers[1].fileStart = {0, 2};
  ASSERT_EQ(bindSafetensors(a, ck, bound, notes), "");
  EXPECT_EQ(bound[1].tensor, ck.find("proj.weight"));
}
