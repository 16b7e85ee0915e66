// The .shardc file's framing, shared by the compiler's emitter and the runtime's loader
// (docs/artifact-format.md): the format version, the 48-byte header and its checksum.
// Header-only and dependency-free so that both sides compile the one definition.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace shardc::rt {

// 1: JSON manifest. 2: FlatBuffers manifest (runtime/schema/artifact.fbs). 3: rank-dependent
// values computed by the steps (process_index, dynamic_slice; no shard_slice, no vocab_axes).
constexpr uint32_t kArtifactFormatVersion = 4;
constexpr size_t kArtifactHeaderBytes = 48;
constexpr char kArtifactMagic[8] = {'S', 'H', 'A', 'R', 'D', 'C', '\0', '\0'};

// FNV-1a 64 (offset basis 0xcbf29ce484222325, prime 0x100000001b3), the artifact checksum.
inline uint64_t fnv1a64(const void *data, size_t size) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

struct ArtifactHeader {
  uint32_t version = kArtifactFormatVersion;
  uint64_t manifestBytes = 0, blobBytes = 0, manifestChecksum = 0, blobChecksum = 0;
};

namespace detail {
inline uint64_t loadLE(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}
inline void storeLE(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}
} // namespace detail

// The 48 header bytes for `manifest` and `blob` (little-endian): magic, version, a reserved
// zero u32, manifest and blob lengths, manifest and blob checksums.
inline std::string encodeArtifactHeader(std::string_view manifest, std::string_view blob) {
  std::string out(kArtifactMagic, sizeof kArtifactMagic);
  detail::storeLE(out, kArtifactFormatVersion, 4);
  detail::storeLE(out, 0, 4);
  detail::storeLE(out, manifest.size(), 8);
  detail::storeLE(out, blob.size(), 8);
  detail::storeLE(out, fnv1a64(manifest.data(), manifest.size()), 8);
  detail::storeLE(out, fnv1a64(blob.data(), blob.size()), 8);
  return out;
}

// Checks the first bytes of a file of `fileSize` bytes (`bytes` holds at least the header
// when fileSize does): magic, version, reserved field, lengths against the size. Returns ""
// or a one-line error prefixed by `where` ("path: ").
inline std::string decodeArtifactHeader(std::string_view bytes, uint64_t fileSize,
                                        const std::string &where, ArtifactHeader &h) {
  if (fileSize < kArtifactHeaderBytes || bytes.size() < kArtifactHeaderBytes)
    return where + "file is " + std::to_string(fileSize) +
           " bytes, shorter than the 48-byte artifact header (file truncated?)";
  const char *p = bytes.data();
  if (std::memcmp(p, kArtifactMagic, sizeof kArtifactMagic) != 0)
    return where + "not a shardc artifact (bad magic)";
  h.version = static_cast<uint32_t>(detail::loadLE(p + 8, 4));
  if (h.version != kArtifactFormatVersion)
    return where + "artifact format version " + std::to_string(h.version) +
           ", this runtime reads version " + std::to_string(kArtifactFormatVersion) +
           (h.version < kArtifactFormatVersion ? " (recompile the model with this shardc)"
                                               : " (update the runtime)");
  if (detail::loadLE(p + 12, 4) != 0)
    return where + "reserved header field is not zero (file corrupt)";
  h.manifestBytes = detail::loadLE(p + 16, 8);
  h.blobBytes = detail::loadLE(p + 24, 8);
  h.manifestChecksum = detail::loadLE(p + 32, 8);
  h.blobChecksum = detail::loadLE(p + 40, 8);
  uint64_t available = fileSize - kArtifactHeaderBytes;
  if (h.manifestBytes > available || h.blobBytes != available - h.manifestBytes)
    return where + "file is " + std::to_string(fileSize) +
           " bytes but its header describes a 48-byte header, a " +
           std::to_string(h.manifestBytes) + "-byte manifest and a " +
           std::to_string(h.blobBytes) + "-byte blob (file truncated or corrupt)";
  return "";
}

} // namespace shardc::rt
