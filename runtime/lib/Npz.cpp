// .npz reading (zip central directory, zip64, stored/deflated members, .npy headers) and
// writing (stored members, deterministic timestamps) behind Npz.h. zlib does CRC32 and inflate
// where the build has it (SHARDC_HAVE_ZLIB); otherwise Inflate.cpp's own.
#include "shardc/runtime/Npz.h"
#include "FileIO.h"
#include "Inflate.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>
#ifdef SHARDC_HAVE_ZLIB
#include <zlib.h>
#endif

namespace shardc::rt {

namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndOfCentralDirSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kLocalHeaderBytes = 30;
constexpr size_t kCentralHeaderBytes = 46;
constexpr size_t kEndOfCentralDirBytes = 22;
constexpr char kNpyMagic[] = "\x93NUMPY";

uint64_t readLE(const char *p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void appendLE(std::string &out, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}

#ifdef SHARDC_HAVE_ZLIB
uint32_t crc32Of(std::string_view bytes) {
  // zlib's crc32 takes uInt lengths; feed it in pieces so that > 4 GiB members work.
  uLong crc = crc32(0L, Z_NULL, 0);
  size_t done = 0;
  while (done < bytes.size()) {
    size_t n = std::min<size_t>(bytes.size() - done, 1u << 30);
    crc = crc32(crc, reinterpret_cast<const Bytef *>(bytes.data() + done), static_cast<uInt>(n));
    done += n;
  }
  return static_cast<uint32_t>(crc);
}

bool inflateRaw(std::string_view in, size_t expected, std::string &out) {
  // One inflate call; its counters are uInt, which bounds a deflated member to 4 GiB.
  if (in.size() > std::numeric_limits<uInt>::max() || expected > std::numeric_limits<uInt>::max())
    return false;
  out.assign(expected, '\0');
  z_stream zs{};
  if (inflateInit2(&zs, -MAX_WBITS) != Z_OK)
    return false;
  zs.next_in = reinterpret_cast<Bytef *>(const_cast<char *>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef *>(out.data());
  zs.avail_out = static_cast<uInt>(expected);
  int rc = inflate(&zs, Z_FINISH);
  bool ok = rc == Z_STREAM_END && zs.total_out == expected;
  inflateEnd(&zs);
  return ok;
}
#else
uint32_t crc32Of(std::string_view bytes) { return crc32Update(0, bytes.data(), bytes.size()); }

bool inflateRaw(std::string_view in, size_t expected, std::string &out) {
  return inflateRawBuiltin(in, expected, out).empty();
}
#endif

struct DTypeCode {
  const char *descr;
  DType dtype;
};
// numpy's own spelling of each dtype the runtime exchanges (little-endian, as numpy writes on x86).
constexpr DTypeCode kDTypeCodes[] = {
    {"<f4", DType::F32}, {"<f8", DType::F64}, {"<f2", DType::F16}, {"<i8", DType::I64},
    {"<i4", DType::I32}, {"|i1", DType::I8},  {"|u1", DType::U8},  {"|b1", DType::Bool}};

// The Python dict literal of a .npy header: {'descr': '<f4', 'fortran_order': False,
// 'shape': (2, 3), }. Only the forms numpy writes are accepted.
class NpyHeaderParser {
public:
  explicit NpyHeaderParser(std::string_view text) : t_(text) {}

  std::string parse(std::string &descr, bool &fortran, std::vector<int64_t> &shape) {
    bool haveDescr = false, haveFortran = false, haveShape = false;
    skip();
    if (!eat('{'))
      return "header is not a dict";
    while (true) {
      skip();
      if (eat('}'))
        break;
      std::string key;
      if (!parseQuoted(key))
        return "malformed header key";
      skip();
      if (!eat(':'))
        return "malformed header: expected ':' after '" + key + "'";
      skip();
      if (key == "descr") {
        if (!parseQuoted(descr))
          return "descr is not a simple dtype string (structured dtypes are not supported)";
        haveDescr = true;
      } else if (key == "fortran_order") {
        if (t_.substr(p_, 4) == "True") {
          fortran = true;
          p_ += 4;
        } else if (t_.substr(p_, 5) == "False") {
          fortran = false;
          p_ += 5;
        } else {
          return "malformed fortran_order";
        }
        haveFortran = true;
      } else if (key == "shape") {
        if (!parseShape(shape))
          return "malformed shape";
        haveShape = true;
      } else {
        return "unexpected header key '" + key + "'";
      }
      skip();
      if (eat(','))
        continue;
      skip();
      if (eat('}'))
        break;
      return "malformed header: expected ',' or '}'";
    }
    if (!haveDescr || !haveFortran || !haveShape)
      return "header lacks descr, fortran_order or shape";
    return "";
  }

private:
  std::string_view t_;
  size_t p_ = 0;

  void skip() {
    while (p_ < t_.size() && (t_[p_] == ' ' || t_[p_] == '\n' || t_[p_] == '\t'))
      ++p_;
  }
  bool eat(char c) {
    if (p_ < t_.size() && t_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  bool parseQuoted(std::string &out) {
    if (p_ >= t_.size() || (t_[p_] != '\'' && t_[p_] != '"'))
      return false;
    char q = t_[p_++];
    size_t end = t_.find(q, p_);
    if (end == std::string_view::npos)
      return false;
    out = std::string(t_.substr(p_, end - p_));
    p_ = end + 1;
    return true;
  }
  bool parseShape(std::vector<int64_t> &shape) {
    if (!eat('('))
      return false;
    while (true) {
      skip();
      if (eat(')'))
        return true;
      size_t start = p_;
      int64_t v = 0;
      while (p_ < t_.size() && t_[p_] >= '0' && t_[p_] <= '9') {
        if (v > (std::numeric_limits<int64_t>::max() - 9) / 10)
          return false;
        v = v * 10 + (t_[p_++] - '0');
      }
      if (p_ == start)
        return false;
      // numpy writes Python ints; older versions appended 'L'.
      eat('L');
      shape.push_back(v);
      skip();
      if (eat(','))
        continue;
      skip();
      if (eat(')'))
        return true;
      return false;
    }
  }
};

std::string parseNpy(std::string_view npy, HostTensor &t) {
  if (npy.size() < 10 || npy.substr(0, 6) != std::string_view(kNpyMagic, 6))
    return "not a .npy array (bad magic)";
  int major = static_cast<uint8_t>(npy[6]);
  size_t headerLen, headerStart;
  if (major == 1) {
    headerLen = readLE(npy.data() + 8, 2);
    headerStart = 10;
  } else if (major == 2 || major == 3) {
    if (npy.size() < 12)
      return "truncated .npy header";
    headerLen = readLE(npy.data() + 8, 4);
    headerStart = 12;
  } else {
    return ".npy format version " + std::to_string(major) + " is not supported (1, 2, 3 are)";
  }
  if (headerLen > npy.size() - headerStart)
    return "truncated .npy header";
  std::string descr;
  bool fortran = false;
  if (std::string err =
          NpyHeaderParser(npy.substr(headerStart, headerLen)).parse(descr, fortran, t.shape);
      !err.empty())
    return ".npy " + err;
  if (fortran)
    return "fortran_order arrays are not supported (save a C-contiguous array)";
  bool known = false;
  for (const DTypeCode &code : kDTypeCodes)
    if (descr == code.descr) {
      t.dtype = code.dtype;
      known = true;
    }
  if (!known)
    return "unsupported dtype '" + descr + "' (supported: <f4 <f8 <f2 <i8 <i4 |i1 |u1 |b1)";
  uint64_t elements = 1;
  for (int64_t d : t.shape) {
    if (d != 0 && elements > (uint64_t(1) << 56) / static_cast<uint64_t>(d))
      return "shape " + shapeString(t.shape) + " is implausibly large";
    elements *= static_cast<uint64_t>(d);
  }
  uint64_t bytes = elements * dtypeSize(t.dtype);
  std::string_view data = npy.substr(headerStart + headerLen);
  if (data.size() != bytes)
    return "holds " + std::to_string(data.size()) + " data bytes, " + descr + " " +
           shapeString(t.shape) + " needs " + std::to_string(bytes);
  t.data.assign(data.begin(), data.end());
  return "";
}

struct ZipEntry {
  std::string name;
  uint16_t flags = 0, method = 0;
  uint32_t crc = 0;
  uint64_t compressedSize = 0, size = 0, localOffset = 0;
};

// Replaces the 0xffffffff placeholders of a central directory entry with the zip64 extra
// field's values, which appear in this fixed order, each only when its placeholder is set.
bool applyZip64Extra(std::string_view extra, ZipEntry &e, bool sizeMax, bool csizeMax,
                     bool offsetMax) {
  size_t p = 0;
  while (p + 4 <= extra.size()) {
    uint16_t id = static_cast<uint16_t>(readLE(extra.data() + p, 2));
    uint16_t len = static_cast<uint16_t>(readLE(extra.data() + p + 2, 2));
    if (p + 4 + len > extra.size())
      return false;
    if (id == 0x0001) {
      std::string_view field = extra.substr(p + 4, len);
      size_t q = 0;
      for (auto [wanted, target] : {std::pair{sizeMax, &e.size},
                                    std::pair{csizeMax, &e.compressedSize},
                                    std::pair{offsetMax, &e.localOffset}}) {
        if (!wanted)
          continue;
        if (q + 8 > field.size())
          return false;
        *target = readLE(field.data() + q, 8);
        q += 8;
      }
      return true;
    }
    p += 4 + len;
  }
  return !(sizeMax || csizeMax || offsetMax);
}

std::string readCentralDirectory(std::string_view zip, std::vector<ZipEntry> &entries) {
  if (zip.size() < kEndOfCentralDirBytes)
    return "not a zip archive (too short)";
  // The end record sits in the last 22 + 65535 (max comment) bytes.
  size_t lowest = zip.size() > kEndOfCentralDirBytes + 0xffff
                      ? zip.size() - kEndOfCentralDirBytes - 0xffff
                      : 0;
  size_t eocd = std::string_view::npos;
  for (size_t p = zip.size() - kEndOfCentralDirBytes + 1; p-- > lowest;)
    if (readLE(zip.data() + p, 4) == kEndOfCentralDirSig) {
      eocd = p;
      break;
    }
  if (eocd == std::string_view::npos)
    return "not a zip archive (no end of central directory)";
  const char *e = zip.data() + eocd;
  uint64_t count = readLE(e + 10, 2);
  uint64_t cdSize = readLE(e + 12, 4);
  uint64_t cdOffset = readLE(e + 16, 4);
  if (count == 0xffff || cdSize == 0xffffffff || cdOffset == 0xffffffff) {
    if (eocd < 20 || readLE(zip.data() + eocd - 20, 4) != kZip64LocatorSig)
      return "zip64 archive without a zip64 end locator";
    uint64_t z64 = readLE(zip.data() + eocd - 20 + 8, 8);
    if (z64 > zip.size() || zip.size() - z64 < 56 || readLE(zip.data() + z64, 4) != kZip64EndSig)
      return "corrupt zip64 end of central directory";
    count = readLE(zip.data() + z64 + 32, 8);
    cdSize = readLE(zip.data() + z64 + 40, 8);
    cdOffset = readLE(zip.data() + z64 + 48, 8);
  }
  if (cdOffset > zip.size() || cdSize > zip.size() - cdOffset)
    return "corrupt central directory (beyond the end of the file)";
  size_t p = cdOffset, end = cdOffset + cdSize;
  for (uint64_t i = 0; i < count; ++i) {
    if (end - p < kCentralHeaderBytes || readLE(zip.data() + p, 4) != kCentralHeaderSig)
      return "corrupt central directory entry " + std::to_string(i);
    const char *c = zip.data() + p;
    ZipEntry entry;
    entry.flags = static_cast<uint16_t>(readLE(c + 8, 2));
    entry.method = static_cast<uint16_t>(readLE(c + 10, 2));
    entry.crc = static_cast<uint32_t>(readLE(c + 16, 4));
    entry.compressedSize = readLE(c + 20, 4);
    entry.size = readLE(c + 24, 4);
    size_t nameLen = readLE(c + 28, 2), extraLen = readLE(c + 30, 2), commentLen = readLE(c + 32, 2);
    entry.localOffset = readLE(c + 42, 4);
    if (end - p - kCentralHeaderBytes < nameLen + extraLen + commentLen)
      return "corrupt central directory entry " + std::to_string(i);
    entry.name = std::string(zip.substr(p + kCentralHeaderBytes, nameLen));
    bool sizeMax = entry.size == 0xffffffff, csizeMax = entry.compressedSize == 0xffffffff,
         offsetMax = entry.localOffset == 0xffffffff;
    if (!applyZip64Extra(zip.substr(p + kCentralHeaderBytes + nameLen, extraLen), entry, sizeMax,
                         csizeMax, offsetMax))
      return "member '" + entry.name + "': corrupt zip64 extra field";
    entries.push_back(std::move(entry));
    p += kCentralHeaderBytes + nameLen + extraLen + commentLen;
  }
  return "";
}

std::string readMember(std::string_view zip, const ZipEntry &e, std::string &out) {
  if (e.flags & 0x1)
    return "is encrypted";
  if (e.method != 0 && e.method != 8)
    return "uses zip compression method " + std::to_string(e.method) +
           " (only stored and deflated are supported)";
  if (e.localOffset > zip.size() || zip.size() - e.localOffset < kLocalHeaderBytes ||
      readLE(zip.data() + e.localOffset, 4) != kLocalHeaderSig)
    return "has a corrupt local header";
  const char *l = zip.data() + e.localOffset;
  uint64_t dataStart = e.localOffset + kLocalHeaderBytes + readLE(l + 26, 2) + readLE(l + 28, 2);
  if (dataStart > zip.size() || e.compressedSize > zip.size() - dataStart)
    return "is truncated";
  std::string_view raw = zip.substr(dataStart, e.compressedSize);
  if (e.method == 0) {
    if (e.compressedSize != e.size)
      return "is corrupt (stored sizes disagree)";
    out.assign(raw);
  } else if (!inflateRaw(raw, e.size, out)) {
    return "is corrupt (inflate failed)";
  }
  if (crc32Of(out) != e.crc)
    return "is corrupt (CRC mismatch)";
  return "";
}

} // namespace

std::string parseNpz(std::string_view bytes, const std::string &path,
                     std::vector<HostTensor> &out) {
  out.clear();
  std::vector<ZipEntry> entries;
  if (std::string err = readCentralDirectory(bytes, entries); !err.empty())
    return path + ": " + err;
  std::set<std::string> names;
  for (const ZipEntry &e : entries) {
    std::string where = path + ": member '" + e.name + "'";
    constexpr std::string_view kSuffix = ".npy";
    if (e.name.size() <= kSuffix.size() ||
        e.name.compare(e.name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
      return where + " is not a .npy array";
    std::string npy;
    if (std::string err = readMember(bytes, e, npy); !err.empty())
      return where + " " + err;
    HostTensor t;
    t.name = e.name.substr(0, e.name.size() - kSuffix.size());
    if (!names.insert(t.name).second)
      return path + ": duplicate array '" + t.name + "'";
    if (std::string err = parseNpy(npy, t); !err.empty())
      return where + ": " + err;
    out.push_back(std::move(t));
  }
  return "";
}

std::string readNpz(const std::string &path, std::vector<HostTensor> &out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return path + ": cannot open: " + std::strerror(errno);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad())
    return path + ": read failed";
  return parseNpz(bytes, path, out);
}

HostTensor widenToF32(const HostTensor &t) {
  if (t.dtype != DType::F16 && t.dtype != DType::BF16)
    return t;
  HostTensor wide;
  wide.name = t.name;
  wide.dtype = DType::F32;
  wide.shape = t.shape;
  size_t n = t.data.size() / 2;
  wide.data.resize(n * sizeof(float));
  for (size_t i = 0; i < n; ++i) {
    uint16_t half;
    std::memcpy(&half, t.data.data() + 2 * i, 2);
    float f = t.dtype == DType::F16 ? f16ToF32(half) : bf16ToF32(half);
    std::memcpy(wide.data.data() + i * sizeof(float), &f, sizeof(float));
  }
  return wide;
}

namespace {

// A v1 .npy header padded (spaces, then '\n') so the data starts 64-byte aligned, as numpy does.
std::string npyHeader(const HostTensor &t) {
  const char *descr = nullptr;
  for (const DTypeCode &code : kDTypeCodes)
    if (code.dtype == t.dtype)
      descr = code.descr;
  std::string dict = std::string("{'descr': '") + descr + "', 'fortran_order': False, 'shape': (";
  for (size_t i = 0; i < t.shape.size(); ++i)
    dict += std::to_string(t.shape[i]) + (t.shape.size() == 1 || i + 1 < t.shape.size() ? "," : "") +
            (i + 1 < t.shape.size() ? " " : "");
  dict += "), }";
  size_t unpadded = 10 + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict += '\n';
  std::string header(kNpyMagic, 6);
  header += '\x01';
  header += '\x00';
  appendLE(header, dict.size(), 2);
  return header + dict;
}

} // namespace

std::string encodeNpz(const std::vector<HostTensor> &tensors, std::string &bytes) {
  bytes.clear();
  if (tensors.size() >= 0xffff)
    return "too many arrays for an npz without zip64 (" + std::to_string(tensors.size()) + ")";
  // Fixed DOS timestamp (1980-01-01 00:00) keeps output byte-identical across runs.
  constexpr uint16_t kDosTime = 0, kDosDate = (0 << 9) | (1 << 5) | 1;
  constexpr uint16_t kUtf8Names = 0x0800;
  std::string central;
  std::set<std::string> names;
  for (const HostTensor &original : tensors) {
    // numpy has no bfloat16; f32 holds every bf16 value exactly.
    HostTensor t = original.dtype == DType::BF16 ? widenToF32(original) : original;
    if (!names.insert(t.name).second)
      return "duplicate array name '" + t.name + "'";
    if (t.data.size() != static_cast<uint64_t>(t.numel()) * dtypeSize(t.dtype))
      return "array '" + t.name + "' has " + std::to_string(t.data.size()) + " bytes, " +
             dtypeName(t.dtype) + " " + shapeString(t.shape) + " needs " +
             std::to_string(t.numel() * dtypeSize(t.dtype));
    std::string member = npyHeader(t);
    member.append(reinterpret_cast<const char *>(t.data.data()), t.data.size());
    std::string name = t.name + ".npy";
    uint64_t offset = bytes.size();
    if (member.size() >= 0xffffffffull || offset >= 0xffffffffull || name.size() > 0xffff)
      return "array '" + t.name + "' is beyond what an npz without zip64 holds (4 GiB)";
    uint32_t crc = crc32Of(member);
    auto common = [&](std::string &out) {
      appendLE(out, 20, 2); // version needed to extract: 2.0
      appendLE(out, kUtf8Names, 2);
      appendLE(out, 0, 2); // stored
      appendLE(out, kDosTime, 2);
      appendLE(out, kDosDate, 2);
      appendLE(out, crc, 4);
      appendLE(out, member.size(), 4);
      appendLE(out, member.size(), 4);
      appendLE(out, name.size(), 2);
      appendLE(out, 0, 2); // extra length
    };
    appendLE(bytes, kLocalHeaderSig, 4);
    common(bytes);
    bytes += name;
    bytes += member;

    appendLE(central, kCentralHeaderSig, 4);
    appendLE(central, 20, 2); // version made by: 2.0, MS-DOS attributes
    common(central);
    appendLE(central, 0, 2); // comment length
    appendLE(central, 0, 2); // disk number
    appendLE(central, 0, 2); // internal attributes
    appendLE(central, 0, 4); // external attributes
    appendLE(central, offset, 4);
    central += name;
  }
  uint64_t cdOffset = bytes.size();
  if (cdOffset + central.size() >= 0xffffffffull)
    return "arrays are beyond what an npz without zip64 holds (4 GiB)";
  bytes += central;
  appendLE(bytes, kEndOfCentralDirSig, 4);
  appendLE(bytes, 0, 2); // this disk
  appendLE(bytes, 0, 2); // disk with the central directory
  appendLE(bytes, tensors.size(), 2);
  appendLE(bytes, tensors.size(), 2);
  appendLE(bytes, central.size(), 4);
  appendLE(bytes, cdOffset, 4);
  appendLE(bytes, 0, 2); // comment length
  return "";
}

std::string writeNpz(const std::string &path, const std::vector<HostTensor> &tensors) {
  std::string bytes;
  if (std::string err = encodeNpz(tensors, bytes); !err.empty())
    return path + ": " + err;
  return writeWholeFile(path, bytes);
}

} // namespace shardc::rt
