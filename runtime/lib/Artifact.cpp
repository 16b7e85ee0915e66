// Loading, validating and writing .shardc artifacts (docs/artifact-format.md).
// Everything the executor later indexes is range-checked here, before any large allocation.
#include "shardc/runtime/Artifact.h"

#include "FileIO.h"
#include "shardc/runtime/Json.h"

#include <cerrno>
#include <cstdio>
#include <algorithm>
#include <cstring>
#include <fcntl.h>
#include <limits>
#include <set>
#include <sys/stat.h>
#include <unistd.h>

namespace shardc::rt {

uint64_t fnv1a64(const void *data, size_t size) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

std::vector<int64_t> chunkStart(const BufferDesc &b, const DeviceMesh &mesh, int64_t rank) {
  std::vector<int64_t> start(b.shape.size(), 0);
  for (const ShardDim &sd : b.shard)
    start[static_cast<size_t>(sd.dim)] =
        mesh.groupIndex(rank, sd.axes) * b.shape[static_cast<size_t>(sd.dim)];
  return start;
}

std::string Artifact::resolveWeightPath(int64_t file) const {
  const std::string &recorded = weightFiles[static_cast<size_t>(file)].path;
  if (recorded.empty() || recorded[0] == '/')
    return recorded;
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos)
    return recorded;
  return path.substr(0, slash + 1) + recorded;
}

namespace {

uint64_t readU64(const char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

uint32_t readU32(const char *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i)
    v = (v << 8) | static_cast<uint8_t>(p[i]);
  return v;
}

void appendU64(std::string &out, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}

void appendU32(std::string &out, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    out += static_cast<char>((v >> (8 * i)) & 0xff);
}

bool isAligned(uint64_t offset) { return offset % MemoryBlock::kAlignment == 0; }

// Decodes the manifest JSON into an Artifact, naming the JSON path of whatever is wrong
// ("buffers[3].shape: ..."). Each read* returns false after recording the first error.
class ManifestDecoder {
public:
  explicit ManifestDecoder(Artifact &a) : a_(a) {}

  std::string decode(const JsonValue &root, uint64_t blobSize) {
    blobSize_ = blobSize;
    if (!decodeRoot(root))
      return error_;
    return "";
  }

private:
  Artifact &a_;
  uint64_t blobSize_ = 0;
  std::string error_;

  bool fail(const std::string &where, const std::string &message) {
    error_ = where.empty() ? message : where + ": " + message;
    return false;
  }

  static std::string join(const std::string &where, const std::string &key) {
    return where.empty() ? key : where + "." + key;
  }
  static std::string index(const std::string &where, size_t i) {
    return where + "[" + std::to_string(i) + "]";
  }

  const JsonValue *member(const JsonValue &obj, const char *key, const std::string &where,
                          bool required) {
    const JsonValue *v = obj.find(key);
    if (!v && required)
      fail(where, std::string("missing required key \"") + key + "\"");
    return v;
  }

  bool expectKind(const JsonValue &v, JsonValue::Kind kind, const std::string &where) {
    if (v.kind() == kind)
      return true;
    return fail(where, std::string("expected ") + jsonKindName(kind) + ", found " +
                           jsonKindName(v.kind()));
  }

  // An integer member in [min, max]; an absent optional one leaves `out` unchanged.
  bool readInt(const JsonValue &obj, const char *key, const std::string &where, int64_t &out,
               bool required, int64_t min = 0,
               int64_t max = std::numeric_limits<int64_t>::max()) {
    const JsonValue *v = member(obj, key, where, required);
    if (!v)
      return !required;
    std::string at = join(where, key);
    if (!expectKind(*v, JsonValue::Kind::Int, at))
      return false;
    if (v->asInt() < min || v->asInt() > max)
      return fail(at, std::to_string(v->asInt()) + " is out of range [" + std::to_string(min) +
                          ", " + std::to_string(max) + "]");
    out = v->asInt();
    return true;
  }

  bool readUnsigned(const JsonValue &obj, const char *key, const std::string &where, uint64_t &out,
               bool required) {
    int64_t v = static_cast<int64_t>(out);
    if (!readInt(obj, key, where, v, required))
      return false;
    out = static_cast<uint64_t>(v);
    return true;
  }

  bool readString(const JsonValue &obj, const char *key, const std::string &where,
                  std::string &out, bool required) {
    const JsonValue *v = member(obj, key, where, required);
    if (!v)
      return !required;
    if (!expectKind(*v, JsonValue::Kind::String, join(where, key)))
      return false;
    out = v->asString();
    return true;
  }

  const JsonValue *readArray(const JsonValue &obj, const char *key, const std::string &where) {
    const JsonValue *v = member(obj, key, where, true);
    if (!v || !expectKind(*v, JsonValue::Kind::Array, join(where, key)))
      return nullptr;
    return v;
  }

