// ONNX → sc importer: a registry of small per-op converters (one lambda per ONNX op) over a
// value table, with static shape inference, host folding of constant subgraphs, weights as
// sc.param references located in the model or external-data file, and module-path locations.
#include "shardc/Import/OnnxImporter.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Dialect/ScShapes.h"
#include "shardc/Import/ConstantEvaluator.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Builders.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/ADT/StringMap.h"
#include "mlir/IR/Verifier.h"
#include "llvm/ADT/StringSet.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/xxhash.h"

#include "shardc_onnx.pb.h"
#include <google/protobuf/io/coded_stream.h>

#include <cmath>
#include <functional>

using namespace mlir;
namespace onnx = shardc_onnx;

namespace shardc {

namespace {

constexpr int64_t kMinOpset = 13, kMaxOpset = 25, kMinIr = 3, kMaxIr = 12;

//===----------------------------------------------------------------------===//
// Wire-level scan: where each initializer's raw_data lies in the model file, so weights can
// be referenced by offset instead of copied (the generated classes do not expose offsets).
//===----------------------------------------------------------------------===//

struct WireReader {
  const uint8_t *p, *end;
  bool ok = true;
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      uint8_t b = *p++;
      v |= uint64_t(b & 0x7f) << shift;
      if (!(b & 0x80))
        return v;
    }
    ok = false;
    return 0;
  }
  // Skips a field of wire type `wt`; returns false on malformed input.
  bool skip(unsigned wt) {
    switch (wt) {
    case 0: varint(); return ok;
    case 1: if (end - p < 8) return ok = false; p += 8; return true;
    case 5: if (end - p < 4) return ok = false; p += 4; return true;
    case 2: {
      uint64_t n = varint();
      if (!ok || n > uint64_t(end - p)) return ok = false;
      p += n;
      return true;
    }
    default: return ok = false;
    }
  }
};

// name -> (offset, length) of TensorProto.raw_data for ModelProto.graph.initializer.
void locateRawData(const uint8_t *base, size_t size, llvm::StringMap<std::pair<uint64_t, uint64_t>> &out) {
  WireReader model{base, base + size};
  while (model.ok && model.p < model.end) {
    uint64_t tag = model.varint();
    if (!model.ok) return;
    if (tag == ((7u << 3) | 2)) { // graph
      uint64_t n = model.varint();
      if (!model.ok || n > uint64_t(model.end - model.p)) return;
      WireReader graph{model.p, model.p + n};
      while (graph.ok && graph.p < graph.end) {
        uint64_t gtag = graph.varint();
        if (!graph.ok) return;
        if (gtag == ((5u << 3) | 2)) { // initializer
          uint64_t tn = graph.varint();
          if (!graph.ok || tn > uint64_t(graph.end - graph.p)) return;
          WireReader t{graph.p, graph.p + tn};
          std::string name;
          std::pair<uint64_t, uint64_t> raw{0, 0};
          bool hasRaw = false;
          while (t.ok && t.p < t.end) {
            uint64_t ttag = t.varint();
            if (!t.ok) break;
            unsigned field = ttag >> 3, wt = ttag & 7;
            if ((field == 8 || field == 9) && wt == 2) {
              uint64_t len = t.varint();
              if (!t.ok || len > uint64_t(t.end - t.p)) break;
              if (field == 8)
                name.assign(reinterpret_cast<const char *>(t.p), len);
              else {
                raw = {uint64_t(t.p - base), len};
                hasRaw = true;
              }
              t.p += len;
            } else if (!t.skip(wt)) {
              break;
            }
          }
          if (hasRaw && !name.empty())
            out[name] = raw;
          graph.p += tn;
        } else if (!graph.skip(gtag & 7)) {
          return;
        }
      }
      model.p += n;
    } else if (!model.skip(tag & 7)) {
      return;
    }
  }
}

//===----------------------------------------------------------------------===//

std::optional<Type> elementTypeOf(MLIRContext *ctx, int32_t dt) {
  switch (dt) {
  case onnx::TensorProto::FLOAT: return Float32Type::get(ctx);
  case onnx::TensorProto::DOUBLE: return Float64Type::get(ctx);
  case onnx::TensorProto::FLOAT16: return Float16Type::get(ctx);
  case onnx::TensorProto::BFLOAT16: return BFloat16Type::get(ctx);
  case onnx::TensorProto::INT64: return IntegerType::get(ctx, 64);
  case onnx::TensorProto::INT32: return IntegerType::get(ctx, 32);
  case onnx::TensorProto::INT8: return IntegerType::get(ctx, 8);
  case onnx::TensorProto::UINT8: return IntegerType::get(ctx, 8, IntegerType::Unsigned);
  case onnx::TensorProto::BOOL: return IntegerType::get(ctx, 1);
  default: return std::nullopt;
  }
}

int64_t byteWidth(Type t) { return t.isInteger(1) ? 1 : (t.getIntOrFloatBitWidth() + 7) / 8; }

std::string shapeStr(ArrayRef<int64_t> s) {
  std::string r;
  for (auto [i, d] : llvm::enumerate(s))
    r += (i ? "x" : "") + std::to_string(d);
  return r.empty() ? "scalar" : r;
}

using sc::broadcastShapes;

// The deepest module path and class of a node, from the dynamo exporter's metadata_props or
// a TorchScript-style node name ("/blocks.0/attn/MatMul").
struct ModuleInfo {
  std::string path, cls;
};

std::vector<std::string> parsePyList(llvm::StringRef s) {
  std::vector<std::string> items;
  s = s.trim();
  if (!s.consume_front("[") || !s.consume_back("]"))
    return items;
  while (!s.empty()) {
    s = s.ltrim(" ,");
    if (s.empty())
      break;
    char q = s.front();
    if (q != '\'' && q != '"')
      break;
    size_t close = s.find(q, 1);
    if (close == StringRef::npos)
      break;
    items.push_back(s.substr(1, close - 1).str());
    s = s.drop_front(close + 1);
  }
  return items;
}

ModuleInfo moduleOf(const onnx::NodeProto &node) {
  ModuleInfo info;
  for (const auto &kv : node.metadata_props()) {
    if (kv.key() == "pkg.torch.onnx.name_scopes") {
      auto scopes = parsePyList(kv.value());
      // The last entry names the op itself; the one before is its deepest module.
      if (scopes.size() >= 2)
        info.path = scopes[scopes.size() - 2];
    } else if (kv.key() == "pkg.torch.onnx.class_hierarchy") {
      auto classes = parsePyList(kv.value());
      if (classes.size() >= 2)
        info.cls = classes[classes.size() - 2];
    }
  }
  if (info.path.empty() && llvm::StringRef(node.name()).starts_with("/")) {
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(node.name()).drop_front().split(parts, '/');
    if (parts.size() >= 2) {
      parts.pop_back();
      info.path = llvm::join(parts, ".");
    }
  }
  return info;
}

bool looksLikeModuleParam(llvm::StringRef name) {
  return name.contains('.') && !name.starts_with("onnx::") && !name.starts_with("val_") &&
         !name.starts_with("/");
}

//===----------------------------------------------------------------------===//

class Importer;

struct NodeCtx {
  Importer &im;
  const onnx::NodeProto &node;
  Location loc;
  ModuleInfo module;
  SmallVector<Value> inputs; // null Value for absent optional inputs
  SmallVector<Value> results;

  // Attributes.
  const onnx::AttributeProto *attr(llvm::StringRef name) const {
    for (const auto &a : node.attribute())
      if (a.name() == name)
        return &a;
    return nullptr;
  }
  int64_t intAttr(llvm::StringRef name, int64_t dflt) const {
    auto *a = attr(name);
    return a ? a->i() : dflt;
  }
  float floatAttr(llvm::StringRef name, float dflt) const {
    auto *a = attr(name);
    return a ? a->f() : dflt;
  }
  std::string strAttr(llvm::StringRef name, llvm::StringRef dflt) const {
    auto *a = attr(name);
    return a ? a->s() : dflt.str();
  }
  std::optional<SmallVector<int64_t>> intsAttr(llvm::StringRef name) const {
    auto *a = attr(name);
    if (!a)
      return std::nullopt;
    return SmallVector<int64_t>(a->ints().begin(), a->ints().end());
  }

