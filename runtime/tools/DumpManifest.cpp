// shardc-run --dump-manifest: the manifest of an artifact as text, through FlatBuffers'
// mini-reflection (the names flatc --reflect-names put in artifact_generated.h). The
// writers store every field they set, defaults included (ForceDefaults), so the dump shows
// them. The structure is verified first (the file is untrusted); the semantic checks are not needed to
// print it, so an artifact the loader refuses can still be inspected.
#include "RunCli.h"

#include "shardc/runtime/ArtifactFormat.h"
#include "shardc/runtime/artifact_generated.h"

#include "flatbuffers/minireflect.h"

#include <cstdio>
#include <fstream>
#include <iterator>

namespace shardc::runcli {

int dumpManifest(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return fail(path + ": cannot open");
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ArtifactHeader h;
  if (std::string err = decodeArtifactHeader(bytes, bytes.size(), path + ": ", h); !err.empty())
    return fail(err);
  std::string manifest = bytes.substr(kArtifactHeaderBytes, h.manifestBytes);
  if (fnv1a64(manifest.data(), manifest.size()) != h.manifestChecksum)
    return fail(path + ": checksum mismatch in manifest (file corrupt or truncated)");
  const auto *data = reinterpret_cast<const uint8_t *>(manifest.data());
  flatbuffers::Verifier verifier(data, manifest.size());
  if (!fb::ManifestBufferHasIdentifier(data) || !fb::VerifyManifestBuffer(verifier))
    return fail(path + ": manifest: the FlatBuffers verifier rejects it (file corrupt)");
  std::printf("// %s: format %u, %llu-byte manifest, %llu-byte blob\n", path.c_str(), h.version,
              static_cast<unsigned long long>(h.manifestBytes), static_cast<unsigned long long>(h.blobBytes));
  // One field a line, indented; vectors on one line.
  auto dump = [](const uint8_t *manifest) {
    flatbuffers::ToStringVisitor text("\n", /*quotes=*/false, "  ", /*vdelimited=*/false);
    flatbuffers::IterateFlatBuffer(manifest, fb::ManifestTypeTable(), &text);
    // A nested program's manifest bytes are shown decoded after this one.
    std::string s = text.s;
    for (size_t at = s.find("manifest: ["); at != std::string::npos; at = s.find("manifest: [", at + 1))
      s.replace(at, s.find(']', at) + 1 - at, "manifest: <nested, below>");
    return s;
  };
  std::printf("%s\n", dump(data).c_str());
  const fb::Manifest *root = fb::GetManifest(data);
  for (size_t i = 0; root->programs() && i < root->programs()->size(); ++i) {
    const fb::Program *p = root->programs()->Get(static_cast<flatbuffers::uoffset_t>(i));
    std::printf("// programs[%zu]: shapes %s, %u-byte manifest, blob [%llu, %llu)\n%s\n", i, p->shapes()->c_str(),
                p->manifest()->size(), static_cast<unsigned long long>(p->blob_offset()),
                static_cast<unsigned long long>(p->blob_offset() + p->blob_bytes()), dump(p->manifest()->data()).c_str());
  }
  return 0;
}

} // namespace shardc::runcli
