// Unit tests of the runtime core: JSON, the artifact loader and writer, npz I/O and the
// executor (on the CPU backend for numbers, on test backends for error paths).
#include "DeviceSimBackend.h"
#include "TempDir.h"
#include "ManifestJson.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/comm/LocalCommunicator.h"
#include "shardc/runtime/Executor.h"
#include "shardc/runtime/Json.h"
#include "shardc/runtime/Npz.h"
#include "shardc/runtime/StepProfile.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <tuple>
#include <stdexcept>
#include <unistd.h>

using namespace shardc::rt;

namespace {

// ---------------------------------------------------------------------------------------
// JSON

JsonValue parseOk(std::string_view text) {
  JsonValue v;
  std::string err = parseJson(text, v);
  EXPECT_EQ(err, "") << "parsing: " << text;
  return v;
}

std::string parseError(std::string_view text) {
  JsonValue v;
  return parseJson(text, v);
}

TEST(Json, ParsesEveryKind) {
  JsonValue v = parseOk(R"( {"n": null, "t": true, "f": false, "i": -42, "d": 2.5,
                              "e": 1e3, "z": -0, "s": "hi", "a": [1, [2], {}], "o": {"k": []}} )");
  ASSERT_TRUE(v.isObject());
  EXPECT_TRUE(v.find("n")->isNull());
  EXPECT_EQ(v.find("t")->asBool(), true);
  EXPECT_EQ(v.find("f")->asBool(), false);
  ASSERT_TRUE(v.find("i")->isInt());
  EXPECT_EQ(v.find("i")->asInt(), -42);
  ASSERT_EQ(v.find("d")->kind(), JsonValue::Kind::Double);
  EXPECT_EQ(v.find("d")->asDouble(), 2.5);
  // An exponent makes a double even when the value is integral: kind follows the spelling.
  ASSERT_EQ(v.find("e")->kind(), JsonValue::Kind::Double);
  EXPECT_EQ(v.find("e")->asDouble(), 1000.0);
  EXPECT_TRUE(v.find("z")->isInt());
  EXPECT_EQ(v.find("s")->asString(), "hi");
  ASSERT_EQ(v.find("a")->asArray().size(), 3u);
  EXPECT_EQ(v.find("a")->asArray()[1].asArray()[0].asInt(), 2);
  EXPECT_TRUE(v.find("o")->find("k")->isArray());
  EXPECT_EQ(v.find("missing"), nullptr);
  // Members keep source order.
  EXPECT_EQ(v.asObject().front().first, "n");
  EXPECT_EQ(v.asObject().back().first, "o");
}

TEST(Json, IntegerLimits) {
  EXPECT_EQ(parseOk("9223372036854775807").asInt(), INT64_MAX);
  EXPECT_EQ(parseOk("-9223372036854775808").asInt(), INT64_MIN);
  JsonValue big = parseOk("9223372036854775808");
  EXPECT_EQ(big.kind(), JsonValue::Kind::Double);
  EXPECT_EQ(big.asDouble(), 9223372036854775808.0);
  EXPECT_EQ(parseOk("1.0").kind(), JsonValue::Kind::Double);
}

TEST(Json, StringEscapes) {
  JsonValue v = parseOk(R"("a\"b\\c\/d\b\f\n\r\t\u0041\u00e9\u20ac\ud83d\ude00")");
  EXPECT_EQ(v.asString(), "a\"b\\c/d\b\f\n\r\tA\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  // Raw UTF-8 passes through.
  EXPECT_EQ(parseOk("\"\xc3\xa9\"").asString(), "\xc3\xa9");
}

TEST(Json, ErrorsCarryLineAndColumn) {
  EXPECT_EQ(parseError("{\n  \"a\": 1,\n}"), "3:1: expected a string key, found '}'");
  EXPECT_EQ(parseError("[1, 2,]"), "1:7: unexpected character ']', expected a value");
  EXPECT_EQ(parseError("{\"a\": 1, \"a\": 2}"), "1:10: duplicate key \"a\"");
  EXPECT_EQ(parseError("[1 2]"), "1:4: expected ',' or ']' after an array element, found '2'");
  EXPECT_EQ(parseError("\n\n  01"), "3:4: leading zeros are not allowed in a number");
  EXPECT_EQ(parseError(""), "1:1: unexpected end of input, expected a value");
  EXPECT_EQ(parseError("{} x"), "1:4: unexpected content after the JSON value");
  EXPECT_EQ(parseError("\"abc"), "1:5: unterminated string");
  EXPECT_EQ(parseError("\"\\x\""), "1:2: invalid escape \\x in a string");
  EXPECT_EQ(parseError("\"\\ud800\""), "1:2: unpaired high surrogate in a \\u escape");
  EXPECT_EQ(parseError("\"\\udc00\""), "1:2: unpaired low surrogate in a \\u escape");
  EXPECT_EQ(parseError("\"\\u12G4\""), "1:6: invalid hex digit 'G' in a \\u escape");
  EXPECT_EQ(parseError("\"a\tb\""), "1:3: unescaped control character 0x09 in a string");
  EXPECT_EQ(parseError("\"\xc3\""), "1:2: invalid UTF-8 in a string");
  EXPECT_EQ(parseError("\"\xed\xa0\x80\""), "1:2: invalid UTF-8 in a string"); // surrogate
  EXPECT_EQ(parseError("tru"), "1:1: invalid literal, expected 'true'");
  EXPECT_EQ(parseError("1."), "1:3: expected a digit after the decimal point");
  EXPECT_EQ(parseError("-"), "1:2: expected a digit in a number");
  EXPECT_EQ(parseError("1e"), "1:3: expected a digit in the exponent");
  EXPECT_EQ(parseError("1e999"), "1:1: number 1e999 is out of range");
  EXPECT_EQ(parseError("NaN"), "1:1: unexpected character 'N', expected a value");
  EXPECT_EQ(parseError("// c\n1"), "1:1: unexpected character '/', expected a value");
  EXPECT_EQ(parseError("{'a': 1}"), "1:2: expected a string key, found '''");
  EXPECT_EQ(parseError("{\"a\" 1}"), "1:6: expected ':' after an object key, found '1'");
  EXPECT_EQ(parseError("[1"), "1:3: unexpected end of input in an array");
  EXPECT_EQ(parseError(std::string(1000, '[')), "1:201: nesting deeper than 200 levels");
}

TEST(Json, WriterRoundTrips) {
  const char *text =
      R"({"a":[1,-2,2.5,1.0,1e-05,true,false,null],"s":"q\"\\\n\u0001é","o":{"x":{}},"e":[]})";
  JsonValue v = parseOk(text);
  std::string written = writeJson(v);
  EXPECT_EQ(written,
            R"({"a":[1,-2,2.5,1.0,1.0000000000000001e-05,true,false,null],"s":"q\"\\\n\u0001é",)"
            R"("o":{"x":{}},"e":[]})");
  JsonValue again = parseOk(written);
  EXPECT_EQ(writeJson(again), written);
  EXPECT_EQ(again.find("a")->asArray()[3].kind(), JsonValue::Kind::Double);
  EXPECT_EQ(again.find("a")->asArray()[4].asDouble(), 1e-05);
}

// ---------------------------------------------------------------------------------------
// Artifacts

std::string bytesOf(const std::vector<float> &v) {
  return std::string(reinterpret_cast<const char *>(v.data()), v.size() * sizeof(float));
}

// A small valid artifact: y = (x + c) · w, with x an input, c a blob constant and w a weight
// (12 bytes of padding, then 6 floats) in "w.bin" beside the artifact.
constexpr const char *kManifest = R"({
  "format_version": 4,
  "producer": "unit test",
  "source": "none.onnx",
  "mesh": {"dp_replicate": 1, "dp_shard": 1, "cp": 1, "tp": 1},
  "world_size": 1,
  "weight_files": [{"path": "w.bin", "size": 36}],
  "arena_bytes": 192,
  "buffers": [
    {"id": 0, "name": "x", "dtype": "f32", "shape": [2, 3], "storage": "arena", "offset": 0},
    {"id": 1, "name": "c", "dtype": "f32", "shape": [2, 3], "storage": "constant", "blob_offset": 64},
    {"id": 2, "name": "t", "dtype": "f32", "shape": [2, 3], "storage": "arena", "offset": 64},
    {"id": 3, "name": "w", "dtype": "f32", "shape": [3, 2], "storage": "weight",
     "file": 0, "file_offset": 12, "transform": "none"},
    {"id": 4, "name": "y", "dtype": "f32", "shape": [2, 2], "storage": "arena", "offset": 128}
  ],
  "inputs": [{"name": "x", "buffer": 0}],
  "outputs": [{"name": "y", "buffer": 4}],
  "steps": [
    {"op": "formula", "in": [0, 1], "out": [2], "attrs": {"formula": "add"}, "loc": "node_add @ m.block"},
    {"op": "matmul", "in": [2, 3], "out": [4], "flops": 24,
     "loc": "node_mm @ m.block.proj"}
  ]
})";