  bool readBufferIds(const JsonValue &obj, const char *key, const std::string &where,
                     std::vector<int64_t> &out) {
    const JsonValue *arr = readArray(obj, key, where);
    if (!arr)
      return false;
    std::string at = join(where, key);
    for (size_t i = 0; i < arr->asArray().size(); ++i) {
      const JsonValue &id = arr->asArray()[i];
      if (!expectKind(id, JsonValue::Kind::Int, index(at, i)))
        return false;
      if (id.asInt() < 0 || id.asInt() >= static_cast<int64_t>(a_.buffers.size()))
        return fail(index(at, i), "buffer id " + std::to_string(id.asInt()) +
                                      " is out of range (the manifest has " +
                                      std::to_string(a_.buffers.size()) + " buffers)");
      out.push_back(id.asInt());
    }
    return true;
  }

  bool decodeRoot(const JsonValue &root) {
    if (!expectKind(root, JsonValue::Kind::Object, "manifest"))
      return false;
    int64_t version = 0;
    if (!readInt(root, "format_version", "", version, true))
      return false;
    if (version != kArtifactFormatVersion)
      return fail("format_version", std::to_string(version) +
                                        " disagrees with the header's version " +
                                        std::to_string(kArtifactFormatVersion));
    if (!readString(root, "producer", "", a_.producer, false) ||
        !readString(root, "source", "", a_.source, false))
      return false;
    if (const JsonValue *mesh = member(root, "mesh", "", false)) {
      if (!expectKind(*mesh, JsonValue::Kind::Object, "mesh") ||
          !readInt(*mesh, "dp_replicate", "mesh", a_.mesh.dpReplicate, false, 1) ||
          !readInt(*mesh, "dp_shard", "mesh", a_.mesh.dpShard, false, 1) ||
          !readInt(*mesh, "cp", "mesh", a_.mesh.cp, false, 1) ||
          !readInt(*mesh, "tp", "mesh", a_.mesh.tp, false, 1))
        return false;
    }
    // Each axis is at most a few thousand; the bound keeps the product from overflowing.
    if (!readInt(root, "world_size", "", a_.worldSize, false, 1, kMaxWorld) || !decodeMeshAxes(root))
      return false;
    if (a_.deviceMesh.worldSize() != a_.worldSize)
      return fail("world_size", std::to_string(a_.worldSize) +
                                    " is not the product of the mesh axes");
    return decodeWeightFiles(root) && readUnsigned(root, "arena_bytes", "", a_.arenaBytes, true) &&
           readUnsigned(root, "persistent_bytes", "", a_.persistentBytes, false) &&
           decodeBuffers(root) && decodeBindings(root, "inputs", a_.inputs) &&
           decodeBindings(root, "outputs", a_.outputs) && decodeKernels(root) &&
           decodeSteps(root, "load_steps", false, a_.loadSteps) && decodeSteps(root, "steps", true, a_.steps);
  }

  // `kernels`: {source_offset, source_bytes, objects: [{target, offset, bytes}]}, blob ranges.
  bool decodeKernels(const JsonValue &root) {
    const JsonValue *k = member(root, "kernels", "", false);
    if (!k)
      return true;
    if (!expectKind(*k, JsonValue::Kind::Object, "kernels"))
      return false;
    auto inBlob = [&](uint64_t offset, uint64_t bytes, const std::string &at) {
      if (offset > blobSize_ || bytes > blobSize_ - offset)
        return fail(at, "range [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                            ") lies beyond the blob (" + std::to_string(blobSize_) + " bytes)");
      return true;
    };
    KernelModule &m = a_.kernels;
    if (!readUnsigned(*k, "source_offset", "kernels", m.sourceOffset, true) ||
        !readUnsigned(*k, "source_bytes", "kernels", m.sourceBytes, true) ||
        !inBlob(m.sourceOffset, m.sourceBytes, "kernels"))
      return false;
    const JsonValue *objects = readArray(*k, "objects", "kernels");
    if (!objects)
      return false;
    for (size_t i = 0; i < objects->asArray().size(); ++i) {
      std::string at = index("kernels.objects", i);
      const JsonValue &o = objects->asArray()[i];
      KernelObject obj;
      if (!expectKind(o, JsonValue::Kind::Object, at) || !readString(o, "target", at, obj.target, true) ||
          !readUnsigned(o, "offset", at, obj.offset, true) || !readUnsigned(o, "bytes", at, obj.bytes, true) ||
          !inBlob(obj.offset, obj.bytes, at))
        return false;
      m.objects.push_back(std::move(obj));
    }
    return true;
  }

  static constexpr int64_t kMaxWorld = 1 << 20;

