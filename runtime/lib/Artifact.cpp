// Loading, validating and writing .shardc artifacts (docs/artifact-format.md): the header
// (ArtifactFormat.h), the FlatBuffers verifier on the manifest, then the semantic checks
// while converting it to the in-memory structs of Artifact.h.
// Everything the executor later indexes is range-checked here, before any large allocation.
#include "shardc/runtime/Artifact.h"

#include "FileIO.h"
#include "shardc/runtime/ManifestSchema.h"

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

bool isAligned(uint64_t offset) { return offset % MemoryBlock::kAlignment == 0; }

static_assert(static_cast<int>(fb::DType::Bool) == static_cast<int>(DType::Bool) &&
                  static_cast<int>(fb::DType::BF16) == static_cast<int>(DType::BF16) &&
                  static_cast<int>(fb::DType::U8) == static_cast<int>(DType::U8),
              "the schema's DType must list shardc::rt::DType's values in order");
static_assert(static_cast<int>(fb::Storage::Persistent) == static_cast<int>(Storage::Persistent) &&
                  static_cast<int>(fb::Storage::State) == static_cast<int>(Storage::State),
              "the schema's Storage must list shardc::rt::Storage's values in order");

using Longs = flatbuffers::Vector<int64_t>;

// Converts the verified manifest into an Artifact, checking what the verifier cannot
// (ranges, cross-references), and naming the field of whatever is wrong ("buffers[3].shape:
// ..."). Each check returns false after recording the first error.
class ManifestConverter {
public:
  explicit ManifestConverter(Artifact &a) : a_(a) {}

  std::string convert(const fb::Manifest &m, uint64_t blobSize) {
    blobSize_ = blobSize;
    if (!convertRoot(m))
      return error_;
    return "";
  }

private:
  Artifact &a_;
  uint64_t blobSize_ = 0;
  std::string error_;
  static constexpr int64_t kMaxWorld = 1 << 20;

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
  static std::string str(const flatbuffers::String *s) { return s ? s->str() : std::string(); }
  template <typename T> static size_t count(const flatbuffers::Vector<T> *v) { return v ? v->size() : 0; }

  bool inRange(int64_t v, const std::string &at, int64_t min, int64_t max) {
    if (v < min || v > max)
      return fail(at, std::to_string(v) + " is out of range [" + std::to_string(min) + ", " +
                          std::to_string(max) + "]");
    return true;
  }

  bool bufferId(int64_t id, const std::string &at) {
    if (id < 0 || id >= static_cast<int64_t>(a_.buffers.size()))
      return fail(at, "buffer id " + std::to_string(id) + " is out of range (the manifest has " +
                          std::to_string(a_.buffers.size()) + " buffers)");
    return true;
  }

  bool bufferIds(const Longs *ids, const std::string &at, std::vector<int64_t> &out) {
    for (size_t i = 0; i < count(ids); ++i) {
      if (!bufferId(ids->Get(static_cast<flatbuffers::uoffset_t>(i)), index(at, i)))
        return false;
      out.push_back(ids->Get(static_cast<flatbuffers::uoffset_t>(i)));
    }
    return true;
  }

  bool convertRoot(const fb::Manifest &m) {
    if (m.format_version() != kArtifactFormatVersion)
      return fail("format_version", std::to_string(m.format_version()) +
                                        " disagrees with the header's version " +
                                        std::to_string(kArtifactFormatVersion));
    a_.producer = str(m.producer());
    a_.source = str(m.source());
    // Each axis is at most a few thousand; the bound keeps the product from overflowing.
    a_.worldSize = m.world_size();
    if (!inRange(a_.worldSize, "world_size", 1, kMaxWorld) || !convertMesh(m))
      return false;
    if (a_.deviceMesh.worldSize() != a_.worldSize)
      return fail("world_size", std::to_string(a_.worldSize) + " is not the product of the mesh axes");
    a_.arenaBytes = m.arena_bytes();
    a_.persistentBytes = m.persistent_bytes();
    a_.hostArenaBytes = m.host_arena_bytes();
    a_.hostPersistentBytes = m.host_persistent_bytes();
    return convertWeightFiles(m) && convertBuffers(m) && convertBindings(m.inputs(), "inputs", a_.inputs) &&
           convertBindings(m.outputs(), "outputs", a_.outputs) && convertKernels(m) &&
           convertSteps(m.load_steps(), "load_steps", true, a_.loadSteps) &&
           convertSteps(m.steps(), "steps", false, a_.steps);
  }