const std::vector<float> kConstant = {10, 20, 30, 40, 50, 60};
const std::vector<float> kWeight = {1, 2, 3, 4, 5, 6};

std::string validBlob() { return std::string(64, '\x7f') + bytesOf(kConstant); }

std::string weightFileBytes() { return std::string(12, '\0') + bytesOf(kWeight); }

// The manifest after `edit`, written back as JSON.
std::string editedManifest(const std::function<void(JsonValue &)> &edit) {
  JsonValue m;
  EXPECT_EQ(parseJson(kManifest, m), "");
  edit(m);
  return writeJson(m);
}

JsonValue &bufferAt(JsonValue &m, size_t i) { return m.find("buffers")->asArray()[i]; }
JsonValue &stepAt(JsonValue &m, size_t i) { return m.find("steps")->asArray()[i]; }

std::string loadError(const std::string &bytes) {
  Artifact a;
  return parseArtifact(bytes, "m.shardc", a);
}

std::string manifestError(const std::function<void(JsonValue &)> &edit) {
  return loadError(encodeJsonArtifact(editedManifest(edit), validBlob()));
  // (The schema's types rule out what the JSON decoder checked by hand: wrong JSON kinds,
  // unknown dtype or storage names, missing keys, duplicate buffer ids.)
}

// A weight padded for even shards: only the part of a rank's chunk inside the file's shape is
// read, row by row, into the chunk's own layout.
TEST(Artifact, PaddedChunkRuns) {
  using Run = std::tuple<uint64_t, uint64_t, uint64_t>;
  auto runs = [](std::vector<int64_t> file, std::vector<int64_t> start, std::vector<int64_t> shape) {
    std::vector<Run> out;
    shardc::rt::forEachViewRun(file, {}, start, shape, 4,
                               [&](uint64_t from, uint64_t to, uint64_t n) { out.emplace_back(from, to, n); });
    return out;
  };
  // File [3, 5] padded to [4, 6]; the last rank's rows [2, 4) of 6 columns: one row of 5.
  EXPECT_EQ(runs({3, 5}, {2, 0}, {2, 6}), (std::vector<Run>{{40, 0, 20}}));
  // Rows [0, 2), columns [3, 6): two rows of the 2 columns inside the file.
  EXPECT_EQ(runs({3, 5}, {0, 3}, {2, 3}), (std::vector<Run>{{12, 0, 8}, {32, 12, 8}}));
  // A chunk entirely in the padding reads nothing.
  EXPECT_TRUE(runs({3, 5}, {4, 0}, {2, 6}).empty());
  // Rank 1: torch.chunk of 10 rows over 4 ranks is 3, 3, 3, 1; rank 3's chunk of 3 holds 1.
  EXPECT_EQ(runs({10}, {9}, {3}), (std::vector<Run>{{36, 0, 4}}));
}

// A repeated-block view (kv heads repeated for tensor parallelism) must describe the global
// dim as the stored one's blocks, each repeated `times` over.
TEST(Artifact, FileRepeatIsChecked) {
  auto withRepeat = [](int64_t block, int64_t times) {
    JsonValue m;
    EXPECT_EQ(parseJson(kManifest, m), "");
    JsonValue &w = bufferAt(m, 3); // f32 [3, 2]
    JsonValue spec;
    EXPECT_EQ(parseJson(R"({"file_shape": [3, 1], "file_repeat": {"dim": 1, "block": )" + std::to_string(block) +
                            R"(, "times": )" + std::to_string(times) + "}}",
                        spec),
              "");
    for (const auto &kv : spec.asObject())
      w.asObject().push_back(kv);
    return loadError(encodeJsonArtifact(writeJson(m), validBlob()));
  };
  EXPECT_EQ(withRepeat(1, 2), "");
  EXPECT_EQ(withRepeat(1, 3), "m.shardc: manifest: buffers[3].file_repeat: does not describe global dim 1 as "
                              "repeated blocks of the stored one");
  // With file_start the repeat is of a part of the stored dim (a packed projection's kv part):
  // column 1 of a stored [3, 2], twice; the part must lie inside the stored dim.
  auto partRepeat = [](int64_t times) {
    JsonValue m;
    EXPECT_EQ(parseJson(kManifest, m), "");
    JsonValue &w = bufferAt(m, 3); // f32 [3, 2]
    JsonValue spec;
    EXPECT_EQ(parseJson(R"({"file_shape": [3, 2], "file_start": [0, 1], "file_repeat": {"dim": 1, "block": 1, )"
                        R"("times": )" + std::to_string(times) + "}}",
                        spec),
              "");
    for (const auto &kv : spec.asObject())
      w.asObject().push_back(kv);
    return loadError(encodeJsonArtifact(writeJson(m), validBlob()));
  };
  EXPECT_EQ(partRepeat(2), "");
  EXPECT_EQ(partRepeat(1), "m.shardc: manifest: buffers[3].file_repeat: does not describe global dim 1 as "
                           "repeated blocks of the stored one");
}

// One part of a packed projection: the global tensor is columns [4, 6) of a stored [2, 6];
// a rank's chunk of it (its column 1) is one element per row.
TEST(Artifact, ViewChunkRuns) {
  using Run = std::tuple<uint64_t, uint64_t, uint64_t>;
  std::vector<Run> out;
  shardc::rt::forEachViewRun({2, 6}, {0, 4}, {0, 1}, {2, 1}, 4,
                             [&](uint64_t from, uint64_t to, uint64_t n) { out.emplace_back(from, to, n); });
  EXPECT_EQ(out, (std::vector<Run>{{20, 0, 4}, {44, 4, 4}}));
}

TEST(Artifact, Fnv1a64KnownValues) {
  EXPECT_EQ(fnv1a64("", 0), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a", 1), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar", 6), 0x85944171f73967e8ull);
}

TEST(Artifact, HeaderLayout) {
  std::string bytes = encodeArtifact("{}", "xyz");
  ASSERT_EQ(bytes.size(), 48u + 2 + 3);
  EXPECT_EQ(bytes.substr(0, 8), std::string("SHARDC\0\0", 8));
  auto u64 = [&](size_t at) {
    uint64_t v;
    std::memcpy(&v, bytes.data() + at, 8);
    return v;
  };
  uint32_t version, reserved;
  std::memcpy(&version, bytes.data() + 8, 4);
  std::memcpy(&reserved, bytes.data() + 12, 4);
  EXPECT_EQ(version, 4u);
  EXPECT_EQ(reserved, 0u);
  EXPECT_EQ(u64(16), 2u);
  EXPECT_EQ(u64(24), 3u);
  EXPECT_EQ(u64(32), fnv1a64("{}", 2));
  EXPECT_EQ(u64(40), fnv1a64("xyz", 3));
  EXPECT_EQ(bytes.substr(48), "{}xyz");
}

TEST(Artifact, RoundTripDecodesManifest) {
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(kManifest, validBlob()), "dir/m.shardc", a), "");
  EXPECT_EQ(a.producer, "unit test");
  EXPECT_EQ(a.source, "none.onnx");
  EXPECT_EQ(a.worldSize, 1);
  EXPECT_EQ(a.arenaBytes, 192u);
  ASSERT_EQ(a.weightFiles.size(), 1u);
  EXPECT_EQ(a.weightFiles[0].size, 36u);
  EXPECT_EQ(a.resolveWeightPath(0), "dir/w.bin");
  ASSERT_EQ(a.buffers.size(), 5u);
  const BufferDesc &w = a.buffers[3];
  EXPECT_EQ(w.name, "w");
  EXPECT_EQ(w.storage, Storage::Weight);
  EXPECT_EQ(w.fileOffset, 12u);
  EXPECT_EQ(w.bytes, 24u);
  EXPECT_EQ(w.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a.buffers[1].storage, Storage::Constant);
  EXPECT_EQ(std::memcmp(a.constantData(a.buffers[1]), kConstant.data(), 24), 0);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.blob.data()) % 64, 0u);
  EXPECT_EQ(a.buffers[4].offset, 128u);
  ASSERT_EQ(a.inputs.size(), 1u);
  EXPECT_EQ(a.inputs[0].name, "x");
  EXPECT_EQ(a.outputs[0].buffer, 4);
  ASSERT_EQ(a.steps.size(), 2u);
  const Step &mm = a.steps[1];
  EXPECT_EQ(mm.op, "matmul");
  EXPECT_EQ(mm.in, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(mm.loc, "node_mm @ m.block.proj");
  EXPECT_EQ(mm.flops, 24u);
  EXPECT_TRUE(mm.attrs.all().empty()); // typed attributes: ManifestSchemaTest.cpp
  // Absolute weight paths are kept as they are.
  a.weightFiles[0].path = "/abs/w.bin";
  EXPECT_EQ(a.resolveWeightPath(0), "/abs/w.bin");
}

