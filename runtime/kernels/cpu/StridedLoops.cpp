// Shape arithmetic for broadcasting and the dtype-agnostic strided copy built on forEachRow.
// Copies dispatch on element size only, so one instantiation serves all dtypes of a width.
#include "StridedLoops.h"

#include <cstring>

namespace shardc::rt::cpu {

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> strides(shape.size(), 1);
  for (size_t d = shape.size(); d-- > 1;)
    strides[d - 1] = strides[d] * shape[d];
  return strides;
}

int64_t productOf(const std::vector<int64_t> &dims, size_t begin, size_t end) {
  int64_t n = 1;
  for (size_t d = begin; d < end && d < dims.size(); ++d)
    n *= dims[d];
  return n;
}

std::optional<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t> &a,
                                                    const std::vector<int64_t> &b) {
  size_t rank = a.size() > b.size() ? a.size() : b.size();
  std::vector<int64_t> out(rank);
  for (size_t i = 0; i < rank; ++i) {
    int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    if (da != db && da != 1 && db != 1)
      return std::nullopt;
    out[i] = da == 1 ? db : da;
  }
  return out;
}

bool broadcastsTo(const std::vector<int64_t> &in, const std::vector<int64_t> &out) {
  if (in.size() > out.size())
    return false;
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    if (in[i] != 1 && in[i] != out[lead + i])
      return false;
  return true;
}

std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in,
                                      const std::vector<int64_t> &out) {
  std::vector<int64_t> dense = contiguousStrides(in);
  std::vector<int64_t> strides(out.size(), 0);
  size_t lead = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    strides[lead + i] = in[i] == 1 ? 0 : dense[i];
  return strides;
}

namespace {

template <typename Word>
void copyStridedWords(Word *dst, const Word *src, const std::vector<int64_t> &shape,
                      const std::vector<int64_t> &srcStrides, int64_t srcBase) {
  forEachRow<2>(shape, {contiguousStrides(shape), srcStrides}, {0, srcBase},
                [&](const std::array<int64_t, 2> &off, int64_t n, const std::array<int64_t, 2> &st) {
                  Word *d = dst + off[0];
                  const Word *s = src + off[1];
                  if (st[1] == 1) {
                    std::memmove(d, s, static_cast<size_t>(n) * sizeof(Word));
                  } else {
                    for (int64_t i = 0; i < n; ++i)
                      d[i] = s[i * st[1]];
                  }
                });
}

} // namespace

void copyStrided(void *dst, const void *src, size_t elementSize, const std::vector<int64_t> &shape,
                 const std::vector<int64_t> &srcStrides, int64_t srcBase) {
  switch (elementSize) {
  case 1:
    return copyStridedWords(static_cast<uint8_t *>(dst), static_cast<const uint8_t *>(src), shape,
                            srcStrides, srcBase);
  case 2:
    return copyStridedWords(static_cast<uint16_t *>(dst), static_cast<const uint16_t *>(src),
                            shape, srcStrides, srcBase);
  case 4:
    return copyStridedWords(static_cast<uint32_t *>(dst), static_cast<const uint32_t *>(src),
                            shape, srcStrides, srcBase);
  default:
    return copyStridedWords(static_cast<uint64_t *>(dst), static_cast<const uint64_t *>(src),
                            shape, srcStrides, srcBase);
  }
}

} // namespace shardc::rt::cpu
