// Lowers a func of sc ops to the artifact's step list: buffers per SSA value (arena, weight
// or constant), a step per op with its kernel name and attributes, then the memory plan,
// the JSON manifest, the constant blob, and the checksummed header.
#include "shardc/Artifact/ArtifactEmitter.h"

#include "shardc/Artifact/MemoryPlan.h"
#include "shardc/Codegen/FusedKernels.h"
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/Kernel.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>

using namespace mlir;

namespace shardc {

namespace {

uint64_t fnv1a(llvm::StringRef bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

std::optional<std::string> dtypeName(Type t) {
  if (t.isF32()) return "f32";
  if (t.isF16()) return "f16";
  if (t.isBF16()) return "bf16";
  if (t.isF64()) return "f64";
  if (t.isInteger(1)) return "bool";
  if (auto it = dyn_cast<IntegerType>(t)) {
    if (it.getWidth() == 64) return "i64";
    if (it.getWidth() == 32) return "i32";
    if (it.getWidth() == 8) return it.isUnsigned() ? "u8" : "i8";
  }
  return std::nullopt;
}

int64_t elementBytes(Type t) { return t.isInteger(1) ? 1 : (t.getIntOrFloatBitWidth() + 7) / 8; }

struct Buffer {
  std::string name, dtype, storage; // storage: arena | weight | constant
  SmallVector<int64_t> shape;
  int64_t bytes = 0;
  int64_t firstStep = -1, lastStep = -1;
  // weight
  int64_t file = -1, fileOffset = 0;
  std::string transform;
  // constant
  int64_t blobOffset = 0;
  int64_t arenaOffset = 0;
  // Sharded weights and inputs: this rank's chunk of a tensor of globalShape.
  SmallVector<int64_t> globalShape;
  SmallVector<std::pair<int64_t, SmallVector<std::string, 2>>> shard; // (dim, axes)
  // Weights that view the stored tensor (padding, packed parts): its shape, and where this
  // weight starts in it.
  SmallVector<int64_t> fileShape, fileStart;
  SmallVector<int64_t> fileRepeat; // [dim, block, times]: dim's blocks each repeated
};

// Records the shard spec of a sharded parameter or input on its buffer.
void recordShard(Buffer &b, Value v, ArrayRef<int64_t> globalShape) {
  auto s = getSharding(v);
  if (!s || s->isReplicated())
    return;
  b.globalShape.assign(globalShape.begin(), globalShape.end());
  for (auto [d, axes] : llvm::enumerate(s->dims))
    if (!axes.empty())
      b.shard.push_back({(int64_t)d, axes});
}

int64_t bytesOf(ArrayRef<int64_t> shape, Type et) {
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  return n * elementBytes(et);
}

struct Step {
  std::string op, loc;
  SmallVector<int64_t> in, out;
  rt::Attrs attrs;
  OpCost cost; // the op's (StepOpInterface::getCost), recorded for reports and profiles
};

// A step's attributes as the manifest writes them.
llvm::json::Object toJson(const rt::Attrs &attrs) {
  llvm::json::Object o;
  for (const auto &[key, value] : attrs.all())
    std::visit(
        [&, &key = key](const auto &v) {
          using V = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<V, std::vector<int64_t>> || std::is_same_v<V, std::vector<double>> ||
                        std::is_same_v<V, std::vector<std::string>>) {
            llvm::json::Array a;
            for (const auto &x : v)
              a.push_back(x);
            o[key] = std::move(a);
          } else {
            o[key] = v;
          }
        },
        value);
  return o;
}

class Emitter {
public:
  llvm::Error run(ModuleOp module, llvm::StringRef outPath, EmitStats &stats);
  EmitOptions options;

private:
  llvm::Error fail(Operation *op, const llvm::Twine &msg) {
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s",
                                   (describeLoc(op->getLoc()) + ": " + msg).str().c_str());
  }
  llvm::Expected<int64_t> bufferFor(Value v);
  llvm::Expected<int64_t> newBuffer(Value v, llvm::StringRef storage, llvm::StringRef name);
  llvm::Error emitOp(Operation *op);
  llvm::Error emitBlock(Block &block);
  void addStep(Operation *op, llvm::StringRef kind, ValueRange ins, ValueRange outs, rt::Attrs attrs, OpCost cost);