TEST(Artifact, HeaderErrors) {
  std::string good = encodeJsonArtifact(kManifest, validBlob());
  std::string bad = good;
  bad[0] = 'X';
  EXPECT_EQ(loadError(bad), "m.shardc: not a shardc artifact (bad magic)");
  bad = good;
  bad[8] = 5;
  EXPECT_EQ(loadError(bad),
            "m.shardc: artifact format version 5, this runtime reads version 4 (update the runtime)");
  bad[8] = 1; // a JSON-manifest artifact of the first format
  EXPECT_EQ(loadError(bad), "m.shardc: artifact format version 1, this runtime reads version 4 "
                            "(recompile the model with this shardc)");
  bad = good;
  bad[13] = 1;
  EXPECT_EQ(loadError(bad), "m.shardc: reserved header field is not zero (file corrupt)");
  EXPECT_EQ(loadError(good.substr(0, 20)),
            "m.shardc: file is 20 bytes, shorter than the 48-byte artifact header (file truncated?)");
  std::string truncated = good.substr(0, good.size() - 1);
  EXPECT_EQ(loadError(truncated),
            "m.shardc: file is " + std::to_string(truncated.size()) +
                " bytes but its header describes a 48-byte header, a " +
                std::to_string(manifestFromJson(kManifest).size()) +
                "-byte manifest and a 88-byte blob (file truncated or corrupt)");
  // Lengths that would overflow when added must not wrap around into "consistent".
  bad = good;
  std::memset(&bad[16], 0xff, 8);
  EXPECT_NE(loadError(bad).find("(file truncated or corrupt)"), std::string::npos);
}

TEST(Artifact, ChecksumErrors) {
  std::string good = encodeJsonArtifact(kManifest, validBlob());
  std::string bad = good;
  bad[48 + 10] ^= 0x01;
  EXPECT_EQ(loadError(bad), "m.shardc: checksum mismatch in manifest (file corrupt or truncated)");
  bad = good;
  bad[bad.size() - 1] ^= 0x40;
  EXPECT_EQ(loadError(bad), "m.shardc: checksum mismatch in blob (file corrupt or truncated)");
  bad = good;
  bad[33] ^= 0x01; // the stored checksum itself
  EXPECT_EQ(loadError(bad), "m.shardc: checksum mismatch in manifest (file corrupt or truncated)");
}

// The verifier checks the manifest's structure (untrusted input) before anything reads it;
// the checksums are recomputed here, so only the verifier stands in the way.
TEST(Artifact, VerifierRejectsMalformedManifests) {
  std::string manifest = manifestFromJson(kManifest);
  const std::string rejected = "m.shardc: manifest: the FlatBuffers verifier rejects it (file corrupt)";
  EXPECT_EQ(loadError(encodeArtifact(manifest.substr(0, manifest.size() / 2), validBlob())), rejected);
  std::string bad = manifest;
  std::memset(&bad[0], 0x7f, 4); // the root table's offset points past the end
  EXPECT_EQ(loadError(encodeArtifact(bad, validBlob())), rejected);
  // A string's length running past the buffer: find "none.onnx" and enlarge its length field.
  bad = manifest;
  size_t at = bad.find("none.onnx");
  ASSERT_NE(at, std::string::npos);
  std::memset(&bad[at - 4], 0x7f, 3);
  EXPECT_EQ(loadError(encodeArtifact(bad, validBlob())), rejected);
  // A first-format JSON manifest under a current header: not this format's FlatBuffer.
  EXPECT_EQ(loadError(encodeArtifact(R"({"format_version": 1, "steps": []})", "")),
            "m.shardc: manifest: not a FlatBuffers manifest of this format (identifier \"SCM2\" missing)");
  EXPECT_EQ(loadError(encodeArtifact("", "")),
            "m.shardc: manifest: not a FlatBuffers manifest of this format (identifier \"SCM2\" missing)");
}

TEST(Artifact, ManifestValidationErrors) {
  auto expectError = [](const std::function<void(JsonValue &)> &edit, const std::string &want) {
    EXPECT_EQ(manifestError(edit), "m.shardc: manifest: " + want);
  };
  expectError([](JsonValue &m) { stepAt(m, 1).find("in")->asArray()[1] = JsonValue(9); },
              "steps[1].in[1]: buffer id 9 is out of range (the manifest has 5 buffers)");
  expectError([](JsonValue &m) { stepAt(m, 0).find("out")->asArray()[0] = JsonValue(-1); },
              "steps[0].out[0]: buffer id -1 is out of range (the manifest has 5 buffers)");
  expectError([](JsonValue &m) { *bufferAt(m, 4).find("offset") = JsonValue(192); },
              "buffers[4]: arena range [192, 208) overflows arena_bytes 192");
  expectError([](JsonValue &m) { *m.find("arena_bytes") = JsonValue(140); },
              "buffers[4]: arena range [128, 144) overflows arena_bytes 140");
  expectError([](JsonValue &m) { *bufferAt(m, 2).find("offset") = JsonValue(32); },
              "buffers[2].offset: 32 is not 64-byte aligned");
  expectError([](JsonValue &m) { *bufferAt(m, 1).find("blob_offset") = JsonValue(128); },
              "buffers[1]: blob range [128, 152) lies beyond the blob (88 bytes)");
  expectError([](JsonValue &m) { *bufferAt(m, 3).find("file") = JsonValue(1); },
              "buffers[3].file: weight file index 1 is out of range (the manifest has 1 weight "
              "files)");
  expectError([](JsonValue &m) { *bufferAt(m, 3).find("file_offset") = JsonValue(16); },
              "buffers[3]: weight range [16, 40) lies beyond the end of weight file 0 (36 bytes)");
  expectError([](JsonValue &m) { bufferAt(m, 0).find("shape")->asArray()[1] = JsonValue(-3); },
              "buffers[0].shape[1]: negative dimension -3");
  expectError(
      [](JsonValue &m) {
        *bufferAt(m, 0).find("shape") =
            JsonValue(JsonValue::Array{JsonValue(int64_t(1) << 40), JsonValue(int64_t(1) << 40)});
      },
      "buffers[0].shape: the buffer is implausibly large");
  expectError([](JsonValue &m) { *m.find("format_version") = JsonValue(5); },
              "format_version: 5 disagrees with the header's version 4");
  expectError([](JsonValue &m) { *m.find("outputs")->asArray()[0].find("buffer") = JsonValue(5); },
              "outputs[0].buffer: buffer id 5 is out of range (the manifest has 5 buffers)");
  expectError([](JsonValue &m) { *m.find("world_size") = JsonValue(2); },
              "world_size: 2 is not the product of the mesh axes");
  expectError([](JsonValue &m) { *m.find("inputs")->asArray()[0].find("buffer") = JsonValue(3); },
              "inputs[0].buffer: buffer 3 is not an arena buffer");
  expectError([](JsonValue &m) { stepAt(m, 0).find("out")->asArray()[0] = JsonValue(1); },
              "steps[0].out[0]: step 'formula' writes buffer 1, which is not an arena or state buffer");
}


