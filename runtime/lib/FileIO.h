// Whole-file I/O shared by runtime/lib: positioned reads (artifact loader, executor weight
// ranges) and writing a file in one piece (artifact writer, npz writer).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <unistd.h>

namespace shardc::rt {

// Reads exactly `size` bytes at `offset`, retrying short and interrupted reads; returns "" or
// the reason it failed.
inline std::string preadFully(int fd, void *dst, uint64_t size, uint64_t offset) {
  auto *p = static_cast<uint8_t *>(dst);
  while (size > 0) {
    ssize_t n = ::pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      return std::strerror(errno);
    if (n == 0)
      return "unexpected end of file";
    p += n;
    size -= static_cast<uint64_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return "";
}

// Creates or truncates `path` and writes `bytes`; returns "" or "<path>: <reason>".
inline std::string writeWholeFile(const std::string &path, std::string_view bytes) {
  std::FILE *f = std::fopen(path.c_str(), "wb");
  if (!f)
    return path + ": cannot create: " + std::strerror(errno);
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok)
    return path + ": write failed: " + std::strerror(errno);
  return "";
}

} // namespace shardc::rt