  std::vector<Buffer> buffers;
  llvm::DenseMap<Value, int64_t> ids;
  std::vector<Step> steps;
  std::string blob;
  std::vector<std::pair<std::string, uint64_t>> weightFiles;
  llvm::StringMap<int64_t> weightFileIds;
  llvm::Error pending = llvm::Error::success();
  std::function<std::string(const std::string &)> recordedPath;
  // Generated fused kernels, in first-use order, each once.
  std::vector<FusedKernelSource> kernels;
  llvm::StringSet<> kernelNames;
};

llvm::Expected<int64_t> Emitter::newBuffer(Value v, llvm::StringRef storage, llvm::StringRef name) {
  auto type = cast<RankedTensorType>(v.getType());
  auto dt = dtypeName(type.getElementType());
  Operation *where = v.getDefiningOp() ? v.getDefiningOp() : v.getParentBlock()->getParentOp();
  if (!dt) {
    std::string t;
    llvm::raw_string_ostream(t) << type.getElementType();
    return fail(where, "element type " + t + " has no runtime dtype");
  }
  Buffer b;
  b.name = name.str();
  b.dtype = *dt;
  b.storage = storage.str();
  b.shape.assign(type.getShape().begin(), type.getShape().end());
  b.bytes = type.getNumElements() * elementBytes(type.getElementType());
  buffers.push_back(std::move(b));
  ids[v] = buffers.size() - 1;
  return (int64_t)buffers.size() - 1;
}

llvm::Expected<int64_t> Emitter::bufferFor(Value v) {
  auto it = ids.find(v);
  if (it != ids.end())
    return it->second;
  Operation *def = v.getDefiningOp();
  if (auto p = dyn_cast_if_present<sc::ParamOp>(def)) {
    auto id = newBuffer(v, "weight", p.getName());
    if (!id)
      return id.takeError();
    llvm::SmallString<256> path(p.getFile());
    llvm::sys::fs::make_absolute(path);
    auto [fit, inserted] = weightFileIds.try_emplace(path, (int64_t)weightFiles.size());
    if (inserted) {
      uint64_t size = 0;
      if (llvm::sys::fs::file_size(path, size))
        return fail(def, "weight file '" + path + "' of parameter '" + p.getName() + "' is missing");
      weightFiles.push_back({std::string(path), size});
    }
    Buffer &b = buffers[*id];
    b.file = fit->second;
    b.fileOffset = p.getOffset();
    b.transform = sc::stringifyParamTransform(p.getTransform()).str();
    int64_t globalBytes = b.bytes;
    if (auto g = p->getAttrOfType<DenseI64ArrayAttr>("sc.global_shape")) {
      recordShard(b, p, g.asArrayRef());
      globalBytes = bytesOf(g.asArrayRef(), cast<RankedTensorType>(p.getType()).getElementType());
    }
    if (auto fs = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_shape")) {
      b.fileShape.assign(fs.asArrayRef().begin(), fs.asArrayRef().end());
      if (auto st = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_start"))
        b.fileStart.assign(st.asArrayRef().begin(), st.asArrayRef().end());
      if (auto r = p->getAttrOfType<DenseI64ArrayAttr>("sc.file_repeat"))
        b.fileRepeat.assign(r.asArrayRef().begin(), r.asArrayRef().end());
      globalBytes = bytesOf(fs.asArrayRef(), cast<RankedTensorType>(p.getType()).getElementType());
    }
    if (uint64_t(b.fileOffset + globalBytes) > weightFiles[b.file].second)
      return fail(def, "parameter '" + p.getName() + "' reads past the end of its weight file");
    return id;
  }
  if (auto c = dyn_cast_if_present<sc::ConstantOp>(def)) {
    auto id = newBuffer(v, "constant", "");
    if (!id)
      return id.takeError();
    auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
    if (!dense)
      return fail(def, "constant is not a dense elements attribute");
    Buffer &b = buffers[*id];
    blob.resize((blob.size() + 63) / 64 * 64, '\0');
    b.blobOffset = blob.size();
    Type et = dense.getElementType();
    int64_t n = dense.getNumElements();
    if (et.isInteger(1)) {
      for (bool x : dense.getValues<bool>())
        blob.push_back(x ? 1 : 0);
    } else {
      ArrayRef<char> raw = dense.getRawData();
      int64_t w = elementBytes(et);
      if (dense.isSplat())
        for (int64_t i = 0; i < n; ++i)
          blob.append(raw.data(), w);
      else
        blob.append(raw.data(), raw.size());
    }
    if ((int64_t)blob.size() - b.blobOffset != b.bytes)
      return fail(def, "constant data size differs from its type");
    return id;
  }
  return fail(def ? def : v.getParentBlock()->getParentOp(), "value has no buffer (used before definition?)");
}

void Emitter::addStep(Operation *op, llvm::StringRef kind, ValueRange ins, ValueRange outs, rt::Attrs attrs,
                      OpCost cost) {
  if (pending)
    return;
  Step s;
  s.op = kind.str();
  OnnxLocInfo li = readOnnxLoc(op->getLoc());
  s.loc = li.nodeName + (li.modulePath.empty() ? "" : " @ " + li.modulePath);
  int64_t index = steps.size();
  for (Value v : ins) {
    auto id = bufferFor(v);
    if (!id) {
      pending = id.takeError();
      return;
    }
    s.in.push_back(*id);
    Buffer &b = buffers[*id];
    if (b.storage == "arena")
      b.lastStep = std::max(b.lastStep, index);
  }
  for (Value v : outs) {
    auto id = newBuffer(v, "arena", "");
    if (!id) {
      pending = id.takeError();
      return;
    }
    s.out.push_back(*id);
    buffers[*id].firstStep = index;
    buffers[*id].lastStep = std::max(buffers[*id].lastStep, index);
  }
  s.attrs = std::move(attrs);
  s.cost = cost;
  steps.push_back(std::move(s));
}

llvm::json::Array ints(ArrayRef<int64_t> v) {
  llvm::json::Array a;
  for (int64_t x : v)
    a.push_back(x);
  return a;
}

llvm::Error Emitter::emitOp(Operation *op) {
  if (isa<sc::ParamOp, sc::ConstantOp>(op))
    return llvm::Error::success(); // buffers made on first use
  bool handled = false;
  if (auto f = dyn_cast<sc::FusedOp>(op)) {
    handled = true;
    auto src = generateFusedKernel(f);
    if (!src)
      return src.takeError();
    if (kernelNames.insert(src->name).second)
      kernels.push_back(*src);
    rt::Attrs attrs;
    attrs.set("kernel", src->name);
    attrs.set("launch", src->launch);
    attrs.set("count", src->count);
    // A generated kernel computes its body's arithmetic and moves only its inputs and outputs.
    OpCost cost = defaultOpCost(op);
    cost.flops = 0;
    f.getBody().walk([&](sc::StepOpInterface inner) { cost.flops += inner.getCost().flops; });
    addStep(op, "fused", op->getOperands(), op->getResults(), std::move(attrs), cost);
  } else if (auto s = dyn_cast<sc::StepOpInterface>(op)) {
    // The op defines its step (ScStepLowering.cpp); the runtime must have its kernel (or, for
    // a collective, its packing).
    StepDesc step;
    if (failed(s.lowerToStep(step)))
      return fail(op, "op '" + op->getName().getStringRef() + "' cannot be lowered to a step");
    if (!rt::lookupCpuKernel(step.kind) && !rt::lookupCollectiveKernel(step.kind))
      return fail(op, "op '" + op->getName().getStringRef() + "' has no kernel in the CPU backend yet");
    addStep(op, step.kind, op->getOperands(), op->getResults(), std::move(step.attrs), s.getCost());
    handled = true;
  }
  if (pending)
    return std::move(pending);
  if (handled)
    return llvm::Error::success();
  if (auto layer = dyn_cast<sc::LayerOp>(op)) {
    Block &body = layer.getBody().front();
    if (auto err = emitBlock(body))
      return err;
    auto yield = cast<sc::YieldOp>(body.getTerminator());
    for (auto [res, val] : llvm::zip(layer.getResults(), yield.getValues())) {
      auto id = bufferFor(val);
      if (!id)
        return id.takeError();
      ids[res] = *id; // a layer's results are its yielded buffers
    }
    return llvm::Error::success();
  }
  return fail(op, "op '" + op->getName().getStringRef() + "' has no kernel in the CPU backend yet");
}

llvm::Error Emitter::emitBlock(Block &block) {
  for (Operation &op : block.without_terminator())
    if (auto err = emitOp(&op))
      return err;
  return llvm::Error::success();
}

llvm::Error Emitter::run(ModuleOp module, llvm::StringRef outPath, EmitStats &stats) {
  // With relativeWeights, a weight file under the artifact's directory is recorded relative
  // to it (the runtime resolves relative paths against the artifact's directory).
  llvm::SmallString<256> outDir(outPath);
  llvm::sys::fs::make_absolute(outDir);
  llvm::sys::path::remove_filename(outDir);
  recordedPath = [this, dir = std::string(outDir)](const std::string &p) {
    if (!options.relativeWeights)
      return p;
    std::string prefix = dir.empty() || dir.back() == '/' ? dir : dir + "/";
    return llvm::StringRef(p).starts_with(prefix) ? p.substr(prefix.size()) : p;
  };
  func::FuncOp func;
  for (auto f : module.getOps<func::FuncOp>()) {
    if (func)
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "the module has more than one function");
    func = f;
  }
  if (!func || func.getBody().empty())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "the module has no function body");

