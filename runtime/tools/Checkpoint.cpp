// Training checkpoints on disk: where each State buffer sits in its logical tensor, the
// per-rank metadata and the committed manifest (JSON), atomic file replacement, and the
// assembly of any chunk of a logical tensor from the saved ranks' chunks (resharded loads,
// export-weights). Format: Checkpoint.h, docs/cli.md.
#include "Checkpoint.h"

#include "shardc/runtime/Json.h"
#include "shardc/runtime/Npz.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <fcntl.h>
#include <unistd.h>

namespace shardc::ckpt {

int64_t StateSlice::numel() const {
  int64_t n = 1;
  for (int64_t s : sizes)
    n *= s;
  return n;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%016" PRIx64, v);
  return buf;
}

std::string jsonText(const std::string &s) {
  std::string out;
  for (char c : s)
    if (c == '"' || c == '\\')
      out += std::string("\\") + c;
    else if (static_cast<unsigned char>(c) >= 0x20)
      out += c;
  return out;
}

namespace {

// A packed projection's part `<w>.part<i>` is a slice of `<w>`: the name without the suffix.
std::string withoutPart(const std::string &name) {
  size_t at = name.rfind(".part");
  if (at == std::string::npos || at + 5 == name.size())
    return name;
  for (size_t i = at + 5; i < name.size(); ++i)
    if (name[i] < '0' || name[i] > '9')
      return name;
  return name.substr(0, at);
}

DType savedDType(DType t) { return t == DType::F16 || t == DType::BF16 ? DType::F32 : t; }

} // namespace

std::vector<StateSlice> stateSlices(const Artifact &a, int64_t rank) {
  // A parameter's state is initialised by a load step copying its weight buffer into it, or
  // (bf16 master weights) copying the weight's conversion: a load-time kernel from the weight
  // alone to a buffer of its shape in another dtype.
  std::map<int64_t, const BufferDesc *> initOf, convertedFrom;
  for (const Step &s : a.loadSteps) {
    if (s.in.size() != 1 || s.out.size() != 1)
      continue;
    const BufferDesc &from = a.buffers[static_cast<size_t>(s.in[0])];
    const BufferDesc &to = a.buffers[static_cast<size_t>(s.out[0])];
    // CPU offload: a host state's initial copy is `copy_to_host`.
    bool copy = s.op == "copy" || s.op == "copy_to_host";
    if (copy && from.storage == Storage::Weight)
      initOf[s.out[0]] = &from;
    else if (copy && convertedFrom.count(s.in[0]))
      initOf[s.out[0]] = convertedFrom[s.in[0]];
    else if (!copy && from.storage == Storage::Weight && from.shape == to.shape && from.dtype != to.dtype)
      convertedFrom[s.out[0]] = &from;
  }
  std::vector<StateSlice> out;
  std::map<std::string, size_t> params; // state name -> index in `out`
  for (const BufferDesc &b : a.buffers) {
    if (b.storage != Storage::State)
      continue;
    StateSlice s;
    s.name = b.name;
    s.dtype = savedDType(b.dtype);
    s.shape = b.shape;
    s.kind = "other";
    auto w = initOf.find(b.id);
    if (w != initOf.end() && w->second->shape == b.shape && w->second->repeatTimes == 0) {
      const BufferDesc &wb = *w->second;
      s.kind = "param";
      s.transform = wb.transform.empty() ? "none" : wb.transform;
      s.tied = wb.tied;
      s.global = wb.viewed() ? withoutPart(wb.name) : wb.name;
      s.globalShape = wb.fileShape.empty() ? wb.globalShape : wb.fileShape;
      s.offsets = chunkStart(wb, a.deviceMesh, rank);
      s.sizes.resize(s.shape.size());
      for (size_t d = 0; d < s.shape.size(); ++d) {
        if (!wb.fileStart.empty())
          s.offsets[d] += wb.fileStart[d];
        s.sizes[d] = std::max<int64_t>(0, std::min(s.shape[d], s.globalShape[d] - s.offsets[d]));
      }
      s.located = s.globalShape.size() == s.shape.size();
      params[s.name] = out.size();
    } else if (w != initOf.end()) {
      s.kind = "param"; // a repeated view (kv heads repeated over tp): not located
      s.transform = w->second->transform;
      s.global = w->second->name;
    } else if (b.sharded()) { // a state that records its own split
      s.global = b.name;
      s.globalShape = b.globalShape;
      s.offsets = chunkStart(b, a.deviceMesh, rank);
      s.sizes = s.shape;
      s.located = true;
    }
    out.push_back(std::move(s));
  }
  // Optimizer states follow the parameter whose name ends theirs (adamw.exp_avg.<p>).
  for (StateSlice &s : out) {
    if (s.kind == "param" || s.located)
      continue;
    if (s.name.rfind("optimizer.", 0) == 0 || s.name.rfind("adamw.", 0) == 0)
      s.kind = "optimizer";
    if (s.shape.empty()) {
      s.global = s.name;
      s.located = true;
      continue;
    }
    const StateSlice *best = nullptr;
    for (const auto &[name, i] : params) {
      const StateSlice &p = out[i];
      if (p.located && p.shape == s.shape && s.name.size() > name.size() &&
          s.name.compare(s.name.size() - name.size(), name.size(), name) == 0 &&
          s.name[s.name.size() - name.size() - 1] == '.' && (!best || name.size() > best->name.size()))
        best = &p;
    }
    if (!best)
      continue;
    s.global = s.name.substr(0, s.name.size() - best->name.size()) + best->global;
    s.globalShape = best->globalShape;
    s.offsets = best->offsets;
    s.sizes = best->sizes;
    s.located = true;
    s.kind = "optimizer";
  }
  return out;
}

// --- JSON ---

namespace {

std::string longs(const std::vector<int64_t> &v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? ", " : "") + std::to_string(v[i]);
  return s + "]";
}

std::string readText(const std::string &path, bool &ok) {
  std::ifstream f(path, std::ios::binary);
  ok = static_cast<bool>(f);
  return ok ? std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>()) : "";
}

