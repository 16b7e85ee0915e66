// CRC-32 (the zip/gzip polynomial) and raw DEFLATE decoding (RFC 1951: stored, fixed and
// dynamic Huffman blocks), written for the runtime so that reading .npz needs no zlib.
// Npz.cpp uses them where the build has no zlib (SHARDC_MINIMAL_DEPS=ON or none found);
// test/unit/MinimalDepsTest.cpp checks them against zlib wherever zlib is.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace shardc::rt {

// The CRC-32 of `n` more bytes after `crc` (0 to start), as zlib's crc32(crc, data, n).
uint32_t crc32Update(uint32_t crc, const void *data, size_t n);

// Decodes the raw DEFLATE stream `in` (no zlib or gzip wrapper) into `out`, which it resizes to
// `expected` bytes. Returns "" when the stream ends (final block) having produced exactly
// `expected` bytes within `in`, else what was wrong.
std::string inflateRawBuiltin(std::string_view in, size_t expected, std::string &out);

} // namespace shardc::rt