  // `mesh`: (name, size) pairs, outermost first; none: one rank.
  bool convertMesh(const fb::Manifest &m) {
    std::vector<MeshAxis> axes;
    int64_t product = 1, ep = 1;
    for (size_t i = 0; i < count(m.mesh()); ++i) {
      std::string at = index("mesh", i);
      const fb::MeshAxis *ax = m.mesh()->Get(static_cast<flatbuffers::uoffset_t>(i));
      MeshAxis axis{ax->name()->str(), ax->size()};
      if (ax->sub()) { // expert parallelism's sub-axes of dp_shard x cp
        if (axis.name != "ep" && axis.name != "ep_shard")
          return fail(at, "only ep and ep_shard are sub-axes, not '" + axis.name + "'");
        if (axis.name == "ep")
          ep = axis.size;
        continue;
      }
      if (axis.name.empty())
        return fail(at, "empty axis name");
      if (axis.size < 1 || axis.size > kMaxWorld)
        return fail(at, "axis size " + std::to_string(axis.size) + " is out of range [1, " +
                            std::to_string(kMaxWorld) + "]");
      for (const MeshAxis &seen : axes)
        if (seen.name == axis.name)
          return fail(at, "axis '" + axis.name + "' is listed twice");
      if (product > kMaxWorld / axis.size)
        return fail("world_size", std::to_string(a_.worldSize) + " is not the product of the mesh axes");
      product *= axis.size;
      axes.push_back(std::move(axis));
    }
    a_.deviceMesh = DeviceMesh(std::move(axes));
    if (std::string err = a_.deviceMesh.setExpertParallel(ep); !err.empty())
      return fail("mesh", err);
    return true;
  }

  // `kernels`: the fused kernels' source and objects, blob ranges.
  bool convertKernels(const fb::Manifest &m) {
    const fb::Kernels *k = m.kernels();
    if (!k)
      return true;
    auto inBlob = [&](uint64_t offset, uint64_t bytes, const std::string &at) {
      if (offset > blobSize_ || bytes > blobSize_ - offset)
        return fail(at, "range [" + std::to_string(offset) + ", " + std::to_string(offset + bytes) +
                            ") lies beyond the blob (" + std::to_string(blobSize_) + " bytes)");
      return true;
    };
    KernelModule &km = a_.kernels;
    km.sourceOffset = k->source_offset();
    km.sourceBytes = k->source_bytes();
    if (!inBlob(km.sourceOffset, km.sourceBytes, "kernels"))
      return false;
    for (size_t i = 0; i < count(k->objects()); ++i) {
      const fb::KernelObject *o = k->objects()->Get(static_cast<flatbuffers::uoffset_t>(i));
      KernelObject obj{o->target()->str(), o->offset(), o->bytes()};
      if (!inBlob(obj.offset, obj.bytes, index("kernels.objects", i)))
        return false;
      km.objects.push_back(std::move(obj));
    }
    return true;
  }

  bool convertWeightFiles(const fb::Manifest &m) {
    for (size_t i = 0; i < count(m.weight_files()); ++i) {
      const fb::WeightFile *f = m.weight_files()->Get(static_cast<flatbuffers::uoffset_t>(i));
      WeightFile wf{f->path()->str(), f->size()};
      if (wf.path.empty())
        return fail(join(index("weight_files", i), "path"), "empty path");
      a_.weightFiles.push_back(std::move(wf));
    }
    return true;
  }

  // A non-negative shape into `out`, its element count bounded so that it cannot wrap.
  bool dims(const Longs *v, const std::string &at, std::vector<int64_t> &out, uint64_t &elements) {
    elements = 1;
    for (size_t i = 0; i < count(v); ++i) {
      int64_t d = v->Get(static_cast<flatbuffers::uoffset_t>(i));
      if (d < 0)
        return fail(index(at, i), "negative dimension " + std::to_string(d));
      out.push_back(d);
      uint64_t dim = static_cast<uint64_t>(d);
      if (dim != 0 && elements > (uint64_t(1) << 56) / dim)
        return fail(at, "the buffer is implausibly large");
      elements *= dim;
    }
    return true;
  }

