// Test-only: the tests write manifests as readable JSON (the field names of
// runtime/schema/artifact.fbs; steps name their kind as "op", attributes as a JSON object,
// the mesh as "mesh_axes": [[name, size], ...]) and this turns them into the FlatBuffers
// manifest with the builder, so the loader's semantic checks can be tested on any values.
// A JSON the schema cannot express (unknown step kind, dtype, storage or attribute) aborts.
#pragma once

#include <string>
#include <string_view>

namespace shardc::rt {

std::string manifestFromJson(std::string_view json);
// encodeArtifact / writeArtifact (Artifact.h) with the manifest given as such JSON.
std::string encodeJsonArtifact(std::string_view json, std::string_view blob);
[[nodiscard]] std::string writeJsonArtifact(const std::string &path, std::string_view json,
                                            std::string_view blob);

} // namespace shardc::rt