void writeFile(const std::string &path, const std::string &bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

TEST(Artifact, WriteAndLoadFile) {
  TempDir dir;
  std::string path = dir.file("m.shardc");
  ASSERT_EQ(writeJsonArtifact(path, kManifest, validBlob()), "");
  Artifact a;
  ASSERT_EQ(loadArtifact(path, a), "");
  EXPECT_EQ(a.path, path);
  EXPECT_EQ(a.resolveWeightPath(0), dir.file("w.bin"));
  std::string missing = dir.file("absent.shardc");
  EXPECT_EQ(loadArtifact(missing, a), missing + ": cannot open: No such file or directory");

  // The file path reads header, manifest and blob separately: the same checks apply.
  std::string good = encodeJsonArtifact(kManifest, validBlob());
  std::string cut = dir.file("cut.shardc");
  writeFile(cut, good.substr(0, good.size() - 8));
  EXPECT_EQ(loadArtifact(cut, a).rfind(cut + ": file is " + std::to_string(good.size() - 8) +
                                           " bytes but its header describes",
                                       0),
            0u);
  writeFile(cut, good.substr(0, 10));
  EXPECT_EQ(loadArtifact(cut, a), cut + ": file is 10 bytes, shorter than the 48-byte artifact "
                                        "header (file truncated?)");
  std::string flipped = good;
  flipped[flipped.size() - 3] ^= 1;
  writeFile(cut, flipped);
  EXPECT_EQ(loadArtifact(cut, a), cut + ": checksum mismatch in blob (file corrupt or truncated)");
  EXPECT_EQ(loadArtifact(dir.file(""), a), dir.file("") + ": not a regular file");
}

// ---------------------------------------------------------------------------------------
// npz

// Made by numpy 2.3.4: np.savez(f, ids=np.array([[1, -2, 3]], dtype=np.int64),
// x=np.array([0.5, -1.25], dtype=np.float32)). Note numpy's zip64 local headers.
const unsigned char kNumpySavez[] = {
    0x50, 0x4b, 0x03, 0x04, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x5d, 0xd7,
    0xe0, 0x62, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x07, 0x00, 0x14, 0x00, 0x69, 0x64,
    0x73, 0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x98, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x98, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01,
    0x00, 0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x69,
    0x38, 0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64,
    0x65, 0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61,
    0x70, 0x65, 0x27, 0x3a, 0x20, 0x28, 0x31, 0x2c, 0x20, 0x33, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x50, 0x4b, 0x03, 0x04, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00, 0x26,
    0x8d, 0x1e, 0x7a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05, 0x00, 0x14, 0x00, 0x78,
    0x2e, 0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x88, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 0x01, 0x00,
    0x76, 0x00, 0x7b, 0x27, 0x64, 0x65, 0x73, 0x63, 0x72, 0x27, 0x3a, 0x20, 0x27, 0x3c, 0x66, 0x34,
    0x27, 0x2c, 0x20, 0x27, 0x66, 0x6f, 0x72, 0x74, 0x72, 0x61, 0x6e, 0x5f, 0x6f, 0x72, 0x64, 0x65,
    0x72, 0x27, 0x3a, 0x20, 0x46, 0x61, 0x6c, 0x73, 0x65, 0x2c, 0x20, 0x27, 0x73, 0x68, 0x61, 0x70,
    0x65, 0x27, 0x3a, 0x20, 0x28, 0x32, 0x2c, 0x29, 0x2c, 0x20, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20,
    0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20, 0x0a, 0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xa0, 0xbf,
    0x50, 0x4b, 0x01, 0x02, 0x2d, 0x03, 0x2d, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x21, 0x00,
    0x5d, 0xd7, 0xe0, 0x62, 0x98, 0x00, 0x00, 0x00, 0x98, 0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x69, 0x64,
    0x73, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x2d, 0x03, 0x2d, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x21, 0x00, 0x26, 0x8d, 0x1e, 0x7a, 0x88, 0x00, 0x00, 0x00, 0x88, 0x00, 0x00,
    0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80, 0x01, 0xd1,
    0x00, 0x00, 0x00, 0x78, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x05, 0x06, 0x00, 0x00, 0x00, 0x00,
    0x02, 0x00, 0x02, 0x00, 0x68, 0x00, 0x00, 0x00, 0x90, 0x01, 0x00, 0x00, 0x00, 0x00,
};

// Made by numpy 2.3.4: np.savez_compressed(f, m=np.arange(6, dtype=np.float64).reshape(2, 3),
// b=np.array(True)). Deflated members, a 0-d array.
const unsigned char kNumpySavezCompressed[] = {
    0x50, 0x4b, 0x03, 0x04, 0x2d, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0xf0, 0xcd,
    0x3b, 0x46, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05, 0x00, 0x14, 0x00, 0x6d, 0x2e,
    0x6e, 0x70, 0x79, 0x01, 0x00, 0x10, 0x00, 0xb0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x57,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x9b, 0xec, 0x17, 0xea, 0x1b, 0x10, 0xc9, 0xc8, 0x50,
    0xc6, 0x50, 0xad, 0x9e, 0x92, 0x5a, 0x9c, 0x5c, 0xa4, 0x6e, 0xa5, 0xa0, 0x6e, 0x93, 0x66, 0xa1,
    0xae, 0xa3, 0xa0, 0x9e, 0x96, 0x5f, 0x54, 0x52, 0x94, 0x98, 0x17, 0x9f, 0x5f, 0x94, 0x92, 0x0a,
    0x12, 0x77, 0x4b, 0xcc, 0x29, 0x4e, 0x05, 0x8a, 0x17, 0x67, 0x24, 0x16, 0xa4, 0x02, 0xf9, 0x1a,
    0x46, 0x3a, 0x0a, 0xc6, 0x9a, 0x3a, 0x0a, 0xb5, 0x0a, 0x64, 0x03, 0x2e, 0x06, 0x14, 0xf0, 0xc1,
    0x1e, 0xca, 0x70, 0x80, 0x50, 0x1c, 0x50, 0x5a, 0x00, 0x4a, 0x8b, 0x38, 0x00, 0x00, 0x50, 0x4b,
    0x03, 0x04, 0x2d, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x82, 0x2d, 0xf8, 0xd3,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x05, 0x00, 0x14, 0x00, 0x62, 0x2e, 0x6e, 0x70,
    0x79, 0x01, 0x00, 0x10, 0x00, 0x81, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x43, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x9b, 0xec, 0x17, 0xea, 0x1b, 0x10, 0xc9, 0xc8, 0x50, 0xc6, 0x50,
    0xad, 0x9e, 0x92, 0x5a, 0x9c, 0x5c, 0xa4, 0x6e, 0xa5, 0xa0, 0x5e, 0x93, 0x64, 0xa8, 0xae, 0xa3,
    0xa0, 0x9e, 0x96, 0x5f, 0x54, 0x52, 0x94, 0x98, 0x17, 0x9f, 0x5f, 0x94, 0x92, 0x0a, 0x12, 0x77,
    0x4b, 0xcc, 0x29, 0x4e, 0x05, 0x8a, 0x17, 0x67, 0x24, 0x16, 0xa4, 0x02, 0xf9, 0x1a, 0x9a, 0x3a,
    0x0a, 0xb5, 0x0a, 0x14, 0x01, 0x2e, 0x46, 0x00, 0x50, 0x4b, 0x01, 0x02, 0x2d, 0x03, 0x2d, 0x00,
    0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0xf0, 0xcd, 0x3b, 0x46, 0x57, 0x00, 0x00, 0x00,
    0xb0, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x80, 0x01, 0x00, 0x00, 0x00, 0x00, 0x6d, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b, 0x01, 0x02, 0x2d,
    0x03, 0x2d, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x21, 0x00, 0x82, 0x2d, 0xf8, 0xd3, 0x43,
    0x00, 0x00, 0x00, 0x81, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x80, 0x01, 0x8e, 0x00, 0x00, 0x00, 0x62, 0x2e, 0x6e, 0x70, 0x79, 0x50, 0x4b,
    0x05, 0x06, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x02, 0x00, 0x66, 0x00, 0x00, 0x00, 0x08, 0x01,
    0x00, 0x00, 0x00, 0x00,
};

template <typename T> std::vector<T> valuesOf(const HostTensor &t) {
  std::vector<T> v(t.data.size() / sizeof(T));
  if (!v.empty())
    std::memcpy(v.data(), t.data.data(), v.size() * sizeof(T));
  return v;
}

template <typename T>
HostTensor makeTensor(std::string name, DType dtype, std::vector<int64_t> shape,
                      const std::vector<T> &values) {
  HostTensor t;
  t.name = std::move(name);
  t.dtype = dtype;
  t.shape = std::move(shape);
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty())
    std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

std::string asString(const unsigned char *bytes, size_t n) {
  return std::string(reinterpret_cast<const char *>(bytes), n);
}

TEST(Npz, ReadsNumpySavez) {
  std::vector<HostTensor> ts;
  ASSERT_EQ(parseNpz(asString(kNumpySavez, sizeof kNumpySavez), "a.npz", ts), "");
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].name, "ids");
  EXPECT_EQ(ts[0].dtype, DType::I64);
  EXPECT_EQ(ts[0].shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(valuesOf<int64_t>(ts[0]), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(ts[1].name, "x");
  EXPECT_EQ(ts[1].dtype, DType::F32);
  EXPECT_EQ(ts[1].shape, (std::vector<int64_t>{2}));
  EXPECT_EQ(valuesOf<float>(ts[1]), (std::vector<float>{0.5f, -1.25f}));
}

TEST(Npz, ReadsNumpySavezCompressed) {
  std::vector<HostTensor> ts;
  ASSERT_EQ(parseNpz(asString(kNumpySavezCompressed, sizeof kNumpySavezCompressed), "c.npz", ts),
            "");
  ASSERT_EQ(ts.size(), 2u);
  EXPECT_EQ(ts[0].name, "m");
  EXPECT_EQ(ts[0].dtype, DType::F64);
  EXPECT_EQ(ts[0].shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(valuesOf<double>(ts[0]), (std::vector<double>{0, 1, 2, 3, 4, 5}));
  EXPECT_EQ(ts[1].name, "b");
  EXPECT_EQ(ts[1].dtype, DType::Bool);
  EXPECT_TRUE(ts[1].shape.empty());
  EXPECT_EQ(ts[1].data, (std::vector<uint8_t>{1}));
}

TEST(Npz, RoundTripsEveryDType) {
  std::vector<HostTensor> in = {
      makeTensor<float>("f32", DType::F32, {2, 2}, {1.5f, -2, 3, 4}),
      makeTensor<double>("f64", DType::F64, {1}, {0.1}),
      makeTensor<uint16_t>("f16", DType::F16, {2}, {0x3c00, 0xc000}),
      makeTensor<int64_t>("i64", DType::I64, {}, {-7}),
      makeTensor<int32_t>("i32", DType::I32, {3}, {1, 2, 3}),
      makeTensor<int8_t>("i8", DType::I8, {2}, {-1, 1}),
      makeTensor<uint8_t>("u8", DType::U8, {2}, {255, 0}),
      makeTensor<uint8_t>("bool", DType::Bool, {3}, {1, 0, 1}),
      makeTensor<float>("empty", DType::F32, {0, 4}, {}),
      makeTensor<float>("layers.0/out", DType::F32, {1, 1, 1}, {9}),
  };
  std::string bytes;
  ASSERT_EQ(encodeNpz(in, bytes), "");
  std::vector<HostTensor> out;
  ASSERT_EQ(parseNpz(bytes, "rt.npz", out), "");
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].name, in[i].name);
    EXPECT_EQ(out[i].dtype, in[i].dtype) << in[i].name;
    EXPECT_EQ(out[i].shape, in[i].shape) << in[i].name;
    EXPECT_EQ(out[i].data, in[i].data) << in[i].name;
  }
  // Deterministic: the same tensors give the same bytes.
  std::string again;
  ASSERT_EQ(encodeNpz(in, again), "");
  EXPECT_EQ(again, bytes);
}