  // A weight that views the stored tensor: `file_shape` and optional `file_start`, both of
  // global_shape's rank. The view may run past the stored tensor (padding), not start past it.
  bool convertFileShape(const fb::Buffer &b, const std::string &at, BufferDesc &buf) {
    if (!b.file_shape() && b.file_start())
      return fail(at, "file_start without file_shape");
    if (!b.file_shape())
      return true;
    size_t rank = buf.globalShape.size();
    auto list = [&](const Longs *v, const char *key, std::vector<int64_t> &out) {
      if (v->size() != rank)
        return fail(join(at, key), "has " + std::to_string(v->size()) + " dims, global_shape has " +
                                       std::to_string(rank));
      uint64_t elements = 0;
      return dims(v, join(at, key), out, elements);
    };
    if (!list(b.file_shape(), "file_shape", buf.fileShape) ||
        (b.file_start() && !list(b.file_start(), "file_start", buf.fileStart)))
      return false;
    if (const fb::FileRepeat *r = b.file_repeat()) {
      buf.repeatDim = r->dim();
      buf.repeatBlock = r->block();
      buf.repeatTimes = r->times();
      // The repeated extent is the stored dim, or with file_start a part of it from there (a
      // packed projection's kv part).
      size_t d = size_t(buf.repeatDim);
      bool bad = buf.repeatDim < 0 || d >= rank || buf.repeatBlock < 1 || buf.repeatTimes < 1 ||
                 buf.globalShape[d] % buf.repeatTimes != 0;
      int64_t extent = bad ? 0 : buf.globalShape[d] / buf.repeatTimes;
      if (bad || extent % buf.repeatBlock != 0 ||
          (buf.fileStart.empty() ? extent != buf.fileShape[d] : buf.fileStart[d] + extent > buf.fileShape[d]))
        return fail(join(at, "file_repeat"), "does not describe global dim " + std::to_string(buf.repeatDim) +
                                                 " as repeated blocks of the stored one");
    }
    for (size_t i = 0; i < rank; ++i)
      if (!buf.fileStart.empty() && buf.fileStart[i] >= std::max<int64_t>(1, buf.fileShape[i]))
        return fail(index(join(at, "file_start"), i),
                    "start " + std::to_string(buf.fileStart[i]) + " lies outside the stored dim of " +
                        std::to_string(buf.fileShape[i]));
    return true;
  }

  // `shard` and `global_shape`: every split dim divides evenly and `shape` is exactly the chunk.
  bool convertShard(const fb::Buffer &b, const std::string &at, BufferDesc &buf) {
    buf.globalShape = buf.shape;
    buf.globalBytes = buf.bytes;
    if (!b.shard() && !b.global_shape())
      return true;
    if (!b.shard())
      return fail(at, "global_shape without shard");
    if (!b.global_shape())
      return fail(at, "missing required field \"global_shape\" (needed with shard)");
    std::string globalAt = join(at, "global_shape"), shardAt = join(at, "shard");
    if (b.global_shape()->size() != buf.shape.size())
      return fail(globalAt, "has " + std::to_string(b.global_shape()->size()) + " dims, shape has " +
                                std::to_string(buf.shape.size()));
    std::vector<int64_t> globalShape;
    uint64_t elements = 1;
    if (!dims(b.global_shape(), globalAt, globalShape, elements))
      return false;
    std::vector<int64_t> parts(buf.shape.size(), 1);
    std::vector<std::string> usedAxes;
    for (size_t i = 0; i < b.shard()->size(); ++i) {
      std::string entryAt = index(shardAt, i);
      const fb::ShardDim *entry = b.shard()->Get(static_cast<flatbuffers::uoffset_t>(i));
      ShardDim sd;
      sd.dim = entry->dim();
      if (!inRange(sd.dim, join(entryAt, "dim"), 0, static_cast<int64_t>(buf.shape.size()) - 1))
        return false;
      for (const flatbuffers::String *axis : *entry->axes())
        sd.axes.push_back(axis->str());
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
        return fail(index(globalAt, d), std::to_string(globalShape[d]) + " does not divide into " +
                                            std::to_string(parts[d]) + " equal chunks");
      if (buf.shape[d] * parts[d] != globalShape[d])
        return fail(index(join(at, "shape"), d),
                    std::to_string(buf.shape[d]) + " is not global_shape[" + std::to_string(d) + "] " +
                        std::to_string(globalShape[d]) + " / " + std::to_string(parts[d]));
    }
    buf.globalShape = std::move(globalShape);
    buf.globalBytes = elements * dtypeSize(buf.dtype);
    return true;
  }

