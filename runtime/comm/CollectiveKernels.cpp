// Collective steps as the manifest describes them, mapped onto the communicator's contiguous
// collectives: a dim other than the outermost is packed into chunks first and unpacked after,
// each chunk one 2-D copy through the backend (device memory) or memcpy (host memory).
#include "shardc/comm/CollectiveKernels.h"

#include "shardc/runtime/Backend.h"

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>

namespace shardc::rt {

namespace {

int64_t product(const std::vector<int64_t> &shape, size_t from, size_t to) {
  int64_t n = 1;
  for (size_t i = from; i < to; ++i)
    n *= shape[i];
  return n;
}

std::string typeString(const TensorView &t) {
  return std::string(dtypeName(t.dtype)) + " " + shapeString(t.shape);
}

// A dim attribute, negative counted from the end, checked against `rank`.
bool readDim(const Attrs &attrs, const char *key, int64_t rank, int64_t &dim, std::string &err) {
  if (!attrs.has(key)) {
    err = std::string("missing attribute '") + key + "'";
    return false;
  }
  dim = attrs.getInt(key);
  if (dim < -rank || dim >= rank) {
    err = std::string("attribute '") + key + "' = " + std::to_string(dim) +
          " is out of range for rank " + std::to_string(rank);
    return false;
  }
  if (dim < 0)
    dim += rank;
  return true;
}

bool readReduce(const Attrs &attrs, DType dtype, ReduceOp &op, std::string &err) {
  std::string name = attrs.getString("reduce", "sum");
  auto parsed = parseReduceOp(name);
  if (!parsed) {
    err = "unknown reduce '" + name + "' (expected sum or max)";
    return false;
  }
  if (!isReducible(dtype)) {
    err = std::string("cannot reduce ") + dtypeName(dtype) + " (f32, f64, bf16, f16, i64, i32)";
    return false;
  }
  op = *parsed;
  return true;
}

std::string sameDType(const TensorView &in, const TensorView &out) {
  if (in.dtype != out.dtype)
    return "input is " + typeString(in) + " but output is " + typeString(out);
  return "";
}

// `in` with dim `dim` multiplied by `num` and divided by `den`.
std::vector<int64_t> scaledShape(std::vector<int64_t> shape, int64_t dim, int64_t num,
                                 int64_t den) {
  shape[static_cast<size_t>(dim)] = shape[static_cast<size_t>(dim)] * num / den;
  return shape;
}

std::string expectShape(const TensorView &out, const std::vector<int64_t> &want,
                        const TensorView &in, int64_t groupSize) {
  if (out.shape == want)
    return "";
  return "output is " + typeString(out) + ", expected " + shapeString(want) + " from input " +
         typeString(in) + " on a group of " + std::to_string(groupSize);
}

std::string divides(const TensorView &in, int64_t dim, int64_t groupSize) {
  if (in.shape[static_cast<size_t>(dim)] % groupSize == 0)
    return "";
  return "dim " + std::to_string(dim) + " of input " + typeString(in) +
         " does not divide into " + std::to_string(groupSize) + " equal chunks";
}

// --- all_reduce --------------------------------------------------------------------------

std::string checkAllReduce(const TensorView &in, const TensorView &out, const Attrs &attrs,
                           int64_t groupSize, uint64_t &scratch) {
  std::string err = sameDType(in, out);
  ReduceOp op;
  if (err.empty() && !readReduce(attrs, in.dtype, op, err))
    return err;
  if (err.empty())
    err = expectShape(out, in.shape, in, groupSize);
  scratch = 0;
  return err;
}

std::string runAllReduce(const CollectiveArgs &a) {
  ReduceOp op = *parseReduceOp(a.attrs->getString("reduce", "sum"));
  return a.comm->allReduce(*a.group, a.in.data, a.out.data, a.in.numel(), a.in.dtype, op);
}

// --- all_gather --------------------------------------------------------------------------

std::string checkAllGather(const TensorView &in, const TensorView &out, const Attrs &attrs,
                           int64_t groupSize, uint64_t &scratch) {
  std::string err = sameDType(in, out);
  int64_t dim = 0;
  if (err.empty() && !readDim(attrs, "dim", in.rank(), dim, err))
    return err;
  if (err.empty())
    err = expectShape(out, scaledShape(in.shape, dim, groupSize, 1), in, groupSize);
  // Gathering along the outermost non-trivial dim is the communicator's own layout.
  scratch = product(in.shape, 0, static_cast<size_t>(dim)) == 1
                ? 0
                : static_cast<uint64_t>(groupSize) * in.bytes();
  return err;
}

std::string runAllGather(const CollectiveArgs &a) {
  int64_t dim = a.attrs->getInt("dim");
  if (dim < 0)
    dim += a.in.rank();
  int64_t g = a.group->size();
  if (product(a.in.shape, 0, static_cast<size_t>(dim)) == 1)
    return a.comm->allGather(*a.group, a.in.data, a.out.data, a.in.numel(), a.in.dtype);
  if (std::string err = a.comm->allGather(*a.group, a.in.data, a.scratch, a.in.numel(), a.in.dtype);
      !err.empty())
    return err;
  for (int64_t j = 0; j < g; ++j)
    if (std::string err = insertChunk(a.scratch + static_cast<size_t>(j) * a.in.bytes(), a.out.shape,
                                      dim, g, j, dtypeSize(a.in.dtype),
                                      static_cast<uint8_t *>(a.out.data), a.copier);
        !err.empty())
      return "unpacking chunk " + std::to_string(j) + ": " + err;
  return "";
}

// --- reduce_scatter ----------------------------------------------------------------------

std::string checkReduceScatter(const TensorView &in, const TensorView &out, const Attrs &attrs,
                               int64_t groupSize, uint64_t &scratch) {
  std::string err = sameDType(in, out);
  int64_t dim = 0;
  ReduceOp op;
  if (err.empty() && (!readDim(attrs, "dim", in.rank(), dim, err) ||
                      !readReduce(attrs, in.dtype, op, err)))
    return err;
  if (err.empty())
    err = divides(in, dim, groupSize);
  if (err.empty())
    err = expectShape(out, scaledShape(in.shape, dim, 1, groupSize), in, groupSize);
  scratch = product(in.shape, 0, static_cast<size_t>(dim)) == 1 ? 0 : in.bytes();
  return err;
}

std::string runReduceScatter(const CollectiveArgs &a) {
  int64_t dim = a.attrs->getInt("dim");
  if (dim < 0)
    dim += a.in.rank();
  ReduceOp op = *parseReduceOp(a.attrs->getString("reduce", "sum"));
  int64_t g = a.group->size();
  const void *chunks = a.in.data;
  if (product(a.in.shape, 0, static_cast<size_t>(dim)) != 1) {
    for (int64_t j = 0; j < g; ++j)
      if (std::string err = extractChunk(static_cast<const uint8_t *>(a.in.data), a.in.shape, dim, g,
                                         j, dtypeSize(a.in.dtype),
                                         a.scratch + static_cast<size_t>(j) * a.out.bytes(), a.copier);
          !err.empty())
        return "packing chunk " + std::to_string(j) + ": " + err;
    chunks = a.scratch;
  }
  return a.comm->reduceScatter(*a.group, chunks, a.out.data, a.out.numel(), a.in.dtype, op);
}

// --- all_to_all --------------------------------------------------------------------------

std::string checkAllToAll(const TensorView &in, const TensorView &out, const Attrs &attrs,
                          int64_t groupSize, uint64_t &scratch) {
  std::string err = sameDType(in, out);
  int64_t split = 0, concat = 0;
  if (err.empty() && (!readDim(attrs, "split_dim", in.rank(), split, err) ||
                      !readDim(attrs, "concat_dim", in.rank(), concat, err)))
    return err;
  if (err.empty())
    err = divides(in, split, groupSize);
  if (err.empty())
    err = expectShape(out, scaledShape(scaledShape(in.shape, split, 1, groupSize), concat, groupSize, 1),
                      in, groupSize);
  scratch = 2 * in.bytes(); // packed chunks to send, chunks received
  return err;
}

std::string runAllToAll(const CollectiveArgs &a) {
  int64_t split = a.attrs->getInt("split_dim"), concat = a.attrs->getInt("concat_dim");
  if (split < 0)
    split += a.in.rank();
  if (concat < 0)
    concat += a.in.rank();
  int64_t g = a.group->size();
  size_t elem = dtypeSize(a.in.dtype), chunkBytes = a.in.bytes() / static_cast<size_t>(g);
  uint8_t *send = a.scratch, *recv = a.scratch + a.in.bytes();
  for (int64_t j = 0; j < g; ++j)
    if (std::string err = extractChunk(static_cast<const uint8_t *>(a.in.data), a.in.shape, split, g,
                                       j, elem, send + static_cast<size_t>(j) * chunkBytes, a.copier);
        !err.empty())
      return "packing chunk " + std::to_string(j) + ": " + err;
  if (std::string err = a.comm->allToAll(*a.group, send, recv, a.in.numel() / g, a.in.dtype);
      !err.empty())
    return err;
  for (int64_t j = 0; j < g; ++j)
    if (std::string err = insertChunk(recv + static_cast<size_t>(j) * chunkBytes, a.out.shape, concat,
                                      g, j, elem, static_cast<uint8_t *>(a.out.data), a.copier);
        !err.empty())
      return "unpacking chunk " + std::to_string(j) + ": " + err;
  return "";
}

// --- moe_dispatch, moe_combine (expert parallelism, docs/moe.md) -------------------------
// Member g of the group holds experts [g·El, (g+1)·El) of E = G·El. moe_dispatch: rows [N, H]
// grouped by expert with counts [E] -> recv [R, H] (by source, then local expert) and
// recv_counts [E] (laid out [source][local expert]); moe_combine sends each received row back.

std::mutex gMoeMutex;
std::map<int64_t, MoeTraffic> gMoeTraffic; // world rank -> its traffic

std::string checkMoeRows(const char *op, const TensorView &in, const TensorView &out) {
  std::string err = sameDType(in, out);
  if (err.empty() && (in.rank() != 2 || out.rank() != 2 || in.shape[1] != out.shape[1]))
    err = std::string(op) + ": rows [N, H] -> [M, H] expected, not " + typeString(in) + " -> " + typeString(out);
  return err;
}
std::string checkMoeDispatch(const TensorView &in, const TensorView &out, const Attrs &, int64_t, uint64_t &scratch) {
  scratch = 0;
  return checkMoeRows("moe_dispatch", in, out);
}
std::string checkMoeCombine(const TensorView &in, const TensorView &out, const Attrs &, int64_t, uint64_t &scratch) {
  scratch = 0;
  return checkMoeRows("moe_combine", in, out);
}

// The i64 counts of `t` on the host (through the backend when it holds device memory).
std::string hostCounts(const CollectiveArgs &a, const TensorView &t, std::vector<int64_t> &out) {
  if (t.dtype != DType::I64 || t.rank() != 1)
    return "counts must be an i64 vector, not " + typeString(t);
  out.resize(size_t(t.numel()));
  if (a.copier && !a.copier->hostAddressable())
    return a.copier->copyOut(out.data(), t.data, t.bytes());
  std::memcpy(out.data(), t.data, t.bytes());
  return "";
}

// Per member of the group: the elements of the rows of its experts' counts (rows x H).
std::string memberElements(const std::vector<int64_t> &counts, int64_t g, int64_t H, int64_t maxRows,
                           std::vector<int64_t> &elems) {
  if (counts.size() % size_t(g) != 0)
    return std::to_string(counts.size()) + " experts do not divide over a group of " + std::to_string(g);
  const size_t per = counts.size() / size_t(g);
  elems.assign(size_t(g), 0);
  int64_t rows = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] < 0)
      return "a negative count";
    elems[i / per] += counts[i] * H;
    rows += counts[i];
  }
  if (rows > maxRows)
    return std::to_string(rows) + " rows exceed the buffer's " + std::to_string(maxRows);
  return "";
}