  // `mesh_axes` ([[name, size], ...], outermost first) when present, else the `mesh` object's
  // four axes in their standard order. Both present must agree.
  bool decodeMeshAxes(const JsonValue &root) {
    const Mesh m = a_.mesh;
    std::vector<MeshAxis> axes = {{"dp_replicate", m.dpReplicate}, {"dp_shard", m.dpShard},
                                  {"cp", m.cp}, {"tp", m.tp}};
    if (const JsonValue *list = member(root, "mesh_axes", "", false)) {
      if (!expectKind(*list, JsonValue::Kind::Array, "mesh_axes"))
        return false;
      axes.clear();
      for (size_t i = 0; i < list->asArray().size(); ++i) {
        std::string at = index("mesh_axes", i);
        const JsonValue &pair = list->asArray()[i];
        if (!pair.isArray() || pair.asArray().size() != 2 || !pair.asArray()[0].isString() ||
            !pair.asArray()[1].isInt())
          return fail(at, "expected a [name, size] pair");
        MeshAxis axis{pair.asArray()[0].asString(), pair.asArray()[1].asInt()};
        if (axis.name.empty())
          return fail(at, "empty axis name");
        if (axis.size < 1 || axis.size > kMaxWorld)
          return fail(at, "axis size " + std::to_string(axis.size) + " is out of range [1, " +
                              std::to_string(kMaxWorld) + "]");
        for (const MeshAxis &seen : axes)
          if (seen.name == axis.name)
            return fail(at, "axis '" + axis.name + "' is listed twice");
        const JsonValue *recorded = root.find("mesh") ? root.find("mesh")->find(axis.name) : nullptr;
        if (recorded && recorded->isInt() && recorded->asInt() != axis.size)
          return fail(at, "axis '" + axis.name + "' has size " + std::to_string(axis.size) +
                              " but mesh." + axis.name + " is " +
                              std::to_string(recorded->asInt()));
        axes.push_back(std::move(axis));
      }
    }
    if (const JsonValue *mesh = root.find("mesh"))
      for (const auto &[name, size] : mesh->asObject())
        if (size.isInt() && size.asInt() > 1 &&
            std::none_of(axes.begin(), axes.end(), [&](const MeshAxis &a) { return a.name == name; }))
          return fail("mesh_axes", "lacks axis '" + name + "' of mesh (size " +
                                       std::to_string(size.asInt()) + ")");
    int64_t product = 1;
    for (const MeshAxis &axis : axes) {
      if (product > kMaxWorld / axis.size)
        return fail("world_size", std::to_string(a_.worldSize) +
                                      " is not the product of the mesh axes");
      product *= axis.size;
    }
    a_.deviceMesh = DeviceMesh(std::move(axes));
    for (const MeshAxis &axis : a_.deviceMesh.axes()) {
      if (axis.name == "dp_replicate") a_.mesh.dpReplicate = axis.size;
      if (axis.name == "dp_shard") a_.mesh.dpShard = axis.size;
      if (axis.name == "cp") a_.mesh.cp = axis.size;
      if (axis.name == "tp") a_.mesh.tp = axis.size;
    }
    return true;
  }

  bool decodeWeightFiles(const JsonValue &root) {
    const JsonValue *files = member(root, "weight_files", "", false);
    if (!files)
      return true;
    if (!expectKind(*files, JsonValue::Kind::Array, "weight_files"))
      return false;
    for (size_t i = 0; i < files->asArray().size(); ++i) {
      std::string at = index("weight_files", i);
      const JsonValue &f = files->asArray()[i];
      WeightFile wf;
      if (!expectKind(f, JsonValue::Kind::Object, at) || !readString(f, "path", at, wf.path, true) ||
          !readUnsigned(f, "size", at, wf.size, true))
        return false;
      if (wf.path.empty())
        return fail(join(at, "path"), "empty path");
      a_.weightFiles.push_back(std::move(wf));
    }
    return true;
  }

  bool decodeShape(const JsonValue &b, const std::string &at, BufferDesc &buf) {
    const JsonValue *shape = readArray(b, "shape", at);
    if (!shape)
      return false;
    std::string shapeAt = join(at, "shape");
    uint64_t elements = 1;
    for (size_t i = 0; i < shape->asArray().size(); ++i) {
      const JsonValue &d = shape->asArray()[i];
      if (!expectKind(d, JsonValue::Kind::Int, index(shapeAt, i)))
        return false;
      if (d.asInt() < 0)
        return fail(index(shapeAt, i), "negative dimension " + std::to_string(d.asInt()));
      buf.shape.push_back(d.asInt());
      // Bound the element count before multiplying so that it cannot wrap.
      uint64_t dim = static_cast<uint64_t>(d.asInt());
      if (dim != 0 && elements > (uint64_t(1) << 56) / dim)
        return fail(shapeAt, "the buffer is implausibly large");
      elements *= dim;
    }
    buf.bytes = elements * dtypeSize(buf.dtype);
    return true;
  }

