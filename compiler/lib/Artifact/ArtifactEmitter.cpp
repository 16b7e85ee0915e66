// Lowers a func of sc ops to the artifact's step list: buffers per SSA value (arena,
// persistent, weight or constant), a step per op with its kernel name and attributes, then
// the FlatBuffers manifest, the constant blob, and the checksummed header. Which steps run at
// load and every buffer's offset are read from the IR (sc-hoist-load-steps, sc-plan-memory).
#include "shardc/Artifact/ArtifactEmitter.h"

#include "shardc/Codegen/FusedKernels.h"
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Sharding/Sharding.h"
#include "shardc/comm/CollectiveKernels.h"
#include "shardc/runtime/ArtifactFormat.h"
#include "shardc/runtime/Kernel.h"
#include "shardc/runtime/ManifestSchema.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <functional>

using namespace mlir;

namespace shardc {

namespace {

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
  std::string name, dtype, storage; // storage: arena | persistent | state | weight | constant
  SmallVector<int64_t> shape;
  int64_t bytes = 0;
  // weight
  int64_t file = -1, fileOffset = 0;
  std::string transform;
  // constant
  int64_t blobOffset = 0;
  int64_t arenaOffset = 0; // arena and persistent: from sc-plan-memory
  bool host = false;       // arena and state: in host memory (CPU offload)
  // Sharded weights and inputs: this rank's chunk of a tensor of globalShape.
  SmallVector<int64_t> globalShape;
  SmallVector<std::pair<int64_t, SmallVector<std::string, 2>>> shard; // (dim, axes)
  // Weights that view the stored tensor (padding, packed parts): its shape, and where this
  // weight starts in it.
  SmallVector<int64_t> fileShape, fileStart;
  SmallVector<int64_t> fileRepeat; // [dim, block, times]: dim's blocks each repeated
  std::vector<std::string> tied;    // further module paths of a tied parameter
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
  bool host = false; // runs on the host (CPU offload's sc.host)
};

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
  std::vector<Step> steps, loadSteps; // loadSteps: the ops marked sc.at_load
  std::string blob;
  std::vector<std::pair<std::string, uint64_t>> weightFiles;
  llvm::StringMap<int64_t> weightFileIds;
  llvm::Error pending = llvm::Error::success();
  std::function<std::string(const std::string &)> recordedPath;
  // Generated fused kernels, in first-use order, each once.
  std::vector<FusedKernelSource> kernels;
  llvm::StringSet<> kernelNames;

public:
  std::string manifestBytes; // the finished manifest; `blob` is the finished blob
  const std::string &blobBytes() const { return blob; }
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
    for (StringRef t : p.getTied().getAsValueRange<StringAttr>())
      b.tied.push_back(t.str());
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

// A step's location in the artifact: "<node> @ <module path>", and " (backward)" for the ops of
// a training step's backward (sc-autodiff's locations), which `shardc report` and the
// profiles tell apart.
static std::string stepLoc(Location loc) {
  OnnxLocInfo li = readOnnxLoc(loc);
  return li.nodeName + (li.modulePath.empty() ? "" : " @ " + li.modulePath) +
         (isBackwardLoc(loc) ? " (backward)" : "");
}

void Emitter::addStep(Operation *op, llvm::StringRef kind, ValueRange ins, ValueRange outs, rt::Attrs attrs,
                      OpCost cost) {
  if (pending)
    return;
  Step s;
  s.op = kind.str();
  s.loc = stepLoc(op->getLoc());
  s.host = sc::isHostOp(op);
  for (Value v : ins) {
    auto id = bufferFor(v);
    if (!id) {
      pending = id.takeError();
      return;
    }
    s.in.push_back(*id);
  }
  // The results' offsets, in the arena or (for a load step) in the persistent block.
  bool atLoad = sc::isAtLoad(op);
  auto offsets = op->getAttrOfType<DenseI64ArrayAttr>(atLoad ? sc::kPersistentOffsetsAttr : sc::kArenaOffsetsAttr);
  if (!outs.empty() && (!offsets || offsets.size() != outs.size())) {
    pending = fail(op, "op has no memory plan offsets (run sc-plan-memory last)");
    return;
  }
  for (auto [v, offset] : llvm::zip(outs, outs.empty() ? ArrayRef<int64_t>() : offsets.asArrayRef())) {
    auto id = newBuffer(v, atLoad ? "persistent" : "arena", "");
    if (!id) {
      pending = id.takeError();
      return;
    }
    s.out.push_back(*id);
    buffers[*id].arenaOffset = offset;
    buffers[*id].host = !atLoad && sc::isHostValue(v);
  }
  s.attrs = std::move(attrs);
  s.cost = cost;
  (atLoad ? loadSteps : steps).push_back(std::move(s));
}

llvm::Error Emitter::emitOp(Operation *op) {
  if (isa<sc::ParamOp, sc::ConstantOp>(op))
    return llvm::Error::success(); // buffers made on first use
  // Training state: a State buffer in the persistent block, initialised at load by a copy of
  // its init (or zero); an assign is a run step copying into that buffer.
  if (auto st = dyn_cast<sc::StateOp>(op)) {
    auto offsets = op->getAttrOfType<DenseI64ArrayAttr>(sc::kPersistentOffsetsAttr);
    if (!offsets || offsets.size() != 1)
      return fail(op, "state has no persistent offset (run sc-plan-memory last)");
    auto id = newBuffer(st.getResult(), "state", st.getName());
    if (!id)
      return id.takeError();
    buffers[*id].arenaOffset = offsets[0];
    buffers[*id].host = sc::isHostOp(st);
    if (!st.getInit())
      return llvm::Error::success();
    auto from = bufferFor(st.getInit());
    if (!from)
      return from.takeError();
    Step s;
    // A host state (CPU offload) gets its initial value from the device's weight.
    s.op = buffers[*id].host ? "copy_to_host" : "copy";
    if (buffers[*id].host)
      s.attrs.set("stream", std::string("copy"));
    s.loc = stepLoc(op->getLoc());
    s.in = {*from};
    s.out = {*id};
    loadSteps.push_back(std::move(s));
    return llvm::Error::success();
  }
  if (auto as = dyn_cast<sc::AssignOp>(op)) {
    auto state = bufferFor(as.getState());
    if (!state)
      return state.takeError();
    rt::Attrs none;
    addStep(op, "copy", as.getValue(), {}, std::move(none), defaultOpCost(op));
    if (!pending)
      steps.back().out = {*state};
    return std::move(pending);
  }
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
    // A generated kernel holds memory-bound ops only: its cost is the bytes it moves.
    addStep(op, "fused", op->getOperands(), op->getResults(), std::move(attrs), defaultOpCost(op));
  } else if (auto s = dyn_cast<sc::StepOpInterface>(op)) {
    // The op defines its step (ScStepLowering.cpp); the runtime must have its kernel (or, for
    // a collective, its packing).
    StepDesc step;
    if (failed(s.lowerToStep(step)))
      return fail(op, "op '" + op->getName().getStringRef() + "' cannot be lowered to a step");
    // CPU offload: a copy between the memories (sc-offload), on the copy stream; the
    // executor runs it through the backend (no kernel).
    bool offloadCopy = false;
    for (StringRef space : {"host", "device"})
      if (sc::isCopyTo(op, space)) {
        step.kind = ("copy_to_" + space).str();
        step.attrs.set("stream", std::string("copy"));
        offloadCopy = true;
      }
    if (!offloadCopy && !rt::lookupCpuKernel(step.kind) && !rt::lookupCollectiveKernel(step.kind) &&
        step.kind != rt::kProcessIndexStep)
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

  auto planned = [&](StringRef name) -> std::optional<int64_t> {
    if (auto a = module->getAttrOfType<IntegerAttr>(name))
      return a.getInt();
    return std::nullopt;
  };
  std::optional<int64_t> arenaBytes = planned(sc::kArenaBytesAttr), naiveBytes = planned(sc::kNaiveArenaBytesAttr),
                         persistentBytes = planned(sc::kPersistentBytesAttr);
  if (!arenaBytes || !naiveBytes || !persistentBytes)
    return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                   "the module has no memory plan: run sc-plan-memory (the compile pipeline's last pass)");
  MeshShape mesh = MeshShape::fromModule(module).value_or(
      MeshShape{{{"dp_replicate", 1}, {"dp_shard", 1}, {"cp", 1}, {"tp", 1}}});
  std::vector<std::pair<std::string, int64_t>> inputs, outputs; // (name, buffer id)
  Block &entry = func.getBody().front();
  for (auto [i, arg] : llvm::enumerate(entry.getArguments())) {
    auto name = func.getArgAttrOfType<StringAttr>(i, "sc.name");
    std::string n = name ? name.str() : "input" + std::to_string(i);
    auto id = newBuffer(arg, "arena", n);
    if (!id)
      return id.takeError();
    if (auto g = func.getArgAttrOfType<DenseI64ArrayAttr>(i, "sc.global_shape"))
      recordShard(buffers[*id], arg, g.asArrayRef());
    auto offset = func.getArgAttrOfType<IntegerAttr>(i, sc::kArenaOffsetAttr);
    if (!offset)
      return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                     "input '%s' has no arena offset: run sc-plan-memory", n.c_str());
    buffers[*id].arenaOffset = offset.getInt();
    inputs.push_back({n, *id});
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
    // Outputs live in the arena (sc-materialize-outputs copies the others there).
    if (buffers[id].storage != "arena" || isa<BlockArgument>(sc::storageValue(v)))
      return fail(ret, "output '" + n + "' is not a step result in the arena: run sc-materialize-outputs");
    if (buffers[id].name.empty())
      buffers[id].name = n;
    outputs.push_back({n, id});
  }
  stats.loadSteps = loadSteps.size();
  stats.persistentBytes = *persistentBytes;
  int64_t numSteps = steps.size();

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

  // Manifest: a FlatBuffer of runtime/schema/artifact.fbs.
  flatbuffers::FlatBufferBuilder fbb(4096);
  fbb.ForceDefaults(true); // every field written is stored (--dump-manifest shows it)
  auto longs = [&](ArrayRef<int64_t> v) { return fbb.CreateVector(v.data(), v.size()); };
  auto source = module->getAttrOfType<StringAttr>("sc.source");
  std::vector<flatbuffers::Offset<rt::fb::MeshAxis>> meshAxes;
  for (auto &[name, size] : mesh.axes)
    meshAxes.push_back(rt::fb::CreateMeshAxis(fbb, fbb.CreateString(name), size));
  if (mesh.ep > 1) // expert parallelism's sub-axes of dp_shard x cp
    for (llvm::StringRef sub : {"ep_shard", "ep"})
      meshAxes.push_back(rt::fb::CreateMeshAxis(fbb, fbb.CreateString(sub.str()), mesh.size(sub), /*sub=*/true));
  std::vector<flatbuffers::Offset<rt::fb::WeightFile>> files;
  for (auto &[p, size] : weightFiles)
    files.push_back(rt::fb::CreateWeightFile(fbb, fbb.CreateString(recordedPath(p)), size));
  std::vector<flatbuffers::Offset<rt::fb::Buffer>> fbBuffers;
  for (Buffer &b : buffers) {
    std::optional<rt::DType> dtype = rt::parseDType(b.dtype);
    if (!dtype)
      return llvm::createStringError(llvm::inconvertibleErrorCode(), "buffer '%s' has dtype '%s', which the runtime lacks",
                                     b.name.c_str(), b.dtype.c_str());
    auto name = fbb.CreateString(b.name);
    auto shape = longs(b.shape);
    flatbuffers::Offset<flatbuffers::String> transform;
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<flatbuffers::String>>> tied;
    flatbuffers::Offset<flatbuffers::Vector<int64_t>> fileShape, fileStart, globalShape;
    flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<rt::fb::ShardDim>>> shard;
    rt::fb::Storage storage = rt::fb::Storage::Constant;
    if (b.storage == "arena")
      storage = rt::fb::Storage::Arena;
    else if (b.storage == "persistent")
      storage = rt::fb::Storage::Persistent;
    else if (b.storage == "state")
      storage = rt::fb::Storage::State;
    else if (b.storage == "weight") {
      storage = rt::fb::Storage::Weight;
      transform = fbb.CreateString(b.transform);
      if (!b.tied.empty())
        tied = fbb.CreateVectorOfStrings(b.tied);
      if (!b.fileShape.empty())
        fileShape = longs(b.fileShape);
      if (!b.fileStart.empty())
        fileStart = longs(b.fileStart);
    }
    if (!b.shard.empty()) {
      globalShape = longs(b.globalShape);
      std::vector<flatbuffers::Offset<rt::fb::ShardDim>> dims;
      for (auto &[dim, axes] : b.shard) {
        std::vector<std::string> names(axes.begin(), axes.end());
        dims.push_back(rt::fb::CreateShardDim(fbb, dim, fbb.CreateVectorOfStrings(names)));
      }
      shard = fbb.CreateVector(dims);
    }
    rt::fb::BufferBuilder bb(fbb);
    bb.add_name(name);
    bb.add_dtype(rt::toSchema(*dtype));
    bb.add_shape(shape);
    bb.add_storage(storage);
    if (b.host)
      bb.add_space(rt::fb::MemorySpace::Host);
    if (b.storage == "arena" || b.storage == "persistent" || b.storage == "state")
      bb.add_offset(b.arenaOffset);
    else if (b.storage == "weight") {
      bb.add_file(b.file);
      bb.add_file_offset(b.fileOffset);
      bb.add_transform(transform);
      if (!fileShape.IsNull())
        bb.add_file_shape(fileShape);
      if (!fileStart.IsNull())
        bb.add_file_start(fileStart);
      rt::fb::FileRepeat repeat(b.fileRepeat.empty() ? 0 : b.fileRepeat[0], b.fileRepeat.empty() ? 0 : b.fileRepeat[1],
                                b.fileRepeat.empty() ? 0 : b.fileRepeat[2]);
      if (!b.fileRepeat.empty())
        bb.add_file_repeat(&repeat);
      if (!tied.IsNull())
        bb.add_tied(tied);
    } else
      bb.add_blob_offset(b.blobOffset);
    if (!shard.IsNull()) {
      bb.add_global_shape(globalShape);
      bb.add_shard(shard);
    }
    fbBuffers.push_back(bb.Finish());
  }
  auto bindings = [&](const std::vector<std::pair<std::string, int64_t>> &list) {
    std::vector<flatbuffers::Offset<rt::fb::IoBinding>> out;
    for (auto &[name, id] : list)
      out.push_back(rt::fb::CreateIoBinding(fbb, fbb.CreateString(name), id));
    return fbb.CreateVector(out);
  };
  flatbuffers::Offset<rt::fb::Kernels> fbKernels;
  if (!kernels.empty()) {
    std::vector<flatbuffers::Offset<rt::fb::KernelObject>> objects = {rt::fb::CreateKernelObject(
        fbb, fbb.CreateString(cpuKernelTarget().str()), kernelObject.offset, kernelObject.bytes)};
    fbKernels = rt::fb::CreateKernels(fbb, kernelSource.offset, kernelSource.bytes, fbb.CreateVector(objects));
  }
  // A step kind or attribute the schema lacks is an emission error naming the step.
  auto writeSteps = [&](std::vector<Step> &list)
      -> llvm::Expected<flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<rt::fb::Step>>>> {
    std::vector<flatbuffers::Offset<rt::fb::Step>> out;
    for (Step &s : list) {
      std::optional<rt::fb::StepKind> kind = rt::stepKindByName(s.op);
      if (!kind)
        return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                       "step '%s' (%s): kind '%s' is not declared in runtime/schema/artifact.fbs",
                                       s.op.c_str(), s.loc.c_str(), s.op.c_str());
      // The kind's attribute table, built from the schema (an undeclared attribute or a
      // value of the wrong type is an error naming the step).
      rt::fb::StepAttrs attrsType;
      flatbuffers::Offset<void> attrs;
      if (std::string err = rt::buildStepAttrs(fbb, s.op, s.attrs, attrsType, attrs); !err.empty())
        return llvm::createStringError(llvm::inconvertibleErrorCode(), "step '%s' (%s): %s", s.op.c_str(),
                                       s.loc.c_str(), err.c_str());
      out.push_back(rt::fb::CreateStep(fbb, *kind, longs(s.in), longs(s.out), attrsType, attrs,
                                       fbb.CreateString(s.loc), s.cost.flops, s.cost.bytes, s.host));
    }
    return fbb.CreateVector(out);
  };
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<rt::fb::Step>>> fbLoadSteps;
  if (!loadSteps.empty()) {
    auto written = writeSteps(loadSteps);
    if (!written)
      return written.takeError();
    fbLoadSteps = *written;
  }
  auto fbSteps = writeSteps(steps);
  if (!fbSteps)
    return fbSteps.takeError();
  // Several shape sets: the other sets' programs, nested, their blobs after this one's.
  flatbuffers::Offset<flatbuffers::String> fbShapes;
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<rt::fb::Program>>> fbPrograms;
  if (!options.shapes.empty())
    fbShapes = fbb.CreateString(options.shapes);
  if (!options.programs.empty()) {
    std::vector<flatbuffers::Offset<rt::fb::Program>> programs;
    for (const ProgramBytes &p : options.programs) {
      BlobRange r = appendBlob(p.blob);
      // The nested manifest is read in place: align it for its largest scalar (i64 shapes).
      fbb.ForceVectorAlignment(p.manifest.size(), sizeof(uint8_t), 16);
      auto nested = fbb.CreateVector(reinterpret_cast<const uint8_t *>(p.manifest.data()), p.manifest.size());
      programs.push_back(rt::fb::CreateProgram(fbb, fbb.CreateString(p.shapes), nested, r.offset, r.bytes));
    }
    fbPrograms = fbb.CreateVector(programs);
  }
  auto root = rt::fb::CreateManifest(
      fbb, rt::kArtifactFormatVersion, fbb.CreateString("shardc " SHARDC_VERSION),
      fbb.CreateString(source ? source.str() : std::string()), fbb.CreateVector(meshAxes), mesh.worldSize(),
      fbb.CreateVector(files), *arenaBytes, *persistentBytes, fbb.CreateVector(fbBuffers), bindings(inputs),
      bindings(outputs), fbKernels, fbLoadSteps, *fbSteps, fbShapes, fbPrograms,
      planned(sc::kHostArenaBytesAttr).value_or(0), planned(sc::kHostPersistentBytesAttr).value_or(0));
  rt::fb::FinishManifestBuffer(fbb, root);
  manifestBytes.assign(reinterpret_cast<const char *>(fbb.GetBufferPointer()), fbb.GetSize());

  stats.steps = numSteps;
  stats.buffers = buffers.size();
  stats.arenaBytes = *arenaBytes;
  stats.naiveArenaBytes = *naiveBytes;
  stats.hostArenaBytes = planned(sc::kHostArenaBytesAttr).value_or(0);
  stats.hostPersistentBytes = planned(sc::kHostPersistentBytesAttr).value_or(0);
  stats.constantBytes = blob.size();
  for (const Buffer &b : buffers)
    if (b.storage == "weight")
      stats.weightBytes += b.bytes;
  return llvm::Error::success();
}

} // namespace

