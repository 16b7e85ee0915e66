// Artifacts of several shape sets (`shardc compile --shapes 'a;b'`, docs/artifact-format.md
// #several-programs): the manifest is the first set's program and nests the others; the
// loader lists every program, converts the one asked for with its range of the blob, and
// matchProgram picks a program from input shapes or lists the sets in one line.
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/artifact_generated.h"

#include <gtest/gtest.h>

using namespace shardc::rt;

namespace {

struct NestedSpec {
  std::string shapes;
  std::string manifest;
  uint64_t blobOffset = 0, blobBytes = 0;
};

// A copy program x -> y over i64 [rows, 4] (arena), with a constant of 8 bytes in the blob
// at `constOffset`; `shapes` and `nested` as the emitter writes them.
std::string programManifest(int64_t rows, const std::string &shapes, const std::vector<NestedSpec> &nested,
                            uint64_t constOffset = 0) {
  flatbuffers::FlatBufferBuilder b;
  b.ForceDefaults(true);
  uint64_t bytes = static_cast<uint64_t>(rows) * 4 * 8, slot = (bytes + 63) / 64 * 64;
  auto buffer = [&](const char *name, fb::Storage storage, uint64_t offset, std::vector<int64_t> shape) {
    auto n = b.CreateString(name);
    auto s = b.CreateVector(shape);
    fb::BufferBuilder bb(b);
    bb.add_name(n);
    bb.add_dtype(fb::DType::I64);
    bb.add_shape(s);
    bb.add_storage(storage);
    if (storage == fb::Storage::Constant)
      bb.add_blob_offset(offset);
    else
      bb.add_offset(offset);
    return bb.Finish();
  };
  std::vector<flatbuffers::Offset<fb::Buffer>> buffers{buffer("x", fb::Storage::Arena, 0, {rows, 4}),
                                                       buffer("y", fb::Storage::Arena, slot, {rows, 4}),
                                                       buffer("c", fb::Storage::Constant, constOffset, {1})};
  auto io = [&](const char *name, int64_t id) {
    return b.CreateVector(std::vector<flatbuffers::Offset<fb::IoBinding>>{fb::CreateIoBinding(b, b.CreateString(name), id)});
  };
  auto inputs = io("x", 0), outputs = io("y", 1);
  auto step = fb::CreateStep(b, fb::StepKind::copy, b.CreateVector(std::vector<int64_t>{0}),
                             b.CreateVector(std::vector<int64_t>{1}));
  auto steps = b.CreateVector(std::vector<flatbuffers::Offset<fb::Step>>{step});
  flatbuffers::Offset<flatbuffers::String> fbShapes;
  if (!shapes.empty())
    fbShapes = b.CreateString(shapes);
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<fb::Program>>> programs;
  if (!nested.empty()) {
    std::vector<flatbuffers::Offset<fb::Program>> list;
    for (const NestedSpec &p : nested) {
      auto shapes = b.CreateString(p.shapes);
      b.ForceVectorAlignment(p.manifest.size(), sizeof(uint8_t), 16); // as the emitter aligns them
      auto bytes = b.CreateVector(reinterpret_cast<const uint8_t *>(p.manifest.data()), p.manifest.size());
      list.push_back(fb::CreateProgram(b, shapes, bytes, p.blobOffset, p.blobBytes));
    }
    programs = b.CreateVector(list);
  }
  auto m = fb::CreateManifest(b, kArtifactFormatVersion, 0, 0, 0, 1, 0, 2 * slot, 0, b.CreateVector(buffers), inputs,
                              outputs, 0, 0, steps, fbShapes, programs);
  fb::FinishManifestBuffer(b, m);
  return std::string(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
}

// Set 0: x [2, 4], its constant at 0; set 1: x [3, 4], its constant at 0 of its range [64, 128).
std::string twoSets(uint64_t nestedOffset = 64, uint64_t nestedBytes = 64) {
  NestedSpec p{"batch=3", programManifest(3, "batch=3", {}), nestedOffset, nestedBytes};
  return programManifest(2, "batch=2", {p});
}

std::string blob() {
  std::string b(128, '\0');
  b[0] = 7;   // set 0's constant
  b[64] = 9;  // set 1's constant
  return b;
}

} // namespace

TEST(Programs, LoadsEitherProgramWithItsBlob) {
  std::string file = encodeArtifact(twoSets(), blob());
  Artifact a;
  ASSERT_EQ(parseArtifact(file, "m.shardc", a), "");
  ASSERT_EQ(a.programs.size(), 2u);
  EXPECT_EQ(a.program, 0);
  EXPECT_EQ(a.programs[0].shapes, "batch=2");
  EXPECT_EQ(a.programs[1].shapes, "batch=3");
  EXPECT_EQ(a.programs[1].inputs, (std::vector<std::pair<std::string, std::vector<int64_t>>>{{"x", {3, 4}}}));
  EXPECT_EQ(a.buffers[0].shape, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(a.constantData(a.buffers[2])[0], 7);
  EXPECT_EQ(a.blob.size(), 128u);

  Artifact b;
  ASSERT_EQ(parseArtifact(file, "m.shardc", b, 1), "");
  EXPECT_EQ(b.program, 1);
  EXPECT_EQ(b.programs.size(), 2u);
  EXPECT_EQ(b.buffers[0].shape, (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(b.blob.size(), 64u);
  EXPECT_EQ(b.constantData(b.buffers[2])[0], 9);

  Artifact c;
  EXPECT_EQ(parseArtifact(file, "m.shardc", c, 2), "m.shardc: program 2 does not exist (the artifact has 2)");
  // A one-program artifact lists no programs and has only program 0.
  Artifact one;
  ASSERT_EQ(parseArtifact(encodeArtifact(programManifest(2, "", {}), blob()), "m.shardc", one), "");
  EXPECT_TRUE(one.programs.empty());
  EXPECT_EQ(parseArtifact(encodeArtifact(programManifest(2, "", {}), blob()), "m.shardc", one, 1),
            "m.shardc: program 1 does not exist (the artifact has 1)");
}

TEST(Programs, MatchProgramByInputShapes) {
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeArtifact(twoSets(), blob()), "m.shardc", a), "");
  std::string err;
  EXPECT_EQ(matchProgram(a, {{"x", {2, 4}}}, err), 0);
  EXPECT_EQ(matchProgram(a, {{"x", {3, 4}}}, err), 1);
  EXPECT_EQ(err, "");
  EXPECT_EQ(matchProgram(a, {{"x", {5, 4}}}, err), -1);
  EXPECT_EQ(err, "the inputs (x 5x4) match none of the artifact's shape sets: batch=2 (x 2x4); batch=3 (x 3x4)");
  err.clear();
  EXPECT_EQ(matchProgram(a, {{"z", {2, 4}}}, err), -1); // the names count too
  EXPECT_NE(err.find("the inputs (z 2x4) match none"), std::string::npos);
}

TEST(Programs, RefusesBadNestedPrograms) {
  Artifact a;
  EXPECT_EQ(parseArtifact(encodeArtifact(twoSets(96, 64), blob()), "m.shardc", a),
            "m.shardc: programs[0]: blob range [96, 160) is unaligned or lies beyond the blob (128 bytes)");
  EXPECT_EQ(parseArtifact(encodeArtifact(twoSets(64, 128), blob()), "m.shardc", a),
            "m.shardc: programs[0]: blob range [64, 192) is unaligned or lies beyond the blob (128 bytes)");
  // Programs nest one level only.
  NestedSpec inner{"batch=4", programManifest(4, "batch=4", {}), 64, 64};
  NestedSpec outer{"batch=3", programManifest(3, "batch=3", {inner}), 64, 64};
  EXPECT_EQ(parseArtifact(encodeArtifact(programManifest(2, "batch=2", {outer}), blob()), "m.shardc", a),
            "m.shardc: programs[0]: a nested manifest has programs of its own");
  // A nested program's own errors name it: its constant lies beyond its 64-byte range.
  NestedSpec bad{"batch=3", programManifest(3, "batch=3", {}, 64), 64, 64};
  std::string err = parseArtifact(encodeArtifact(programManifest(2, "batch=2", {bad}), blob()), "m.shardc", a, 1);
  EXPECT_EQ(err.rfind("m.shardc: programs[0].manifest: buffers[2]: blob range [64, 72) lies beyond the blob (64 bytes)", 0), 0u)
      << err;
}
