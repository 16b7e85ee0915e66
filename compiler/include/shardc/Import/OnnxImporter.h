// Imports an ONNX model (as PyTorch's exporters write it) into a func.func of sc ops with
// static shapes, shape operands folded to attributes and weights as sc.param references.
#pragma once

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"
#include "llvm/Support/Error.h"
#include "llvm/Support/MemoryBuffer.h"

#include <map>
#include <set>
#include <string>
#include <vector>

namespace shardc {

struct ImportOptions {
  // `--input-shape name=2x64`: binds the symbolic dims of a graph input.
  std::map<std::string, std::vector<int64_t>> inputShapes;
  // `--shapes batch=2,seq=64`: binds symbolic dims by their name (the ONNX dim_param) in
  // every input that --input-shape does not bind; a name no input uses is an error.
  std::map<std::string, int64_t> dimBindings;
  // Initializers up to this many bytes that are not module parameters become sc.constant.
  int64_t maxConstantBytes = 64 * 1024;
  // When set, filled with the ONNX names of the initializers the exporter marks trainable
  // (docs/training.md); those initializers are imported as sc.param even when small (not
  // sc.constant), with or without this pointer. markTrainableParams (Plan.h) turns the set
  // into sc.trainable under `mode: train`.
  std::set<std::string> *exporterTrainable = nullptr;
  // When set, filled with the trainable initializers folded with constants (ONNX name -> the
  // parameter named by its `folded_from`; Gemma's norm weights stored as 1 + w): they train
  // as the stored value, and shardc compile says so in a remark under `mode: train`.
  std::map<std::string, std::string> *foldedWithConstants = nullptr;
};

// Errors are one line: "<file>: node '<name>' (<module path>): <what is wrong>".
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importOnnxFile(mlir::MLIRContext &ctx, llvm::StringRef path, const ImportOptions &options);

// The same on bytes already in memory (the mutation tests); `path` locates external data
// and names the file in messages and sc.param references.
llvm::Expected<mlir::OwningOpRef<mlir::ModuleOp>>
importOnnxBuffer(mlir::MLIRContext &ctx, llvm::MemoryBufferRef bytes, llvm::StringRef path,
                 const ImportOptions &options);

// Parses "name=2x64" into options; false with a message on a malformed spec.
bool parseInputShapeSpec(llvm::StringRef spec, ImportOptions &options, std::string &error);

// A set of symbolic-dim bindings, one program of `--shapes` (ordered by name).
using DimBindings = std::map<std::string, int64_t>;

// Parses "batch=2,seq=64;batch=3,seq=48" into one set per ';'-separated part; false with a
// message on a malformed spec (a dim twice in one set, two equal sets, a non-positive value).
bool parseShapesSpec(llvm::StringRef spec, std::vector<DimBindings> &sets, std::string &error);
// "batch=2,seq=64": a set as --shapes writes it (names in order).
std::string formatDimBindings(const DimBindings &set);

// A human-readable summary for `shardc inspect`: IR/opset, inputs and outputs (with
// symbolic dims), module paths, op counts and unsupported ops with their first node (an op
// the importer converts only from a later opset than the model's counts as unsupported).
// Works on models the importer cannot convert.
llvm::Expected<std::string> summarizeOnnxFile(llvm::StringRef path);

// An ONNX op the importer converts and the default-domain opsets its converters apply from
// (ascending; the largest one <= the model's opset is used).
struct SupportedOnnxOp {
  std::string op;
  std::vector<int64_t> sinceVersions;
  std::string str() const; // "ReduceMean (1+, 18+)"
};

// The ONNX ops the importer converts, sorted by name: the importer's converter registry.
std::vector<SupportedOnnxOp> supportedOnnxOps();

} // namespace shardc