  // A weight that views the stored tensor: `file_shape` (the stored tensor's shape) and
  // optional `file_start` (where the global tensor starts in it), both of global_shape's rank.
  // The view may run past the stored tensor (padding), not start past it.
  bool decodeIntList(const JsonValue &v, const std::string &at, size_t rank, std::vector<int64_t> &out) {
    if (!expectKind(v, JsonValue::Kind::Array, at))
      return false;
    if (v.asArray().size() != rank)
      return fail(at, "has " + std::to_string(v.asArray().size()) + " dims, global_shape has " +
                          std::to_string(rank));
    for (size_t i = 0; i < rank; ++i) {
      const JsonValue &d = v.asArray()[i];
      if (!expectKind(d, JsonValue::Kind::Int, index(at, i)))
        return false;
      if (d.asInt() < 0)
        return fail(index(at, i), "negative dimension " + std::to_string(d.asInt()));
      out.push_back(d.asInt());
    }
    return true;
  }
  bool decodeFileShape(const JsonValue &b, const std::string &at, BufferDesc &buf) {
    const JsonValue *fs = b.find("file_shape");
    const JsonValue *st = b.find("file_start");
    if (!fs && st)
      return fail(at, "file_start without file_shape");
    if (!fs)
      return true;
    size_t rank = buf.globalShape.size();
    if (!decodeIntList(*fs, join(at, "file_shape"), rank, buf.fileShape) ||
        (st && !decodeIntList(*st, join(at, "file_start"), rank, buf.fileStart)))
      return false;
    if (const JsonValue *r = b.find("file_repeat")) {
      std::string rAt = join(at, "file_repeat");
      if (!expectKind(*r, JsonValue::Kind::Object, rAt) || !readInt(*r, "dim", rAt, buf.repeatDim, true) ||
          !readInt(*r, "block", rAt, buf.repeatBlock, true) || !readInt(*r, "times", rAt, buf.repeatTimes, true))
        return false;
      if (buf.repeatDim < 0 || buf.repeatDim >= int64_t(rank) || buf.repeatBlock < 1 || buf.repeatTimes < 1 ||
          buf.fileShape[size_t(buf.repeatDim)] % buf.repeatBlock != 0 ||
          buf.fileShape[size_t(buf.repeatDim)] * buf.repeatTimes != buf.globalShape[size_t(buf.repeatDim)])
        return fail(rAt, "does not describe global dim " + std::to_string(buf.repeatDim) +
                             " as repeated blocks of the stored one");
    }
    for (size_t i = 0; i < rank; ++i)
      if (!buf.fileStart.empty() && buf.fileStart[i] >= std::max<int64_t>(1, buf.fileShape[i]))
        return fail(index(join(at, "file_start"), i),
                    "start " + std::to_string(buf.fileStart[i]) + " lies outside the stored dim of " +
                        std::to_string(buf.fileShape[i]));
    return true;
  }

