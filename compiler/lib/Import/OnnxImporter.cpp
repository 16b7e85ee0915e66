// ONNX → sc importer, the driver: parses the model, checks IR version and opset, turns graph
// inputs into function arguments, materialises initializers (small ones as constants, the
// rest as sc.param references located in the model or external-data file), converts nodes in
// graph order with the converter the registry holds for the model's opset, and attributes
// anonymous weights to their modules. The converters are in Convert*.cpp.
#include "ImporterImpl.h"

#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/Verifier.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"

#include <google/protobuf/io/coded_stream.h>

namespace shardc::importer {

// Names in a corrupt model can hold any bytes; errors stay one printable line.
llvm::Error Importer::makeError(const llvm::Twine &msg) {
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
  // A small fold the exporter marks trainable (GPT-2's learned positions folded into
  // `embedding_1` = wpe[arange(S)]) stays a parameter, so that it can train.
  bool param = looksLikeModuleParam(name) || bytes > opts.maxConstantBytes || linearWeights.contains(name) ||
               exporterTrainable.contains(name);
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
                             builder.getI64IntegerAttr(offset), sc::ParamTransformAttr::get(builder.getContext(), sc::ParamTransform::None),
                             builder.getStringAttr(name), builder.getStrArrayAttr({}));
}

// Names anonymous parameters after the module that uses them (dynamo folds a Linear's
// weight into an anonymous transposed initializer `val_93`) and records tied uses.
void Importer::attributeParams(NodeCtx &n) {
  if (n.module.path.empty())
    return;
  llvm::StringRef cls(n.module.cls);
  // nn.Linear, and subclasses named after it (Falcon's FalconLinear).
  bool isLinear = cls.ends_with("Linear") || cls.ends_with("Conv1D");
  // The TorchScript exporter records no module classes: its nn.Linear is a MatMul (named
  // `/encoder/layer.0/attention/self/query/MatMul`, the module path) of the transposed weight
  // folded into `onnx::MatMul_<n>`, which then takes the module's name, so that a Hugging Face
  // checkpoint binds to it (shardc-run --weights).
  if (cls.empty() && n.node.op_type() == "MatMul" && n.node.input_size() == 2 &&
      llvm::StringRef(n.node.input(1)).starts_with("onnx::MatMul_"))
    isLinear = true;
  bool isEmbedding = cls.ends_with(".Embedding");
  llvm::StringRef opType(n.node.op_type());
  auto record = [&](sc::ParamOp p, sc::ParamTransform transform) {
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
      record(p, stored ? sc::ParamTransform::None : sc::ParamTransform::Transpose);
    }
  }
  if (isEmbedding && opType == "Gather" && !n.inputs.empty())
    if (auto p = n.inputs[0].getDefiningOp<sc::ParamOp>())
      record(p, sc::ParamTransform::None);
}

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
  const unsigned scopeDrop = torchScriptScopeDrop(graph);
  for (const auto &t : graph.initializer())
    initializers[t.name()] = &t;
  TrainableInfo trainable = classifyTrainable(graph);
  for (const auto &e : trainable.trainable) {
    exporterTrainable.insert(e.getKey());
    if (opts.exporterTrainable)
      opts.exporterTrainable->insert(e.getKey().str());
  }
  if (opts.foldedWithConstants)
    opts.foldedWithConstants->insert(trainable.foldedWithConstants.begin(), trainable.foldedWithConstants.end());
  {
    llvm::StringMap<std::string> transposeInput;
    for (const auto &node : graph.node())
      if (node.op_type() == "Transpose" && node.input_size() == 1 && node.output_size() == 1)
        transposeInput[node.output(0)] = node.input(0);
    for (const auto &node : graph.node()) {
      ModuleInfo module = moduleOf(node, scopeDrop);
      llvm::StringRef cls(module.cls);
      if ((node.op_type() != "MatMul" && node.op_type() != "Gemm") || node.input_size() < 2 ||
          !(cls.ends_with("Linear") || cls.ends_with("Conv1D")))
        continue;
      auto t = transposeInput.find(node.input(1));
      linearWeights.insert(t == transposeInput.end() ? node.input(1) : t->second);
    }
    // The TorchScript exporter (dynamo=False, e.g. published sentence-transformers files)
    // records no module classes; it folds each nn.Linear's transposed weight into an
    // initializer named `onnx::MatMul_<n>`. Those are weights too, however small.
    for (const auto &node : graph.node())
      if (node.op_type() == "MatMul" && node.input_size() == 2 &&
          llvm::StringRef(node.input(1)).starts_with("onnx::MatMul_") && initializers.count(node.input(1)) &&
          initializers[node.input(1)]->dims_size() == 2)
        linearWeights.insert(node.input(1));
  }

  // Function signature: graph inputs that are not initializers.
  SmallVector<Type> argTypes;
  SmallVector<std::string> argNames;
  llvm::StringSet<> boundInputs, usedDims;
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
        if (d.has_dim_value()) {
          shape.push_back(d.dim_value());
          continue;
        }
        auto named = d.dim_param().empty() ? opts.dimBindings.end() : opts.dimBindings.find(d.dim_param());
        if (named == opts.dimBindings.end())
          return makeError(path + ": input '" + vi.name() + "' has symbolic dim '" +
                           (d.dim_param().empty() ? std::string("?") : d.dim_param()) + "'; bind it with --input-shape " +
                           vi.name() + "=<dims separated by x>" +
                           (d.dim_param().empty() ? std::string() : " or --shapes " + d.dim_param() + "=<n>"));
        usedDims.insert(named->first);
        shape.push_back(named->second);
      }
    }
    argTypes.push_back(RankedTensorType::get(shape, *et));
    argNames.push_back(vi.name());
  }
  for (const auto &kv : opts.inputShapes)
    if (!boundInputs.contains(kv.first))
      return makeError(path + ": --input-shape names '" + kv.first + "', which is not a graph input");
  for (const auto &kv : opts.dimBindings)
    if (!usedDims.contains(kv.first)) {
      std::set<std::string> names; // the symbolic dims of the inputs --input-shape leaves
      for (const auto &vi : graph.input())
        if (!initializers.count(vi.name()) && !opts.inputShapes.count(vi.name()) && vi.type().has_tensor_type())
          for (const auto &d : vi.type().tensor_type().shape().dim())
            if (!d.has_dim_value() && !d.dim_param().empty())
              names.insert(d.dim_param());
      std::string list;
      for (const std::string &n : names)
        list += (list.empty() ? "" : ", ") + n;
      return makeError(path + ": --shapes names dim '" + kv.first + "', which no input has (symbolic dims --input-shape leaves: " +
                       (list.empty() ? std::string("none") : list) + ")");
    }

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

  const ConverterRegistry &registry = converterRegistry();
  std::string fileName = llvm::sys::path::filename(path).str();
  for (auto [index, node] : llvm::enumerate(graph.node())) {
    ModuleInfo mod = moduleOf(node, scopeDrop);
    Location loc = makeOnnxLoc(&ctx, {fileName, node.name(), mod.path}, index + 1);
    auto where = [&]() {
      std::string s = path + ": node '" + node.name() + "' (" + node.op_type();
      if (!mod.path.empty())
        s += ", " + mod.path;
      return s + ")";
    };
    if (!node.domain().empty() && node.domain() != "ai.onnx")
      return makeError(where() + ": op domain '" + node.domain() + "' is not supported");
    const ConverterRegistry::Entry *conv = registry.lookup(node.op_type(), opset);
    if (!conv) {
      if (auto since = registry.earliestSince(node.op_type()))
        return makeError(where() + ": " + node.op_type() + " is supported from opset " + llvm::Twine(*since) +
                         ", the model imports opset " + llvm::Twine(opset) + "; re-export with opset_version >= " +
                         llvm::Twine(*since));
      return makeError(where() + ": unsupported op " + node.op_type() + " (shardc inspect lists every unsupported op)");
    }
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
    if (failed(conv->fn(n)))
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

} // namespace shardc::importer