  Value in(unsigned i) const { return i < inputs.size() ? inputs[i] : Value(); }
  RankedTensorType type(unsigned i) const { return cast<RankedTensorType>(inputs[i].getType()); }
  ArrayRef<int64_t> shape(unsigned i) const { return type(i).getShape(); }
  Type elem(unsigned i) const { return type(i).getElementType(); }
  RankedTensorType tensor(ArrayRef<int64_t> shape, Type et) const {
    return RankedTensorType::get(shape, et);
  }
};

using Converter = std::function<LogicalResult(NodeCtx &)>;

class Importer {
public:
  Importer(MLIRContext &ctx, llvm::StringRef path, const ImportOptions &opts)
      : ctx(ctx), builder(&ctx), path(path.str()), opts(opts) {}

  // `bytes` is the model file's content; `path` names it in messages and weight references.
  llvm::Expected<OwningOpRef<ModuleOp>> run(llvm::MemoryBufferRef bytes);

  // Set by converters: a one-line message; the importer adds file, node and module.
  std::string error;
  LogicalResult fail(const llvm::Twine &msg) {
    if (error.empty())
      error = msg.str();
    return failure();
  }

  MLIRContext &ctx;
  OpBuilder builder;
  std::string path;
  const ImportOptions &opts;

  std::optional<SmallVector<int64_t>> constInts(Value v);
  std::optional<HostTensor> constTensor(Value v);
  Value constant(DenseElementsAttr attr);
  Value i64Const(ArrayRef<int64_t> vals, ArrayRef<int64_t> shape);
  Value floatConst(double v, Type et);

  // Builds an sc op and folds it on the host when every operand is a constant.
  template <typename OpTy, typename... Args>
  Value build(NodeCtx &n, Type resultType, Args &&...args) {
    auto op = OpTy::create(builder, n.loc, resultType, std::forward<Args>(args)...);
    return foldIfConstant(op.getOperation());
  }
  Value foldIfConstant(Operation *op);

private:
  // Names in a corrupt model can hold any bytes; errors stay one printable line.
  llvm::Error makeError(const llvm::Twine &msg) {
    std::string text;
    for (unsigned char c : msg.str()) {
      if (c < 0x20 || c >= 0x7f) {
        char esc[8];
        snprintf(esc, sizeof esc, "\\x%02x", c);
        text += esc;
      } else {
        text += (char)c;
      }
      if (text.size() > 400) {
        text += "...";
        break;
      }
    }
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s", text.c_str());
  }
  LogicalResult importInitializer(const onnx::TensorProto &t);
  Value materializeInitializer(llvm::StringRef name);
  FailureOr<DenseElementsAttr> tensorData(const onnx::TensorProto &t, RankedTensorType type);
  void attributeParams(NodeCtx &n);

  llvm::StringMap<Value> values;
  llvm::StringMap<const onnx::TensorProto *> initializers;
  llvm::StringMap<std::pair<uint64_t, uint64_t>> rawOffsets;
  // Initializers that a Linear's MatMul/Gemm uses as its weight (directly or through a
  // Transpose): parameters whatever their size, so raising sees an sc.param.
  llvm::StringSet<> linearWeights;
  llvm::DenseMap<Attribute, Value> constants; // dedup by content (attributes are uniqued)
  Block *entry = nullptr;
  llvm::MemoryBufferRef file;
  std::string modelDir;
  int64_t opset = 0;
};

std::optional<HostTensor> Importer::constTensor(Value v) {
  if (!v)
    return std::nullopt;
  if (auto c = v.getDefiningOp<sc::ConstantOp>())
    return HostTensor::fromAttr(c.getValue());
  return std::nullopt;
}

std::optional<SmallVector<int64_t>> Importer::constInts(Value v) {
  auto t = constTensor(v);
  if (!t || !isa<IntegerType>(t->type.getElementType()))
    return std::nullopt;
  auto ints = t->asInts();
  return SmallVector<int64_t>(ints.begin(), ints.end());
}

Value Importer::constant(DenseElementsAttr attr) {
  auto it = constants.find(attr);
  if (it != constants.end())
    return it->second;
  OpBuilder::InsertionGuard g(builder);
  builder.setInsertionPointToStart(entry);
  Value v = sc::ConstantOp::create(builder, builder.getUnknownLoc(), attr.getType(), attr);
  constants[attr] = v;
  return v;
}

Value Importer::i64Const(ArrayRef<int64_t> vals, ArrayRef<int64_t> shape) {
  auto t = RankedTensorType::get(shape, builder.getI64Type());
  return constant(DenseIntElementsAttr::get(t, vals));
}

Value Importer::floatConst(double v, Type et) {
  auto t = RankedTensorType::get({}, et);
  HostTensor h{t, {v}};
  return constant(h.toAttr());
}

Value Importer::foldIfConstant(Operation *op) {
  if (op->getNumResults() != 1)
    return op->getResult(0);
  auto rt = cast<RankedTensorType>(op->getResult(0).getType());
  // Ops with their own folders (shape, constant_of_shape) fold regardless of operands.
  SmallVector<OpFoldResult> folded;
  if (succeeded(op->fold(folded)) && folded.size() == 1)
    if (auto attr = dyn_cast_if_present<DenseElementsAttr>(dyn_cast<Attribute>(folded[0]))) {
      op->erase();
      return constant(attr);
    }
  if (rt.getNumElements() > 1 << 16 || !isa<IntegerType, FloatType>(rt.getElementType()))
    return op->getResult(0);
  SmallVector<DenseElementsAttr> operands;
  for (Value v : op->getOperands()) {
    auto c = v.getDefiningOp<sc::ConstantOp>();
    auto dense = c ? dyn_cast<DenseElementsAttr>(c.getValue()) : nullptr;
    if (!dense)
      return op->getResult(0);
    operands.push_back(dense);
  }
  if (operands.empty())
    return op->getResult(0);
  auto result = evaluateOnHost(op, operands);
  if (!result || result->size() != 1)
    return op->getResult(0);
  op->erase();
  return constant((*result)[0]);
}

FailureOr<DenseElementsAttr> Importer::tensorData(const onnx::TensorProto &t, RankedTensorType type) {
  Type et = type.getElementType();
  int64_t n = type.getNumElements(), w = byteWidth(et);
  std::vector<char> bytes;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string loc;
    int64_t off = 0, len = -1;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location") loc = kv.value();
      else if (kv.key() == "offset") off = std::atoll(kv.value().c_str());
      else if (kv.key() == "length") len = std::atoll(kv.value().c_str());
    }
    llvm::SmallString<256> p(modelDir);
    llvm::sys::path::append(p, loc);
    auto buf = llvm::MemoryBuffer::getFileSlice(p, len < 0 ? n * w : len, off);
    if (!buf) {
      error = "cannot read external data of '" + t.name() + "' from " + std::string(p) + ": " +
              buf.getError().message();
      return failure();
    }
    bytes.assign((*buf)->getBufferStart(), (*buf)->getBufferEnd());
  } else if (!t.raw_data().empty()) {
    bytes.assign(t.raw_data().begin(), t.raw_data().end());
  } else {
    // Typed fields: float_data, int32_data (also bool/int8/uint8/f16/bf16 bits), int64_data, double_data.
    HostTensor h{type, {}};
    if (t.float_data_size()) for (float v : t.float_data()) h.values.push_back(v);
    else if (t.int64_data_size()) for (int64_t v : t.int64_data()) h.values.push_back((double)v);
    else if (t.double_data_size()) for (double v : t.double_data()) h.values.push_back(v);
    else if (t.int32_data_size()) {
      if (et.isF16() || et.isBF16()) {
        std::vector<uint16_t> bits;
        for (int32_t v : t.int32_data()) bits.push_back((uint16_t)v);
        if ((int64_t)bits.size() != n) { error = "tensor '" + t.name() + "' has the wrong number of values"; return failure(); }
        return DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>((const char *)bits.data(), bits.size() * 2));
      }
      for (int32_t v : t.int32_data()) h.values.push_back(v);
    }
    if ((int64_t)h.values.size() != n) {
      error = "tensor '" + t.name() + "' holds " + std::to_string(h.values.size()) + " values for shape " +
              shapeStr(type.getShape());
      return failure();
    }
    return h.toAttr();
  }
  if ((int64_t)bytes.size() != n * w) {
    error = "tensor '" + t.name() + "' has " + std::to_string(bytes.size()) + " bytes, its shape " +
            shapeStr(type.getShape()) + " needs " + std::to_string(n * w);
    return failure();
  }
  if (et.isInteger(1)) { // MLIR packs i1 as bits
    SmallVector<bool> bits;
    for (char c : bytes) bits.push_back(c != 0);
    return DenseElementsAttr::get(type, bits);
  }
  return DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(bytes.data(), bytes.size()));
}