  bool convertBuffers(const fb::Manifest &m) {
    a_.buffers.resize(m.buffers()->size());
    for (size_t i = 0; i < a_.buffers.size(); ++i) {
      std::string at = index("buffers", i);
      const fb::Buffer &b = *m.buffers()->Get(static_cast<flatbuffers::uoffset_t>(i));
      BufferDesc &buf = a_.buffers[i];
      buf.id = static_cast<int64_t>(i);
      buf.name = str(b.name());
      if (b.dtype() > fb::DType::MAX)
        return fail(join(at, "dtype"), "unknown dtype " + std::to_string(static_cast<int>(b.dtype())));
      buf.dtype = static_cast<DType>(static_cast<uint8_t>(b.dtype()));
      uint64_t elements = 0;
      if (!dims(b.shape(), join(at, "shape"), buf.shape, elements))
        return false;
      buf.bytes = elements * dtypeSize(buf.dtype);
      if (!convertShard(b, at, buf) || !convertStorage(b, at, buf))
        return false;
    }
    return true;
  }

  // An arena or persistent buffer: a 64-byte aligned `offset` inside a block of `capacity`
  // bytes (named `what` in errors).
  bool blockOffset(const std::string &at, BufferDesc &buf, uint64_t capacity, const char *what) {
    if (!isAligned(buf.offset))
      return fail(join(at, "offset"), std::to_string(buf.offset) + " is not 64-byte aligned");
    if (buf.offset > capacity || buf.bytes > capacity - buf.offset)
      return fail(at, std::string(what).substr(0, std::string(what).find('_')) + " range [" +
                          std::to_string(buf.offset) + ", " + std::to_string(buf.offset + buf.bytes) +
                          ") overflows " + what + " " + std::to_string(capacity));
    return true;
  }

