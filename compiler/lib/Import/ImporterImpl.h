// Internal to the ONNX importer (compiler/lib/Import): the Importer state that converters
// build into, the NodeCtx each converter receives, and the opset-aware converter registry.
//
// Files: OnnxImporter.cpp (the driver: model, initializers, inputs/outputs, node loop),
// OnnxProto.cpp (protobuf-level helpers), ConverterRegistry.cpp (the registry and helpers
// converters share), Convert*.cpp (converters by op family), OnnxInspect.cpp (inspect).
#pragma once

#include "shardc/Import/ConstantEvaluator.h"
#include "shardc/Import/OnnxImporter.h"

#include "mlir/IR/Builders.h"
#include "mlir/IR/BuiltinOps.h"
#include "llvm/ADT/DenseMap.h"
#include "llvm/ADT/StringMap.h"
#include "llvm/ADT/StringSet.h"

#include "shardc_onnx.pb.h"

#include <functional>
#include <map>
#include <optional>
#include <string>

namespace shardc::importer {

namespace onnx = shardc_onnx;
using namespace mlir;

// The default-domain opsets and IR versions the importer accepts.
constexpr int64_t kMinOpset = 13, kMaxOpset = 25, kMinIr = 3, kMaxIr = 12;

//===----------------------------------------------------------------------===//
// Protobuf-level helpers (OnnxProto.cpp)
//===----------------------------------------------------------------------===//

// name -> (offset, length) of TensorProto.raw_data for ModelProto.graph.initializer, found
// by a wire-level scan (the generated classes do not expose offsets).
void locateRawData(const uint8_t *base, size_t size,
                   llvm::StringMap<std::pair<uint64_t, uint64_t>> &out);

std::optional<Type> elementTypeOf(MLIRContext *ctx, int32_t dt);
int64_t byteWidth(Type t);
std::string shapeStr(ArrayRef<int64_t> s);
inline int64_t normAxis(int64_t a, int64_t rank) { return a < 0 ? a + rank : a; }

// The deepest module path and class of a node, from the dynamo exporter's metadata_props or
// a TorchScript-style node name ("/blocks.0/attn/MatMul"), less its first `scopeDrop` scopes.
struct ModuleInfo {
  std::string path, cls;
};
ModuleInfo moduleOf(const onnx::NodeProto &node, unsigned scopeDrop = 0);
// How many leading scopes of the TorchScript-style node names the parameter names lack (0 for
// most exports; 1 for a published sentence-transformers file whose nodes are
// `/model/model.0/auto_model/...` and parameters `model.0.auto_model....`): the count that
// makes the most node paths name a module of the initializers, the smallest on a tie.
unsigned torchScriptScopeDrop(const onnx::GraphProto &graph);
// The padding index of an embedding as the exporter recorded its aten.embedding call in the
// node's `pkg.torch.onnx.fx_node` metadata (a third argument), if any.
std::optional<int64_t> embeddingPaddingIdx(const onnx::NodeProto &node);
bool looksLikeModuleParam(llvm::StringRef name);

// Which initializers the exporter marks trainable (docs/training.md): value_info metadata
// `pkg.torch.export.graph_signature.InputSpec.kind = PARAMETER`, or a fold whose
// `pkg.onnxscript.optimizer.folded_from` names a PARAMETER (looked up in the graph-level
// `pkg.torch.export.ExportedProgram.graph_signature` or in the value_infos) and no BUFFER.
struct TrainableInfo {
  llvm::StringSet<> trainable;           // initializer names
  std::vector<std::string> frozenBuffers; // BUFFER names that initializers hold or fold from
  int64_t frozenInitializers = 0;         // initializers that hold or fold from a BUFFER
  // Trainable folds whose value is not a layout transform of their parameter: the fold read
  // other values too (constants: Gemma's norm weight stored as 1 + w), and is not named after a
  // layout op. Initializer name -> the parameter it folds from. They train as the stored value.
  std::map<std::string, std::string> foldedWithConstants;
};
TrainableInfo classifyTrainable(const onnx::GraphProto &graph);

//===----------------------------------------------------------------------===//
// Converters and their registry
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

// Checks the node, infers its result types and builds sc ops into n.results; on error sets a
// one-line message with n.im.fail("…") (the driver adds file, node, op and module).
using Converter = std::function<LogicalResult(NodeCtx &)>;

// Converters keyed by ONNX op type and the default-domain opset they apply from, as
// torch-mlir's TorchOnnxToTorch registers them (`onOp("Add", 7, …)`). One op may have
// several registrations when its form changed (ReduceMean's axes became an input in 18):
// a model with opset N gets the registration with the largest since-version <= N.
class ConverterRegistry {
public:
  struct Entry {
    int64_t sinceVersion;
    Converter fn;
  };