std::string runMoeDispatch(const CollectiveArgs &a) {
  if (a.ins.size() != 2 || a.outs.size() != 2)
    return "moe_dispatch: rows, counts -> recv, recv_counts expected";
  const TensorView &rows = a.ins[0], &counts = a.ins[1], &recv = a.outs[0], &recvCounts = a.outs[1];
  const int64_t g = a.group->size(), H = rows.shape[1];
  if (counts.numel() % g != 0 || recvCounts.shape != counts.shape || recvCounts.dtype != DType::I64)
    return "moe_dispatch: counts " + typeString(counts) + " and recv_counts " + typeString(recvCounts) +
           " must be i64 [E] with E a multiple of the group's " + std::to_string(g);
  if (std::string err = a.comm->allToAll(*a.group, counts.data, recvCounts.data, counts.numel() / g, DType::I64);
      !err.empty())
    return err;
  std::vector<int64_t> sent, got, sendElems, recvElems;
  std::string err = hostCounts(a, counts, sent);
  if (err.empty())
    err = hostCounts(a, recvCounts, got);
  if (err.empty())
    err = memberElements(sent, g, H, rows.shape[0], sendElems);
  if (err.empty())
    err = memberElements(got, g, H, recv.shape[0], recvElems);
  if (!err.empty())
    return "moe_dispatch: " + err;
  const int64_t self = a.group->index, local = int64_t(got.size()) / g;
  uint64_t rowsOut = 0;
  for (int64_t j = 0; j < g; ++j)
    if (j != self)
      rowsOut += uint64_t(sendElems[size_t(j)] / std::max<int64_t>(1, H));
  {
    std::lock_guard<std::mutex> lock(gMoeMutex);
    MoeTraffic &t = gMoeTraffic[a.comm->rank()];
    t.rows += rowsOut;
    t.bytes += rowsOut * uint64_t(H) * dtypeSize(rows.dtype);
    ++t.dispatches;
    t.rowsPerLocalExpert.resize(size_t(local), 0);
    for (size_t i = 0; i < got.size(); ++i)
      t.rowsPerLocalExpert[i % size_t(local)] += got[i];
  }
  return a.comm->allToAllV(*a.group, rows.data, sendElems.data(), recv.data, recvElems.data(), rows.dtype);
}