  bool convertStorage(const fb::Buffer &b, const std::string &at, BufferDesc &buf) {
    buf.offset = b.offset();
    buf.host = b.space() == fb::MemorySpace::Host;
    if (buf.host && b.storage() != fb::Storage::Arena && b.storage() != fb::Storage::State)
      return fail(join(at, "space"), "only arena and state buffers live in host memory");
    if (buf.host) {
      bool arena = b.storage() == fb::Storage::Arena;
      buf.storage = arena ? Storage::Arena : Storage::State;
      return arena ? blockOffset(at, buf, a_.hostArenaBytes, "host_arena_bytes")
                   : blockOffset(at, buf, a_.hostPersistentBytes, "host_persistent_bytes");
    }
    switch (b.storage()) {
    case fb::Storage::Arena:
      buf.storage = Storage::Arena;
      return blockOffset(at, buf, a_.arenaBytes, "arena_bytes");
    case fb::Storage::Persistent:
      buf.storage = Storage::Persistent;
      return blockOffset(at, buf, a_.persistentBytes, "persistent_bytes");
    case fb::Storage::State:
      buf.storage = Storage::State;
      return blockOffset(at, buf, a_.persistentBytes, "persistent_bytes");
    case fb::Storage::Weight: {
      buf.storage = Storage::Weight;
      buf.file = b.file();
      buf.fileOffset = b.file_offset();
      buf.transform = b.transform() ? b.transform()->str() : "none";
      if (b.tied())
        for (const flatbuffers::String *t : *b.tied())
          buf.tied.push_back(t->str());
      if (buf.file < 0 || buf.file >= static_cast<int64_t>(a_.weightFiles.size()))
        return fail(join(at, "file"), "weight file index " + std::to_string(buf.file) +
                                          " is out of range (the manifest has " +
                                          std::to_string(a_.weightFiles.size()) + " weight files)");
      if (!convertFileShape(b, at, buf))
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
                            ") lies beyond the end of weight file " + std::to_string(buf.file) + " (" +
                            std::to_string(fileSize) + " bytes)");
      return true;
    }
    case fb::Storage::Constant:
      buf.storage = Storage::Constant;
      if (buf.sharded())
        return fail(join(at, "shard"), "a constant cannot be sharded (the compiler slices it)");
      buf.blobOffset = b.blob_offset();
      if (!isAligned(buf.blobOffset))
        return fail(join(at, "blob_offset"), std::to_string(buf.blobOffset) + " is not 64-byte aligned");
      if (buf.blobOffset > blobSize_ || buf.bytes > blobSize_ - buf.blobOffset)
        return fail(at, "blob range [" + std::to_string(buf.blobOffset) + ", " +
                            std::to_string(buf.blobOffset + buf.bytes) + ") lies beyond the blob (" +
                            std::to_string(blobSize_) + " bytes)");
      return true;
    }
    return fail(join(at, "storage"), "unknown storage " + std::to_string(static_cast<int>(b.storage())));
  }

  bool convertBindings(const flatbuffers::Vector<flatbuffers::Offset<fb::IoBinding>> *items,
                       const std::string &key, std::vector<IoBinding> &out) {
    std::set<std::string> names;
    for (size_t i = 0; i < items->size(); ++i) {
      std::string at = index(key, i);
      const fb::IoBinding *item = items->Get(static_cast<flatbuffers::uoffset_t>(i));
      IoBinding binding{item->name()->str(), item->buffer()};
      if (!bufferId(binding.buffer, join(at, "buffer")))
        return false;
      const BufferDesc &buf = a_.buffers[static_cast<size_t>(binding.buffer)];
      if (buf.storage != Storage::Arena || buf.host)
        return fail(join(at, "buffer"), "buffer " + std::to_string(binding.buffer) + " is not an arena buffer");
      if (key == "outputs" && buf.sharded())
        return fail(join(at, "buffer"), "buffer " + std::to_string(binding.buffer) +
                                            " is sharded; outputs must be replicated (end the "
                                            "program with an all_gather)");
      if (!names.insert(binding.name).second)
        return fail(join(at, "name"), "duplicate name \"" + binding.name + "\"");
      out.push_back(std::move(binding));
    }
    return true;
  }

  // The step's attribute table, generically through the schema's type tables (the kind's
  // member of StepAttrs): each field present becomes an attribute of its name; enums become
  // their names. Fields absent stay absent (the kernel's default).
  bool convertAttrs(const fb::Step &s, const std::string &at, Step &step) {
    if (s.attrs_type() == fb::StepAttrs::NONE)
      return true;
    fb::StepAttrs member;
    const flatbuffers::TypeTable *table = stepAttrsTable(step.op, member);
    if (s.attrs_type() != member)
      return fail(join(at, "attrs"), std::string("a ") + fb::EnumNameStepAttrs(s.attrs_type()) +
                                         " attribute table on a '" + step.op + "' step");
    const auto *t = static_cast<const flatbuffers::Table *>(s.attrs());
    for (size_t f = 0; f < table->num_elems; ++f) {
      auto vo = flatbuffers::FieldIndexToOffset(static_cast<flatbuffers::voffset_t>(f));
      if (!t->GetOptionalFieldOffset(vo))
        continue;
      const flatbuffers::TypeCode &tc = table->type_codes[f];
      const std::string name = table->names[f];
      if (tc.is_repeating) {
        if (tc.base_type == flatbuffers::ET_LONG) {
          const auto *v = t->GetPointer<const flatbuffers::Vector<int64_t> *>(vo);
          step.attrs.set(name, std::vector<int64_t>(v->begin(), v->end()));
        } else if (tc.base_type == flatbuffers::ET_DOUBLE) {
          const auto *v = t->GetPointer<const flatbuffers::Vector<double> *>(vo);
          step.attrs.set(name, std::vector<double>(v->begin(), v->end()));
        } else {
          std::vector<std::string> names;
          for (const flatbuffers::String *x : *t->GetPointer<const flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>> *>(vo))
            names.push_back(x->str());
          step.attrs.set(name, std::move(names));
        }
      } else if (const flatbuffers::TypeTable *e = fieldEnum(table, f)) {
        int64_t v = t->GetField<uint8_t>(vo, 0);
        size_t k = 0;
        while (k < e->num_elems && (e->values ? e->values[k] : int64_t(k)) != v)
          ++k;
        if (k == e->num_elems)
          return fail(join(join(at, "attrs"), name), "value " + std::to_string(v) + " is not a name of its enum");
        step.attrs.set(name, std::string(e->names[k]));
      } else if (tc.base_type == flatbuffers::ET_BOOL) {
        step.attrs.set(name, t->GetField<uint8_t>(vo, 0) != 0);
      } else if (tc.base_type == flatbuffers::ET_LONG) {
        step.attrs.set(name, t->GetField<int64_t>(vo, 0));
      } else if (tc.base_type == flatbuffers::ET_DOUBLE) {
        step.attrs.set(name, t->GetField<double>(vo, 0));
      } else {
        step.attrs.set(name, t->GetPointer<const flatbuffers::String *>(vo)->str());
      }
    }
    return true;
  }

  // CPU offload: a host step reads host and constant buffers and writes host buffers;
  // copy_to_host reads a device buffer and writes a host one, copy_to_device the reverse;
  // every other step stays in device memory.
  std::string checkSpaces(const Step &step, bool load) const {
    bool toHost = step.op == "copy_to_host", toDevice = step.op == "copy_to_device";
    if (step.host && (toHost || toDevice || load))
      return "is a host step, which a copy or a load step cannot be";
    if ((toHost || toDevice) && (step.in.size() != 1 || step.out.size() != 1))
      return "copies one buffer";
    auto space = [&](int64_t id, bool out) -> int { // 1 host, 0 device, -1 either (a constant)
      const BufferDesc &b = a_.buffers[static_cast<size_t>(id)];
      if (!out && b.storage == Storage::Constant)
        return -1;
      return b.host ? 1 : 0;
    };
    for (int64_t id : step.in) {
      int s = space(id, false), want = toHost ? 0 : toDevice ? 1 : step.host ? 1 : 0;
      if (s >= 0 && s != want)
        return "reads buffer " + std::to_string(id) + " in " + (s ? "host" : "device") + " memory";
    }
    for (int64_t id : step.out) {
      int want = toHost ? 1 : toDevice ? 0 : step.host ? 1 : 0;
      if (space(id, true) != want)
        return "writes buffer " + std::to_string(id) + " in " + (want ? "device" : "host") + " memory";
    }
    return "";
  }

  // `steps` write arena and state buffers; `load_steps` read only weights, constants,
  // persistent and state buffers, and write persistent and state buffers.
  bool convertSteps(const flatbuffers::Vector<flatbuffers::Offset<fb::Step>> *steps, const std::string &key,
                    bool load, std::vector<Step> &out) {
    for (size_t i = 0; i < count(steps); ++i) {
      std::string at = index(key, i);
      const fb::Step &s = *steps->Get(static_cast<flatbuffers::uoffset_t>(i));
      Step step;
      step.op = fb::EnumNameStepKind(s.kind());
      if (step.op.empty())
        return fail(join(at, "kind"), "unknown step kind " + std::to_string(static_cast<int>(s.kind())) +
                                          " (the artifact is newer than this runtime?)");
      step.loc = str(s.loc());
      step.flops = s.flops();
      step.bytes = s.bytes();
      step.host = s.host();
      if (!bufferIds(s.in(), join(at, "in"), step.in) || !bufferIds(s.out(), join(at, "out"), step.out))
        return false;
      if (std::string err = checkSpaces(step, load); !err.empty())
        return fail(at, "step '" + step.op + "' " + err);
      for (size_t k = 0; k < step.out.size(); ++k) {
        Storage st = a_.buffers[static_cast<size_t>(step.out[k])].storage;
        if (st != Storage::State && st != (load ? Storage::Persistent : Storage::Arena))
          return fail(index(join(at, "out"), k), "step '" + step.op + "' writes buffer " +
                                                     std::to_string(step.out[k]) + ", which is not " +
                                                     (load ? "a persistent or state" : "an arena or state") +
                                                     " buffer");
      }
      if (load)
        for (size_t k = 0; k < step.in.size(); ++k)
          if (a_.buffers[static_cast<size_t>(step.in[k])].storage == Storage::Arena)
            return fail(index(join(at, "in"), k),
                        "load step '" + step.op + "' reads arena buffer " + std::to_string(step.in[k]) +
                            " (load steps read weights, constants and persistent buffers)");
      if (!convertAttrs(s, at, step))
        return false;
      out.push_back(std::move(step));
    }
    return true;
  }
};