  // `shard` and `global_shape` (docs/artifact-format.md, multi-rank artifacts): every split
  // dim divides evenly and `shape` is exactly the chunk.
  bool decodeShard(const JsonValue &b, const std::string &at, BufferDesc &buf) {
    buf.globalShape = buf.shape;
    buf.globalBytes = buf.bytes;
    const JsonValue *shard = b.find("shard");
    const JsonValue *global = b.find("global_shape");
    if (!shard && !global)
      return true;
    if (!shard)
      return fail(at, "global_shape without shard");
    if (!global)
      return fail(at, "missing required key \"global_shape\" (needed with shard)");
    std::string globalAt = join(at, "global_shape"), shardAt = join(at, "shard");
    if (!expectKind(*global, JsonValue::Kind::Array, globalAt) ||
        !expectKind(*shard, JsonValue::Kind::Array, shardAt))
      return false;
    if (global->asArray().size() != buf.shape.size())
      return fail(globalAt, "has " + std::to_string(global->asArray().size()) +
                                " dims, shape has " + std::to_string(buf.shape.size()));
    std::vector<int64_t> globalShape;
    uint64_t elements = 1;
    for (size_t i = 0; i < global->asArray().size(); ++i) {
      const JsonValue &d = global->asArray()[i];
      if (!expectKind(d, JsonValue::Kind::Int, index(globalAt, i)))
        return false;
      if (d.asInt() < 0)
        return fail(index(globalAt, i), "negative dimension " + std::to_string(d.asInt()));
      uint64_t dim = static_cast<uint64_t>(d.asInt());
      if (dim != 0 && elements > (uint64_t(1) << 56) / dim)
        return fail(globalAt, "the tensor is implausibly large");
      elements *= dim;
      globalShape.push_back(d.asInt());
    }
    std::vector<int64_t> parts(buf.shape.size(), 1);
    std::vector<std::string> usedAxes;
    for (size_t i = 0; i < shard->asArray().size(); ++i) {
      std::string entryAt = index(shardAt, i);
      const JsonValue &entry = shard->asArray()[i];
      ShardDim sd;
      if (!expectKind(entry, JsonValue::Kind::Object, entryAt) ||
          !readInt(entry, "dim", entryAt, sd.dim, true, 0,
                   static_cast<int64_t>(buf.shape.size()) - 1))
        return false;
      const JsonValue *axes = readArray(entry, "axes", entryAt);
      if (!axes)
        return false;
      for (size_t k = 0; k < axes->asArray().size(); ++k) {
        if (!expectKind(axes->asArray()[k], JsonValue::Kind::String, index(join(entryAt, "axes"), k)))
          return false;
        sd.axes.push_back(axes->asArray()[k].asString());
      }
      if (std::string err = a_.deviceMesh.checkAxes(sd.axes); !err.empty())
        return fail(join(entryAt, "axes"), err);
      for (const std::string &axis : sd.axes) {
        for (const std::string &used : usedAxes)
          if (used == axis)
            return fail(join(entryAt, "axes"), "mesh axis '" + axis + "' splits two dims");
        usedAxes.push_back(axis);
      }
      size_t d = static_cast<size_t>(sd.dim);
      if (parts[d] != 1 || std::any_of(buf.shard.begin(), buf.shard.end(),
                                       [&](const ShardDim &o) { return o.dim == sd.dim; }))
        return fail(join(entryAt, "dim"), "dim " + std::to_string(sd.dim) +
                                              " is listed twice (list all its axes in one entry)");
      parts[d] = a_.deviceMesh.groupSize(sd.axes);
      buf.shard.push_back(std::move(sd));
    }
    for (size_t d = 0; d < buf.shape.size(); ++d) {
      if (globalShape[d] % parts[d] != 0)
        return fail(index(globalAt, d), std::to_string(globalShape[d]) +
                                            " does not divide into " + std::to_string(parts[d]) +
                                            " equal chunks");
      if (buf.shape[d] * parts[d] != globalShape[d])
        return fail(index(join(at, "shape"), d),
                    std::to_string(buf.shape[d]) + " is not global_shape[" + std::to_string(d) +
                        "] " + std::to_string(globalShape[d]) + " / " + std::to_string(parts[d]));
    }
    buf.globalShape = std::move(globalShape);
    buf.globalBytes = elements * dtypeSize(buf.dtype);
    return true;
  }

  bool decodeBuffers(const JsonValue &root) {
    const JsonValue *buffers = readArray(root, "buffers", "");
    if (!buffers)
      return false;
    const auto &items = buffers->asArray();
    a_.buffers.resize(items.size());
    std::vector<bool> seen(items.size(), false);
    for (size_t i = 0; i < items.size(); ++i) {
      std::string at = index("buffers", i);
      const JsonValue &b = items[i];
      if (!expectKind(b, JsonValue::Kind::Object, at))
        return false;
      int64_t id = 0;
      if (!readInt(b, "id", at, id, true))
        return false;
      if (id >= static_cast<int64_t>(items.size()))
        return fail(join(at, "id"), "buffer id " + std::to_string(id) +
                                        " is out of range (the manifest has " +
                                        std::to_string(items.size()) + " buffers)");
      if (seen[static_cast<size_t>(id)])
        return fail(join(at, "id"), "duplicate buffer id " + std::to_string(id));
      seen[static_cast<size_t>(id)] = true;
      BufferDesc &buf = a_.buffers[static_cast<size_t>(id)];
      buf.id = id;
      std::string dtype, storage;
      if (!readString(b, "name", at, buf.name, false) || !readString(b, "dtype", at, dtype, true))
        return false;
      std::optional<DType> dt = parseDType(dtype);
      if (!dt)
        return fail(join(at, "dtype"), "unknown dtype \"" + dtype + "\"");
      buf.dtype = *dt;
      if (!decodeShape(b, at, buf) || !decodeShard(b, at, buf))
        return false;
      if (const JsonValue *bytes = b.find("bytes")) {
        if (!expectKind(*bytes, JsonValue::Kind::Int, join(at, "bytes")))
          return false;
        if (static_cast<uint64_t>(bytes->asInt()) != buf.bytes)
          return fail(join(at, "bytes"), std::to_string(bytes->asInt()) + " disagrees with " +
                                             dtype + " " + shapeString(buf.shape) + " (" +
                                             std::to_string(buf.bytes) + " bytes)");
      }
      if (!readString(b, "storage", at, storage, true) || !decodeStorage(b, at, storage, buf))
        return false;
    }
    return true;
  }

  // An arena or persistent buffer: a 64-byte aligned `offset` inside a block of `capacity`
  // bytes (named `what` in errors).
  bool decodeBlockOffset(const JsonValue &b, const std::string &at, BufferDesc &buf, uint64_t capacity,
                         const char *what) {
    if (!readUnsigned(b, "offset", at, buf.offset, true))
      return false;
    if (!isAligned(buf.offset))
      return fail(join(at, "offset"), std::to_string(buf.offset) + " is not 64-byte aligned");
    if (buf.offset > capacity || buf.bytes > capacity - buf.offset)
      return fail(at, std::string(what).substr(0, std::string(what).find('_')) + " range [" +
                          std::to_string(buf.offset) + ", " + std::to_string(buf.offset + buf.bytes) +
                          ") overflows " + what + " " + std::to_string(capacity));
    return true;
  }