// Initializers are materialised on first use, at the top of the function: small ones that
// are not module parameters as constants, the rest as sc.param references.
Value Importer::materializeInitializer(llvm::StringRef name) {
  const onnx::TensorProto &t = *initializers[name];
  SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
  auto et = elementTypeOf(&ctx, t.data_type());
  if (!et) {
    (void)fail("initializer '" + name + "' has unsupported element type " + std::to_string(t.data_type()));
    return {};
  }
  for (int64_t d : shape)
    if (d < 0 || d > (int64_t(1) << 40)) {
      (void)fail("initializer '" + name + "' has an invalid dim " + std::to_string(d));
      return {};
    }
  auto type = RankedTensorType::get(shape, *et);
  int64_t bytes = type.getNumElements() * byteWidth(*et);
  bool param = looksLikeModuleParam(name) || bytes > opts.maxConstantBytes || linearWeights.contains(name);
  if (!param) {
    auto data = tensorData(t, type);
    if (failed(data))
      return {};
    return constant(*data);
  }
  std::string file = path;
  int64_t offset = 0;
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    std::string loc;
    int64_t len = -1;
    for (const auto &kv : t.external_data()) {
      if (kv.key() == "location") loc = kv.value();
      else if (kv.key() == "offset") offset = std::atoll(kv.value().c_str());
      else if (kv.key() == "length") len = std::atoll(kv.value().c_str());
    }
    llvm::SmallString<256> p(modelDir);
    llvm::sys::path::append(p, loc);
    uint64_t size = 0;
    if (loc.empty() || llvm::sys::fs::file_size(p, size)) {
      (void)fail("external-data file '" + std::string(p) + "' of initializer '" + name + "' is missing");
      return {};
    }
    if (len >= 0 && len != bytes) {
      (void)fail("initializer '" + name + "' declares " + std::to_string(len) + " external bytes, its shape needs " +
           std::to_string(bytes));
      return {};
    }
    if (offset < 0 || uint64_t(offset + bytes) > size) {
      (void)fail("external-data file '" + std::string(p) + "' is too short for initializer '" + name + "'");
      return {};
    }
    file = std::string(p);
  } else {
    auto it = rawOffsets.find(name);
    if (it == rawOffsets.end()) {
      (void)fail("parameter '" + name + "' is not stored as raw bytes; re-export with raw_data or external data");
      return {};
    }
    if ((int64_t)it->second.second != bytes) {
      (void)fail("initializer '" + name + "' has " + std::to_string(it->second.second) + " bytes, its shape " +
           shapeStr(shape) + " needs " + std::to_string(bytes));
      return {};
    }
    offset = it->second.first;
  }
  OpBuilder::InsertionGuard g(builder);
  builder.setInsertionPointToStart(entry);
  Location loc = NameLoc::get(builder.getStringAttr(name));
  return sc::ParamOp::create(builder, loc, type, builder.getStringAttr(name), builder.getStringAttr(file),
                             builder.getI64IntegerAttr(offset), builder.getStringAttr("none"),
                             builder.getStringAttr(name), builder.getStrArrayAttr({}));
}

// Names anonymous parameters after the module that uses them (dynamo folds a Linear's
// weight into an anonymous transposed initializer `val_93`) and records tied uses.
void Importer::attributeParams(NodeCtx &n) {
  if (n.module.path.empty())
    return;
  llvm::StringRef cls(n.module.cls);
  bool isLinear = cls.ends_with(".Linear") || cls.ends_with("Conv1D");
  bool isEmbedding = cls.ends_with(".Embedding");
  llvm::StringRef opType(n.node.op_type());
  auto record = [&](sc::ParamOp p, llvm::StringRef transform) {
    std::string want = n.module.path + ".weight";
    if (p.getName() == p.getOnnxName() && !looksLikeModuleParam(p.getName())) {
      p.setName(want);
      p.setTransform(transform);
      p->setLoc(NameLoc::get(builder.getStringAttr(want)));
      return;
    }
    if (p.getName() == want)
      return;
    SmallVector<StringRef> tied(p.getTied().getAsValueRange<StringAttr>());
    if (!llvm::is_contained(tied, want)) {
      tied.push_back(want);
      p.setTiedAttr(builder.getStrArrayAttr(tied));
    }
  };
  if (isLinear && (opType == "MatMul" || opType == "Gemm") && n.inputs.size() >= 2) {
    Value w = n.inputs[1];
    bool transposedByGraph = false;
    if (auto t = w.getDefiningOp<sc::TransposeOp>()) {
      w = t.getInput();
      transposedByGraph = true;
    }
    if (auto p = w.getDefiningOp<sc::ParamOp>()) {
      bool gemmTransB = opType == "Gemm" && n.intAttr("transB", 0);
      // PyTorch's Linear weight is [out, in]; a weight consumed untransposed is [in, out].
      bool stored = transposedByGraph || gemmTransB;
      if (cls.ends_with("Conv1D"))
        stored = !stored; // HF Conv1D keeps [in, out]
      record(p, stored ? "none" : "transpose");
    }
  }
  if (isEmbedding && opType == "Gather" && !n.inputs.empty())
    if (auto p = n.inputs[0].getDefiningOp<sc::ParamOp>())
      record(p, "none");
}

std::vector<std::pair<std::string, Converter>> &registry();