std::string allocateBlob(uint64_t bytes, const std::string &where, Artifact &out);

// An input binding's global shape (the verifier has checked the structure; ids are checked
// here, and again by the converter for the program it converts).
std::vector<std::pair<std::string, std::vector<int64_t>>> inputShapes(const fb::Manifest &m) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const fb::IoBinding *in : *m.inputs()) {
    std::vector<int64_t> shape;
    if (in->buffer() >= 0 && in->buffer() < static_cast<int64_t>(m.buffers()->size())) {
      const fb::Buffer *b = m.buffers()->Get(static_cast<flatbuffers::uoffset_t>(in->buffer()));
      const auto *dims = b->global_shape() ? b->global_shape() : b->shape();
      shape.assign(dims->begin(), dims->end());
    }
    out.push_back({in->name()->str(), std::move(shape)});
  }
  return out;
}

// Several shape sets: lists every program in out.programs and, for a nested one, replaces
// out.blob with that program's range of the blob.
std::string selectProgram(const fb::Manifest &root, const std::string &where, int64_t program, Artifact &out) {
  size_t nested = root.programs() ? root.programs()->size() : 0;
  if (program < 0 || program > static_cast<int64_t>(nested))
    return where + "program " + std::to_string(program) + " does not exist (the artifact has " +
           std::to_string(nested + 1) + ")";
  out.program = program;
  if (nested == 0)
    return "";
  out.programs.push_back({root.shapes() ? root.shapes()->str() : std::string(), inputShapes(root)});
  for (size_t i = 0; i < nested; ++i) {
    const fb::Program *p = root.programs()->Get(static_cast<flatbuffers::uoffset_t>(i));
    const fb::Manifest *m = p->manifest_nested_root();
    std::string at = where + "programs[" + std::to_string(i) + "]: ";
    // Read in place: its i64 vectors need the alignment the writer gives it.
    if (reinterpret_cast<uintptr_t>(p->manifest()->data()) % alignof(int64_t) != 0)
      return at + "the nested manifest is not 8-byte aligned (a writer that does not align nested buffers)";
    if (!fb::ManifestBufferHasIdentifier(p->manifest()->data()))
      return at + "the nested manifest lacks the identifier \"" + std::string(fb::ManifestIdentifier()) + "\"";
    if (m->programs() && m->programs()->size())
      return at + "a nested manifest has programs of its own";
    if (p->blob_offset() % MemoryBlock::kAlignment != 0 || p->blob_offset() > out.blob.size() ||
        p->blob_bytes() > out.blob.size() - p->blob_offset())
      return at + "blob range [" + std::to_string(p->blob_offset()) + ", " +
             std::to_string(p->blob_offset() + p->blob_bytes()) + ") is unaligned or lies beyond the blob (" +
             std::to_string(out.blob.size()) + " bytes)";
    out.programs.push_back({p->shapes()->str(), inputShapes(*m)});
  }
  if (program == 0)
    return "";
  const fb::Program *p = root.programs()->Get(static_cast<flatbuffers::uoffset_t>(program - 1));
  MemoryBlock whole = std::move(out.blob);
  if (std::string err = allocateBlob(p->blob_bytes(), where, out); !err.empty())
    return err;
  if (p->blob_bytes())
    std::memcpy(out.blob.data(), whole.data() + p->blob_offset(), p->blob_bytes());
  return "";
}