std::string runMoeCombine(const CollectiveArgs &a) {
  if (a.ins.size() != 3 || a.outs.size() != 1)
    return "moe_combine: out, recv_counts, counts -> rows expected";
  const TensorView &out = a.ins[0], &rows = a.outs[0];
  const int64_t g = a.group->size(), H = out.shape[1];
  std::vector<int64_t> back, mine, sendElems, recvElems;
  std::string err = hostCounts(a, a.ins[1], back);
  if (err.empty())
    err = hostCounts(a, a.ins[2], mine);
  if (err.empty())
    err = memberElements(back, g, H, out.shape[0], sendElems);
  if (err.empty())
    err = memberElements(mine, g, H, rows.shape[0], recvElems);
  if (!err.empty())
    return "moe_combine: " + err;
  return a.comm->allToAllV(*a.group, out.data, sendElems.data(), rows.data, recvElems.data(), out.dtype);
}

// The balanced figure: the (G-1)/G of the rows that leave the rank (dispatch: its input rows;
// combine: as many as it gets back, its output; its input is the worst-case buffer).
uint64_t moeWire(uint64_t rows, int64_t g) { return g > 1 ? uint64_t(double(g - 1) / double(g) * double(rows)) : 0; }
uint64_t moeDispatchWire(uint64_t in, uint64_t, int64_t g) { return moeWire(in, g); }
uint64_t moeCombineWire(uint64_t, uint64_t out, int64_t g) { return moeWire(out, g); }