// Member access with one-line errors.
struct Reader {
  const std::string &path;
  std::string err;
  const JsonValue *get(const JsonValue &o, const char *key, JsonValue::Kind kind) {
    const JsonValue *v = o.find(key);
    if (!v || (v->kind() != kind && !(kind == JsonValue::Kind::Double && v->isNumber()))) {
      if (err.empty())
        err = path + ": '" + key + "' is missing or not " + jsonKindName(kind);
      return nullptr;
    }
    return v;
  }
  std::string str(const JsonValue &o, const char *key) {
    const JsonValue *v = get(o, key, JsonValue::Kind::String);
    return v ? v->asString() : "";
  }
  int64_t integer(const JsonValue &o, const char *key) {
    const JsonValue *v = get(o, key, JsonValue::Kind::Int);
    return v ? v->asInt() : 0;
  }
  std::vector<int64_t> ints(const JsonValue &o, const char *key) {
    std::vector<int64_t> out;
    const JsonValue *v = get(o, key, JsonValue::Kind::Array);
    for (const JsonValue &e : v ? v->asArray() : JsonValue::Array{})
      if (e.isInt())
        out.push_back(e.asInt());
      else if (err.empty())
        err = path + ": '" + key + "' holds a non-integer";
    return out;
  }
};

} // namespace

std::string rankMetaJson(const RankMeta &m) {
  std::ostringstream j;
  j << "{\n  \"format\": \"" << kFormat << "\",\n  \"rank\": " << m.rank << ",\n  \"world_size\": " << m.worldSize
    << ",\n  \"steps\": " << m.steps << ",\n  \"manifest_checksum\": \"" << m.checksum << "\",\n  \"mesh\": \""
    << jsonText(m.mesh) << "\",\n  \"states\": [";
  for (size_t i = 0; i < m.states.size(); ++i) {
    const StateSlice &s = m.states[i];
    j << (i ? "," : "") << "\n    {\"name\": \"" << jsonText(s.name) << "\", \"kind\": \"" << s.kind
      << "\", \"dtype\": \"" << dtypeName(s.dtype) << "\", \"shape\": " << longs(s.shape);
    if (s.located)
      j << ", \"global\": \"" << jsonText(s.global) << "\", \"global_shape\": " << longs(s.globalShape)
        << ", \"offsets\": " << longs(s.offsets) << ", \"sizes\": " << longs(s.sizes);
    if (s.kind == "param") {
      j << ", \"transform\": \"" << jsonText(s.transform) << "\", \"tied\": [";
      for (size_t t = 0; t < s.tied.size(); ++t)
        j << (t ? ", " : "") << "\"" << jsonText(s.tied[t]) << "\"";
      j << "]";
    }
    j << "}";
  }
  j << "\n  ]\n}\n";
  return j.str();
}