llvm::Expected<OwningOpRef<ModuleOp>> Importer::run(llvm::MemoryBufferRef bytes) {
  file = bytes;
  modelDir = llvm::sys::path::parent_path(path).str();
  if (modelDir.empty())
    modelDir = ".";

  onnx::ModelProto model;
  {
    google::protobuf::io::CodedInputStream cis(
        reinterpret_cast<const uint8_t *>(file.getBufferStart()), (int)std::min<size_t>(file.getBufferSize(), INT32_MAX));
    cis.SetTotalBytesLimit(INT32_MAX);
    if (!model.ParseFromCodedStream(&cis) || !cis.ConsumedEntireMessage())
      return makeError(path + ": not a valid ONNX model (protobuf parse failed; truncated or corrupt file?)");
  }
  if (!model.has_graph() || model.ir_version() <= 0)
    return makeError(path + ": not an ONNX model (no graph or IR version)");
  if (model.ir_version() < kMinIr || model.ir_version() > kMaxIr)
    return makeError(path + ": IR version " + llvm::Twine(model.ir_version()) + " is not supported (supported: " +
                     llvm::Twine(kMinIr) + " to " + llvm::Twine(kMaxIr) + ")");
  for (const auto &os : model.opset_import()) {
    if (os.domain().empty() || os.domain() == "ai.onnx")
      opset = os.version();
  }
  if (opset < kMinOpset || opset > kMaxOpset)
    return makeError(path + ": opset " + llvm::Twine(opset) + " is not supported (supported: " + llvm::Twine(kMinOpset) +
                     " to " + llvm::Twine(kMaxOpset) + "); re-export with a supported opset_version");
  locateRawData(reinterpret_cast<const uint8_t *>(file.getBufferStart()), file.getBufferSize(), rawOffsets);

  const onnx::GraphProto &graph = model.graph();
  for (const auto &t : graph.initializer())
    initializers[t.name()] = &t;
  {
    llvm::StringMap<std::string> transposeInput;
    for (const auto &node : graph.node())
      if (node.op_type() == "Transpose" && node.input_size() == 1 && node.output_size() == 1)
        transposeInput[node.output(0)] = node.input(0);
    for (const auto &node : graph.node()) {
      ModuleInfo module = moduleOf(node);
      llvm::StringRef cls(module.cls);
      if ((node.op_type() != "MatMul" && node.op_type() != "Gemm") || node.input_size() < 2 ||
          !(cls.ends_with(".Linear") || cls.ends_with("Conv1D")))
        continue;
      auto t = transposeInput.find(node.input(1));
      linearWeights.insert(t == transposeInput.end() ? node.input(1) : t->second);
    }
  }

  // Function signature: graph inputs that are not initializers.
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  llvm::StringSet<> boundInputs;
  for (const auto &vi : graph.input()) {
    if (initializers.count(vi.name()))
      continue;
    if (!vi.type().has_tensor_type())
      return makeError(path + ": input '" + vi.name() + "' is not a tensor");
    const auto &tt = vi.type().tensor_type();
    auto et = elementTypeOf(&ctx, tt.elem_type());
    if (!et)
      return makeError(path + ": input '" + vi.name() + "' has unsupported element type " + llvm::Twine(tt.elem_type()));
    SmallVector<int64_t> shape;
    auto bound = opts.inputShapes.find(vi.name());
    const auto &dims = tt.shape().dim();
    if (bound != opts.inputShapes.end()) {
      boundInputs.insert(vi.name());
      if ((int)bound->second.size() != dims.size())
        return makeError(path + ": --input-shape " + vi.name() + " has rank " + llvm::Twine(bound->second.size()) +
                         ", the input has rank " + llvm::Twine(dims.size()));
      for (int i = 0; i < dims.size(); ++i) {
        if (dims[i].has_dim_value() && dims[i].dim_value() != bound->second[i])
          return makeError(path + ": --input-shape " + vi.name() + " rebinds static dim " + llvm::Twine(i) + " (" +
                           llvm::Twine(dims[i].dim_value()) + ") to " + llvm::Twine(bound->second[i]) +
                           "; only symbolic dims can be bound");
        shape.push_back(bound->second[i]);
      }
    } else {
      for (const auto &d : dims) {
        if (!d.has_dim_value())
          return makeError(path + ": input '" + vi.name() + "' has symbolic dim '" +
                           (d.dim_param().empty() ? std::string("?") : d.dim_param()) + "'; bind it with --input-shape " +
                           vi.name() + "=<dims separated by x>");
        shape.push_back(d.dim_value());
      }
    }
    argTypes.push_back(RankedTensorType::get(shape, *et));
    argNames.push_back(vi.name());
  }
  for (const auto &kv : opts.inputShapes)
    if (!boundInputs.contains(kv.first))
      return makeError(path + ": --input-shape names '" + kv.first + "', which is not a graph input");

  OwningOpRef<ModuleOp> module = ModuleOp::create(FileLineColLoc::get(&ctx, path, 0, 0));
  (*module)->setAttr("sc.source", builder.getStringAttr(llvm::sys::path::filename(path)));
  builder.setInsertionPointToEnd(module->getBody());
  auto func = func::FuncOp::create(builder, module->getLoc(), "main", builder.getFunctionType(argTypes, {}));
  entry = func.addEntryBlock();
  for (auto [i, name] : llvm::enumerate(argNames)) {
    values[name] = entry->getArgument(i);
    func.setArgAttr(i, "sc.name", builder.getStringAttr(name));
  }
  builder.setInsertionPointToEnd(entry);

  llvm::StringMap<Converter> converters;
  for (auto &[name, fn] : registry())
    converters[name] = fn;

  std::string fileName = llvm::sys::path::filename(path).str();
  for (auto [index, node] : llvm::enumerate(graph.node())) {
    ModuleInfo mod = moduleOf(node);
    Location loc = makeOnnxLoc(&ctx, {fileName, node.name(), mod.path}, index + 1);
    auto where = [&]() {
      std::string s = path + ": node '" + node.name() + "' (" + node.op_type();
      if (!mod.path.empty())
        s += ", " + mod.path;
      return s + ")";
    };
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      return makeError(where() + ": op domain '" + node.domain() + "' is not supported");
    auto conv = converters.find(node.op_type());
    if (conv == converters.end())
      return makeError(where() + ": unsupported op " + node.op_type() + " (shardc inspect lists every unsupported op)");
    NodeCtx n{*this, node, loc, mod, {}, {}};
    for (const std::string &name : node.input()) {
      if (name.empty()) {
        n.inputs.push_back(Value());
        continue;
      }
      auto it = values.find(name);
      if (it == values.end()) {
        if (!initializers.count(name))
          return makeError(where() + ": input '" + name + "' is not produced by any earlier node");
        Value v = materializeInitializer(name);
        if (!v)
          return makeError(where() + ": " + error);
        values[name] = v;
        n.inputs.push_back(v);
      } else {
        n.inputs.push_back(it->second);
      }
    }
    for (Value v : n.inputs)
      if (v && !isa<RankedTensorType>(v.getType()))
        return makeError(where() + ": non-tensor input");
    error.clear();
    if (failed(conv->second(n)))
      return makeError(where() + ": " + (error.empty() ? std::string("conversion failed") : error));
    attributeParams(n);
    if (n.results.size() < (size_t)node.output_size()) {
      for (int i = n.results.size(); i < node.output_size(); ++i)
        if (!node.output(i).empty())
          return makeError(where() + ": output " + llvm::Twine(i) + " ('" + node.output(i) + "') is not supported");
    }
    for (auto [i, name] : llvm::enumerate(node.output()))
      if (!name.empty() && i < n.results.size())
        values[name] = n.results[i];
  }

  SmallVector<Value> results;
  SmallVector<Type> resultTypes;
  for (const auto &vi : graph.output()) {
    auto it = values.find(vi.name());
    if (it == values.end())
      return makeError(path + ": graph output '" + vi.name() + "' is not produced by any node");
    results.push_back(it->second);
    resultTypes.push_back(it->second.getType());
  }
  func::ReturnOp::create(builder, module->getLoc(), results);
  func.setType(builder.getFunctionType(argTypes, resultTypes));
  for (auto [i, vi] : llvm::enumerate(graph.output()))
    func.setResultAttr(i, "sc.name", builder.getStringAttr(vi.name()));
  // Unused constants from dedup/fold leftovers are removed by the caller's canonicalisation.
  if (failed(verify(*module)))
    return makeError(path + ": the imported program does not verify (an importer bug; please report it)");
  return std::move(module);
}

//===----------------------------------------------------------------------===//
// Converters
//===----------------------------------------------------------------------===//

LogicalResult needInputs(NodeCtx &n, unsigned count) {
  if (n.inputs.size() < count)
    return n.im.fail("expects " + llvm::Twine(count) + " inputs, got " + llvm::Twine(n.inputs.size()));
  for (unsigned i = 0; i < count; ++i)
    if (!n.inputs[i])
      return n.im.fail("input " + llvm::Twine(i) + " is required");
  return success();
}

template <typename OpTy> Converter binary(bool boolResult = false) {
  return [boolResult](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 2)))
      return failure();
    SmallVector<int64_t> shape;
    if (!broadcastShapes(n.shape(0), n.shape(1), shape))
      return n.im.fail("shapes " + shapeStr(n.shape(0)) + " and " + shapeStr(n.shape(1)) + " do not broadcast");
    Value lhs = n.in(0), rhs = n.in(1);
    if (n.elem(0) != n.elem(1) && !std::is_same_v<OpTy, sc::PowOp>)
      return n.im.fail("operand element types differ");
    Type et = boolResult ? Type(n.im.builder.getI1Type()) : n.elem(0);
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(shape, et), lhs, rhs));
    return success();
  };
}

template <typename OpTy> Converter unary(bool boolResult = false) {
  return [boolResult](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 1)))
      return failure();
    Type et = boolResult ? Type(n.im.builder.getI1Type()) : n.elem(0);
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(n.shape(0), et), n.in(0)));
    return success();
  };
}

int64_t normAxis(int64_t a, int64_t rank) { return a < 0 ? a + rank : a; }

FailureOr<SmallVector<int64_t>> constOperand(NodeCtx &n, unsigned i, llvm::StringRef what) {
  auto v = n.im.constInts(n.in(i));
  if (!v) {
    n.im.fail(what + " must be a constant (shapes are static in shardc)");
    return failure();
  }
  return *v;
}

LogicalResult convertReshape(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto spec = constOperand(n, 1, "the shape operand");
  if (failed(spec))
    return failure();
  bool allowZero = n.intAttr("allowzero", 0);
  ArrayRef<int64_t> in = n.shape(0);
  int64_t total = n.type(0).getNumElements(), known = 1, inferAt = -1;
  SmallVector<int64_t> out;
  for (auto [i, d] : llvm::enumerate(*spec)) {
    if (d == 0 && !allowZero) {
      if (i >= in.size())
        return n.im.fail("shape entry 0 at " + llvm::Twine(i) + " copies a dim the input lacks");
      d = in[i];
    }
    if (d == -1) {
      if (inferAt >= 0)
        return n.im.fail("shape has more than one -1");
      inferAt = i;
      out.push_back(1);
      continue;
    }
    if (d < 0)
      return n.im.fail("negative shape entry " + llvm::Twine(d));
    known *= d;
    out.push_back(d);
  }
  if (inferAt >= 0) {
    if (known == 0 || total % known)
      return n.im.fail("cannot reshape " + shapeStr(in) + " with -1 in the target shape");
    out[inferAt] = total / known;
  }
  int64_t outTotal = 1;
  for (int64_t d : out) outTotal *= d;
  if (outTotal != total)
    return n.im.fail("cannot reshape " + shapeStr(in) + " to " + shapeStr(out));
  n.results.push_back(n.im.build<sc::ReshapeOp>(n, n.tensor(out, n.elem(0)), n.in(0)));
  return success();
}

