// Hugging Face safetensors checkpoints (Safetensors.h): header parsing, binding weight buffers
// by parameter name, and reading one rank's chunk with transpose and dtype conversion.
#include "shardc/runtime/Safetensors.h"

#include "FileIO.h"
#include "shardc/runtime/Json.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace shardc::rt {

namespace {

namespace fs = std::filesystem;

constexpr uint64_t kMaxHeaderBytes = 100u << 20; // the format's own limit

std::string shapeText(const std::vector<int64_t> &shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

std::string baseName(const std::string &path) {
  fs::path p(path);
  return (p.has_filename() ? p.filename() : p.parent_path().filename()).string(); // "ckpt/" is "ckpt"
}

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0)
      ::close(fd);
  }
};

bool parseStDType(const std::string &s, DType &out) {
  static const std::pair<const char *, DType> kNames[] = {
      {"F32", DType::F32}, {"F16", DType::F16}, {"BF16", DType::BF16}, {"F64", DType::F64}, {"I64", DType::I64},
      {"I32", DType::I32}, {"I8", DType::I8},   {"U8", DType::U8},     {"BOOL", DType::Bool}};
  for (const auto &[name, dtype] : kNames)
    if (s == name) {
      out = dtype;
      return true;
    }
  return false;
}

// One file's header: its tensors appended to `out` (file index `file`).
std::string readHeader(const std::string &path, size_t file, Safetensors &out) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0)
    return path + ": cannot open: " + std::strerror(errno);
  struct stat st;
  if (::fstat(f.fd, &st) != 0)
    return path + ": cannot stat: " + std::strerror(errno);
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint8_t len[8];
  if (size < 8 || !preadFully(f.fd, len, 8, 0).empty())
    return path + ": not a safetensors file (" + std::to_string(size) + " bytes, shorter than its 8-byte header length)";
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i)
    n = (n << 8) | len[i];
  if (n > size - 8 || n > kMaxHeaderBytes || n < 2)
    return path + ": not a safetensors file (header length " + std::to_string(n) + " in a file of " +
           std::to_string(size) + " bytes)";
  std::string text(n, '\0');
  if (std::string err = preadFully(f.fd, text.data(), n, 8); !err.empty())
    return path + ": reading the header: " + err;
  JsonValue header;
  if (std::string err = parseJson(text, header); !err.empty())
    return path + ": the header is not valid JSON: " + err;
  if (!header.isObject())
    return path + ": the header is " + jsonKindName(header.kind()) + ", not an object";
  const uint64_t dataStart = 8 + n, dataBytes = size - dataStart;
  for (const auto &[name, v] : header.asObject()) {
    if (name == "__metadata__")
      continue;
    std::string where = path + ": tensor '" + name + "'";
    const JsonValue *dtype = v.find("dtype"), *shape = v.find("shape"), *offsets = v.find("data_offsets");
    if (!dtype || !shape || !offsets || !dtype->isString() || !shape->isArray() || !offsets->isArray() ||
        offsets->asArray().size() != 2)
      return where + ": needs \"dtype\" (a string), \"shape\" (an array) and \"data_offsets\" ([begin, end])";
    CheckpointTensor t;
    t.name = name;
    t.file = file;
    if (!parseStDType(dtype->asString(), t.dtype))
      return where + ": dtype '" + dtype->asString() + "' is not supported (F32, BF16, F16, F64, I64, I32, I8, U8, BOOL)";
    uint64_t numel = 1;
    for (const JsonValue &d : shape->asArray()) {
      if (!d.isInt() || d.asInt() < 0 || d.asInt() > (int64_t(1) << 40))
        return where + ": shape has an entry that is not a dimension";
      t.shape.push_back(d.asInt());
      numel *= static_cast<uint64_t>(d.asInt());
      if (numel > (uint64_t(1) << 50))
        return where + ": shape is implausibly large";
    }
    const JsonValue &b = offsets->asArray()[0], &e = offsets->asArray()[1];
    if (!b.isInt() || !e.isInt() || b.asInt() < 0 || e.asInt() < b.asInt() || uint64_t(e.asInt()) > dataBytes)
      return where + ": data_offsets lie outside the file's " + std::to_string(dataBytes) + " data bytes";
    t.offset = dataStart + uint64_t(b.asInt());
    t.bytes = uint64_t(e.asInt() - b.asInt());
    if (t.bytes != numel * dtypeSize(t.dtype))
      return where + ": data_offsets span " + std::to_string(t.bytes) + " bytes, " + dtype->asString() + " " +
             shapeText(t.shape) + " needs " + std::to_string(numel * dtypeSize(t.dtype));
    if (out.byName.count(name))
      return where + ": also in " + out.fileOf(out.tensors[out.byName[name]]);
    out.byName[name] = out.tensors.size();
    out.tensors.push_back(std::move(t));
  }
  return "";
}

