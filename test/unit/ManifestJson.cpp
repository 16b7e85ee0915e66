// Test-only JSON spelling of the FlatBuffers manifest (ManifestJson.h).
#include "ManifestJson.h"

#include "shardc/runtime/Artifact.h"
#include "shardc/runtime/Json.h"
#include "shardc/runtime/ManifestSchema.h"

#include <cstdio>
#include <cstdlib>

namespace shardc::rt {
namespace {

using flatbuffers::FlatBufferBuilder;
using flatbuffers::Offset;

[[noreturn]] void die(const std::string &message) {
  std::fprintf(stderr, "manifestFromJson: %s\n", message.c_str());
  std::abort();
}

int64_t intOf(const JsonValue &o, const char *key, int64_t dflt = 0) {
  const JsonValue *v = o.find(key);
  return v && v->isInt() ? v->asInt() : dflt;
}
std::string strOf(const JsonValue &o, const char *key) {
  const JsonValue *v = o.find(key);
  return v && v->isString() ? v->asString() : std::string();
}

Offset<flatbuffers::Vector<int64_t>> longs(FlatBufferBuilder &b, const JsonValue *v) {
  if (!v)
    return 0;
  std::vector<int64_t> out;
  for (const JsonValue &x : v->asArray())
    out.push_back(x.asInt());
  return b.CreateVector(out);
}

Attrs attrsOf(const JsonValue *o) {
  Attrs attrs;
  if (!o)
    return attrs;
  for (const auto &[key, v] : o->asObject()) {
    if (v.isArray()) {
      bool strings = !v.asArray().empty(), ints = true;
      for (const JsonValue &x : v.asArray()) {
        strings = strings && x.isString();
        ints = ints && x.isInt();
      }
      if (strings) {
        std::vector<std::string> s;
        for (const JsonValue &x : v.asArray())
          s.push_back(x.asString());
        attrs.set(key, s);
      } else if (ints) {
        std::vector<int64_t> s;
        for (const JsonValue &x : v.asArray())
          s.push_back(x.asInt());
        attrs.set(key, s);
      } else {
        std::vector<double> s;
        for (const JsonValue &x : v.asArray())
          s.push_back(x.asDouble());
        attrs.set(key, s);
      }
    } else if (v.isInt()) {
      attrs.set(key, v.asInt());
    } else if (v.isNumber()) {
      attrs.set(key, v.asDouble());
    } else if (v.isString()) {
      attrs.set(key, v.asString());
    } else if (v.kind() == JsonValue::Kind::Bool) {
      attrs.set(key, v.asBool());
    } else {
      die("attribute '" + key + "' has no schema type");
    }
  }
  return attrs;
}

Offset<fb::Buffer> bufferOf(FlatBufferBuilder &b, const JsonValue &j) {
  std::optional<DType> dtype = parseDType(strOf(j, "dtype"));
  if (!dtype)
    die("unknown dtype '" + strOf(j, "dtype") + "'");
  std::string storage = strOf(j, "storage");
  fb::Storage st = storage == "arena"        ? fb::Storage::Arena
                   : storage == "weight"     ? fb::Storage::Weight
                   : storage == "constant"   ? fb::Storage::Constant
                   : storage == "persistent" ? fb::Storage::Persistent
                   : storage == "state"      ? fb::Storage::State
                                             : (die("unknown storage '" + storage + "'"), fb::Storage::Arena);
  auto name = b.CreateString(strOf(j, "name"));
  auto shape = longs(b, j.find("shape"));
  if (shape.IsNull())
    shape = b.CreateVector(std::vector<int64_t>{});
  auto transform = j.find("transform") ? b.CreateString(strOf(j, "transform")) : 0;
  auto global = longs(b, j.find("global_shape")), fileShape = longs(b, j.find("file_shape")),
       fileStart = longs(b, j.find("file_start"));
  Offset<flatbuffers::Vector<Offset<fb::ShardDim>>> shard = 0;
  if (const JsonValue *s = j.find("shard")) {
    std::vector<Offset<fb::ShardDim>> dims;
    for (const JsonValue &e : s->asArray()) {
      std::vector<std::string> axes;
      for (const JsonValue &a : e.find("axes")->asArray())
        axes.push_back(a.asString());
      dims.push_back(fb::CreateShardDim(b, intOf(e, "dim"), b.CreateVectorOfStrings(axes)));
    }
    shard = b.CreateVector(dims);
  }
  fb::BufferBuilder bb(b);
  bb.add_name(name);
  bb.add_dtype(toSchema(*dtype));
  bb.add_shape(shape);
  bb.add_storage(st);
  bb.add_offset(static_cast<uint64_t>(intOf(j, "offset")));
  bb.add_file(intOf(j, "file"));
  bb.add_file_offset(static_cast<uint64_t>(intOf(j, "file_offset")));
  bb.add_blob_offset(static_cast<uint64_t>(intOf(j, "blob_offset")));
  if (!transform.IsNull())
    bb.add_transform(transform);
  if (!global.IsNull())
    bb.add_global_shape(global);
  if (!shard.IsNull())
    bb.add_shard(shard);
  if (!fileShape.IsNull())
    bb.add_file_shape(fileShape);
  if (!fileStart.IsNull())
    bb.add_file_start(fileStart);
  if (const JsonValue *r = j.find("file_repeat")) {
    fb::FileRepeat repeat(intOf(*r, "dim"), intOf(*r, "block"), intOf(*r, "times"));
    bb.add_file_repeat(&repeat);
  }
  return bb.Finish();
}

Offset<flatbuffers::Vector<Offset<fb::IoBinding>>> bindingsOf(FlatBufferBuilder &b, const JsonValue *list) {
  std::vector<Offset<fb::IoBinding>> out;
  if (list)
    for (const JsonValue &j : list->asArray())
      out.push_back(fb::CreateIoBinding(b, b.CreateString(strOf(j, "name")), intOf(j, "buffer")));
  return b.CreateVector(out);
}

Offset<flatbuffers::Vector<Offset<fb::Step>>> stepsOf(FlatBufferBuilder &b, const JsonValue *list) {
  std::vector<Offset<fb::Step>> out;
  if (!list)
    return 0;
  for (const JsonValue &j : list->asArray()) {
    std::optional<fb::StepKind> kind = stepKindByName(strOf(j, "op"));
    if (!kind)
      die("step kind '" + strOf(j, "op") + "' is not in the schema");
    auto in = longs(b, j.find("in")), outs = longs(b, j.find("out"));
    fb::StepAttrs attrsType;
    Offset<void> attrs;
    if (std::string err = buildStepAttrs(b, strOf(j, "op"), attrsOf(j.find("attrs")), attrsType, attrs); !err.empty())
      die(err);
    out.push_back(fb::CreateStep(b, *kind, in, outs, attrsType, attrs, b.CreateString(strOf(j, "loc")),
                                 static_cast<uint64_t>(intOf(j, "flops")), static_cast<uint64_t>(intOf(j, "bytes"))));
  }
  return b.CreateVector(out);
}

} // namespace

std::string manifestFromJson(std::string_view json) {
  JsonValue root;
  if (std::string err = parseJson(json, root); !err.empty())
    die(err);
  FlatBufferBuilder b(1024);
  b.ForceDefaults(true); // as the emitter
  std::vector<Offset<fb::MeshAxis>> axes;
  if (const JsonValue *list = root.find("mesh_axes")) {
    for (const JsonValue &pair : list->asArray())
      axes.push_back(fb::CreateMeshAxis(b, b.CreateString(pair.asArray()[0].asString()), pair.asArray()[1].asInt()));
  } else if (const JsonValue *mesh = root.find("mesh")) {
    // The four standard axes, as the first format's "mesh" object meant them.
    for (const char *name : {"dp_replicate", "dp_shard", "cp", "tp"})
      axes.push_back(fb::CreateMeshAxis(b, b.CreateString(name), intOf(*mesh, name, 1)));
  }
  std::vector<Offset<fb::WeightFile>> files;
  if (const JsonValue *list = root.find("weight_files"))
    for (const JsonValue &f : list->asArray())
      files.push_back(fb::CreateWeightFile(b, b.CreateString(strOf(f, "path")), static_cast<uint64_t>(intOf(f, "size"))));
  std::vector<Offset<fb::Buffer>> buffers;
  if (const JsonValue *list = root.find("buffers"))
    for (const JsonValue &j : list->asArray())
      buffers.push_back(bufferOf(b, j));
  Offset<fb::Kernels> kernels = 0;
  if (const JsonValue *k = root.find("kernels")) {
    std::vector<Offset<fb::KernelObject>> objects;
    if (const JsonValue *list = k->find("objects"))
      for (const JsonValue &o : list->asArray())
        objects.push_back(fb::CreateKernelObject(b, b.CreateString(strOf(o, "target")), intOf(o, "offset"),
                                                 intOf(o, "bytes")));
    kernels = fb::CreateKernels(b, intOf(*k, "source_offset"), intOf(*k, "source_bytes"), b.CreateVector(objects));
  }
  auto inputs = bindingsOf(b, root.find("inputs")), outputs = bindingsOf(b, root.find("outputs"));
  auto loadSteps = stepsOf(b, root.find("load_steps")), steps = stepsOf(b, root.find("steps"));
  if (steps.IsNull())
    steps = b.CreateVector(std::vector<Offset<fb::Step>>{});
  auto m = fb::CreateManifest(
      b, static_cast<uint32_t>(intOf(root, "format_version", kArtifactFormatVersion)),
      b.CreateString(strOf(root, "producer")), b.CreateString(strOf(root, "source")), b.CreateVector(axes),
      intOf(root, "world_size", 1), b.CreateVector(files), static_cast<uint64_t>(intOf(root, "arena_bytes")),
      static_cast<uint64_t>(intOf(root, "persistent_bytes")), b.CreateVector(buffers), inputs, outputs, kernels,
      loadSteps, steps);
  fb::FinishManifestBuffer(b, m);
  return std::string(reinterpret_cast<const char *>(b.GetBufferPointer()), b.GetSize());
}

std::string encodeJsonArtifact(std::string_view json, std::string_view blob) {
  return encodeArtifact(manifestFromJson(json), blob);
}

std::string writeJsonArtifact(const std::string &path, std::string_view json, std::string_view blob) {
  return writeArtifact(path, manifestFromJson(json), blob);
}

} // namespace shardc::rt