llvm::Expected<ProgramBytes> emitProgram(ModuleOp module, llvm::StringRef outPath, EmitStats &stats,
                                         const EmitOptions &options) {
  Emitter e;
  e.options = options;
  if (auto err = e.run(module, outPath, stats))
    return std::move(err);
  ProgramBytes p;
  p.shapes = options.shapes;
  p.manifest = std::move(e.manifestBytes);
  p.blob = e.blobBytes();
  return p;
}

llvm::Error emitArtifact(ModuleOp module, llvm::StringRef outPath, EmitStats &stats, const EmitOptions &options) {
  auto p = emitProgram(module, outPath, stats, options);
  if (!p)
    return p.takeError();
  std::error_code ec;
  llvm::raw_fd_ostream out(outPath, ec, llvm::sys::fs::OF_None);
  if (ec)
    return llvm::createStringError(ec, "cannot write %s: %s", outPath.str().c_str(), ec.message().c_str());
  out << rt::encodeArtifactHeader(p->manifest, p->blob);
  out.write(p->manifest.data(), p->manifest.size());
  out.write(p->blob.data(), p->blob.size());
  out.close();
  if (out.has_error())
    return llvm::createStringError(out.error(), "cannot write %s", outPath.str().c_str());
  return llvm::Error::success();
}

} // namespace shardc