  bool decodeStorage(const JsonValue &b, const std::string &at, const std::string &storage,
                     BufferDesc &buf) {
    if (storage == "arena") {
      buf.storage = Storage::Arena;
      return decodeBlockOffset(b, at, buf, a_.arenaBytes, "arena_bytes");
    }
    if (storage == "persistent") {
      buf.storage = Storage::Persistent;
      return decodeBlockOffset(b, at, buf, a_.persistentBytes, "persistent_bytes");
    }
    if (storage == "weight") {
      buf.storage = Storage::Weight;
      buf.transform = "none";
      if (!readInt(b, "file", at, buf.file, true) ||
          !readUnsigned(b, "file_offset", at, buf.fileOffset, true) ||
          !readString(b, "transform", at, buf.transform, false))
        return false;
      if (buf.file >= static_cast<int64_t>(a_.weightFiles.size()))
        return fail(join(at, "file"), "weight file index " + std::to_string(buf.file) +
                                          " is out of range (the manifest has " +
                                          std::to_string(a_.weightFiles.size()) +
                                          " weight files)");
      if (!decodeFileShape(b, at, buf))
        return false;
      uint64_t fileBytes = buf.globalBytes;
      if (buf.viewed()) {
        fileBytes = dtypeSize(buf.dtype);
        for (int64_t d : buf.fileShape)
          fileBytes *= static_cast<uint64_t>(d);
      }
      uint64_t fileSize = a_.weightFiles[static_cast<size_t>(buf.file)].size;
      if (buf.fileOffset > fileSize || fileBytes > fileSize - buf.fileOffset)
        return fail(at, "weight range [" + std::to_string(buf.fileOffset) + ", " +
                            std::to_string(buf.fileOffset + fileBytes) +
                            ") lies beyond the end of weight file " + std::to_string(buf.file) +
                            " (" + std::to_string(fileSize) + " bytes)");
      return true;
    }
    if (storage == "constant") {
      buf.storage = Storage::Constant;
      if (buf.sharded())
        return fail(join(at, "shard"), "a constant cannot be sharded (the compiler slices it)");
      if (!readUnsigned(b, "blob_offset", at, buf.blobOffset, true))
        return false;
      if (!isAligned(buf.blobOffset))
        return fail(join(at, "blob_offset"),
                    std::to_string(buf.blobOffset) + " is not 64-byte aligned");
      if (buf.blobOffset > blobSize_ || buf.bytes > blobSize_ - buf.blobOffset)
        return fail(at, "blob range [" + std::to_string(buf.blobOffset) + ", " +
                            std::to_string(buf.blobOffset + buf.bytes) +
                            ") lies beyond the blob (" + std::to_string(blobSize_) + " bytes)");
      return true;
    }
    return fail(join(at, "storage"),
                "unknown storage \"" + storage + "\" (expected arena, weight or constant)");
  }

  bool decodeBindings(const JsonValue &root, const char *key, std::vector<IoBinding> &out) {
    const JsonValue *items = readArray(root, key, "");
    if (!items)
      return false;
    std::set<std::string> names;
    for (size_t i = 0; i < items->asArray().size(); ++i) {
      std::string at = index(key, i);
      const JsonValue &item = items->asArray()[i];
      IoBinding binding;
      if (!expectKind(item, JsonValue::Kind::Object, at) ||
          !readString(item, "name", at, binding.name, true) ||
          !readInt(item, "buffer", at, binding.buffer, true))
        return false;
      if (binding.buffer >= static_cast<int64_t>(a_.buffers.size()))
        return fail(join(at, "buffer"), "buffer id " + std::to_string(binding.buffer) +
                                            " is out of range (the manifest has " +
                                            std::to_string(a_.buffers.size()) + " buffers)");
      if (a_.buffers[static_cast<size_t>(binding.buffer)].storage != Storage::Arena)
        return fail(join(at, "buffer"), "buffer " + std::to_string(binding.buffer) +
                                            " is not an arena buffer");
      if (std::string(key) == "outputs" && a_.buffers[static_cast<size_t>(binding.buffer)].sharded())
        return fail(join(at, "buffer"), "buffer " + std::to_string(binding.buffer) +
                                            " is sharded; outputs must be replicated (end the "
                                            "program with an all_gather)");
      if (!names.insert(binding.name).second)
        return fail(join(at, "name"), "duplicate name \"" + binding.name + "\"");
      out.push_back(std::move(binding));
    }
    return true;
  }

