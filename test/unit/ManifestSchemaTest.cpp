// The manifest schema (runtime/schema/artifact.fbs) against the runtime: every kernel the
// runtime implements is a StepKind (else the emitter could not write its steps); the typed
// attribute tables round-trip through the loader, and what they do not declare is an
// emission error.
#include "ManifestJson.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/ManifestSchema.h"

#include <gtest/gtest.h>

using namespace shardc::rt;

TEST(ManifestSchema, EveryKernelIsAStepKind) {
  std::vector<std::string> names = cpuKernelNames();
  for (const std::string &c : collectiveKernelNames())
    names.push_back(c);
  names.push_back("fused");
  names.emplace_back(kProcessIndexStep); // the executor's own step
  for (const char *copy : {"copy_to_host", "copy_to_device"}) // CPU offload: through the backend
    names.emplace_back(copy);
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

namespace {

// A one-step manifest: `kind` with `attrs` (through the emitter's attribute writer).
std::string oneStepManifest(const std::string &kind, const Attrs &attrs, std::string &error) {
  flatbuffers::FlatBufferBuilder b;
  fb::StepAttrs type;
  flatbuffers::Offset<void> table;
  error = buildStepAttrs(b, kind, attrs, type, table);
  auto none = b.CreateVector(std::vector<int64_t>{});
  auto step = fb::CreateStep(b, *stepKindByName(kind), none, none, type, table);
  auto steps = b.CreateVector(std::vector<flatbuffers::Offset<fb::Step>>{step});
  auto empty = b.CreateVector(std::vector<flatbuffers::Offset<fb::IoBinding>>{});
  auto m = fb::CreateManifest(b, kArtifactFormatVersion, 0, 0, 0, 1, 0, 0, 0,
                              b.CreateVector(std::vector<flatbuffers::Offset<fb::Buffer>>{}), empty, empty, 0, 0,
                              steps);
  fb::FinishManifestBuffer(b, m);
  return std::string(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
}

// `attrs` of a `kind` step after writing and loading; fails the test on any error.
Attrs roundTrip(const std::string &kind, const Attrs &attrs) {
  std::string error;
  std::string manifest = oneStepManifest(kind, attrs, error);
  EXPECT_EQ(error, "");
  Artifact a;
  EXPECT_EQ(parseArtifact(encodeArtifact(manifest, ""), "m.shardc", a), "");
  EXPECT_EQ(a.steps.size(), 1u);
  EXPECT_EQ(a.steps.empty() ? "" : a.steps[0].op, kind);
  return a.steps.empty() ? Attrs() : a.steps[0].attrs;
}

std::string emissionError(const std::string &kind, const Attrs &attrs) {
  std::string error;
  oneStepManifest(kind, attrs, error);
  return error;
}

} // namespace

// Every attribute type the schema's tables use survives writing and loading, values equal
// to the schema's defaults included (an absent field means "the kernel's default").
TEST(ManifestSchema, TypedAttributesRoundTrip) {
  Attrs gemm;
  gemm.set("alpha", 0.5);
  gemm.set("beta", 0.0);
  gemm.set("trans_a", false);
  gemm.set("trans_b", true);
  EXPECT_EQ(roundTrip("gemm", gemm).all(), gemm.all());
  Attrs trilu;
  trilu.set("upper", false); // the kernel's default is true: must not read as absent
  trilu.set("k", int64_t(-2));
  EXPECT_EQ(roundTrip("trilu", trilu).all(), trilu.all());
  Attrs reduce;
  reduce.set("axes", std::vector<int64_t>{0, 2});
  reduce.set("keepdims", false);
  EXPECT_EQ(roundTrip("reduce_mean", reduce).all(), reduce.all());
  Attrs scatter; // strings, an enum by name
  scatter.set("axes", std::vector<std::string>{"dp_shard", "tp"});
  scatter.set("dim", int64_t(-1));
  scatter.set("reduce", std::string("max"));
  EXPECT_EQ(roundTrip("reduce_scatter", scatter).all(), scatter.all());
  Attrs fused;
  fused.set("kernel", std::string("sc_fused_3"));
  fused.set("launch", std::string("rows"));
  fused.set("count", int64_t(64));
  EXPECT_EQ(roundTrip("fused", fused).all(), fused.all());
  Attrs some; // fields not set stay absent
  some.set("causal", true);
  EXPECT_EQ(roundTrip("attention", some).all(), some.all());
  Attrs ints; // an int for a double field reads back as the double
  ints.set("epsilon", int64_t(1));
  EXPECT_EQ(roundTrip("rms_norm", ints).getFloat("epsilon"), 1.0);
  EXPECT_TRUE(roundTrip("copy", Attrs()).all().empty());
  Attrs formula;
  formula.set("formula", std::string("gelu_tanh"));
  EXPECT_EQ(roundTrip("formula", formula).all(), formula.all());
}

// What the compiler's tests catch: an attribute the kind's table does not declare, or a value
// of another type, is an emission error naming the attribute (the emitter adds the step).
TEST(ManifestSchema, UndeclaredOrMistypedAttributeIsAnEmissionError) {
  Attrs a;
  a.set("formla", std::string("exp"));
  EXPECT_EQ(emissionError("formula", a),
            "attribute 'formla' of kind 'formula' is not declared in runtime/schema/artifact.fbs");
  Attrs wrongType;
  wrongType.set("transpose_w", int64_t(1));
  EXPECT_EQ(emissionError("linear", wrongType),
            "attribute 'transpose_w' of kind 'linear' has the wrong type for its field in "
            "runtime/schema/artifact.fbs");
  Attrs badEnum;
  badEnum.set("reduce", std::string("mean"));
  EXPECT_EQ(emissionError("all_reduce", badEnum),
            "attribute 'reduce' of kind 'all_reduce' is 'mean', not one of sum, max");
  Attrs any;
  any.set("axis", int64_t(0));
  EXPECT_EQ(emissionError("copy", any),
            "kind 'copy' takes no attributes in runtime/schema/artifact.fbs, but has 'axis'");
  Attrs axesAsString; // a collective's axes are a list
  axesAsString.set("axes", std::string("tp"));
  EXPECT_NE(emissionError("all_gather", axesAsString).find("has the wrong type"), std::string::npos);
}

// Every member of the union StepAttrs is named as a step kind (else its table is unreachable).
TEST(ManifestSchema, AttributeTablesAreNamedAsKinds) {
  const flatbuffers::TypeTable *u = fb::StepAttrsTypeTable();
  for (size_t i = 1; i < u->num_elems; ++i)
    EXPECT_TRUE(stepKindByName(u->names[i]).has_value()) << u->names[i];
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