namespace shardc {

using namespace mlir;
using importer::Importer;

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

bool parseShapesSpec(llvm::StringRef spec, std::vector<DimBindings> &sets, std::string &error) {
  SmallVector<StringRef> parts;
  spec.split(parts, ';', -1, /*KeepEmpty=*/false);
  if (parts.empty()) {
    error = "--shapes expects NAME=N,...;NAME=N,... (e.g. 'batch=2,seq=64;batch=3,seq=48'), got '" + spec.str() + "'";
    return false;
  }
  for (StringRef part : parts) {
    DimBindings set;
    SmallVector<StringRef> items;
    part.split(items, ',', -1, /*KeepEmpty=*/false);
    for (StringRef item : items) {
      auto [name, value] = item.trim().split('=');
      int64_t n;
      if (name.empty() || value.getAsInteger(10, n) || n <= 0) {
        error = "--shapes: '" + item.trim().str() + "' is not NAME=N with a positive N (in '" + part.str() + "')";
        return false;
      }
      if (!set.emplace(name.trim().str(), n).second) {
        error = "--shapes: dim '" + name.trim().str() + "' is bound twice in '" + part.str() + "'";
        return false;
      }
    }
    if (set.empty()) {
      error = "--shapes: empty set in '" + spec.str() + "'";
      return false;
    }
    if (llvm::is_contained(sets, set)) {
      error = "--shapes: the set '" + formatDimBindings(set) + "' is given twice";
      return false;
    }
    sets.push_back(std::move(set));
  }
  return true;
}

std::string formatDimBindings(const DimBindings &set) {
  std::string s;
  for (const auto &[name, n] : set)
    s += (s.empty() ? "" : ",") + name + "=" + std::to_string(n);
  return s;
}

} // namespace shardc