  MeshShape mesh = MeshShape::fromModule(module).value_or(
      MeshShape{{{"dp_replicate", 1}, {"dp_shard", 1}, {"cp", 1}, {"tp", 1}}});
  llvm::json::Array inputs, outputs;
  Block &entry = func.getBody().front();
  for (auto [i, arg] : llvm::enumerate(entry.getArguments())) {
    auto name = func.getArgAttrOfType<StringAttr>(i, "sc.name");
    std::string n = name ? name.str() : "input" + std::to_string(i);
    auto id = newBuffer(arg, "arena", n);
    if (!id)
      return id.takeError();
    if (auto g = func.getArgAttrOfType<DenseI64ArrayAttr>(i, "sc.global_shape"))
      recordShard(buffers[*id], arg, g.asArrayRef());
    buffers[*id].firstStep = -1;
    buffers[*id].lastStep = -1;
    inputs.push_back(llvm::json::Object{{"name", n}, {"buffer", *id}});
  }
  if (auto err = emitBlock(entry))
    return err;
  auto ret = cast<func::ReturnOp>(entry.getTerminator());
  for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
    auto name = func.getResultAttrOfType<StringAttr>(i, "sc.name");
    std::string n = name ? name.str() : "output" + std::to_string(i);
    auto idOr = bufferFor(v);
    if (!idOr)
      return idOr.takeError();
    int64_t id = *idOr;
    // Outputs must live in the arena; copy weights, constants and inputs returned as-is.
    bool isArg = isa<BlockArgument>(v);
    if (buffers[id].storage != "arena" || isArg) {
      Value src = v;
      Step s;
      s.op = "copy";
      s.loc = "output " + n;
      s.in.push_back(id);
      auto copyId = newBuffer(src, "arena", n);
      if (!copyId)
        return copyId.takeError();
      s.out.push_back(*copyId);
      buffers[*copyId].firstStep = steps.size();
      if (buffers[id].storage == "arena")
        buffers[id].lastStep = std::max<int64_t>(buffers[id].lastStep, steps.size());
      steps.push_back(std::move(s));
      id = *copyId;
    }
    if (buffers[id].name.empty())
      buffers[id].name = n;
    outputs.push_back(llvm::json::Object{{"name", n}, {"buffer", id}});
    buffers[id].lastStep = INT64_MAX / 4; // outputs stay live to the end
  }
  // Load steps: what computes on weights and constants alone (parameters cast to
  // param_dtype, the packed views' copies) runs once when the artifact is loaded, into a
  // persistent block, instead of in every run. Collectives stay in the run (an FSDP gather
  // moves the cast shard), and so does anything writing a graph output.
  std::vector<Step> loadSteps;
  // Buffer lifetimes are step indices before the split (only their order matters); outputs
  // live past the last of them.
  const int64_t lifetimeEnd = steps.size();
  {
    llvm::DenseSet<int64_t> outputIds;
    for (const llvm::json::Value &o : outputs)
      if (auto id = o.getAsObject()->getInteger("buffer"))
        outputIds.insert(*id);
    std::vector<Step> run;
    for (Step &s : steps) {
      bool collective = s.op == "all_reduce" || s.op == "all_gather" || s.op == "reduce_scatter" ||
                        s.op == "all_to_all";
      bool fromWeights = llvm::all_of(s.in, [&](int64_t id) {
        const std::string &st = buffers[id].storage;
        return st == "weight" || st == "constant" || st == "persistent";
      });
      bool writesOutput = llvm::any_of(s.out, [&](int64_t id) { return outputIds.contains(id); });
      if (collective || !fromWeights || writesOutput || s.in.empty()) {
        run.push_back(std::move(s));
        continue;
      }
      for (int64_t id : s.out)
        buffers[id].storage = "persistent";
      loadSteps.push_back(std::move(s));
    }
    steps = std::move(run);
  }
  int64_t persistentBytes = 0;
  for (Buffer &b : buffers)
    if (b.storage == "persistent") {
      b.arenaOffset = persistentBytes;
      persistentBytes += (b.bytes + 63) / 64 * 64;
    }
  stats.loadSteps = loadSteps.size();
  stats.persistentBytes = persistentBytes;
  int64_t numSteps = steps.size();

  // Memory plan over arena buffers.
  std::vector<BufferLifetime> lifetimes;
  std::vector<size_t> arenaIds;
  for (auto [i, b] : llvm::enumerate(buffers)) {
    if (b.storage != "arena")
      continue;
    int64_t last = b.lastStep == INT64_MAX / 4 ? lifetimeEnd : std::max(b.lastStep, b.firstStep);
    lifetimes.push_back({b.bytes, b.firstStep, last});
    arenaIds.push_back(i);
  }
  MemoryPlan plan = planMemory(lifetimes);
  for (auto [k, i] : llvm::enumerate(arenaIds))
    buffers[i].arenaOffset = plan.offsets[k];

  // Fused kernels: one module source (prelude and kernels) for every backend, and the CPU
  // shared object built from it, both in the blob.
  struct BlobRange {
    int64_t offset = 0, bytes = 0;
  };
  auto appendBlob = [&](llvm::StringRef bytes) {
    blob.resize((blob.size() + 63) / 64 * 64, '\0');
    BlobRange r{(int64_t)blob.size(), (int64_t)bytes.size()};
    blob.append(bytes.data(), bytes.size());
    return r;
  };
  BlobRange kernelSource, kernelObject;
  if (!kernels.empty()) {
    std::string source = fusedKernelPrelude().str();
    for (const FusedKernelSource &k : kernels)
      source += "\n" + k.text;
    auto object = buildCpuKernelObject(source);
    if (!object)
      return object.takeError();
    kernelSource = appendBlob(source);
    kernelObject = appendBlob(*object);
    stats.fusedKernels = kernels.size();
    stats.kernelSource = source;
  }

  // Manifest.
  std::string manifest;
  llvm::raw_string_ostream os(manifest);
  llvm::json::OStream j(os);
  auto source = module->getAttrOfType<StringAttr>("sc.source");
  j.object([&] {
    j.attribute("format_version", (int64_t)kArtifactFormatVersion);
    j.attribute("producer", "shardc " SHARDC_VERSION);
    j.attribute("source", source ? source.str() : std::string());
    j.attributeObject("mesh", [&] {
      for (auto &[name, size] : mesh.axes)
        j.attribute(name, size);
    });
    j.attributeArray("mesh_axes", [&] {
      for (auto &[name, size] : mesh.axes)
        j.value(llvm::json::Array{name, size});
    });
    j.attribute("world_size", mesh.worldSize());
    j.attributeArray("weight_files", [&] {
      for (auto &[p, size] : weightFiles)
        j.object([&] {
          j.attribute("path", recordedPath(p));
          j.attribute("size", (int64_t)size);
        });
    });
    j.attribute("arena_bytes", plan.arenaBytes);
    if (persistentBytes)
      j.attribute("persistent_bytes", persistentBytes);
    j.attributeArray("buffers", [&] {
      for (auto [i, b] : llvm::enumerate(buffers))
        j.object([&] {
          j.attribute("id", (int64_t)i);
          j.attribute("name", b.name);
          j.attribute("dtype", b.dtype);
          j.attribute("shape", ints(b.shape));
          j.attribute("storage", b.storage);
          if (b.storage == "arena" || b.storage == "persistent")
            j.attribute("offset", b.arenaOffset);
          else if (b.storage == "weight") {
            j.attribute("file", b.file);
            j.attribute("file_offset", b.fileOffset);
            j.attribute("transform", b.transform);
            if (!b.fileShape.empty())
              j.attribute("file_shape", ints(b.fileShape));
            if (!b.fileStart.empty())
              j.attribute("file_start", ints(b.fileStart));
            if (!b.fileRepeat.empty())
              j.attributeObject("file_repeat", [&] {
                j.attribute("dim", b.fileRepeat[0]);
                j.attribute("block", b.fileRepeat[1]);
                j.attribute("times", b.fileRepeat[2]);
              });
          } else
            j.attribute("blob_offset", b.blobOffset);
          if (!b.shard.empty()) {
            j.attribute("global_shape", ints(b.globalShape));
            j.attributeArray("shard", [&] {
              for (auto &[dim, axes] : b.shard)
                j.object([&] {
                  j.attribute("dim", dim);
                  llvm::json::Array names;
                  for (auto &a : axes)
                    names.push_back(a);
                  j.attribute("axes", std::move(names));
                });
            });
          }
        });
    });
    if (!kernels.empty())
      j.attributeObject("kernels", [&] {
        j.attribute("source_offset", kernelSource.offset);
        j.attribute("source_bytes", kernelSource.bytes);
        j.attributeArray("objects", [&] {
          j.object([&] {
            j.attribute("target", cpuKernelTarget());
            j.attribute("offset", kernelObject.offset);
            j.attribute("bytes", kernelObject.bytes);
          });
        });
      });
    j.attribute("inputs", std::move(inputs));
    j.attribute("outputs", std::move(outputs));
    auto writeSteps = [&](std::vector<Step> &list) {
      for (Step &s : list)
        j.object([&] {
          j.attribute("op", s.op);
          j.attribute("in", ints(s.in));
          j.attribute("out", ints(s.out));
          j.attribute("attrs", toJson(s.attrs));
          if (s.cost.flops)
            j.attribute("flops", (int64_t)s.cost.flops);
          j.attribute("bytes", (int64_t)s.cost.bytes);
          j.attribute("loc", s.loc);
        });
    };
    if (!loadSteps.empty())
      j.attributeArray("load_steps", [&] { writeSteps(loadSteps); });
    j.attributeArray("steps", [&] { writeSteps(steps); });
  });
  os.flush();

  std::error_code ec;
  llvm::raw_fd_ostream out(outPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(ec, "cannot write %s: %s", outPath.str().c_str(), ec.message().c_str());
  auto u32 = [&](uint32_t v) { out.write(reinterpret_cast<const char *>(&v), 4); };
  auto u64 = [&](uint64_t v) { out.write(reinterpret_cast<const char *>(&v), 8); };
  out.write("SHARDC\0\0", 8);
  u32(kArtifactFormatVersion);
  u32(0);
  u64(manifest.size());
  u64(blob.size());
  u64(fnv1a(manifest));
  u64(fnv1a(blob));
  out << manifest;
  out.write(blob.data(), blob.size());
  out.close();
  if (out.has_error())
    return llvm::createStringError(out.error(), "cannot write %s", outPath.str().c_str());

  stats.steps = numSteps;
  stats.buffers = buffers.size();
  stats.arenaBytes = plan.arenaBytes;
  stats.naiveArenaBytes = plan.naiveBytes;
  stats.constantBytes = blob.size();
  for (const Buffer &b : buffers)
    if (b.storage == "weight")
      stats.weightBytes += b.bytes;
  return llvm::Error::success();
}

} // namespace

llvm::Error emitArtifact(ModuleOp module, llvm::StringRef outPath, EmitStats &stats, const EmitOptions &options) {
  Emitter e;
  e.options = options;
  return e.run(module, outPath, stats);
}

} // namespace shardc
