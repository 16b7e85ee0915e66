// sc-checkpoint-activations: activation checkpointing of a `mode: train` program, after
// sc-autodiff. The backward reads forward activations of every layer; with checkpointing the
// forward ops of a layer whose values the backward reads are recomputed right before the
// layer's backward first needs them, from the values kept: the layer's inputs (the residual
// stream, parameters, masks and tables made outside it) and its outputs, plus in selective
// mode the results of its GEMMs and attention and the residual sums that read them. The forward activations then die within the
// forward, so the memory plan (sc-plan-memory) holds one layer's activations in backward
// instead of all of them. The recomputed ops are ordinary ops on the global program:
// propagation shards them and inserts their collectives again (full: a layer's TP
// collectives run twice), as FSDP2 with activation checkpointing does.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/DenseSet.h"
#include "llvm/ADT/StringMap.h"

namespace shardc {
#define GEN_PASS_DEF_SCCHECKPOINTACTIVATIONS
#include "shardc/Passes/Passes.h.inc"

using namespace mlir;

namespace {

// Sources and state: never recomputed (their values are what a recompute starts from).
bool isSource(Operation *op) {
  return isa<sc::ParamOp, sc::ConstantOp, sc::StateOp>(op) || op->getNumRegions() != 0 || op->getNumOperands() == 0;
}

// Selective checkpointing keeps what is expensive to recompute: GEMM and attention results,
// and the sums that add a GEMM's result (a residual add after a rowwise projection), whose
// operand is reduced across ranks (all-reduce, or reduce-scatter under sequence parallelism):
// recomputing the sum would run that collective again.
bool isGemm(Operation *op) { return op && isa<sc::LinearOp, sc::MatMulOp, sc::AttentionOp>(op); }
bool keptInSelective(Operation *op) {
  return isGemm(op) || (isa<sc::AddOp>(op) && llvm::any_of(op->getOperands(), [](Value v) {
                          return isGemm(v.getDefiningOp());
                        }));
}

struct Checkpointer {
  func::FuncOp func;
  bool selective;
  llvm::DenseSet<Operation *> clones; // the recomputed ops made so far
  int64_t layers = 0, recomputed = 0;
  int64_t releasedBytes = 0; // forward results the backward no longer reads (global sizes)

  LogicalResult run() {
    Block &body = func.getBody().front();
    // Forward ops by layer (its module path prefix, so an encoder's and a decoder's layer N
    // stay apart), in program order.
    llvm::StringMap<size_t> layerIndex;
    SmallVector<SmallVector<Operation *>> byLayer;
    for (Operation &op : body.without_terminator()) {
      if (isBackwardLoc(op.getLoc()) || isSource(&op))
        continue;
      std::string layer = layerPathOf(modulePathOf(op.getLoc()));
      if (layer.empty())
        continue;
      auto [it, inserted] = layerIndex.try_emplace(layer, byLayer.size());
      if (inserted)
        byLayer.emplace_back();
      byLayer[it->second].push_back(&op);
    }
    for (SmallVector<Operation *> &ops : byLayer)
      checkpointLayer(body, ops);
    if (layers)
      emitRemark(func.getLoc()) << "activation checkpointing (" << (selective ? "selective" : "full") << "): "
                                << recomputed << " forward ops of " << layers
                                << " layers recomputed in backward; " << releasedBytes
                                << " bytes of forward activations (global) no longer held for the backward";
    return success();
  }

  void checkpointLayer(Block &body, ArrayRef<Operation *> ops) {
    llvm::DenseSet<Operation *> inLayer(ops.begin(), ops.end());
    // Values the backward may read again from the forward: the layer's outputs (read by
    // forward ops outside it) and, in selective mode, GEMM and attention results.
    auto kept = [&](Value v) {
      Operation *def = v.getDefiningOp();
      if (!def || !inLayer.contains(def))
        return true;
      if (selective && keptInSelective(def))
        return true;
      return llvm::any_of(v.getUsers(), [&](Operation *user) {
        return !isBackwardLoc(user->getLoc()) && !inLayer.contains(user) && !clones.contains(user);
      });
    };
    // The backward ops that read a value to recompute, and the first of them.
    SmallVector<Operation *> readers;
    Operation *first = nullptr;
    for (Operation &op : body.without_terminator()) {
      if (!isBackwardLoc(op.getLoc()) || clones.contains(&op))
        continue;
      if (llvm::any_of(op.getOperands(), [&](Value v) { return !kept(v); })) {
        readers.push_back(&op);
        first = first ? first : &op;
      }
    }
    if (!first)
      return;
    // The layer's ops those values need, back to kept values.
    llvm::DenseSet<Operation *> needed;
    SmallVector<Value> work;
    for (Operation *r : readers)
      for (Value v : r->getOperands())
        if (!kept(v))
          work.push_back(v);
    while (!work.empty()) {
      Operation *def = work.pop_back_val().getDefiningOp();
      if (!needed.insert(def).second)
        continue;
      for (Value v : def->getOperands())
        if (!kept(v))
          work.push_back(v);
    }
    // Recompute them, in forward order, right before the first reader.
    OpBuilder b(first);
    IRMapping map;
    for (Operation *op : ops) {
      if (!needed.contains(op))
        continue;
      Operation *copy = b.clone(*op, map);
      copy->setLoc(makeBackwardLoc(op->getLoc()));
      clones.insert(copy);
      ++recomputed;
    }
    llvm::DenseSet<Value> released;
    for (Operation *r : readers)
      for (OpOperand &use : r->getOpOperands())
        if (Value v = map.lookupOrNull(use.get())) {
          released.insert(use.get());
          use.set(v);
        }
    for (Value v : released) {
      auto t = cast<RankedTensorType>(v.getType());
      if (t.hasStaticShape())
        releasedBytes += t.getNumElements() * std::max<int64_t>(t.getElementTypeBitWidth() / 8, 1);
    }
    ++layers;
  }
};

struct ScCheckpointActivationsPass : impl::ScCheckpointActivationsBase<ScCheckpointActivationsPass> {
  void runOnOperation() override {
    ModuleOp module = getOperation();
    auto train = module->getAttrOfType<DictionaryAttr>("sc.train");
    auto mode = train ? train.getAs<StringAttr>("activation_checkpointing") : StringAttr();
    if (!mode)
      return;
    module.walk([&](func::FuncOp func) {
      if (func.isExternal())
        return;
      Checkpointer c{func, mode.getValue() == "selective", {}};
      if (failed(c.run()))
        signalPassFailure();
    });
  }
};

} // namespace
} // namespace shardc