LogicalResult convertMatMul(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  ArrayRef<int64_t> a = n.shape(0), b = n.shape(1);
  if (a.empty() || b.empty())
    return n.im.fail("MatMul operands must have rank >= 1");
  int64_t ka = a.back(), kb = b.size() == 1 ? b[0] : b[b.size() - 2];
  if (ka != kb)
    return n.im.fail("contracting dims differ: " + shapeStr(a) + " . " + shapeStr(b));
  SmallVector<int64_t> batch;
  if (!broadcastShapes(a.size() > 2 ? a.drop_back(2) : ArrayRef<int64_t>(), b.size() > 2 ? b.drop_back(2) : ArrayRef<int64_t>(), batch))
    return n.im.fail("batch dims do not broadcast: " + shapeStr(a) + " . " + shapeStr(b));
  SmallVector<int64_t> out(batch);
  if (a.size() >= 2) out.push_back(a[a.size() - 2]);
  if (b.size() >= 2) out.push_back(b.back());
  if (n.elem(0) != n.elem(1))
    return n.im.fail("operand element types differ");
  n.results.push_back(n.im.build<sc::MatMulOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.in(1)));
  return success();
}

LogicalResult convertGemm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  bool ta = n.intAttr("transA", 0), tb = n.intAttr("transB", 0);
  ArrayRef<int64_t> a = n.shape(0), b = n.shape(1);
  if (a.size() != 2 || b.size() != 2)
    return n.im.fail("Gemm needs 2-D A and B");
  SmallVector<int64_t> out{ta ? a[1] : a[0], tb ? b[0] : b[1]};
  auto &bld = n.im.builder;
  auto op = sc::GemmOp::create(bld, n.loc, n.tensor(out, n.elem(0)), n.in(0), n.in(1), n.in(2),
                               bld.getF32FloatAttr(n.floatAttr("alpha", 1.0f)), bld.getF32FloatAttr(n.floatAttr("beta", 1.0f)),
                               bld.getBoolAttr(ta), bld.getBoolAttr(tb));
  n.results.push_back(op);
  return success();
}

LogicalResult convertCast(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  auto et = elementTypeOf(&n.im.ctx, n.intAttr("to", 0));
  if (!et)
    return n.im.fail("Cast to unsupported type " + llvm::Twine(n.intAttr("to", 0)));
  if (*et == n.elem(0)) {
    n.results.push_back(n.in(0));
    return success();
  }
  n.results.push_back(n.im.build<sc::CastOp>(n, n.tensor(n.shape(0), *et), n.in(0)));
  return success();
}

LogicalResult convertTranspose(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  SmallVector<int64_t> perm;
  if (auto p = n.intsAttr("perm"))
    perm = *p;
  else
    for (int64_t i = rank - 1; i >= 0; --i) perm.push_back(i);
  if ((int64_t)perm.size() != rank)
    return n.im.fail("perm has " + llvm::Twine(perm.size()) + " entries for rank " + llvm::Twine(rank));
  SmallVector<int64_t> out;
  for (int64_t &p : perm) {
    p = normAxis(p, rank);
    if (p < 0 || p >= rank)
      return n.im.fail("perm entry out of range");
    out.push_back(n.shape(0)[p]);
  }
  n.results.push_back(n.im.build<sc::TransposeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(perm)));
  return success();
}

LogicalResult convertSlice(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  ArrayRef<int64_t> in = n.shape(0);
  int64_t rank = in.size();
  auto starts = constOperand(n, 1, "Slice starts");
  auto ends = constOperand(n, 2, "Slice ends");
  if (failed(starts) || failed(ends))
    return failure();
  SmallVector<int64_t> axes, steps;
  if (n.in(3)) {
    auto a = constOperand(n, 3, "Slice axes");
    if (failed(a)) return failure();
    axes = *a;
  } else {
    for (size_t i = 0; i < starts->size(); ++i) axes.push_back(i);
  }
  if (n.in(4)) {
    auto s = constOperand(n, 4, "Slice steps");
    if (failed(s)) return failure();
    steps = *s;
  } else {
    steps.assign(starts->size(), 1);
  }
  if (axes.size() != starts->size() || ends->size() != starts->size() || steps.size() != starts->size())
    return n.im.fail("Slice starts, ends, axes and steps differ in length");
  SmallVector<int64_t> st(rank, 0), sp(rank, 1), out(in.begin(), in.end());
  for (size_t i = 0; i < axes.size(); ++i) {
    int64_t ax = normAxis(axes[i], rank);
    if (ax < 0 || ax >= rank)
      return n.im.fail("Slice axis " + llvm::Twine(axes[i]) + " out of range");
    int64_t dim = in[ax], step = steps[i], s = (*starts)[i], e = (*ends)[i];
    if (step == 0)
      return n.im.fail("Slice step is zero");
    if (s < 0) s += dim;
    if (e < 0 && e > INT64_MIN / 2) e += dim;
    if (step > 0) {
      s = std::clamp<int64_t>(s, 0, dim);
      e = std::clamp<int64_t>(e, 0, dim);
      out[ax] = e > s ? (e - s + step - 1) / step : 0;
    } else {
      s = std::clamp<int64_t>(s, -1, dim - 1);
      e = std::clamp<int64_t>(e, -1, dim - 1);
      out[ax] = s > e ? (s - e + (-step) - 1) / (-step) : 0;
    }
    st[ax] = out[ax] ? s : 0;
    sp[ax] = step;
  }
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<sc::SliceOp>(n, n.tensor(out, n.elem(0)), n.in(0), b.getDenseI64ArrayAttr(st), b.getDenseI64ArrayAttr(sp)));
  return success();
}