// Ring traffic per rank: a reduce-scatter or an all-gather sends (G-1)/G of the full buffer,
// an all-reduce both, an all-to-all the (G-1)/G of its input that leaves the rank.
double ringShare(int64_t groupSize) { return groupSize > 1 ? double(groupSize - 1) / double(groupSize) : 0.0; }
uint64_t allReduceWire(uint64_t in, uint64_t, int64_t g) { return uint64_t(2 * ringShare(g) * double(in)); }
uint64_t allGatherWire(uint64_t, uint64_t out, int64_t g) { return uint64_t(ringShare(g) * double(out)); }
uint64_t inputShareWire(uint64_t in, uint64_t, int64_t g) { return uint64_t(ringShare(g) * double(in)); }

const CollectiveKernel kKernels[] = {
    {"all_reduce", checkAllReduce, runAllReduce, allReduceWire},
    {"all_gather", checkAllGather, runAllGather, allGatherWire},
    {"reduce_scatter", checkReduceScatter, runReduceScatter, inputShareWire},
    {"all_to_all", checkAllToAll, runAllToAll, inputShareWire},
    {"moe_dispatch", checkMoeDispatch, runMoeDispatch, moeDispatchWire, 2, 2},
    {"moe_combine", checkMoeCombine, runMoeCombine, moeCombineWire, 3, 1},
};

} // namespace

