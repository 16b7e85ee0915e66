// The one multi-dimensional loop the CPU kernels share: walk an iteration shape with N
// operands described by element strides (0 where broadcast), one contiguous row at a time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace shardc::rt::cpu {

std::vector<int64_t> contiguousStrides(const std::vector<int64_t> &shape);
int64_t productOf(const std::vector<int64_t> &dims, size_t begin, size_t end);

// numpy broadcasting of two shapes (right-aligned); nullopt when incompatible.
std::optional<std::vector<int64_t>> broadcastShapes(const std::vector<int64_t> &a,
                                                    const std::vector<int64_t> &b);
// Whether `in` broadcasts to exactly `out` (unidirectional, as Expand and Gemm's C need).
bool broadcastsTo(const std::vector<int64_t> &in, const std::vector<int64_t> &out);
// Element strides that read a dense tensor of shape `in` as if it were broadcast to `out`
// (rank of `out`; 0 on broadcast and missing leading dims). Requires broadcastsTo(in, out).
std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in,
                                      const std::vector<int64_t> &out);

// Calls rowFn(offsets, rowLength, rowStrides) for every innermost row of `shape`, where
// offsets[k] = base[k] + sum(index[d] * strides[k][d]) at the row's start. Unit dims are
// dropped and adjacent dims that every operand walks contiguously are merged first, so equal
// shapes become one long row. A rank-0 shape is one row of length 1; an empty shape (some
// dim 0) calls nothing.
template <size_t N, typename RowFn>
void forEachRow(const std::vector<int64_t> &shape, const std::array<std::vector<int64_t>, N> &strides,
                const std::array<int64_t, N> &base, RowFn &&rowFn) {
  std::vector<int64_t> dims;
  std::array<std::vector<int64_t>, N> st;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 0)
      return;
    if (shape[d] == 1)
      continue;
    bool mergeable = !dims.empty();
    for (size_t k = 0; k < N && mergeable; ++k)
      mergeable = st[k].back() == strides[k][d] * shape[d];
    if (mergeable) {
      dims.back() *= shape[d];
      for (size_t k = 0; k < N; ++k)
        st[k].back() = strides[k][d];
    } else {
      dims.push_back(shape[d]);
      for (size_t k = 0; k < N; ++k)
        st[k].push_back(strides[k][d]);
    }
  }
  if (dims.empty()) {
    dims.push_back(1);
    for (size_t k = 0; k < N; ++k)
      st[k].push_back(0);
  }
  const size_t outerRank = dims.size() - 1;
  const int64_t rowLength = dims.back();
  std::array<int64_t, N> rowStrides;
  for (size_t k = 0; k < N; ++k)
    rowStrides[k] = st[k].back();
  std::vector<int64_t> index(outerRank, 0);
  std::array<int64_t, N> offsets = base;
  const int64_t rows = productOf(dims, 0, outerRank);
  for (int64_t r = 0; r < rows; ++r) {
    rowFn(offsets, rowLength, rowStrides);
    for (size_t d = outerRank; d-- > 0;) {
      if (++index[d] < dims[d]) {
        for (size_t k = 0; k < N; ++k)
          offsets[k] += st[k][d];
        break;
      }
      index[d] = 0;
      for (size_t k = 0; k < N; ++k)
        offsets[k] -= st[k][d] * (dims[d] - 1);
    }
  }
}

// dst (dense, `shape`) [i] = src[srcBase + sum(i_d * srcStrides[d])], element size bytes.
// Serves transpose, slice, expand and broadcast materialisation for every dtype.
void copyStrided(void *dst, const void *src, size_t elementSize, const std::vector<int64_t> &shape,
                 const std::vector<int64_t> &srcStrides, int64_t srcBase = 0);

} // namespace shardc::rt::cpu