LogicalResult convertConcat(NodeCtx &n) {
  if (n.inputs.empty())
    return n.im.fail("Concat needs inputs");
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("Concat axis out of range");
  SmallVector<int64_t> out(n.shape(0));
  out[axis] = 0;
  SmallVector<Value> ins;
  for (unsigned i = 0; i < n.inputs.size(); ++i) {
    if (!n.inputs[i] || (int64_t)n.shape(i).size() != rank)
      return n.im.fail("Concat inputs differ in rank");
    for (int64_t d = 0; d < rank; ++d)
      if (d != axis && n.shape(i)[d] != n.shape(0)[d])
        return n.im.fail("Concat input " + shapeStr(n.shape(i)) + " differs from " + shapeStr(n.shape(0)));
    out[axis] += n.shape(i)[axis];
    if (n.shape(i)[axis] > 0)
      ins.push_back(n.inputs[i]);
  }
  n.results.push_back(n.im.build<sc::ConcatOp>(n, n.tensor(out, n.elem(0)), ins, n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult convertSplit(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("Split axis out of range");
  int64_t dim = n.shape(0)[axis], outs = n.node.output_size();
  SmallVector<int64_t> sizes;
  if (n.in(1)) {
    auto s = constOperand(n, 1, "Split sizes");
    if (failed(s)) return failure();
    sizes = *s;
  } else if (auto s = n.intsAttr("split")) {
    sizes = *s;
  } else {
    int64_t parts = n.intAttr("num_outputs", outs);
    int64_t chunk = (dim + parts - 1) / parts;
    for (int64_t i = 0; i < parts; ++i)
      sizes.push_back(std::min(chunk, dim - i * chunk));
  }
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  if ((int64_t)sizes.size() != outs || total != dim)
    return n.im.fail("Split sizes do not cover dim " + llvm::Twine(dim) + " with " + llvm::Twine(outs) + " outputs");
  SmallVector<Type> types;
  for (int64_t s : sizes) {
    SmallVector<int64_t> shp(n.shape(0));
    shp[axis] = s;
    types.push_back(n.tensor(shp, n.elem(0)));
  }
  auto op = sc::SplitOp::create(n.im.builder, n.loc, types, n.in(0), n.im.builder.getI64IntegerAttr(axis));
  for (Value r : op.getResults())
    n.results.push_back(r);
  return success();
}

LogicalResult convertGather(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("Gather axis out of range");
  if (!isa<IntegerType>(n.elem(1)))
    return n.im.fail("Gather indices must be integers");
  SmallVector<int64_t> out(n.shape(0).take_front(axis));
  llvm::append_range(out, n.shape(1));
  llvm::append_range(out, n.shape(0).drop_front(axis + 1));
  auto type = n.tensor(out, n.elem(0));
  // A Gather of a 2-D parameter along axis 0 is an embedding lookup.
  if (axis == 0 && rank == 2 && n.in(0).getDefiningOp<sc::ParamOp>()) {
    n.results.push_back(n.im.build<sc::EmbeddingOp>(n, type, n.in(0), n.in(1)));
    return success();
  }
  n.results.push_back(n.im.build<sc::GatherOp>(n, type, n.in(0), n.in(1), n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult convertGatherElements(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", 0), rank);
  if (axis < 0 || axis >= rank || (int64_t)n.shape(1).size() != rank)
    return n.im.fail("GatherElements axis or indices rank invalid");
  n.results.push_back(n.im.build<sc::GatherElementsOp>(n, n.tensor(n.shape(1), n.elem(0)), n.in(0), n.in(1),
                                                       n.im.builder.getI64IntegerAttr(axis)));
  return success();
}

LogicalResult convertExpand(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  auto shape = constOperand(n, 1, "the Expand shape");
  if (failed(shape))
    return failure();
  SmallVector<int64_t> out;
  if (!broadcastShapes(n.shape(0), *shape, out))
    return n.im.fail("cannot expand " + shapeStr(n.shape(0)) + " to " + shapeStr(*shape));
  if (ArrayRef<int64_t>(out) == n.shape(0)) {
    n.results.push_back(n.in(0));
    return success();
  }
  n.results.push_back(n.im.build<sc::ExpandOp>(n, n.tensor(out, n.elem(0)), n.in(0)));
  return success();
}

LogicalResult convertUnsqueeze(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  SmallVector<int64_t> axes;
  if (n.in(1)) {
    auto a = constOperand(n, 1, "Unsqueeze axes");
    if (failed(a)) return failure();
    axes = *a;
  } else if (auto a = n.intsAttr("axes")) {
    axes = *a;
  }
  int64_t outRank = n.shape(0).size() + axes.size();
  for (int64_t &a : axes) {
    a = normAxis(a, outRank);
    if (a < 0 || a >= outRank)
      return n.im.fail("Unsqueeze axis out of range");
  }
  llvm::sort(axes);
  SmallVector<int64_t> out;
  unsigned j = 0;
  for (int64_t i = 0; i < outRank; ++i)
    out.push_back(llvm::is_contained(axes, i) ? 1 : n.shape(0)[j++]);
  n.results.push_back(n.im.build<sc::UnsqueezeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(axes)));
  return success();
}

LogicalResult convertSqueeze(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  SmallVector<int64_t> axes;
  if (n.in(1)) {
    auto a = constOperand(n, 1, "Squeeze axes");
    if (failed(a)) return failure();
    axes = *a;
  } else if (auto a = n.intsAttr("axes")) {
    axes = *a;
  } else {
    for (int64_t i = 0; i < rank; ++i)
      if (n.shape(0)[i] == 1) axes.push_back(i);
  }
  for (int64_t &a : axes) {
    a = normAxis(a, rank);
    if (a < 0 || a >= rank || n.shape(0)[a] != 1)
      return n.im.fail("cannot squeeze axis " + llvm::Twine(a) + " of " + shapeStr(n.shape(0)));
  }
  llvm::sort(axes);
  SmallVector<int64_t> out;
  for (int64_t i = 0; i < rank; ++i)
    if (!llvm::is_contained(axes, i)) out.push_back(n.shape(0)[i]);
  n.results.push_back(n.im.build<sc::SqueezeOp>(n, n.tensor(out, n.elem(0)), n.in(0), n.im.builder.getDenseI64ArrayAttr(axes)));
  return success();
}

template <typename OpTy> Converter reduce(bool axesAsInputSince18) {
  return [axesAsInputSince18](NodeCtx &n) -> LogicalResult {
    if (failed(needInputs(n, 1)))
      return failure();
    int64_t rank = n.shape(0).size();
    SmallVector<int64_t> axes;
    bool fromInput = n.in(1) != Value();
    (void)axesAsInputSince18;
    if (fromInput) {
      auto a = constOperand(n, 1, "reduction axes");
      if (failed(a)) return failure();
      axes = *a;
    } else if (auto a = n.intsAttr("axes")) {
      axes = *a;
    }
    if (axes.empty()) {
      if (n.intAttr("noop_with_empty_axes", 0)) {
        n.results.push_back(n.in(0));
        return success();
      }
      for (int64_t i = 0; i < rank; ++i) axes.push_back(i);
    }
    for (int64_t &a : axes) {
      a = normAxis(a, rank);
      if (a < 0 || a >= rank)
        return n.im.fail("reduction axis out of range");
    }
    llvm::sort(axes);
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    bool keep = n.intAttr("keepdims", 1);
    SmallVector<int64_t> out;
    for (int64_t i = 0; i < rank; ++i) {
      if (llvm::is_contained(axes, i)) {
        if (keep) out.push_back(1);
      } else {
        out.push_back(n.shape(0)[i]);
      }
    }
    auto &b = n.im.builder;
    n.results.push_back(n.im.build<OpTy>(n, n.tensor(out, n.elem(0)), n.in(0), b.getDenseI64ArrayAttr(axes), b.getBoolAttr(keep)));
    return success();
  };
}

LogicalResult convertWhere(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  SmallVector<int64_t> s1, s2;
  if (!broadcastShapes(n.shape(0), n.shape(1), s1) || !broadcastShapes(s1, n.shape(2), s2))
    return n.im.fail("Where operand shapes do not broadcast");
  if (!n.elem(0).isInteger(1))
    return n.im.fail("Where condition must be bool");
  n.results.push_back(n.im.build<sc::WhereOp>(n, n.tensor(s2, n.elem(1)), n.in(0), n.in(1), n.in(2)));
  return success();
}

LogicalResult convertSoftmax(NodeCtx &n, bool log) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  if (axis < 0 || axis >= rank)
    return n.im.fail("softmax axis out of range");
  auto t = n.type(0);
  auto ax = n.im.builder.getI64IntegerAttr(axis);
  n.results.push_back(log ? n.im.build<sc::LogSoftmaxOp>(n, t, n.in(0), ax) : n.im.build<sc::SoftmaxOp>(n, t, n.in(0), ax));
  return success();
}

LogicalResult convertLayerNorm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  if (n.node.output_size() > 1)
    for (int i = 1; i < n.node.output_size(); ++i)
      if (!n.node.output(i).empty())
        return n.im.fail("LayerNormalization's Mean/InvStdDev outputs are not supported");
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  auto &b = n.im.builder;
  n.results.push_back(sc::LayerNormOp::create(b, n.loc, n.type(0), n.in(0), n.in(1), n.in(2), b.getI64IntegerAttr(axis),
                                              b.getF32FloatAttr(n.floatAttr("epsilon", 1e-5f))));
  return success();
}

LogicalResult convertRmsNorm(NodeCtx &n) {
  if (failed(needInputs(n, 2)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t axis = normAxis(n.intAttr("axis", -1), rank);
  auto &b = n.im.builder;
  n.results.push_back(sc::RmsNormOp::create(b, n.loc, n.type(0), n.in(0), n.in(1), b.getI64IntegerAttr(axis),
                                            b.getF32FloatAttr(n.floatAttr("epsilon", 1e-5f))));
  return success();
}

LogicalResult convertConstant(NodeCtx &n) {
  auto &b = n.im.builder;
  for (const auto &a : n.node.attribute()) {
    if (a.name() == "value") {
      const auto &t = a.t();
      auto et = elementTypeOf(&n.im.ctx, t.data_type());
      if (!et)
        return n.im.fail("Constant of unsupported type");
      SmallVector<int64_t> shape(t.dims().begin(), t.dims().end());
      auto type = RankedTensorType::get(shape, *et);
      HostTensor h{type, {}};
      if (!t.raw_data().empty()) {
        int64_t w = byteWidth(*et);
        if ((int64_t)t.raw_data().size() != type.getNumElements() * w)
          return n.im.fail("Constant raw data size mismatch");
        if (et->isInteger(1)) {
          for (char c : t.raw_data()) h.values.push_back(c != 0);
          n.results.push_back(n.im.constant(h.toAttr()));
        } else {
          n.results.push_back(n.im.constant(DenseElementsAttr::getFromRawBuffer(type, ArrayRef<char>(t.raw_data().data(), t.raw_data().size()))));
        }
        return success();
      }
      if (t.float_data_size()) for (float v : t.float_data()) h.values.push_back(v);
      else if (t.int64_data_size()) for (int64_t v : t.int64_data()) h.values.push_back((double)v);
      else if (t.int32_data_size()) for (int32_t v : t.int32_data()) h.values.push_back(v);
      else if (t.double_data_size()) for (double v : t.double_data()) h.values.push_back(v);
      if ((int64_t)h.values.size() != type.getNumElements())
        return n.im.fail("Constant value count mismatch");
      n.results.push_back(n.im.constant(h.toAttr()));
      return success();
    }
    if (a.name() == "value_float") {
      n.results.push_back(n.im.floatConst(a.f(), b.getF32Type()));
      return success();
    }
    if (a.name() == "value_int") {
      n.results.push_back(n.im.i64Const({a.i()}, {}));
      return success();
    }
    if (a.name() == "value_floats") {
      HostTensor h{RankedTensorType::get({(int64_t)a.floats_size()}, b.getF32Type()), {}};
      for (float f : a.floats()) h.values.push_back(f);
      n.results.push_back(n.im.constant(h.toAttr()));
      return success();
    }
    if (a.name() == "value_ints") {
      SmallVector<int64_t> v(a.ints().begin(), a.ints().end());
      n.results.push_back(n.im.i64Const(v, {(int64_t)v.size()}));
      return success();
    }
  }
  return n.im.fail("Constant without a supported value attribute");
}

LogicalResult convertConstantOfShape(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  auto shape = constOperand(n, 0, "the ConstantOfShape shape");
  if (failed(shape))
    return failure();
  auto &b = n.im.builder;
  Type et = b.getF32Type();
  double v = 0;
  if (auto *a = n.attr("value")) {
    auto t = elementTypeOf(&n.im.ctx, a->t().data_type());
    if (!t)
      return n.im.fail("ConstantOfShape value of unsupported type");
    et = *t;
    const auto &raw = a->t().raw_data();
    if (!raw.empty()) {
      if (et.isF32() && raw.size() == 4) { float f; memcpy(&f, raw.data(), 4); v = f; }
      else if (et.isInteger(64) && raw.size() == 8) { int64_t i; memcpy(&i, raw.data(), 8); v = (double)i; }
      else if (et.isInteger(32) && raw.size() == 4) { int32_t i; memcpy(&i, raw.data(), 4); v = i; }
      else if (et.isInteger(1) && raw.size() == 1) v = raw[0] != 0;
      else return n.im.fail("ConstantOfShape value encoding not supported");
    } else if (a->t().float_data_size()) v = a->t().float_data(0);
    else if (a->t().int64_data_size()) v = (double)a->t().int64_data(0);
    else if (a->t().int32_data_size()) v = a->t().int32_data(0);
  }
  for (int64_t d : *shape)
    if (d < 0) return n.im.fail("negative dim in ConstantOfShape");
  auto type = RankedTensorType::get(*shape, et);
  if (type.getNumElements() <= (1 << 16)) {
    HostTensor h{type, std::vector<double>(type.getNumElements(), v)};
    n.results.push_back(n.im.constant(h.toAttr()));
    return success();
  }
  HostTensor scalar{RankedTensorType::get({}, et), {v}};
  Attribute fill = cast<DenseElementsAttr>(scalar.toAttr()).getSplatValue<Attribute>();
  n.results.push_back(sc::ConstantOfShapeOp::create(b, n.loc, type, cast<TypedAttr>(fill)));
  return success();
}

LogicalResult convertShape(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t rank = n.shape(0).size();
  int64_t s = std::clamp<int64_t>(normAxis(n.intAttr("start", 0), rank), 0, rank);
  int64_t e = n.attr("end") ? std::clamp<int64_t>(normAxis(n.intAttr("end", rank), rank), 0, rank) : rank;
  SmallVector<int64_t> dims;
  for (int64_t i = s; i < e; ++i) dims.push_back(n.shape(0)[i]);
  n.results.push_back(n.im.i64Const(dims, {(int64_t)dims.size()}));
  return success();
}

LogicalResult convertRange(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  auto s = n.im.constTensor(n.in(0)), l = n.im.constTensor(n.in(1)), d = n.im.constTensor(n.in(2));
  if (!s || !l || !d)
    return n.im.fail("Range operands must be constants (shapes are static)");
  double start = s->values[0], limit = l->values[0], delta = d->values[0];
  if (delta == 0)
    return n.im.fail("Range delta is zero");
  int64_t count = std::max<int64_t>(0, (int64_t)std::ceil((limit - start) / delta));
  auto type = RankedTensorType::get({count}, n.elem(0));
  n.results.push_back(n.im.build<sc::RangeOp>(n, type, n.in(0), n.in(1), n.in(2)));
  return success();
}

LogicalResult convertTrilu(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  int64_t k = 0;
  if (n.in(1)) {
    auto kv = constOperand(n, 1, "Trilu k");
    if (failed(kv)) return failure();
    k = (*kv)[0];
  }
  if (n.shape(0).size() < 2)
    return n.im.fail("Trilu needs rank >= 2");
  auto &b = n.im.builder;
  n.results.push_back(n.im.build<sc::TriluOp>(n, n.type(0), n.in(0), b.getBoolAttr(n.intAttr("upper", 1)), b.getI64IntegerAttr(k)));
  return success();
}

LogicalResult convertGelu(NodeCtx &n) {
  if (failed(needInputs(n, 1)))
    return failure();
  std::string approx = n.strAttr("approximate", "none");
  if (approx != "none" && approx != "tanh")
    return n.im.fail("Gelu approximate='" + approx + "' is not supported");
  n.results.push_back(sc::GeluOp::create(n.im.builder, n.loc, n.type(0), n.in(0), n.im.builder.getStringAttr(approx)));
  return success();
}

// ONNX Attention (opset 23) in its 4-D form [B, H, S, D] without KV cache.
LogicalResult convertAttention(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  if (n.shape(0).size() != 4 || n.shape(1).size() != 4 || n.shape(2).size() != 4)
    return n.im.fail("only the 4-D [batch, heads, seq, head_dim] form of Attention is supported");
  if (n.in(4) || n.in(5) || n.node.output_size() > 1)
    return n.im.fail("Attention with past key/value (KV cache) is not supported");
  if (n.in(6))
    return n.im.fail("Attention with nonpad_kv_seqlen (opset 24) is not supported");
  if (n.floatAttr("softcap", 0.0f) != 0.0f)
    return n.im.fail("Attention softcap is not supported");
  if (n.intAttr("qk_matmul_output_mode", 0) != 0)
    return n.im.fail("Attention qk_matmul_output_mode is not supported");
  auto &b = n.im.builder;
  float scale = n.floatAttr("scale", 1.0f / std::sqrt((float)n.shape(0)[3]));
  Value mask = n.in(3);
  if (mask && n.elem(3).isInteger(1)) {
    // Boolean masks say where attention is allowed; as an additive mask that is 0 / -inf.
    Value zero = n.im.floatConst(0.0, n.elem(0));
    Value ninf = n.im.floatConst(-std::numeric_limits<double>::infinity(), n.elem(0));
    mask = n.im.build<sc::WhereOp>(n, n.tensor(n.shape(3), n.elem(0)), mask, zero, ninf);
  }
  SmallVector<int64_t> out{n.shape(0)[0], n.shape(0)[1], n.shape(0)[2], n.shape(2)[3]};
  n.results.push_back(sc::AttentionOp::create(b, n.loc, n.tensor(out, n.elem(0)), n.in(0), n.in(1), n.in(2), mask,
                                              b.getF32FloatAttr(scale), b.getBoolAttr(n.intAttr("is_causal", 0))));
  return success();
}

LogicalResult convertRotaryEmbedding(NodeCtx &n) {
  if (failed(needInputs(n, 3)))
    return failure();
  auto &b = n.im.builder;
  n.results.push_back(sc::RotaryEmbeddingOp::create(b, n.loc, n.type(0), n.in(0), n.in(1), n.in(2), n.in(3),
                                                    b.getBoolAttr(n.intAttr("interleaved", 0)),
                                                    b.getI64IntegerAttr(n.intAttr("rotary_embedding_dim", 0)),
                                                    b.getI64IntegerAttr(n.intAttr("num_heads", 0))));
  return success();
}

std::vector<std::pair<std::string, Converter>> &registry() {
  static std::vector<std::pair<std::string, Converter>> table = {
      {"Add", binary<sc::AddOp>()},
      {"Sub", binary<sc::SubOp>()},
      {"Mul", binary<sc::MulOp>()},
      {"Div", binary<sc::DivOp>()},
      {"Pow", binary<sc::PowOp>()},
      {"Equal", binary<sc::EqualOp>(true)},
      {"Where", convertWhere},
      {"Neg", unary<sc::NegOp>()},
      {"Sqrt", unary<sc::SqrtOp>()},
      {"Reciprocal", unary<sc::ReciprocalOp>()},
      {"Exp", unary<sc::ExpOp>()},
      {"Log", unary<sc::LogOp>()},
      {"Tanh", unary<sc::TanhOp>()},
      {"Sigmoid", unary<sc::SigmoidOp>()},
      {"Erf", unary<sc::ErfOp>()},
      {"Cos", unary<sc::CosOp>()},
      {"Sin", unary<sc::SinOp>()},
      {"IsNaN", unary<sc::IsNaNOp>(true)},
      {"Gelu", convertGelu},
      {"Cast", convertCast},
      {"Identity", [](NodeCtx &n) -> LogicalResult {
         if (failed(needInputs(n, 1))) return failure();
         n.results.push_back(n.in(0));
         return success();
       }},
      {"MatMul", convertMatMul},
      {"Gemm", convertGemm},
      {"Softmax", [](NodeCtx &n) { return convertSoftmax(n, false); }},
      {"LogSoftmax", [](NodeCtx &n) { return convertSoftmax(n, true); }},
      {"LayerNormalization", convertLayerNorm},
      {"RMSNormalization", convertRmsNorm},
      {"RotaryEmbedding", convertRotaryEmbedding},
      {"Attention", convertAttention},
      {"ReduceMean", reduce<sc::ReduceMeanOp>(true)},
      {"ReduceSum", reduce<sc::ReduceSumOp>(false)},
      {"ReduceMax", reduce<sc::ReduceMaxOp>(true)},
      {"Reshape", convertReshape},
      {"Transpose", convertTranspose},
      {"Slice", convertSlice},
      {"Split", convertSplit},
      {"Concat", convertConcat},
      {"Gather", convertGather},
      {"GatherElements", convertGatherElements},
      {"Expand", convertExpand},
      {"Unsqueeze", convertUnsqueeze},
      {"Squeeze", convertSqueeze},
      {"Constant", convertConstant},
      {"ConstantOfShape", convertConstantOfShape},
      {"Shape", convertShape},
      {"Range", convertRange},
      {"Trilu", convertTrilu},
  };
  return table;
}

} // namespace

llvm::Expected<OwningOpRef<ModuleOp>> importOnnxFile(MLIRContext &ctx, llvm::StringRef path,
                                                     const ImportOptions &options) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, /*IsText=*/false, /*RequiresNullTerminator=*/false);
  if (!bufOr)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: cannot open: %s", path.str().c_str(),
                                   bufOr.getError().message().c_str());
  return importOnnxBuffer(ctx, (*bufOr)->getMemBufferRef(), path, options);
}

llvm::Expected<OwningOpRef<ModuleOp>> importOnnxBuffer(MLIRContext &ctx, llvm::MemoryBufferRef bytes,
                                                       llvm::StringRef path, const ImportOptions &options) {
  ctx.loadDialect<sc::ScDialect, func::FuncDialect>();
  Importer importer(ctx, path, options);
  return importer.run(bytes);
}

bool parseInputShapeSpec(llvm::StringRef spec, ImportOptions &options, std::string &error) {
  auto [name, dims] = spec.split('=');
  if (name.empty() || dims.empty()) {
    error = "--input-shape expects name=DIMS (e.g. input_ids=2x64), got '" + spec.str() + "'";
    return false;
  }
  std::vector<int64_t> shape;
  SmallVector<StringRef> parts;
  dims.split(parts, 'x');
  for (StringRef p : parts) {
    int64_t d;
    if (p.getAsInteger(10, d) || d <= 0) {
      error = "--input-shape " + name.str() + ": '" + p.str() + "' is not a positive dim";
      return false;
    }
    shape.push_back(d);
  }
  options.inputShapes[name.str()] = shape;
  return true;
}

llvm::Expected<std::string> summarizeOnnxFile(llvm::StringRef path) {
  auto bufOr = llvm::MemoryBuffer::getFile(path, false, false);
  if (!bufOr)
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: cannot open: %s", path.str().c_str(),
                                   bufOr.getError().message().c_str());
  onnx::ModelProto model;
  google::protobuf::io::CodedInputStream cis(reinterpret_cast<const uint8_t *>((*bufOr)->getBufferStart()),
                                             (int)std::min<size_t>((*bufOr)->getBufferSize(), INT32_MAX));
  cis.SetTotalBytesLimit(INT32_MAX);
  if (!model.ParseFromCodedStream(&cis) || !model.has_graph())
    return llvm::createStringError(llvm::inconvertibleErrorCode(), "%s: not a valid ONNX model", path.str().c_str());
  std::string out;
  llvm::raw_string_ostream os(out);
  const auto &g = model.graph();
  os << "model: " << path << "\n  ir_version " << model.ir_version() << ", producer " << model.producer_name() << " "
     << model.producer_version() << "\n  opsets:";
  for (const auto &o : model.opset_import())
    os << " " << (o.domain().empty() ? "ai.onnx" : o.domain()) << "=" << o.version();
  llvm::StringSet<> inits;
  int64_t initBytes = 0;
  for (const auto &t : g.initializer()) {
    inits.insert(t.name());
    initBytes += t.raw_data().size();
  }
  MLIRContext typeCtx;
  auto printValue = [&](const onnx::ValueInfoProto &vi) {
    os << "  " << vi.name() << ": ";
    const auto &tt = vi.type().tensor_type();
    std::string dt = "?";
    if (auto et = elementTypeOf(&typeCtx, tt.elem_type())) {
      llvm::raw_string_ostream ds(dt);
      dt.clear();
      ds << *et;
    }
    os << dt << " [";
    for (auto [i, d] : llvm::enumerate(tt.shape().dim()))
      os << (i ? ", " : "") << (d.has_dim_value() ? std::to_string(d.dim_value()) : (d.dim_param().empty() ? "?" : d.dim_param()));
    os << "]\n";
  };
  os << "\ninputs:\n";
  for (const auto &vi : g.input())
    if (!inits.contains(vi.name()))
      printValue(vi);
  os << "outputs:\n";
  for (const auto &vi : g.output())
    printValue(vi);
  os << "initializers: " << g.initializer_size() << " (" << initBytes << " bytes inline)\n";
  std::map<std::string, int> opCounts, pathCounts;
  std::map<std::string, std::string> unsupported;
  llvm::StringSet<> known;
  for (auto &[name, fn] : registry())
    known.insert(name);
  for (const auto &n : g.node()) {
    opCounts[n.op_type()]++;
    ModuleInfo mi = moduleOf(n);
    if (!mi.path.empty())
      pathCounts[mi.path]++;
    if ((!n.domain().empty() && n.domain() != "ai.onnx") || !known.contains(n.op_type()))
      unsupported.emplace(n.op_type(), "'" + n.name() + "'" + (mi.path.empty() ? "" : " (" + mi.path + ")"));
  }
  os << "ops (" << g.node_size() << " nodes):";
  for (auto &[op, c] : opCounts)
    os << " " << op << "=" << c;
  os << "\nmodule paths (" << pathCounts.size() << "):\n";
  for (auto &[p, c] : pathCounts)
    os << "  " << p << "  (" << c << " nodes)\n";
  os << "unsupported ops: " << (unsupported.empty() ? "none" : "") << "\n";
  for (auto &[op, where] : unsupported)
    os << "  " << op << "  first at node " << where << "\n";
  return out;
}

std::vector<std::string> supportedOnnxOps() {
  std::vector<std::string> ops;
  for (auto &[name, fn] : registry())
    ops.push_back(name);
  return ops;
}

} // namespace shardc