// A packed projection's part (`<w>.part1`: its slice of `<w>`, a view of the whole stored
// tensor) is the parameter `<w>`.
std::string withoutPart(const std::string &n) {
  size_t dot = n.rfind(".part");
  if (dot == std::string::npos || dot + 5 == n.size() ||
      !std::all_of(n.begin() + long(dot + 5), n.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return n;
  return n.substr(0, dot);
}

bool looksLikeParam(const std::string &n) {
  return n.find('.') != std::string::npos && n.rfind("val_", 0) != 0 && n.rfind("onnx::", 0) != 0 && n[0] != '/';
}
bool endsWith(const std::string &s, const char *suffix) {
  size_t k = std::strlen(suffix);
  return s.size() >= k && s.compare(s.size() - k, k, suffix) == 0;
}

size_t editDistance(const std::string &a, const std::string &b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j)
    row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string nearest(const Safetensors &ckpt, const std::string &want) {
  std::vector<std::pair<size_t, std::string>> scored;
  for (const CheckpointTensor &t : ckpt.tensors)
    scored.emplace_back(editDistance(want, t.name), t.name);
  std::sort(scored.begin(), scored.end());
  std::string s;
  for (size_t i = 0; i < scored.size() && i < 3; ++i)
    s += (i ? ", '" : "'") + scored[i].second + "'";
  return s.empty() ? "(the checkpoint holds no tensor)" : s;
}

// Loads element i of `src` (dtype `from`, a float type) as a double for `f(i, value)`.
template <typename F> void forEachValue(const uint8_t *src, DType from, uint64_t n, F f) {
  auto each = [&](size_t width, auto load) {
    for (uint64_t i = 0; i < n; ++i)
      f(i, load(src + i * width));
  };
  switch (from) {
  case DType::F32: each(4, [](const uint8_t *p) { float x; std::memcpy(&x, p, 4); return double(x); }); break;
  case DType::F64: each(8, [](const uint8_t *p) { double x; std::memcpy(&x, p, 8); return x; }); break;
  case DType::BF16: each(2, [](const uint8_t *p) { uint16_t h; std::memcpy(&h, p, 2); return double(bf16ToF32(h)); }); break;
  case DType::F16: each(2, [](const uint8_t *p) { uint16_t h; std::memcpy(&h, p, 2); return double(f16ToF32(h)); }); break;
  default: break;
  }
}

// n elements from `from` to `to` (both float types; round to nearest even).
void convertRun(const uint8_t *src, DType from, uint8_t *dst, DType to, uint64_t n) {
  switch (to) {
  case DType::F32: forEachValue(src, from, n, [&](uint64_t i, double v) { float x = float(v); std::memcpy(dst + i * 4, &x, 4); }); break;
  case DType::F64: forEachValue(src, from, n, [&](uint64_t i, double v) { std::memcpy(dst + i * 8, &v, 8); }); break;
  case DType::BF16: forEachValue(src, from, n, [&](uint64_t i, double v) { uint16_t h = f32ToBf16(float(v)); std::memcpy(dst + i * 2, &h, 2); }); break;
  case DType::F16: forEachValue(src, from, n, [&](uint64_t i, double v) { uint16_t h = f32ToF16(float(v)); std::memcpy(dst + i * 2, &h, 2); }); break;
  default: break;
  }
}

// dst [rows, cols] = the transpose of src [cols, rows], elements of N bytes, in cache tiles.
template <size_t N> void transposeTiled(const uint8_t *src, uint8_t *dst, uint64_t rows, uint64_t cols) {
  constexpr uint64_t kTile = 32;
  for (uint64_t i0 = 0; i0 < rows; i0 += kTile)
    for (uint64_t j0 = 0; j0 < cols; j0 += kTile)
      for (uint64_t i = i0; i < std::min(i0 + kTile, rows); ++i)
        for (uint64_t j = j0; j < std::min(j0 + kTile, cols); ++j)
          std::memcpy(dst + (i * cols + j) * N, src + (j * rows + i) * N, N);
}

bool convertible(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F16 || d == DType::F64; }

} // namespace

std::string Safetensors::fileOf(const CheckpointTensor &t) const { return baseName(files[t.file]); }

std::string openSafetensors(const std::string &path, Safetensors &out) {
  out = Safetensors();
  out.where = path;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    out.files.push_back(path);
    return readHeader(path, 0, out);
  }
  fs::path index = fs::path(path) / "model.safetensors.index.json";
  if (!fs::exists(index, ec)) {
    std::vector<std::string> found;
    for (const auto &e : fs::directory_iterator(path, ec))
      if (e.path().extension() == ".safetensors")
        found.push_back(e.path().string());
    if (found.size() != 1)
      return path + ": " +
             (found.empty() ? std::string("holds no .safetensors file")
                            : "holds " + std::to_string(found.size()) + " .safetensors files and no "
                              "model.safetensors.index.json naming which tensor is in which");
    out.files = found;
    return readHeader(found[0], 0, out);
  }
  std::string text;
  {
    Fd f;
    f.fd = ::open(index.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (f.fd < 0 || ::fstat(f.fd, &st) != 0)
      return index.string() + ": cannot open: " + std::strerror(errno);
    text.resize(static_cast<size_t>(st.st_size));
    if (std::string err = preadFully(f.fd, text.data(), text.size(), 0); !err.empty())
      return index.string() + ": " + err;
  }
  JsonValue json;
  if (std::string err = parseJson(text, json); !err.empty())
    return index.string() + ": not valid JSON: " + err;
  const JsonValue *map = json.find("weight_map");
  if (!map || !map->isObject())
    return index.string() + ": has no \"weight_map\" object";
  std::map<std::string, size_t> fileIndex;
  for (const auto &[name, file] : map->asObject()) {
    if (!file.isString() || file.asString().empty() || file.asString().find('/') != std::string::npos)
      return index.string() + ": weight_map['" + name + "'] is not a file name in the directory";
    if (fileIndex.emplace(file.asString(), out.files.size()).second)
      out.files.push_back((fs::path(path) / file.asString()).string());
  }
  for (size_t f = 0; f < out.files.size(); ++f)
    if (std::string err = readHeader(out.files[f], f, out); !err.empty())
      return err;
  for (const auto &[name, file] : map->asObject()) {
    const CheckpointTensor *t = out.find(name);
    if (!t || out.files[t->file] != out.files[fileIndex[file.asString()]])
      return index.string() + ": weight_map puts '" + name + "' in " + file.asString() + ", which does not hold it";
  }
  return "";
}

std::string bindSafetensors(const Artifact &artifact, const Safetensors &ckpt, std::vector<BoundWeight> &bound,
                            std::vector<std::string> &notes) {
  bound.assign(artifact.buffers.size(), BoundWeight());
  notes.clear();
  // The export wrapper's prefix, as shardc export-weights strips it.
  bool allPrefixed = true, any = false;
  for (const BufferDesc &b : artifact.buffers)
    if (b.storage == Storage::Weight && looksLikeParam(b.name)) {
      any = true;
      allPrefixed = allPrefixed && b.name.rfind("m.", 0) == 0;
    }
  const std::string prefix = any && allPrefixed ? "m." : "";
  auto hfName = [&](const std::string &path) {
    return path.rfind(prefix, 0) == 0 ? path.substr(prefix.size()) : path;
  };
  std::set<std::string> used;
  std::set<std::pair<DType, DType>> conversions;
  std::vector<std::string> kept; // weights that stay the artifact's
  for (const BufferDesc &b : artifact.buffers) {
    if (b.storage != Storage::Weight)
      continue;
    std::vector<std::string> paths{withoutPart(b.name)};
    for (const std::string &p : b.tied)
      paths.push_back(withoutPart(p));
    const CheckpointTensor *t = nullptr;
    for (const std::string &p : paths)
      if (!t && looksLikeParam(p))
        t = ckpt.find(hfName(p));
    std::string names, modulePaths;
    for (const std::string &p : paths) {
      names += (names.empty() ? "'" : " or '") + hfName(p) + "'";
      modulePaths += (modulePaths.empty() ? "" : ", tied with ") + p;
    }
    std::string what = "weight " + names + " (module path " + modulePaths + ")";
    if (!t) {
      if (looksLikeParam(paths[0]) && (endsWith(paths[0], ".weight") || endsWith(paths[0], ".bias")))
        return what + " is not in " + baseName(ckpt.where) + "; nearest: " + nearest(ckpt, hfName(paths[0]));
      kept.push_back(b.name.empty() ? "buffer " + std::to_string(b.id) : b.name);
      continue; // a folded constant: from the artifact's file
    }
    for (const std::string &p : paths)
      used.insert(hfName(p));
    bool transposed = b.transform == "transpose";
    if (!transposed && !b.transform.empty() && b.transform != "none")
      return what + ": unknown stored transform '" + b.transform + "'";
    std::vector<int64_t> want = b.fileShape.empty() ? b.globalShape : b.fileShape;
    if (transposed) {
      if (want.size() != 2)
        return what + ": stored transposed but not 2-D (" + shapeText(want) + ")";
      std::swap(want[0], want[1]);
    }
    if (t->shape != want)
      return what + " has shape " + shapeText(t->shape) + " in " + ckpt.fileOf(*t) + ", the graph wants " +
             shapeText(want) + (transposed ? " (stored transposed)" : "");
    if (t->dtype != b.dtype) {
      if (!convertible(t->dtype) || !convertible(b.dtype))
        return what + " is " + dtypeName(t->dtype) + " in " + ckpt.fileOf(*t) + ", the graph's buffer is " +
               dtypeName(b.dtype) + " (only f32, bf16, f16 and f64 convert)";
      conversions.emplace(t->dtype, b.dtype);
    }
    bound[size_t(b.id)] = BoundWeight{t, transposed};
  }
  for (const auto &[from, to] : conversions)
    notes.push_back(std::string("weights: converting ") + dtypeName(from) + " -> " + dtypeName(to));
  auto listed = [](std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    std::string s;
    for (size_t i = 0; i < names.size() && i < 8; ++i)
      s += (i ? ", " : "") + names[i];
    return names.size() > 8 ? s + " and " + std::to_string(names.size() - 8) + " more" : s;
  };
  if (!kept.empty())
    notes.push_back("weights: " + std::to_string(kept.size()) + (kept.size() > 1 ? " weights are" : " weight is") +
                    " no parameter of the checkpoint and keep" + (kept.size() > 1 ? "" : "s") +
                    " the artifact's values: " + listed(kept));
  std::vector<std::string> unused;
  for (const CheckpointTensor &t : ckpt.tensors)
    if (!used.count(t.name))
      unused.push_back(t.name);
  if (!unused.empty())
    notes.push_back("weights: " + std::to_string(unused.size()) + " tensor" + (unused.size() > 1 ? "s" : "") + " of " +
                    baseName(ckpt.where) + " not used by the graph: " + listed(unused));
  return "";
}

std::string readWeightChunk(int fd, uint64_t offset, DType stored, bool transposed, const WeightChunk &chunk,
                            DType dtype, uint8_t *dst) {
  WeightChunk c = chunk; // in the checkpoint's layout
  if (c.start.empty())
    c.start.assign(c.shape.size(), 0);
  if (c.fileShape.empty())
    c.fileShape = c.globalShape;
  if (transposed) {
    if (c.shape.size() != 2)
      return "a transposed weight must be 2-D";
    for (std::vector<int64_t> *v : {&c.globalShape, &c.start, &c.shape, &c.fileShape, &c.fileStart})
      std::reverse(v->begin(), v->end());
  }
  uint64_t numel = 1;
  for (int64_t d : c.shape)
    numel *= static_cast<uint64_t>(d);
  const size_t from = dtypeSize(stored);
  const bool direct = !transposed && stored == dtype;
  std::vector<uint8_t> staged(direct ? 0 : numel * from);
  uint8_t *into = direct ? dst : staged.data();
  std::memset(into, 0, numel * from); // padding outside the stored tensor
  std::string err;
  auto read = [&](uint64_t at, uint64_t to_, uint64_t n) {
    if (err.empty())
      if (std::string e = preadFully(fd, into + to_, n, offset + at); !e.empty())
        err = "reading " + std::to_string(n) + " bytes at offset " + std::to_string(offset + at) + " failed: " + e;
  };
  if (c.fileShape == c.globalShape && c.fileStart.empty())
    forEachChunkRun(c.globalShape, c.start, c.shape, from, read);
  else
    forEachViewRun(c.fileShape, c.fileStart, c.start, c.shape, from, read);
  if (!err.empty() || direct)
    return err;
  // Element (i, j) of the buffer's chunk is staged element (j, i) when transposed; then the
  // dtype.
  if (transposed) {
    std::vector<uint8_t> flipped(stored == dtype ? 0 : staged.size());
    uint8_t *t = stored == dtype ? dst : flipped.data();
    const uint64_t rows = uint64_t(c.shape[1]), cols = uint64_t(c.shape[0]);
    switch (from) {
    case 1: transposeTiled<1>(staged.data(), t, rows, cols); break;
    case 2: transposeTiled<2>(staged.data(), t, rows, cols); break;
    case 4: transposeTiled<4>(staged.data(), t, rows, cols); break;
    default: transposeTiled<8>(staged.data(), t, rows, cols); break;
    }
    if (stored == dtype)
      return "";
    staged.swap(flipped);
  }
  convertRun(staged.data(), stored, dst, dtype, numel);
  return "";
}

} // namespace shardc::rt