std::string parseRankMeta(const std::string &path, RankMeta &m) {
  bool ok;
  std::string text = readText(path, ok);
  if (!ok)
    return path + ": cannot open (a rank's checkpoint metadata)";
  JsonValue v;
  if (std::string err = parseJson(text, v); !err.empty())
    return path + ":" + err;
  Reader r{path, ""};
  if (r.str(v, "format") != kFormat)
    return path + ": not a shardc checkpoint (format \"" + kFormat + "\" expected)";
  m.rank = r.integer(v, "rank");
  m.worldSize = r.integer(v, "world_size");
  m.steps = r.integer(v, "steps");
  m.checksum = r.str(v, "manifest_checksum");
  m.mesh = r.str(v, "mesh");
  m.states.clear();
  const JsonValue *states = r.get(v, "states", JsonValue::Kind::Array);
  for (const JsonValue &e : states ? states->asArray() : JsonValue::Array{}) {
    StateSlice s;
    s.name = r.str(e, "name");
    s.kind = r.str(e, "kind");
    std::optional<DType> t = parseDType(r.str(e, "dtype"));
    if (!t && r.err.empty())
      r.err = path + ": state '" + s.name + "': unknown dtype";
    s.dtype = t.value_or(DType::F32);
    s.shape = r.ints(e, "shape");
    s.located = e.find("global") != nullptr;
    if (s.located) {
      s.global = r.str(e, "global");
      s.globalShape = r.ints(e, "global_shape");
      s.offsets = r.ints(e, "offsets");
      s.sizes = r.ints(e, "sizes");
      if (s.globalShape.size() != s.shape.size() || s.offsets.size() != s.shape.size() ||
          s.sizes.size() != s.shape.size())
        r.err = r.err.empty() ? path + ": state '" + s.name + "': shape, global_shape, offsets, sizes differ in rank"
                              : r.err;
    }
    if (s.kind == "param") {
      s.transform = r.str(e, "transform");
      if (const JsonValue *tied = e.find("tied"); tied && tied->isArray())
        for (const JsonValue &n : tied->asArray())
          if (n.isString())
            s.tied.push_back(n.asString());
    }
    m.states.push_back(std::move(s));
  }
  return r.err;
}

std::string manifestPath(const std::string &dir) { return (std::filesystem::path(dir) / "manifest.json").string(); }

std::string stepDirName(int64_t steps) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "step-%08lld", static_cast<long long>(steps));
  return buf;
}

std::string rankPath(const std::string &stepDir, int64_t rank, const char *ext) {
  return (std::filesystem::path(stepDir) / ("rank" + std::to_string(rank) + "." + ext)).string();
}

std::string manifestJson(const Manifest &m, const DeviceMesh &mesh) {
  std::string axes;
  for (const MeshAxis &axis : mesh.axes())
    axes += (axes.empty() ? "" : ", ") + std::string("[\"") + jsonText(axis.name) + "\", " + std::to_string(axis.size) + "]";
  std::ostringstream j;
  j << "{\n  \"format\": \"" << kFormat << "\",\n  \"step_dir\": \"" << jsonText(m.stepDir) << "\",\n  \"steps\": "
    << m.steps << ",\n  \"artifact\": \"" << jsonText(m.artifact) << "\",\n  \"manifest_checksum\": \"" << m.checksum
    << "\",\n  \"world_size\": " << m.worldSize << ",\n  \"mesh\": \"" << jsonText(m.mesh) << "\",\n  \"mesh_axes\": ["
    << axes << "]\n}\n";
  return j.str();
}