TEST(Npz, WritesBf16AsF32) {
  // 0x3fc0 is 1.5 and 0xc020 is -2.5 in bfloat16.
  std::vector<HostTensor> in = {makeTensor<uint16_t>("h", DType::BF16, {2}, {0x3fc0, 0xc020})};
  std::string bytes;
  ASSERT_EQ(encodeNpz(in, bytes), "");
  std::vector<HostTensor> out;
  ASSERT_EQ(parseNpz(bytes, "bf.npz", out), "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].dtype, DType::F32);
  EXPECT_EQ(valuesOf<float>(out[0]), (std::vector<float>{1.5f, -2.5f}));
  // widenToF32 does the same for f16 and leaves other dtypes alone.
  HostTensor half = widenToF32(makeTensor<uint16_t>("f", DType::F16, {2}, {0x3c00, 0xc000}));
  EXPECT_EQ(half.dtype, DType::F32);
  EXPECT_EQ(valuesOf<float>(half), (std::vector<float>{1.0f, -2.0f}));
  HostTensor ints = widenToF32(makeTensor<int32_t>("i", DType::I32, {1}, {5}));
  EXPECT_EQ(ints.dtype, DType::I32);
}

TEST(Npz, WriteAndReadFile) {
  TempDir dir;
  std::string path = dir.file("o.npz");
  ASSERT_EQ(writeNpz(path, {makeTensor<float>("y", DType::F32, {2}, {1, 2})}), "");
  std::vector<HostTensor> out;
  ASSERT_EQ(readNpz(path, out), "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(valuesOf<float>(out[0]), (std::vector<float>{1, 2}));
  EXPECT_EQ(readNpz(dir.file("none.npz"), out),
            dir.file("none.npz") + ": cannot open: No such file or directory");
}

TEST(Npz, ReadErrors) {
  std::string good;
  ASSERT_EQ(encodeNpz({makeTensor<float>("x", DType::F32, {2}, {1, 2})}, good), "");
  std::vector<HostTensor> out;

  std::string bad = good;
  bad[bad.find("'shape'")] = '"';
  EXPECT_EQ(parseNpz(bad, "a.npz", out), "a.npz: member 'x.npy' is corrupt (CRC mismatch)");
  // A damaged deflate stream is caught by inflate or, failing that, by the CRC.
  std::string deflated = asString(kNumpySavezCompressed, sizeof kNumpySavezCompressed);
  deflated[80] ^= 0x55;
  std::string err = parseNpz(deflated, "z.npz", out);
  EXPECT_EQ(err.rfind("z.npz: member 'm.npy' is corrupt (", 0), 0u) << err;

  EXPECT_EQ(parseNpz("not a zip at all, just some text", "t.npz", out),
            "t.npz: not a zip archive (no end of central directory)");
  EXPECT_EQ(parseNpz("", "e.npz", out), "e.npz: not a zip archive (too short)");
  EXPECT_EQ(parseNpz(good.substr(0, good.size() - 30), "cut.npz", out),
            "cut.npz: not a zip archive (no end of central directory)");
}

TEST(Npz, NpyHeaderErrors) {
  // .npy contents numpy would not write, each wrapped in a stored zip built here: the
  // encoder writes a u8 carrier array, whose own .npy header is then cut out and the sizes,
  // CRCs and directory offset patched.
  auto zipOf = [](const std::string &npy) {
    // A stored zip of one member "x.npy" whose content is `npy`.
    HostTensor carrier = makeTensor<uint8_t>("x", DType::U8, {static_cast<int64_t>(npy.size())},
                                             std::vector<uint8_t>(npy.begin(), npy.end()));
    std::string zip;
    EXPECT_EQ(encodeNpz({carrier}, zip), "");
    // The carrier's own .npy header precedes `npy`; drop it and fix sizes and CRCs.
    size_t header = zip.find("\x93NUMPY");
    size_t data = zip.find('\n', header) + 1;
    size_t cut = data - header;
    zip.erase(header, cut);
    auto patch32 = [&](size_t at, uint32_t v) { std::memcpy(&zip[at], &v, 4); };
    uint32_t crc = 0;
    {
      // CRC-32 (IEEE), bitwise: independent of the code under test.
      uint32_t c = 0xffffffffu;
      for (unsigned char b : npy) {
        c ^= b;
        for (int k = 0; k < 8; ++k)
          c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
      }
      crc = ~c;
    }
    // Local header: crc at 14, sizes at 18 and 22.
    patch32(14, crc);
    patch32(18, static_cast<uint32_t>(npy.size()));
    patch32(22, static_cast<uint32_t>(npy.size()));
    size_t central = zip.find("PK\x01\x02");
    patch32(central + 16, crc);
    patch32(central + 20, static_cast<uint32_t>(npy.size()));
    patch32(central + 24, static_cast<uint32_t>(npy.size()));
    size_t end = zip.find("PK\x05\x06");
    patch32(end + 16, static_cast<uint32_t>(central)); // central directory offset
    return zip;
  };
  auto npy = [](const std::string &dict, const std::string &data) {
    std::string h = dict + "\n";
    std::string s = std::string("\x93NUMPY\x01\x00", 8);
    s += static_cast<char>(h.size() & 0xff);
    s += static_cast<char>(h.size() >> 8);
    return s + h + data;
  };
  std::vector<HostTensor> out;
  std::string ok = npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }",
                       std::string("\x01\0\0\0\x02\0\0\0", 8));
  ASSERT_EQ(parseNpz(zipOf(ok), "ok.npz", out), "");
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(valuesOf<int32_t>(out[0]), (std::vector<int32_t>{1, 2}));

  EXPECT_EQ(parseNpz(zipOf(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }",
                               std::string(4, '\0'))),
                     "f.npz", out),
            "f.npz: member 'x.npy': fortran_order arrays are not supported (save a "
            "C-contiguous array)");
  EXPECT_EQ(parseNpz(zipOf(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }",
                               std::string(4, '\0'))),
                     "b.npz", out),
            "b.npz: member 'x.npy': unsupported dtype '>f4' (supported: <f4 <f8 <f2 <i8 <i4 "
            "|i1 |u1 |b1)");
  EXPECT_EQ(parseNpz(zipOf(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }",
                               std::string(4, '\0'))),
                     "s.npz", out),
            "s.npz: member 'x.npy': holds 4 data bytes, <f4 3 needs 12");
  EXPECT_EQ(parseNpz(zipOf(npy("{'descr': '<f4', 'shape': (1,), }", std::string(4, '\0'))),
                     "k.npz", out),
            "k.npz: member 'x.npy': .npy header lacks descr, fortran_order or shape");
  EXPECT_EQ(parseNpz(zipOf("PK not npy"), "m.npz", out),
            "m.npz: member 'x.npy': not a .npy array (bad magic)");
}

