// The manifest schema (runtime/schema/artifact.fbs) against the runtime: every kernel the
// runtime implements is a StepKind (else the emitter could not write its steps), and the
// shared attribute writer round-trips every AttrValue type through the loader.
#include "ManifestJson.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/ManifestWriter.h"

#include <gtest/gtest.h>

using namespace shardc::rt;

TEST(ManifestSchema, EveryKernelIsAStepKind) {
  std::vector<std::string> names = cpuKernelNames();
  for (const std::string &c : collectiveKernelNames())
    names.push_back(c);
  names.push_back("fused");
  for (const std::string &name : names) {
    std::optional<fb::StepKind> kind = stepKindByName(name);
    ASSERT_TRUE(kind.has_value()) << name << " is missing from enum StepKind in artifact.fbs";
    EXPECT_EQ(fb::EnumNameStepKind(*kind), name);
  }
  // ... and every StepKind is a kernel: the schema lists nothing the runtime cannot run.
  for (fb::StepKind kind : fb::EnumValuesStepKind())
    EXPECT_NE(std::find(names.begin(), names.end(), fb::EnumNameStepKind(kind)), names.end())
        << fb::EnumNameStepKind(kind) << " has no kernel";
  EXPECT_FALSE(stepKindByName("no_such_op").has_value());
  EXPECT_FALSE(stepKindByName("").has_value());
}

TEST(ManifestSchema, AttributesRoundTrip) {
  Attrs attrs;
  attrs.set("b", true);
  attrs.set("i", int64_t(-7));
  attrs.set("d", 0.25);
  attrs.set("s", std::string("tanh"));
  attrs.set("is", std::vector<int64_t>{1, -2});
  attrs.set("ds", std::vector<double>{0.5});
  attrs.set("ss", std::vector<std::string>{"tp", "cp"});
  attrs.set("empty", std::vector<int64_t>{});
  flatbuffers::FlatBufferBuilder b;
  auto list = buildAttrs(b, attrs);
  auto none = b.CreateVector(std::vector<int64_t>{});
  auto step = fb::CreateStep(b, fb::StepKind::copy, none, none, list);
  auto steps = b.CreateVector(std::vector<flatbuffers::Offset<fb::Step>>{step});
  auto empty = b.CreateVector(std::vector<flatbuffers::Offset<fb::IoBinding>>{});
  auto m = fb::CreateManifest(b, kArtifactFormatVersion, 0, 0, 0, 1, 0, 0, 0,
                              b.CreateVector(std::vector<flatbuffers::Offset<fb::Buffer>>{}), empty, empty, 0, 0,
                              steps);
  fb::FinishManifestBuffer(b, m);
  std::string manifest(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
  Artifact a;
  ASSERT_EQ(parseArtifact(encodeArtifact(manifest, ""), "m.shardc", a), "");
  ASSERT_EQ(a.steps.size(), 1u);
  EXPECT_EQ(a.steps[0].op, "copy");
  EXPECT_EQ(a.steps[0].attrs.all(), attrs.all());
}

TEST(ManifestSchema, UnknownStepKindValueIsRefused) {
  // A kind number past the schema's enum (a newer compiler's kind).
  flatbuffers::FlatBufferBuilder b;
  auto none = b.CreateVector(std::vector<int64_t>{});
  auto step = fb::CreateStep(b, static_cast<fb::StepKind>(999), none, none);
  auto steps = b.CreateVector(std::vector<flatbuffers::Offset<fb::Step>>{step});
  auto empty = b.CreateVector(std::vector<flatbuffers::Offset<fb::IoBinding>>{});
  auto m = fb::CreateManifest(b, kArtifactFormatVersion, 0, 0, 0, 1, 0, 0, 0,
                              b.CreateVector(std::vector<flatbuffers::Offset<fb::Buffer>>{}), empty, empty, 0, 0,
                              steps);
  fb::FinishManifestBuffer(b, m);
  std::string manifest(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
  Artifact a;
  EXPECT_EQ(parseArtifact(encodeArtifact(manifest, ""), "m.shardc", a),
            "m.shardc: manifest: steps[0].kind: unknown step kind 999 (the artifact is newer than "
            "this runtime?)");
}