  // Aborts on a duplicate (op, sinceVersion): that is a bug in the registering file.
  void onOp(llvm::StringRef op, int64_t sinceVersion, Converter fn);

  // The registration in force at `opset`; null when the op is unknown or registered only
  // for later opsets (then earliestSince() says from which).
  const Entry *lookup(llvm::StringRef op, int64_t opset) const;
  // The smallest since-version of `op`, or nullopt when it is not registered at all.
  std::optional<int64_t> earliestSince(llvm::StringRef op) const;

  // Op type -> its registrations, sorted by since-version.
  const std::map<std::string, std::vector<Entry>> &ops() const { return byOp; }

private:
  std::map<std::string, std::vector<Entry>> byOp;
};

// Built once, from the family files below.
const ConverterRegistry &converterRegistry();
void registerElementwiseConverters(ConverterRegistry &r); // ConvertElementwise.cpp
void registerShapeConverters(ConverterRegistry &r);       // ConvertShape.cpp
void registerConstantConverters(ConverterRegistry &r);    // ConvertConstant.cpp
void registerNNConverters(ConverterRegistry &r);          // ConvertNN.cpp
void registerLogicConverters(ConverterRegistry &r);       // ConvertLogic.cpp
void registerIndexConverters(ConverterRegistry &r);       // ConvertIndex.cpp
void registerContractionConverters(ConverterRegistry &r); // ConvertContraction.cpp
void registerAttentionConverters(ConverterRegistry &r);   // ConvertAttention.cpp
void registerMoeConverters(ConverterRegistry &r);         // ConvertMoe.cpp

// Helpers converters share (ConverterRegistry.cpp).
LogicalResult needInputs(NodeCtx &n, unsigned count);
// Input `i` as host integers; fails naming `what` when it is not a constant.
FailureOr<SmallVector<int64_t>> constOperand(NodeCtx &n, unsigned i, llvm::StringRef what);

//===----------------------------------------------------------------------===//
// The importer (OnnxImporter.cpp)
//===----------------------------------------------------------------------===//

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
  int64_t opset = 0; // of the default domain

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
  llvm::Error makeError(const llvm::Twine &msg);
  Value materializeInitializer(llvm::StringRef name);
  FailureOr<DenseElementsAttr> tensorData(const onnx::TensorProto &t, RankedTensorType type);
  void attributeParams(NodeCtx &n);

  llvm::StringMap<Value> values;
  llvm::StringMap<const onnx::TensorProto *> initializers;
  llvm::StringMap<std::pair<uint64_t, uint64_t>> rawOffsets;
  // Initializers that a Linear's MatMul/Gemm uses as its weight (directly or through a
  // Transpose): parameters whatever their size, so raising sees an sc.param.
  llvm::StringSet<> linearWeights;
  // Initializers the exporter marks trainable (classifyTrainable): sc.param however small.
  llvm::StringSet<> exporterTrainable;
  llvm::DenseMap<Attribute, Value> constants; // dedup by content (attributes are uniqued)
  Block *entry = nullptr;
  llvm::MemoryBufferRef file;
  std::string modelDir;
};

} // namespace shardc::importer