TEST(Npz, WriteErrors) {
  std::string bytes;
  HostTensor t = makeTensor<float>("x", DType::F32, {3}, {1, 2});
  EXPECT_EQ(encodeNpz({t}, bytes), "array 'x' has 8 bytes, f32 3 needs 12");
  HostTensor a = makeTensor<float>("x", DType::F32, {1}, {1});
  EXPECT_EQ(encodeNpz({a, a}, bytes), "duplicate array name 'x'");
}

// ---------------------------------------------------------------------------------------
// Executor

struct ArtifactOnDisk {
  TempDir dir;
  Artifact artifact;
};

// Writes `manifest` (+ the valid blob) and w.bin into a fresh directory and loads it.
std::unique_ptr<ArtifactOnDisk> artifactOnDisk(const std::string &manifest,
                                               const std::string &weights = weightFileBytes()) {
  auto d = std::make_unique<ArtifactOnDisk>();
  writeFile(d->dir.file("w.bin"), weights);
  std::string path = d->dir.file("m.shardc");
  EXPECT_EQ(writeJsonArtifact(path, manifest, validBlob()), "");
  EXPECT_EQ(loadArtifact(path, d->artifact), "");
  return d;
}

TEST(Executor, AddThenMatmulOnCpu) {
  auto d = artifactOnDisk(kManifest);
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, cpu, ex), "");
  EXPECT_EQ(ex->arenaPeakBytes(), 144u);
  EXPECT_EQ(ex->weightBytes(), 64u);

  std::vector<float> x = {1, 2, 3, 4, 5, 6};
  std::vector<HostTensor> outputs;
  ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, x)}, outputs), "");
  // t = x + c = [[11, 22, 33], [44, 55, 66]]; w = [[1, 2], [3, 4], [5, 6]].
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "y");
  EXPECT_EQ(outputs[0].dtype, DType::F32);
  EXPECT_EQ(outputs[0].shape, (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{11 + 66 + 165, 22 + 88 + 198,
                                                             44 + 165 + 330, 88 + 220 + 396}));
  // A second run reuses the arena.
  ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {0, 0, 0, 0, 0, 0})}, outputs), "");
  EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{220, 280, 490, 640}));
}

// Benchmarks bind pseudo-random weights: the weight files are not even opened, and the values
// are the same on every create.
TEST(Executor, RandomWeightsNeedNoWeightFiles) {
  auto d = artifactOnDisk(kManifest);
  std::remove(d->dir.file("w.bin").c_str());
  std::vector<std::vector<float>> results;
  for (int i = 0; i < 2; ++i) {
    CpuBackend cpu;
    std::unique_ptr<Executor> ex;
    auto self = std::make_unique<LocalCommunicator>(std::make_shared<LocalWorld>(d->artifact.deviceMesh), 0);
    ASSERT_EQ(Executor::create(d->artifact, cpu, *self, ex, ExecutorOptions{/*randomWeights=*/true}), "");
    std::vector<HostTensor> outputs;
    ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})}, outputs), "");
    results.push_back(valuesOf<float>(outputs[0]));
  }
  EXPECT_EQ(results[0], results[1]);
  for (float v : results[0])
    EXPECT_TRUE(std::isfinite(v) && std::abs(v) < 100.0f) << v; // |w| < 0.05
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  EXPECT_NE(Executor::create(d->artifact, cpu, ex), ""); // without the option the file is missing
}

// Load steps: the weight is negated once when the executor is made, into a persistent
// buffer that every run reads; no run step reads the weight, so its bytes are released.
constexpr const char *kLoadManifest = R"({
  "format_version": 4, "producer": "unit test", "source": "none.onnx",
  "mesh": {"dp_replicate": 1, "dp_shard": 1, "cp": 1, "tp": 1}, "world_size": 1,
  "weight_files": [{"path": "w.bin", "size": 36}],
  "arena_bytes": 128, "persistent_bytes": 64,
  "buffers": [
    {"id": 0, "name": "x", "dtype": "f32", "shape": [2, 3], "storage": "arena", "offset": 0},
    {"id": 1, "name": "w", "dtype": "f32", "shape": [3, 2], "storage": "weight",
     "file": 0, "file_offset": 12, "transform": "none"},
    {"id": 2, "name": "nw", "dtype": "f32", "shape": [3, 2], "storage": "persistent", "offset": 0},
    {"id": 3, "name": "y", "dtype": "f32", "shape": [2, 2], "storage": "arena", "offset": 64}
  ],
  "inputs": [{"name": "x", "buffer": 0}],
  "outputs": [{"name": "y", "buffer": 3}],
  "load_steps": [{"op": "formula", "in": [1], "out": [2], "attrs": {"formula": "neg"}, "loc": "node_cast @ m.w"}],
  "steps": [{"op": "matmul", "in": [0, 2], "out": [3], "attrs": {}, "loc": "node_mm @ m"}]
})";

TEST(Executor, LoadStepsRunOnceIntoPersistentBuffers) {
  auto d = artifactOnDisk(kLoadManifest);
  ASSERT_EQ(d->artifact.loadSteps.size(), 1u);
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, cpu, ex), "");
  EXPECT_EQ(ex->weightBytes(), 0u); // only the load step read it
  EXPECT_EQ(ex->persistentBytes(), 64u);
  std::vector<HostTensor> outputs;
  for (int run = 0; run < 2; ++run) {
    ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {1, 0, 0, 0, 1, 1})}, outputs), "");
    EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{-1, -2, -8, -10}));
  }
}

TEST(Artifact, LoadStepsReadOnlyWeightsAndWritePersistentBuffers) {
  auto edited = [](const std::function<void(JsonValue &)> &edit) {
    JsonValue m;
    EXPECT_EQ(parseJson(kLoadManifest, m), "");
    edit(m);
    return loadError(encodeJsonArtifact(writeJson(m), validBlob()));
  };
  EXPECT_EQ(edited([](JsonValue &m) { m.find("load_steps")->asArray()[0].find("in")->asArray()[0] = JsonValue(int64_t(0)); }),
            "m.shardc: manifest: load_steps[0].in[0]: load step 'formula' reads arena buffer 0 (load steps read "
            "weights, constants and persistent buffers)");
  EXPECT_EQ(edited([](JsonValue &m) { m.find("load_steps")->asArray()[0].find("out")->asArray()[0] = JsonValue(int64_t(3)); }),
            "m.shardc: manifest: load_steps[0].out[0]: step 'formula' writes buffer 3, which is not a persistent or state buffer");
  EXPECT_EQ(edited([](JsonValue &m) { *m.find("persistent_bytes") = JsonValue(int64_t(16)); }),
            "m.shardc: manifest: buffers[2]: persistent range [0, 24) overflows persistent_bytes 16");
}

// A backend whose memory the host cannot address: weights, constants and inputs arrive only
// through copyIn, outputs leave only through copyOut, and the results are the CPU's.
TEST(Executor, DeviceMemoryIsReachedOnlyThroughCopies) {
  auto d = artifactOnDisk(kManifest);
  test_backends::DeviceSimBackend device;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, device, ex), "");
  EXPECT_EQ(device.copiedIn.load(), 24u + 24u); // the weight, the constant
  std::vector<HostTensor> outputs;
  ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})}, outputs), "");
  EXPECT_EQ(device.copiedIn.load(), 24u + 24u + 24u); // and the input
  EXPECT_EQ(device.copiedOut.load(), 16u);            // the output
  EXPECT_GE(device.synchronizations.load(), 1u);
  EXPECT_EQ(ex->hostBlockingCallsInSteps(), 0u); // the steps only enqueue; outputs wait after
  // The first run is direct; later ones, whose steps never made the host wait, are offered
  // for capture (a GPU backend records them once and replays).
  EXPECT_EQ(device.captured.load(), 0u);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})}, outputs), "");
  EXPECT_EQ(device.captured.load(), 2u);
  EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{11 + 66 + 165, 22 + 88 + 198,
                                                             44 + 165 + 330, 88 + 220 + 396}));
}