// Verifies both checksums and the manifest's structure, then converts and validates it (or
// its nested `program`) into `out`, which already holds the path and the blob.
std::string decodeArtifact(std::string_view manifest, const ArtifactHeader &h, Artifact &out, int64_t program) {
  const std::string where = out.path + ": ";
  if (fnv1a64(manifest.data(), manifest.size()) != h.manifestChecksum)
    return where + "checksum mismatch in manifest (file corrupt or truncated)";
  if (fnv1a64(out.blob.data(), out.blob.size()) != h.blobChecksum)
    return where + "checksum mismatch in blob (file corrupt or truncated)";
  // The verifier reads the buffer in place: it must be aligned for the largest scalar.
  std::string aligned(manifest);
  const auto *data = reinterpret_cast<const uint8_t *>(aligned.data());
  flatbuffers::Verifier verifier(data, aligned.size());
  if (!fb::ManifestBufferHasIdentifier(data))
    return where + "manifest: not a FlatBuffers manifest of this format (identifier \"" +
           std::string(fb::ManifestIdentifier()) + "\" missing)";
  if (!fb::VerifyManifestBuffer(verifier))
    return where + "manifest: the FlatBuffers verifier rejects it (file corrupt)";
  const fb::Manifest *root = fb::GetManifest(data);
  if (std::string err = selectProgram(*root, where, program, out); !err.empty())
    return err;
  const fb::Manifest *m = program == 0 ? root : root->programs()->Get(static_cast<flatbuffers::uoffset_t>(program - 1))->manifest_nested_root();
  if (std::string err = ManifestConverter(out).convert(*m, out.blob.size()); !err.empty())
    return where + (program ? "programs[" + std::to_string(program - 1) + "].manifest: " : "manifest: ") + err;
  out.manifestChecksum = h.manifestChecksum;
  return "";
}

