// Positioned whole reads from a file descriptor, shared by the artifact loader (header,
// manifest, blob) and the executor (weight ranges). Internal to runtime/lib.
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
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

} // namespace shardc::rt