bool communicatesBetweenRanks(std::string_view op) {
  return lookupCollectiveKernel(op) != nullptr;
}

const CollectiveKernel *lookupCollectiveKernel(std::string_view op) {
  for (const CollectiveKernel &k : kKernels)
    if (op == k.op)
      return &k;
  return nullptr;
}

MoeTraffic moeTraffic(int64_t rank) {
  std::lock_guard<std::mutex> lock(gMoeMutex);
  auto it = gMoeTraffic.find(rank);
  return it == gMoeTraffic.end() ? MoeTraffic() : it->second;
}

std::vector<std::string> collectiveKernelNames() {
  std::vector<std::string> names;
  for (const CollectiveKernel &k : kKernels)
    names.push_back(k.op);
  return names;
}

std::vector<std::string> collectiveAxes(const Attrs &attrs, std::string &error) {
  auto it = attrs.all().find("axes");
  if (it == attrs.all().end()) {
    error = "missing attribute 'axes'";
    return {};
  }
  if (auto *names = std::get_if<std::vector<std::string>>(&it->second))
    return *names;
  if (auto *name = std::get_if<std::string>(&it->second))
    return {*name};
  // An empty JSON array decodes as a number list: a group of one rank.
  if (auto *ints = std::get_if<std::vector<int64_t>>(&it->second); ints && ints->empty())
    return {};
  error = "attribute 'axes' must be a list of mesh axis names";
  return {};
}

namespace {
// Copies chunk `index` of `parts` along `dim` of a tensor of `shape` between the strided
// tensor and a contiguous buffer: out of the tensor (extract) or into it (insert). Row o of
// the chunk (o over the dims before `dim`) is `run` contiguous bytes, at o * (the tensor's
// row) + index * run in the tensor and at o * run in the buffer: one 2-D copy.
std::string copyChunk(const uint8_t *src, uint8_t *dst, const std::vector<int64_t> &shape,
                      int64_t dim, int64_t parts, int64_t index, size_t elemSize, bool extract,
                      Backend *copier) {
  size_t d = static_cast<size_t>(dim);
  int64_t outer = product(shape, 0, d), inner = product(shape, d + 1, shape.size());
  int64_t chunk = shape[d] / parts;
  size_t run = static_cast<size_t>(chunk * inner) * elemSize;
  size_t row = static_cast<size_t>(shape[d] * inner) * elemSize;
  size_t offset = static_cast<size_t>(index) * run, height = static_cast<size_t>(outer);
  if (run == 0 || height == 0)
    return "";
  const uint8_t *from = extract ? src + offset : src;
  uint8_t *to = extract ? dst : dst + offset;
  size_t fromPitch = extract ? row : run, toPitch = extract ? run : row;
  if (copier)
    return copier->copy2D(to, toPitch, from, fromPitch, run, height);
  for (size_t o = 0; o < height; ++o)
    std::memcpy(to + o * toPitch, from + o * fromPitch, run);
  return "";
}
} // namespace

std::string extractChunk(const uint8_t *src, const std::vector<int64_t> &shape, int64_t dim,
                         int64_t parts, int64_t index, size_t elemSize, uint8_t *dst,
                         Backend *copier) {
  return copyChunk(src, dst, shape, dim, parts, index, elemSize, /*extract=*/true, copier);
}

std::string insertChunk(const uint8_t *src, const std::vector<int64_t> &shape, int64_t dim,
                        int64_t parts, int64_t index, size_t elemSize, uint8_t *dst,
                        Backend *copier) {
  return copyChunk(src, dst, shape, dim, parts, index, elemSize, /*extract=*/false, copier);
}

} // namespace shardc::rt