std::string allocateBlob(uint64_t bytes, const std::string &where, Artifact &out) {
  out.blob = MemoryBlock::allocateHost(bytes);
  if (!out.blob)
    return where + "cannot allocate " + std::to_string(bytes) + " bytes for the blob";
  return "";
}


} // namespace

std::string parseArtifact(std::string_view bytes, const std::string &path, Artifact &out, int64_t program) {
  out = Artifact();
  out.path = path;
  const std::string where = path + ": ";
  ArtifactHeader h;
  if (std::string err = decodeArtifactHeader(bytes, bytes.size(), where, h); !err.empty())
    return err;
  if (std::string err = allocateBlob(h.blobBytes, where, out); !err.empty())
    return err;
  std::memcpy(out.blob.data(), bytes.data() + kArtifactHeaderBytes + h.manifestBytes, h.blobBytes);
  return decodeArtifact(bytes.substr(kArtifactHeaderBytes, h.manifestBytes), h, out, program);
}

std::string loadArtifact(const std::string &path, Artifact &out, int64_t program) {
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
    if (std::string err = decodeArtifactHeader(std::string_view(header, sizeof header), fileSize, where, h);
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
    return decodeArtifact(manifest, h, out, program);
  };
  std::string err = loadFrom();
  ::close(fd);
  return err;
}

int64_t matchProgram(const Artifact &a,
                     const std::vector<std::pair<std::string, std::vector<int64_t>>> &inputs,
                     std::string &error) {
  if (a.programs.empty())
    return 0;
  auto sorted = [](std::vector<std::pair<std::string, std::vector<int64_t>>> v) {
    std::sort(v.begin(), v.end());
    return v;
  };
  auto want = sorted(inputs);
  for (size_t i = 0; i < a.programs.size(); ++i)
    if (sorted(a.programs[i].inputs) == want)
      return static_cast<int64_t>(i);
  auto shapeText = [](const std::vector<int64_t> &s) {
    std::string t;
    for (size_t d = 0; d < s.size(); ++d)
      t += (d ? "x" : "") + std::to_string(s[d]);
    return t;
  };
  error = "the inputs (";
  for (size_t i = 0; i < inputs.size(); ++i)
    error += (i ? ", " : "") + inputs[i].first + " " + shapeText(inputs[i].second);
  error += ") match none of the artifact's shape sets: ";
  for (size_t i = 0; i < a.programs.size(); ++i) {
    error += (i ? "; " : "") + a.programs[i].shapes + " (";
    for (size_t k = 0; k < a.programs[i].inputs.size(); ++k)
      error += (k ? ", " : "") + a.programs[i].inputs[k].first + " " + shapeText(a.programs[i].inputs[k].second);
    error += ")";
  }
  return -1;
}

std::string encodeArtifact(std::string_view manifest, std::string_view blob) {
  std::string out = encodeArtifactHeader(manifest, blob);
  out.reserve(kArtifactHeaderBytes + manifest.size() + blob.size());
  out.append(manifest);
  out.append(blob);
  return out;
}

std::string writeArtifact(const std::string &path, std::string_view manifest,
                          std::string_view blob) {
  std::string bytes = encodeArtifact(manifest, blob);
  return writeWholeFile(path, bytes);
}

} // namespace shardc::rt
