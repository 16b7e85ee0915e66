// Locations of imported ops: the ONNX node name, the PyTorch module path and the source
// file, packed into one MLIR location, and read back for located error messages.
#pragma once

#include "mlir/IR/Location.h"
#include <string>

namespace shardc {

struct OnnxLocInfo {
  std::string file;       // model file (may be empty)
  std::string nodeName;   // ONNX node name, e.g. node_linear
  std::string modulePath; // e.g. m.model.layers.0.self_attn.q_proj (may be empty)
};

// loc("node_linear"("m.model.layers.0.self_attn.q_proj"(file:idx:0)))
mlir::Location makeOnnxLoc(mlir::MLIRContext *ctx, const OnnxLocInfo &info, unsigned nodeIndex);
OnnxLocInfo readOnnxLoc(mlir::Location loc);
// "node 'node_linear' (m.model.layers.0.self_attn.q_proj)" for messages.
std::string describeLoc(mlir::Location loc);
// The module path alone (empty when unknown).
std::string modulePathOf(mlir::Location loc);

// The location of a backward op built by sc-autodiff for the forward op at `forward`: the same
// node and module path (messages and profiles name them), marked as the backward's, which
// sc-group-layers leaves outside the forward layers.
mlir::Location makeBackwardLoc(mlir::Location forward);
bool isBackwardLoc(mlir::Location loc);

// The decoder/encoder layer a module path belongs to: the prefix up to `<container>.N` where
// container is layers, h, layer or blocks (`m.model.layers.3.mlp.up_proj` ->
// `m.model.layers.3`), empty outside the layers; and N alone (-1 outside). The one definition
// of a layer: sc-group-layers, the FSDP groups of sc-insert-reshards and `shardc report`
// read it.
std::string layerPathOf(llvm::StringRef modulePath);
int64_t layerIndexOf(llvm::StringRef modulePath);

// The micro-batch a location belongs to (sc-unroll-microbatches puts `mb<j>` at the head of the
// module path of micro-batch j's ops); -1 outside the micro-batches.
int64_t microbatchOf(mlir::Location loc);

} // namespace shardc