std::string readManifest(const std::string &dir, Manifest &m, bool *missing) {
  const std::string path = manifestPath(dir);
  bool ok;
  std::string text = readText(path, ok);
  if (missing)
    *missing = !ok;
  if (!ok)
    return path + ": cannot open (--load-state takes a directory --save-state wrote)";
  JsonValue v;
  if (std::string err = parseJson(text, v); !err.empty())
    return path + ":" + err;
  Reader r{path, ""};
  if (!v.isObject() || r.str(v, "format") != kFormat)
    return path + ": not a shardc checkpoint manifest (format \"" + kFormat + "\" expected)";
  m.stepDir = r.str(v, "step_dir");
  m.steps = r.integer(v, "steps");
  m.artifact = r.str(v, "artifact");
  m.checksum = r.str(v, "manifest_checksum");
  m.worldSize = r.integer(v, "world_size");
  m.mesh = r.str(v, "mesh");
  if (r.err.empty() && (m.stepDir.empty() || m.stepDir.find('/') != std::string::npos || m.stepDir[0] == '.'))
    r.err = path + ": step_dir '" + m.stepDir + "' is not a directory name";
  return r.err;
}

std::string commitFile(const std::string &tmp, const std::string &path) {
  int fd = ::open(tmp.c_str(), O_RDONLY);
  if (fd < 0 || ::fsync(fd) != 0) {
    if (fd >= 0)
      ::close(fd);
    return tmp + ": cannot flush to disk: " + std::strerror(errno);
  }
  ::close(fd);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec)
    return path + ": cannot replace it: " + ec.message();
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (int d = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY); d >= 0) {
    (void)::fsync(d);
    ::close(d);
  }
  return "";
}

std::string writeFileAtomic(const std::string &path, const std::string &bytes) {
  const std::string tmp = path + ".tmp";
  std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  f.close();
  if (!f)
    return tmp + ": cannot write";
  return commitFile(tmp, path);
}

// --- assembly ---

int64_t copyOverlap(const StateSlice &from, const uint8_t *src, const StateSlice &to, uint8_t *dst,
                    size_t elemSize) {
  const size_t rank = to.offsets.size();
  if (rank == 0) {
    std::memcpy(dst, src, elemSize);
    return 1;
  }
  std::vector<int64_t> lo(rank), extent(rank);
  for (size_t d = 0; d < rank; ++d) {
    lo[d] = std::max(from.offsets[d], to.offsets[d]);
    int64_t hi = std::min(from.offsets[d] + from.sizes[d], to.offsets[d] + to.sizes[d]);
    if (hi <= lo[d])
      return 0;
    extent[d] = hi - lo[d];
  }
  std::vector<int64_t> srcStride(rank, 1), dstStride(rank, 1);
  for (size_t d = rank - 1; d-- > 0;) {
    srcStride[d] = srcStride[d + 1] * from.shape[d + 1];
    dstStride[d] = dstStride[d + 1] * to.shape[d + 1];
  }
  std::vector<int64_t> index(rank, 0); // over the overlap's outer dims
  int64_t copied = 0;
  while (true) {
    int64_t s = 0, t = 0;
    for (size_t d = 0; d < rank; ++d) {
      int64_t at = lo[d] + (d + 1 < rank ? index[d] : 0);
      s += (at - from.offsets[d]) * srcStride[d];
      t += (at - to.offsets[d]) * dstStride[d];
    }
    std::memcpy(dst + static_cast<size_t>(t) * elemSize, src + static_cast<size_t>(s) * elemSize,
                static_cast<size_t>(extent[rank - 1]) * elemSize);
    copied += extent[rank - 1];
    size_t d = rank - 1;
    while (d-- > 0) {
      if (++index[d] < extent[d])
        break;
      index[d] = 0;
    }
    if (d == static_cast<size_t>(-1))
      return copied;
  }
}