  bool decodeAttr(const JsonValue &v, const std::string &at, AttrValue &out) {
    switch (v.kind()) {
    case JsonValue::Kind::Bool: out = v.asBool(); return true;
    case JsonValue::Kind::Int: out = v.asInt(); return true;
    case JsonValue::Kind::Double: out = v.asDouble(); return true;
    case JsonValue::Kind::String: out = v.asString(); return true;
    case JsonValue::Kind::Array: {
      bool integral = true, strings = !v.asArray().empty();
      for (const JsonValue &item : v.asArray())
        strings = strings && item.isString();
      if (strings) { // mesh axis names of collective steps
        std::vector<std::string> names;
        for (const JsonValue &item : v.asArray())
          names.push_back(item.asString());
        out = std::move(names);
        return true;
      }
      for (const JsonValue &item : v.asArray()) {
        if (!item.isNumber())
          return fail(at, "an attribute array must hold numbers only or strings only");
        integral = integral && item.isInt();
      }
      if (integral) {
        std::vector<int64_t> ints;
        for (const JsonValue &item : v.asArray())
          ints.push_back(item.asInt());
        out = std::move(ints);
      } else {
        std::vector<double> doubles;
        for (const JsonValue &item : v.asArray())
          doubles.push_back(item.asDouble());
        out = std::move(doubles);
      }
      return true;
    }
    default:
      return fail(at, std::string("unsupported attribute value (") + jsonKindName(v.kind()) +
                          "); expected a boolean, number, string or array of numbers or strings");
    }
  }

  // `steps` (required) write arena buffers; `load_steps` (optional) read only weights,
  // constants and persistent buffers, and write persistent buffers.
  bool decodeSteps(const JsonValue &root, const char *key, bool required, std::vector<Step> &out) {
    if (!required && !root.find(key))
      return true;
    const JsonValue *steps = readArray(root, key, "");
    if (!steps)
      return false;
    bool load = !required;
    for (size_t i = 0; i < steps->asArray().size(); ++i) {
      std::string at = index(key, i);
      const JsonValue &s = steps->asArray()[i];
      Step step;
      if (!expectKind(s, JsonValue::Kind::Object, at) || !readString(s, "op", at, step.op, true) ||
          !readString(s, "loc", at, step.loc, false) || !readBufferIds(s, "in", at, step.in) ||
          !readBufferIds(s, "out", at, step.out) || !readUnsigned(s, "flops", at, step.flops, false) ||
          !readUnsigned(s, "bytes", at, step.bytes, false))
        return false;
      Storage writes = load ? Storage::Persistent : Storage::Arena;
      for (size_t k = 0; k < step.out.size(); ++k)
        if (a_.buffers[static_cast<size_t>(step.out[k])].storage != writes)
          return fail(index(join(at, "out"), k),
                      "step '" + step.op + "' writes buffer " + std::to_string(step.out[k]) + ", which is not " +
                          (load ? "a persistent" : "an arena") + " buffer");
      if (load)
        for (size_t k = 0; k < step.in.size(); ++k)
          if (a_.buffers[static_cast<size_t>(step.in[k])].storage == Storage::Arena)
            return fail(index(join(at, "in"), k), "load step '" + step.op + "' reads arena buffer " +
                                                      std::to_string(step.in[k]) +
                                                      " (load steps read weights, constants and persistent buffers)");
      if (const JsonValue *attrs = member(s, "attrs", at, false)) {
        std::string attrsAt = join(at, "attrs");
        if (!expectKind(*attrs, JsonValue::Kind::Object, attrsAt))
          return false;
        for (const auto &kv : attrs->asObject()) {
          AttrValue value;
          if (!decodeAttr(kv.second, join(attrsAt, kv.first), value))
            return false;
          step.attrs.set(kv.first, std::move(value));
        }
      }
      out.push_back(std::move(step));
    }
    return true;
  }
};

struct ArtifactHeader {
  uint64_t manifestBytes = 0, blobBytes = 0, manifestChecksum = 0, blobChecksum = 0;
};

// Checks the 48-byte header against the file's size; `where` is "path: ".
std::string readHeader(std::string_view bytes, uint64_t fileSize, const std::string &where,
                       ArtifactHeader &h) {
  if (fileSize < kArtifactHeaderBytes)
    return where + "file is " + std::to_string(fileSize) +
           " bytes, shorter than the 48-byte artifact header (file truncated?)";
  const char *p = bytes.data();
  if (std::memcmp(p, kArtifactMagic, sizeof kArtifactMagic) != 0)
    return where + "not a shardc artifact (bad magic)";
  uint32_t version = readU32(p + 8);
  if (version != kArtifactFormatVersion)
    return where + "artifact format version " + std::to_string(version) +
           ", this runtime reads version " + std::to_string(kArtifactFormatVersion);
  if (readU32(p + 12) != 0)
    return where + "reserved header field is not zero (file corrupt)";
  h.manifestBytes = readU64(p + 16);
  h.blobBytes = readU64(p + 24);
  h.manifestChecksum = readU64(p + 32);
  h.blobChecksum = readU64(p + 40);
  uint64_t available = fileSize - kArtifactHeaderBytes;
  if (h.manifestBytes > available || h.blobBytes != available - h.manifestBytes)
    return where + "file is " + std::to_string(fileSize) +
           " bytes but its header describes a 48-byte header, a " +
           std::to_string(h.manifestBytes) + "-byte manifest and a " +
           std::to_string(h.blobBytes) + "-byte blob (file truncated or corrupt)";
  return "";
}

// Verifies both checksums, then decodes and validates the manifest into `out`, which already
// holds the path and the blob.
std::string decodeArtifact(std::string_view manifest, const ArtifactHeader &h, Artifact &out) {
  const std::string where = out.path + ": ";
  if (fnv1a64(manifest.data(), manifest.size()) != h.manifestChecksum)
    return where + "checksum mismatch in manifest (file corrupt or truncated)";
  if (fnv1a64(out.blob.data(), out.blob.size()) != h.blobChecksum)
    return where + "checksum mismatch in blob (file corrupt or truncated)";
  JsonValue root;
  if (std::string err = parseJson(manifest, root); !err.empty())
    return where + "manifest: " + err;
  if (std::string err = ManifestDecoder(out).decode(root, out.blob.size()); !err.empty())
    return where + "manifest: " + err;
  return "";
}

std::string allocateBlob(uint64_t bytes, const std::string &where, Artifact &out) {
  out.blob = MemoryBlock::allocateHost(bytes);
  if (!out.blob)
    return where + "cannot allocate " + std::to_string(bytes) + " bytes for the blob";
  return "";
}


} // namespace