// A CPU backend whose profile marks read a fake clock: each mark is 1 ms after the last for
// an `add`, 3 ms for a `matmul` (the step the mark follows), so the profile is exact.
class FakeClockBackend final : public Backend {
public:
  const char *name() const override { return "fake-clock"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  std::string runCaptured(const std::function<std::string()> &steps) override {
    ++captured;
    return steps();
  }
  std::string prepareMarks(size_t count) override {
    at.assign(count, -1.0);
    return "";
  }
  std::string mark(size_t index) override {
    if (index >= at.size())
      return "no mark " + std::to_string(index);
    at[index] = index == 0 ? 0.0 : at[index - 1] + (index == 1 ? 1.0 : 3.0);
    ++marks;
    return "";
  }
  double elapsedMs(size_t from, size_t to) const override { return at[to] - at[from]; }
  std::vector<double> at;
  int marks = 0, captured = 0;
};

TEST(Executor, ProfilesEveryStepOfUncapturedRuns) {
  auto d = artifactOnDisk(kManifest);
  FakeClockBackend clock;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, clock, ex), "");
  std::vector<HostTensor> outputs;
  auto x = makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  ASSERT_EQ(ex->run({x}, outputs), "");
  EXPECT_EQ(ex->profiledRuns(), 0u);
  ex->setProfiling(true);
  for (int i = 0; i < 2; ++i)
    ASSERT_EQ(ex->run({x}, outputs), "");
  EXPECT_EQ(clock.captured, 0) << "profiled runs are not captured as graphs";
  EXPECT_EQ(clock.marks, 2 * 3); // before the first step and after each of the two
  EXPECT_EQ(ex->profiledRuns(), 2u);
  EXPECT_EQ(ex->stepMilliseconds(), (std::vector<double>{1.0, 3.0}));
  EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{11 + 66 + 165, 22 + 88 + 198,
                                                             44 + 165 + 330, 88 + 220 + 396}));
  // The table: matmul first (3 of 4 ms), with its arithmetic (2 M N K = 2*2*2*3).
  std::vector<KernelProfileRow> rows = kernelProfile(d->artifact, ex->stepMilliseconds());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].kernel, "matmul f32 2x3, 3x2 -> 2x2");
  EXPECT_DOUBLE_EQ(rows[0].share, 0.75);
  EXPECT_EQ(rows[0].flops, 24u);
  EXPECT_EQ(rows[1].kernel, "formula add f32 2x3, 2x3 -> 2x3");
  EXPECT_EQ(rows[1].flops, 0u);
  std::string table = formatKernelProfile(rows, 1);
  EXPECT_NE(table.find("75.0%"), std::string::npos) << table;
  EXPECT_EQ(table.find("add f32"), std::string::npos) << "only the top row was asked for:\n" << table;
  EXPECT_NE(table.find("2 kernels, 4.0000 ms per run"), std::string::npos) << table;
  // Profiling off: runs are offered for capture again.
  ex->setProfiling(false);
  ASSERT_EQ(ex->run({x}, outputs), "");
  EXPECT_EQ(clock.captured, 1);
}

// A backend whose matmul kernel waits for the device on the host (as the CUDA MoE steps read
// their group sizes): Backend::kernelHostWaits grows during every run, so no run is offered
// for capture, and hostBlockingCallsInSteps counts the wait.
uint64_t waitingKernelCalls = 0;
std::string waitingMatmul(const KernelArgs &args) {
  ++waitingKernelCalls;
  return lookupCpuKernel("matmul")(args);
}
class KernelWaitBackend final : public Backend {
public:
  const char *name() const override { return "kernel-wait"; }
  KernelFn lookupKernel(std::string_view op) const override {
    return op == "matmul" ? waitingMatmul : lookupCpuKernel(op);
  }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  std::string runCaptured(const std::function<std::string()> &steps) override {
    ++captured;
    return steps();
  }
  uint64_t kernelHostWaits() const override { return waitingKernelCalls; }
  int captured = 0;
};

TEST(Executor, KernelHostWaitsKeepRunsUncaptured) {
  auto d = artifactOnDisk(kManifest);
  KernelWaitBackend backend;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, backend, ex), "");
  std::vector<HostTensor> outputs;
  auto x = makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  const uint64_t before = waitingKernelCalls;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(ex->run({x}, outputs), "");
    EXPECT_EQ(ex->hostBlockingCallsInSteps(), 1u) << "run " << i;
  }
  EXPECT_EQ(waitingKernelCalls - before, 3u);
  EXPECT_EQ(backend.captured, 0) << "a run whose kernels waited on the host is never captured";
  EXPECT_EQ(valuesOf<float>(outputs[0]), (std::vector<float>{11 + 66 + 165, 22 + 88 + 198,
                                                             44 + 165 + 330, 88 + 220 + 396}));
}

// A backend that records the first captured run and from then on "replays" it without
// calling the steps, as CUDA graphs do.
class ReplayingBackend final : public Backend {
public:
  const char *name() const override { return "replaying"; }
  KernelFn lookupKernel(std::string_view op) const override { return lookupCpuKernel(op); }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  std::string runCaptured(const std::function<std::string()> &steps) override {
    if (recorded)
      return ""; // the graph runs the steps
    recorded = true;
    return steps();
  }
  bool replaysCapture() const override { return recorded; }
  bool recorded = false;
};

// Step marks (the NCCL watchdog's) are made in runs that enqueue steps, including the one a
// graph is recorded from, and each run is announced as a replay or not; they leave runs
// capturable, unlike an after-step hook.
TEST(Executor, StepMarksSurviveGraphReplay) {
  auto d = artifactOnDisk(kManifest);
  ReplayingBackend backend;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, backend, ex), "");
  std::vector<std::string> calls;
  ex->setStepMarks([&](size_t step, int stream) {
                     calls.push_back("mark " + std::to_string(step) + (stream == 0 ? "" : " on stream " + std::to_string(stream)));
                     return std::string();
                   },
                   [&](bool replay) { calls.push_back(replay ? "replay" : "run"); return std::string(); });
  std::vector<HostTensor> outputs;
  auto x = makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(ex->run({x}, outputs), "");
  // Run 1 direct, run 2 recorded (marks captured), run 3 replayed (no marks from the host).
  EXPECT_EQ(calls, (std::vector<std::string>{"run", "mark 0", "mark 1", "run", "mark 0", "mark 1", "replay"}));
  EXPECT_TRUE(backend.recorded);
  // A mark's error stops the run, located at its step.
  ReplayingBackend fresh;
  ASSERT_EQ(Executor::create(d->artifact, fresh, ex), "");
  ex->setStepMarks([](size_t step, int) { return step == 1 ? std::string("progress word failed") : std::string(); },
                   [](bool) { return std::string(); });
  std::string err = ex->run({x}, outputs);
  EXPECT_NE(err.find("step 1 (matmul"), std::string::npos) << err;
  EXPECT_NE(err.find("progress word failed"), std::string::npos) << err;
}

// A backend whose kernels record what they were given, so the executor's own work (binding,
// error locations) is tested independently of the CPU kernels.
class RecordingBackend final : public Backend {
public:
  static inline std::vector<const void *> seenInputs;
  static inline std::string failure;

  const char *name() const override { return "test"; }
  std::string loadKernels(const Artifact &) override { return ""; }
  const FusedKernel *lookupFused(std::string_view) const override { return nullptr; }
  // Steps name the schema's kinds, so this backend gives three of them its test behaviour:
  // copy records its inputs, matmul fails, softmax throws; it has no other kernel.
  KernelFn lookupKernel(std::string_view op) const override {
    if (op == "copy")
      return [](const KernelArgs &a) -> std::string {
        for (const TensorView &v : a.in)
          seenInputs.push_back(v.data);
        return "";
      };
    if (op == "matmul")
      return [](const KernelArgs &a) -> std::string {
        return "bad shape " + shapeString(a.in[0].shape);
      };
    if (op == "softmax")
      return [](const KernelArgs &) -> std::string { throw std::runtime_error("out of memory"); };
    return nullptr;
  }
  MemoryBlock allocate(size_t bytes) override { return MemoryBlock::allocateHost(bytes); }
};

std::string manifestWithSteps(const std::string &stepsJson) {
  return editedManifest([&](JsonValue &m) {
    JsonValue steps;
    ASSERT_EQ(parseJson(stepsJson, steps), "");
    *m.find("steps") = steps;
  });
}