std::string readRankMetas(const std::string &stepDir, int64_t worldSize, std::vector<RankMeta> &metas) {
  metas.assign(static_cast<size_t>(worldSize), RankMeta{});
  for (int64_t r = 0; r < worldSize; ++r) {
    const std::string path = rankPath(stepDir, r, "json");
    if (std::string err = parseRankMeta(path, metas[static_cast<size_t>(r)]); !err.empty())
      return err;
    if (metas[static_cast<size_t>(r)].rank != r || metas[static_cast<size_t>(r)].worldSize != worldSize)
      return path + ": written by rank " + std::to_string(metas[static_cast<size_t>(r)].rank) + " of " +
             std::to_string(metas[static_cast<size_t>(r)].worldSize) + ", expected rank " + std::to_string(r) +
             " of " + std::to_string(worldSize);
  }
  return "";
}

std::string assemble(const std::string &stepDir, const std::vector<RankMeta> &saved,
                     const std::vector<StateSlice> &wanted, std::vector<std::vector<uint8_t>> &out) {
  // Per wanted chunk, the saved chunks that overlap it: one per distinct box (replicas hold
  // the same box; distinct boxes of one save do not overlap).
  struct Piece {
    size_t want, rank, state;
  };
  std::map<size_t, std::vector<Piece>> byRank;
  std::vector<int64_t> covered(wanted.size(), 0);
  out.assign(wanted.size(), {});
  for (size_t i = 0; i < wanted.size(); ++i) {
    const StateSlice &w = wanted[i];
    int64_t n = 1;
    for (int64_t d : w.shape)
      n *= d;
    out[i].assign(static_cast<size_t>(n) * dtypeSize(w.dtype), 0);
    std::vector<std::vector<int64_t>> boxes;
    bool found = false;
    for (size_t r = 0; r < saved.size(); ++r)
      for (size_t k = 0; k < saved[r].states.size(); ++k) {
        const StateSlice &s = saved[r].states[k];
        if (!s.located || s.global != w.global)
          continue;
        found = true;
        if (s.globalShape != w.globalShape || s.dtype != w.dtype)
          return rankPath(stepDir, static_cast<int64_t>(r), "json") + ": '" + w.global + "' is saved as " +
                 dtypeName(s.dtype) + " " + shapeString(s.globalShape) + ", the artifact's is " + dtypeName(w.dtype) +
                 " " + shapeString(w.globalShape);
        if (std::find(boxes.begin(), boxes.end(), s.offsets) != boxes.end())
          continue;
        bool overlaps = true;
        for (size_t d = 0; d < w.offsets.size(); ++d)
          overlaps &= std::max(s.offsets[d], w.offsets[d]) < std::min(s.offsets[d] + s.sizes[d], w.offsets[d] + w.sizes[d]);
        boxes.push_back(s.offsets);
        if (overlaps)
          byRank[r].push_back({i, r, k});
      }
    if (!found)
      return stepDir + ": no rank saved '" + w.global + "' (state '" + w.name + "')";
  }
  for (const auto &[r, pieces] : byRank) {
    const std::string npz = rankPath(stepDir, static_cast<int64_t>(r), "npz");
    std::vector<HostTensor> arrays;
    if (std::string err = readNpz(npz, arrays); !err.empty())
      return err;
    for (const Piece &p : pieces) {
      const StateSlice &s = saved[r].states[p.state];
      auto it = std::find_if(arrays.begin(), arrays.end(), [&](const HostTensor &t) { return t.name == s.name; });
      if (it == arrays.end() || it->shape != s.shape || it->dtype != s.dtype)
        return npz + ": state '" + s.name + "' is missing or not " + dtypeName(s.dtype) + " " + shapeString(s.shape);
      covered[p.want] += copyOverlap(s, it->data.data(), wanted[p.want], out[p.want].data(), dtypeSize(s.dtype));
    }
  }
  for (size_t i = 0; i < wanted.size(); ++i)
    if (covered[i] != wanted[i].numel())
      return stepDir + ": the saved ranks hold " + std::to_string(covered[i]) + " of the " +
             std::to_string(wanted[i].numel()) + " elements of '" + wanted[i].global + "' at " +
             shapeString(wanted[i].offsets) + " that state '" + wanted[i].name + "' needs";
  return "";
}

} // namespace shardc::ckpt