std::string parseArtifact(std::string_view bytes, const std::string &path, Artifact &out) {
  out = Artifact();
  out.path = path;
  const std::string where = path + ": ";
  ArtifactHeader h;
  if (std::string err = readHeader(bytes, bytes.size(), where, h); !err.empty())
    return err;
  if (std::string err = allocateBlob(h.blobBytes, where, out); !err.empty())
    return err;
  std::memcpy(out.blob.data(), bytes.data() + kArtifactHeaderBytes + h.manifestBytes, h.blobBytes);
  return decodeArtifact(bytes.substr(kArtifactHeaderBytes, h.manifestBytes), h, out);
}

std::string loadArtifact(const std::string &path, Artifact &out) {
  out = Artifact();
  out.path = path;
  const std::string where = path + ": ";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return where + "cannot open: " + std::strerror(errno);
  // Read the header, the manifest and the blob each straight to where it is kept.
  auto loadFrom = [&]() -> std::string {
    struct stat st;
    if (::fstat(fd, &st) != 0)
      return where + "cannot stat: " + std::strerror(errno);
    if (!S_ISREG(st.st_mode))
      return where + "not a regular file";
    uint64_t fileSize = static_cast<uint64_t>(st.st_size);
    char header[kArtifactHeaderBytes] = {};
    if (fileSize >= kArtifactHeaderBytes)
      if (std::string err = preadFully(fd, header, sizeof header, 0); !err.empty())
        return where + "read failed: " + err;
    ArtifactHeader h;
    if (std::string err = readHeader(std::string_view(header, sizeof header), fileSize, where, h);
        !err.empty())
      return err;
    std::string manifest(h.manifestBytes, '\0');
    if (std::string err = preadFully(fd, manifest.data(), h.manifestBytes, kArtifactHeaderBytes);
        !err.empty())
      return where + "read failed: " + err;
    if (std::string err = allocateBlob(h.blobBytes, where, out); !err.empty())
      return err;
    if (std::string err = preadFully(fd, out.blob.data(), h.blobBytes,
                                     kArtifactHeaderBytes + h.manifestBytes);
        !err.empty())
      return where + "read failed: " + err;
    return decodeArtifact(manifest, h, out);
  };
  std::string err = loadFrom();
  ::close(fd);
  return err;
}

std::string encodeArtifact(std::string_view manifestJson, std::string_view blob) {
  std::string out;
  out.reserve(kArtifactHeaderBytes + manifestJson.size() + blob.size());
  out.append(kArtifactMagic, sizeof kArtifactMagic);
  appendU32(out, kArtifactFormatVersion);
  appendU32(out, 0);
  appendU64(out, manifestJson.size());
  appendU64(out, blob.size());
  appendU64(out, fnv1a64(manifestJson.data(), manifestJson.size()));
  appendU64(out, fnv1a64(blob.data(), blob.size()));
  out.append(manifestJson);
  out.append(blob);
  return out;
}

std::string writeArtifact(const std::string &path, std::string_view manifestJson,
                          std::string_view blob) {
  std::string bytes = encodeArtifact(manifestJson, blob);
  return writeWholeFile(path, bytes);
}

} // namespace shardc::rt