TEST(Executor, BindsWeightsConstantsAndSharesTiedWeights) {
  std::string manifest = editedManifest([](JsonValue &m) {
    // Buffer 5 names the same bytes as buffer 3 (a tied weight), buffer 6 other bytes.
    JsonValue tied = bufferAt(m, 3);
    *tied.find("id") = JsonValue(5);
    JsonValue other = bufferAt(m, 3);
    *other.find("id") = JsonValue(6);
    *other.find("shape") = JsonValue(JsonValue::Array{JsonValue(1)});
    *other.find("file_offset") = JsonValue(0);
    m.find("buffers")->asArray().push_back(tied);
    m.find("buffers")->asArray().push_back(other);
    JsonValue steps;
    ASSERT_EQ(parseJson(R"([{"op": "copy", "in": [3, 5, 6, 1, 0], "out": []}])", steps), "");
    *m.find("steps") = steps;
  });
  auto d = artifactOnDisk(manifest);
  RecordingBackend backend;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(d->artifact, backend, ex), "");
  EXPECT_EQ(ex->weightBytes(), 128u); // two distinct ranges, each 64-byte aligned
  RecordingBackend::seenInputs.clear();
  std::vector<HostTensor> outputs;
  ASSERT_EQ(ex->run({makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6})}, outputs), "");
  ASSERT_EQ(RecordingBackend::seenInputs.size(), 5u);
  const auto *w = static_cast<const float *>(RecordingBackend::seenInputs[0]);
  EXPECT_EQ(std::vector<float>(w, w + 6), kWeight);
  EXPECT_EQ(RecordingBackend::seenInputs[1], RecordingBackend::seenInputs[0]);
  EXPECT_NE(RecordingBackend::seenInputs[2], RecordingBackend::seenInputs[0]);
  EXPECT_EQ(RecordingBackend::seenInputs[3], d->artifact.constantData(d->artifact.buffers[1]));
  const auto *x = static_cast<const float *>(RecordingBackend::seenInputs[4]);
  EXPECT_EQ(std::vector<float>(x, x + 6), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  for (const void *p : RecordingBackend::seenInputs)
    EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 64, 0u);
}

TEST(Executor, StepErrorsAreLocated) {
  RecordingBackend backend;
  std::vector<HostTensor> outputs;
  HostTensor x = makeTensor<float>("x", DType::F32, {2, 3}, {1, 2, 3, 4, 5, 6});
  {
    auto d = artifactOnDisk(manifestWithSteps(
        R"([{"op": "copy", "in": [0], "out": []},
            {"op": "matmul", "in": [0], "out": [2], "loc": "node_mm @ m.layers.3.mlp"}])"));
    std::unique_ptr<Executor> ex;
    ASSERT_EQ(Executor::create(d->artifact, backend, ex), "");
    EXPECT_EQ(ex->run({x}, outputs), "step 1 (matmul @ node_mm @ m.layers.3.mlp): bad shape 2x3");
  }
  {
    auto d = artifactOnDisk(manifestWithSteps(R"([{"op": "softmax", "in": [], "out": []}])"));
    std::unique_ptr<Executor> ex;
    ASSERT_EQ(Executor::create(d->artifact, backend, ex), "");
    EXPECT_EQ(ex->run({x}, outputs), "step 0 (softmax): kernel threw: out of memory");
  }
  {
    auto d = artifactOnDisk(manifestWithSteps(
        R"([{"op": "copy", "in": [], "out": []},
            {"op": "trilu", "in": [], "out": [], "loc": "node_f @ m.head"}])"));
    std::unique_ptr<Executor> ex;
    EXPECT_EQ(Executor::create(d->artifact, backend, ex),
              "step 1 (trilu @ node_f @ m.head): the test backend has no kernel for op "
              "'trilu'");
    EXPECT_EQ(ex, nullptr);
  }
}

TEST(Executor, CpuBackendRejectsUnknownOpBeforeAllocating) {
  // An arena of 2^50 bytes cannot be allocated: the kernel check must come first.
  auto d = artifactOnDisk(editedManifest([](JsonValue &m) {
    *m.find("arena_bytes") = JsonValue(int64_t(1) << 50);
  }));
  // The schema names only kinds some backend implements; a newer one's kind, in memory:
  d->artifact.steps[1].op = "no_such_op";
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  EXPECT_EQ(Executor::create(d->artifact, cpu, ex),
            "step 1 (no_such_op @ node_mm @ m.block.proj): the cpu backend has no kernel for op "
            "'no_such_op'");
}

TEST(Executor, WeightFileErrors) {
  RecordingBackend backend;
  std::unique_ptr<Executor> ex;
  auto record = manifestWithSteps(R"([{"op": "copy", "in": [3], "out": []}])");
  {
    auto d = artifactOnDisk(record, weightFileBytes() + "x");
    EXPECT_EQ(Executor::create(d->artifact, backend, ex),
              "weight file '" + d->dir.file("w.bin") +
                  "' (weight_files[0]) is 37 bytes, the artifact recorded 36 (was it replaced "
                  "after compiling?)");
  }
  {
    auto d = artifactOnDisk(record);
    std::remove(d->dir.file("w.bin").c_str());
    EXPECT_EQ(Executor::create(d->artifact, backend, ex),
              "weight file '" + d->dir.file("w.bin") +
                  "' (weight_files[0]): cannot open: No such file or directory");
  }
}

TEST(Executor, InputChecks) {
  // No steps: the output is the input buffer itself, so only the copies are exercised.
  std::string manifest = R"({"format_version": 4, "arena_bytes": 128,
    "buffers": [{"id": 0, "dtype": "i64", "shape": [2, 2], "storage": "arena", "offset": 0},
                {"id": 1, "dtype": "f32", "shape": [], "storage": "arena", "offset": 64}],
    "inputs": [{"name": "input_ids", "buffer": 0}, {"name": "scale", "buffer": 1}],
    "outputs": [{"name": "ids_out", "buffer": 0}], "steps": []})";
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(manifest, ""), "io.shardc", a), "");
  RecordingBackend backend;
  std::unique_ptr<Executor> ex;
  ASSERT_EQ(Executor::create(a, backend, ex), "");
  HostTensor ids = makeTensor<int64_t>("input_ids", DType::I64, {2, 2}, {1, 2, 3, 4});
  HostTensor scale = makeTensor<float>("scale", DType::F32, {}, {0.5f});
  std::vector<HostTensor> outputs;

  EXPECT_EQ(ex->run({ids}, outputs),
            "missing input 'scale' (the artifact's inputs: 'input_ids', 'scale')");
  EXPECT_EQ(ex->run({}, outputs),
            "missing inputs 'input_ids', 'scale' (the artifact's inputs: 'input_ids', 'scale')");
  EXPECT_EQ(ex->run({ids, scale, makeTensor<float>("extra", DType::F32, {}, {1})}, outputs),
            "unexpected input 'extra' (the artifact's inputs: 'input_ids', 'scale')");
  EXPECT_EQ(ex->run({scale, makeTensor<float>("typo", DType::F32, {}, {1})}, outputs),
            "missing input 'input_ids'; unexpected input 'typo' (the artifact's inputs: "
            "'input_ids', 'scale')");
  EXPECT_EQ(ex->run({makeTensor<int64_t>("input_ids", DType::I64, {2, 3}, {1, 2, 3, 4, 5, 6}),
                     scale},
                    outputs),
            "input 'input_ids': expected i64 2x2, given i64 2x3");
  EXPECT_EQ(ex->run({ids, makeTensor<double>("scale", DType::F64, {}, {0.5})}, outputs),
            "input 'scale': expected f32 scalar, given f64 scalar");
  HostTensor shortIds = ids;
  shortIds.data.resize(8);
  EXPECT_EQ(ex->run({shortIds, scale}, outputs), "input 'input_ids': holds 8 bytes, i64 2x2 needs 32");

  ASSERT_EQ(ex->run({ids, scale}, outputs), "");
  ASSERT_EQ(outputs.size(), 1u);
  EXPECT_EQ(outputs[0].name, "ids_out");
  EXPECT_EQ(valuesOf<int64_t>(outputs[0]), (std::vector<int64_t>{1, 2, 3, 4}));
  // int32 ids are widened to the recorded int64, negative values included.
  ASSERT_EQ(ex->run({makeTensor<int32_t>("input_ids", DType::I32, {2, 2}, {7, -8, 9, 10}), scale},
                    outputs),
            "");
  EXPECT_EQ(valuesOf<int64_t>(outputs[0]), (std::vector<int64_t>{7, -8, 9, 10}));
  EXPECT_EQ(checkInputs(a, {ids, scale}), "");
}

TEST(Executor, SingleRankCreateRefusesMultiRankArtifacts) {
  Artifact a;
  std::string manifest = R"({"format_version": 4, "mesh": {"tp": 2}, "world_size": 2,
    "arena_bytes": 0, "buffers": [], "inputs": [], "outputs": [], "steps": []})";
  ASSERT_EQ(parseArtifact(encodeJsonArtifact(manifest, ""), "tp.shardc", a), "");
  EXPECT_EQ(a.deviceMesh.axisSize("tp"), 2);
  CpuBackend cpu;
  std::unique_ptr<Executor> ex;
  // Multi-rank execution takes a communicator (MultiRankTest.cpp).
  EXPECT_EQ(Executor::create(a, cpu, ex),
            "the artifact is compiled for 2 ranks (dp_replicate=1 dp_shard=1 cp=1 tp=2); run it "
            "with a communicator of as many ranks (shardc-run: mpirun -np 2, --nproc 2 or "
            "--threads 2)");
}

} // namespace
