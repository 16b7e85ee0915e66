// Kernels that only move elements (transpose, slice, concat, split, gather, expand, trilu,
// embedding). They work on raw bytes, so every dtype is supported without conversion.
#include "CpuKernels.h"
#include "KernelChecks.h"
#include "StridedLoops.h"

#include <algorithm>
#include <cstring>

namespace shardc::rt::cpu {

namespace {

std::string expectIndexDType(const char *op, const TensorView &t) {
  if (t.dtype == DType::I64 || t.dtype == DType::I32)
    return "";
  return std::string(op) + ": indices must be i64 or i32, not " + dtypeName(t.dtype);
}

int64_t indexAt(const TensorView &t, int64_t i) {
  return t.dtype == DType::I64 ? t.as<int64_t>()[i] : t.as<int32_t>()[i];
}

// Runs fn(WordType{}) with an unsigned integer type of the given element width.
template <typename Fn> void dispatchWord(size_t elementSize, Fn &&fn) {
  switch (elementSize) {
  case 1: fn(uint8_t{}); break;
  case 2: fn(uint16_t{}); break;
  case 4: fn(uint32_t{}); break;
  default: fn(uint64_t{}); break;
  }
}

const uint8_t *bytesOf(const TensorView &t) { return static_cast<const uint8_t *>(t.data); }
uint8_t *mutableBytesOf(const TensorView &t) { return static_cast<uint8_t *>(t.data); }

} // namespace

std::string transposeKernel(const KernelArgs &args) {
  if (auto e = expectArity("transpose", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("transpose", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  std::vector<int64_t> perm = args.attrs ? args.attrs->getInts("perm") : std::vector<int64_t>{};
  if (perm.empty()) // ONNX default: reverse the dims
    for (int64_t d = x.rank(); d-- > 0;)
      perm.push_back(d);
  std::vector<bool> seen(x.shape.size(), false);
  bool valid = static_cast<int64_t>(perm.size()) == x.rank();
  for (size_t i = 0; valid && i < perm.size(); ++i) {
    valid = perm[i] >= 0 && perm[i] < x.rank() && !seen[perm[i]];
    if (valid)
      seen[perm[i]] = true;
  }
  if (!valid)
    return "transpose: perm is not a permutation of rank " + std::to_string(x.rank());
  const std::vector<int64_t> xStrides = contiguousStrides(x.shape);
  std::vector<int64_t> expected, srcStrides;
  for (int64_t p : perm) {
    expected.push_back(x.shape[p]);
    srcStrides.push_back(xStrides[p]);
  }
  if (auto e = expectShape("transpose", "y", y, expected); !e.empty())
    return e;
  copyStrided(y.data, x.data, dtypeSize(x.dtype), y.shape, srcStrides);
  return "";
}

std::string sliceKernel(const KernelArgs &args) {
  if (auto e = expectArity("slice", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("slice", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  const size_t rank = x.shape.size();
  std::vector<int64_t> starts = args.attrs ? args.attrs->getInts("starts") : std::vector<int64_t>{};
  std::vector<int64_t> steps = args.attrs ? args.attrs->getInts("steps") : std::vector<int64_t>{};
  if (starts.empty())
    starts.assign(rank, 0);
  if (steps.empty())
    steps.assign(rank, 1);
  if (starts.size() != rank || steps.size() != rank || y.shape.size() != rank)
    return "slice: starts, steps and y must have x's rank " + std::to_string(rank);
  const std::vector<int64_t> xStrides = contiguousStrides(x.shape);
  std::vector<int64_t> srcStrides(rank);
  int64_t base = 0;
  for (size_t d = 0; d < rank; ++d) {
    if (y.shape[d] > 0) {
      if (steps[d] == 0)
        return "slice: step 0 on dim " + std::to_string(d);
      const int64_t last = starts[d] + (y.shape[d] - 1) * steps[d];
      if (starts[d] < 0 || starts[d] >= x.shape[d] || last < 0 || last >= x.shape[d])
        return "slice: dim " + std::to_string(d) + " reads " + std::to_string(starts[d]) + ".." +
               std::to_string(last) + " step " + std::to_string(steps[d]) + " outside [0, " +
               std::to_string(x.shape[d]) + ")";
    }
    base += starts[d] * xStrides[d];
    srcStrides[d] = steps[d] * xStrides[d];
  }
  copyStrided(y.data, x.data, dtypeSize(x.dtype), y.shape, srcStrides, base);
  return "";
}

// y = x[..., start : start + y.shape[axis], ...] along `axis`, the start an i64 scalar input
// (computed from the rank's process_index): one contiguous run per outer index.
std::string dynamicSliceKernel(const KernelArgs &args) {
  if (auto e = expectArity("dynamic_slice", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &start = args.in[1], &y = args.out[0];
  if (auto e = expectSameDType("dynamic_slice", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (start.dtype != DType::I64 || start.numel() != 1)
    return "dynamic_slice: start must be one i64, got " + describe(start);
  const int64_t axisAttr = args.attrs ? args.attrs->getInt("axis", 0) : 0;
  auto axis = normalizeAxis(axisAttr, x.rank());
  if (!axis)
    return badAxis("dynamic_slice", axisAttr, x.rank());
  std::vector<int64_t> expected = x.shape;
  const int64_t n = x.shape[*axis], length = y.rank() == x.rank() ? y.shape[*axis] : -1;
  expected[*axis] = length;
  if (auto e = expectShape("dynamic_slice", "y", y, expected); !e.empty())
    return e;
  const int64_t first = indexAt(start, 0);
  if (first < 0 || first + length > n)
    return "dynamic_slice: start " + std::to_string(first) + " + " + std::to_string(length) +
           " is outside [0, " + std::to_string(n) + "] on axis " + std::to_string(*axis);
  const int64_t outer = productOf(x.shape, 0, *axis);
  const size_t inner = static_cast<size_t>(productOf(x.shape, *axis + 1, x.shape.size())) * dtypeSize(x.dtype);
  for (int64_t o = 0; o < outer; ++o)
    std::memcpy(mutableBytesOf(y) + o * length * inner, bytesOf(x) + (o * n + first) * inner, length * inner);
  return "";
}

namespace {

// Concat and split are the same walk: for every outer index, the parts' slabs follow each
// other along `axis` in the whole. `parts` and `whole` come from the kernel's in/out lists.
std::string checkParts(const char *op, const std::vector<TensorView> &parts,
                              const TensorView &whole, int64_t axisAttr, int64_t &axis) {
  if (parts.empty())
    return std::string(op) + ": no parts";
  auto normalized = normalizeAxis(axisAttr, whole.rank());
  if (!normalized)
    return badAxis(op, axisAttr, whole.rank());
  axis = *normalized;
  int64_t total = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    const TensorView &p = parts[i];
    if (p.dtype != whole.dtype)
      return std::string(op) + ": part " + std::to_string(i) + " is " + dtypeName(p.dtype) +
             ", expected " + dtypeName(whole.dtype);
    bool fits = p.rank() == whole.rank();
    for (int64_t d = 0; fits && d < whole.rank(); ++d)
      fits = d == axis || p.shape[d] == whole.shape[d];
    if (!fits)
      return std::string(op) + ": part " + std::to_string(i) + " has shape " + shapeString(p.shape) +
             ", incompatible with " + shapeString(whole.shape) + " on axis " + std::to_string(axis);
    total += p.shape[axis];
  }
  if (total != whole.shape[axis])
    return std::string(op) + ": parts add up to " + std::to_string(total) + " on axis " +
           std::to_string(axis) + ", whole has " + std::to_string(whole.shape[axis]);
  return "";
}

template <bool Gather>
void moveParts(const std::vector<TensorView> &parts, const TensorView &whole, int64_t axis) {
  const int64_t outer = productOf(whole.shape, 0, axis);
  const size_t innerBytes =
      static_cast<size_t>(productOf(whole.shape, axis + 1, whole.shape.size())) * dtypeSize(whole.dtype);
  const size_t wholeSlab = static_cast<size_t>(whole.shape[axis]) * innerBytes;
  for (int64_t o = 0; o < outer; ++o) {
    size_t position = static_cast<size_t>(o) * wholeSlab;
    for (const TensorView &p : parts) {
      const size_t slab = static_cast<size_t>(p.shape[axis]) * innerBytes;
      if (Gather)
        std::memcpy(mutableBytesOf(whole) + position, bytesOf(p) + o * slab, slab);
      else
        std::memcpy(mutableBytesOf(p) + o * slab, bytesOf(whole) + position, slab);
      position += slab;
    }
  }
}

} // namespace

std::string concatKernel(const KernelArgs &args) {
  if (auto e = expectArity("concat", args, 1, SIZE_MAX, 1, 1); !e.empty())
    return e;
  int64_t axis = 0;
  if (auto e = checkParts("concat", args.in, args.out[0], args.attrs ? args.attrs->getInt("axis", 0) : 0, axis);
      !e.empty())
    return e;
  moveParts<true>(args.in, args.out[0], axis);
  return "";
}

std::string splitKernel(const KernelArgs &args) {
  if (auto e = expectArity("split", args, 1, 1, 1, SIZE_MAX); !e.empty())
    return e;
  int64_t axis = 0;
  if (auto e = checkParts("split", args.out, args.in[0], args.attrs ? args.attrs->getInt("axis", 0) : 0, axis);
      !e.empty())
    return e;
  moveParts<false>(args.out, args.in[0], axis);
  return "";
}

std::string gatherKernel(const KernelArgs &args) {
  if (auto e = expectArity("gather", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &data = args.in[0], &indices = args.in[1], &y = args.out[0];
  if (auto e = expectIndexDType("gather", indices); !e.empty())
    return e;
  if (auto e = expectSameDType("gather", {{"data", &data}, {"y", &y}}); !e.empty())
    return e;
  const int64_t axisAttr = args.attrs ? args.attrs->getInt("axis", 0) : 0;
  auto axis = normalizeAxis(axisAttr, data.rank());
  if (!axis)
    return badAxis("gather", axisAttr, data.rank());
  std::vector<int64_t> expected(data.shape.begin(), data.shape.begin() + *axis);
  expected.insert(expected.end(), indices.shape.begin(), indices.shape.end());
  expected.insert(expected.end(), data.shape.begin() + *axis + 1, data.shape.end());
  if (auto e = expectShape("gather", "y", y, expected); !e.empty())
    return e;
  const int64_t n = data.shape[*axis];
  const int64_t count = indices.numel();
  // Check every index before writing anything: a failed step leaves y untouched.
  for (int64_t j = 0; j < count; ++j) {
    const int64_t index = indexAt(indices, j);
    if (index < -n || index >= n)
      return "gather: index " + std::to_string(index) + " out of range for axis " +
             std::to_string(*axis) + " of size " + std::to_string(n);
  }
  const int64_t outer = productOf(data.shape, 0, *axis);
  const size_t innerBytes =
      static_cast<size_t>(productOf(data.shape, *axis + 1, data.shape.size())) * dtypeSize(data.dtype);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < count; ++j) {
      int64_t index = indexAt(indices, j);
      if (index < 0)
        index += n;
      std::memcpy(mutableBytesOf(y) + (o * count + j) * innerBytes,
                  bytesOf(data) + (o * n + index) * innerBytes, innerBytes);
    }
  return "";
}

std::string gatherElementsKernel(const KernelArgs &args) {
  if (auto e = expectArity("gather_elements", args, 2, 2, 1, 1); !e.empty())
    return e;
  const TensorView &data = args.in[0], &indices = args.in[1], &y = args.out[0];
  if (auto e = expectIndexDType("gather_elements", indices); !e.empty())
    return e;
  if (auto e = expectSameDType("gather_elements", {{"data", &data}, {"y", &y}}); !e.empty())
    return e;
  const int64_t axisAttr = args.attrs ? args.attrs->getInt("axis", 0) : 0;
  auto axis = normalizeAxis(axisAttr, data.rank());
  if (!axis)
    return badAxis("gather_elements", axisAttr, data.rank());
  bool fits = indices.rank() == data.rank();
  for (int64_t d = 0; fits && d < data.rank(); ++d)
    fits = d == *axis || indices.shape[d] <= data.shape[d];
  if (!fits)
    return "gather_elements: indices " + shapeString(indices.shape) + " do not fit data " +
           shapeString(data.shape) + " off axis " + std::to_string(*axis);
  if (auto e = expectShape("gather_elements", "y", y, indices.shape); !e.empty())
    return e;
  const int64_t n = data.shape[*axis];
  for (int64_t j = 0, count = indices.numel(); j < count; ++j) {
    const int64_t index = indexAt(indices, j);
    if (index < -n || index >= n)
      return "gather_elements: index " + std::to_string(index) + " out of range for axis " +
             std::to_string(*axis) + " of size " + std::to_string(n);
  }
  std::vector<int64_t> dataStrides = contiguousStrides(data.shape);
  const int64_t axisStride = dataStrides[*axis];
  dataStrides[*axis] = 0; // the index supplies the position along axis
  dispatchWord(dtypeSize(data.dtype), [&](auto word) {
    using W = decltype(word);
    const W *src = data.as<W>();
    W *dst = y.as<W>();
    forEachRow<2>(indices.shape, {contiguousStrides(indices.shape), dataStrides}, {0, 0},
                  [&](const std::array<int64_t, 2> &off, int64_t len, const std::array<int64_t, 2> &st) {
                    for (int64_t i = 0; i < len; ++i) {
                      const int64_t at = off[0] + i * st[0];
                      int64_t index = indexAt(indices, at);
                      if (index < 0)
                        index += n;
                      dst[at] = src[off[1] + i * st[1] + index * axisStride];
                    }
                  });
  });
  return "";
}

std::string expandKernel(const KernelArgs &args) {
  if (auto e = expectArity("expand", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("expand", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (!broadcastsTo(x.shape, y.shape))
    return "expand: " + shapeString(x.shape) + " does not broadcast to " + shapeString(y.shape);
  copyStrided(y.data, x.data, dtypeSize(x.dtype), y.shape, broadcastStrides(x.shape, y.shape));
  return "";
}

std::string triluKernel(const KernelArgs &args) {
  if (auto e = expectArity("trilu", args, 1, 1, 1, 1); !e.empty())
    return e;
  const TensorView &x = args.in[0], &y = args.out[0];
  if (auto e = expectSameDType("trilu", {{"x", &x}, {"y", &y}}); !e.empty())
    return e;
  if (x.rank() < 2)
    return "trilu: needs rank >= 2, got " + shapeString(x.shape);
  if (auto e = expectShape("trilu", "y", y, x.shape); !e.empty())
    return e;
  const bool upper = args.attrs ? args.attrs->getBool("upper", true) : true;
  const int64_t k = args.attrs ? args.attrs->getInt("k", 0) : 0;
  const int64_t rows = x.shape[x.rank() - 2], cols = x.shape.back();
  const int64_t matrices = rows * cols > 0 ? x.numel() / (rows * cols) : 0;
  const size_t es = dtypeSize(x.dtype);
  for (int64_t m = 0; m < matrices; ++m)
    for (int64_t i = 0; i < rows; ++i) {
      // Kept columns: j - i >= k (upper) or j - i <= k (lower); zero bytes are 0 in every dtype.
      const int64_t begin = upper ? std::clamp<int64_t>(i + k, 0, cols) : 0;
      const int64_t end = upper ? cols : std::clamp<int64_t>(i + k + 1, 0, cols);
      const size_t row = static_cast<size_t>((m * rows + i) * cols) * es;
      uint8_t *out = mutableBytesOf(y) + row;
      std::memmove(out + begin * es, bytesOf(x) + row + begin * es, (end - begin) * es);
      std::memset(out, 0, begin * es);
      std::memset(out + end * es, 0, (cols - end) * es);
    }
  return "";
}

std::string embeddingKernel(const KernelArgs &args) {
  if (auto e = expectArity("embedding", args, 2, 3, 1, 1); !e.empty())
    return e;
  const TensorView &table = args.in[0], &ids = args.in[1], &y = args.out[0];
  if (table.rank() != 2)
    return "embedding: table must be [V, H], got " + shapeString(table.shape);
  if (auto e = expectIndexDType("embedding", ids); !e.empty())
    return e;
  if (auto e = expectSameDType("embedding", {{"table", &table}, {"y", &y}}); !e.empty())
    return e;
  const int64_t vocab = table.shape[0], hidden = table.shape[1];
  std::vector<int64_t> expected = ids.shape;
  expected.push_back(hidden);
  if (auto e = expectShape("embedding", "y", y, expected); !e.empty())
    return e;
  const int64_t count = ids.numel();
  const size_t rowBytes = static_cast<size_t>(hidden) * dtypeSize(table.dtype);
  // Vocabulary parallel: the third input is the first row this rank holds, of a vocab_size
  // table; other ids give zero rows (the partial sums are all-reduced by the program).
  int64_t start = 0, total = vocab;
  if (args.in.size() == 3) {
    const TensorView &first = args.in[2];
    if (first.dtype != DType::I64 || first.numel() != 1)
      return "embedding: row_start must be one i64, got " + describe(first);
    if (!args.attrs || !args.attrs->has("vocab_size"))
      return "embedding: a row_start needs the attribute vocab_size";
    start = indexAt(first, 0);
    total = args.attrs->getInt("vocab_size");
  }
  for (int64_t j = 0; j < count; ++j) {
    const int64_t id = indexAt(ids, j);
    if (id < 0 || id >= total)
      return "embedding: id " + std::to_string(id) + " is outside the vocabulary [0, " +
             std::to_string(total) + ")";
  }
  for (int64_t j = 0; j < count; ++j) {
    const int64_t id = indexAt(ids, j);
    uint8_t *dst = mutableBytesOf(y) + j * rowBytes;
    if (id >= start && id < start + vocab)
      std::memcpy(dst, bytesOf(table) + (id - start) * rowBytes, rowBytes);
    else
      std::memset(dst, 0, rowBytes);
  }
  return "";
}

} // namespace shardc::rt::cpu
