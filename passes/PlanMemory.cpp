// sc-plan-memory: buffer lifetimes over the final program's steps, the arena plan
// (MemoryPlan.cpp) and the persistent block's layout, recorded on the IR for the artifact
// emitter (see Passes.td).
#include "shardc/Artifact/MemoryPlan.h"
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"
#include "shardc/Passes/Passes.h"

#include "llvm/ADT/DenseMap.h"

namespace shardc {
#define GEN_PASS_DEF_SCPLANMEMORY
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

constexpr int64_t kAlignment = 64;
constexpr int64_t kToTheEnd = INT64_MAX / 4; // a graph output's last use

struct ScPlanMemoryPass : impl::ScPlanMemoryBase<ScPlanMemoryPass> {
  // An arena buffer: the value that defines it and its lifetime in step indices.
  struct Lifetime {
    Value value;
    int64_t bytes = 0, first = -1, last = -1;
    bool host = false; // CPU offload: in the host arena (a host op's or copy_to_host's result)
  };

  void runOnOperation() override {
    ModuleOp module = getOperation();
    func::FuncOp func;
    for (auto f : module.getOps<func::FuncOp>()) {
      if (func) {
        f.emitError() << "sc-plan-memory plans a module with one function";
        return signalPassFailure();
      }
      func = f;
    }
    if (!func || func.getBody().empty())
      return;
    if (failed(plan(module, func)))
      signalPassFailure();
  }

  LogicalResult plan(ModuleOp module, func::FuncOp func) {
    Block &entry = func.getBody().front();
    // Arena buffers in the emitter's order of creation (arguments, then step results), which
    // is the order ties are placed in.
    std::vector<Lifetime> arena;
    llvm::DenseMap<Value, size_t> arenaIndex;
    auto bytesOf = [&](Value v, Operation *where) -> FailureOr<int64_t> {
      std::optional<int64_t> bytes = sc::bufferBytes(v.getType());
      if (!bytes)
        return where->emitError() << "sc-plan-memory: a value of type " << v.getType() << " has no size";
      return *bytes;
    };
    for (BlockArgument arg : entry.getArguments()) {
      auto bytes = bytesOf(arg, func);
      if (failed(bytes))
        return failure();
      arenaIndex[arg] = arena.size();
      arena.push_back({arg, *bytes, -1, -1});
    }
    int64_t step = 0, persistentBytes = 0, hostPersistentBytes = 0;
    Builder b(module.getContext());
    // Training state (sc.state) first in the persistent block: it outlives every run. CPU
    // offload's host states (sc.host) go to the host persistent block instead.
    for (auto st : entry.getOps<sc::StateOp>()) {
      auto bytes = bytesOf(st.getResult(), st);
      if (failed(bytes))
        return failure();
      int64_t &block = sc::isHostOp(st) ? hostPersistentBytes : persistentBytes;
      st->setAttr(sc::kPersistentOffsetsAttr, b.getDenseI64ArrayAttr({block}));
      block += (*bytes + kAlignment - 1) / kAlignment * kAlignment;
    }
    LogicalResult walked = sc::forEachStep(entry, [&](Operation *op) -> LogicalResult {
      for (Value v : op->getOperands()) {
        auto it = arenaIndex.find(sc::storageValue(v));
        if (it != arenaIndex.end())
          arena[it->second].last = std::max(arena[it->second].last, step);
      }
      op->removeAttr(sc::kArenaOffsetsAttr);
      op->removeAttr(sc::kPersistentOffsetsAttr);
      if (sc::isAtLoad(op)) {
        // Load-time results: one after another in the persistent block.
        SmallVector<int64_t> offsets;
        for (Value r : op->getResults()) {
          auto bytes = bytesOf(r, op);
          if (failed(bytes))
            return failure();
          offsets.push_back(persistentBytes);
          persistentBytes += (*bytes + kAlignment - 1) / kAlignment * kAlignment;
        }
        op->setAttr(sc::kPersistentOffsetsAttr, b.getDenseI64ArrayAttr(offsets));
      } else {
        for (Value r : op->getResults()) {
          auto bytes = bytesOf(r, op);
          if (failed(bytes))
            return failure();
          arenaIndex[r] = arena.size();
          arena.push_back({r, *bytes, step, step, sc::isHostValue(r)});
        }
      }
      ++step;
      return success();
    });
    if (failed(walked))
      return failure();
    // Graph outputs live in the arena, to the end of the run.
    auto ret = cast<func::ReturnOp>(entry.getTerminator());
    for (auto [i, v] : llvm::enumerate(ret.getOperands())) {
      Value storage = sc::storageValue(v);
      auto it = arenaIndex.find(storage);
      if (it == arenaIndex.end() || isa<BlockArgument>(storage))
        return ret.emitError() << "sc-plan-memory: output #" << i
                               << " is not a step result in the arena (a parameter, a constant, an argument or a "
                                  "load-time result); run sc-materialize-outputs before sc-hoist-load-steps";
      arena[it->second].last = kToTheEnd;
    }
    // The device arena and (CPU offload) the host arena, planned apart.
    std::vector<BufferLifetime> lifetimes[2];
    std::vector<size_t> which[2];
    for (auto [i, l] : llvm::enumerate(arena)) {
      lifetimes[l.host].push_back({l.bytes, l.first, l.last == kToTheEnd ? step : std::max(l.last, l.first)});
      which[l.host].push_back(i);
    }
    MemoryPlan plan = planMemory(lifetimes[0], kAlignment);
    MemoryPlan hostPlan = planMemory(lifetimes[1], kAlignment);
    std::vector<int64_t> arenaOffsets(arena.size());
    for (int h = 0; h < 2; ++h)
      for (auto [k, i] : llvm::enumerate(which[h]))
        arenaOffsets[i] = (h ? hostPlan : plan).offsets[k];

    // Record: per argument, per op (its results in order), and the module's totals.
    llvm::DenseMap<Operation *, SmallVector<int64_t>> offsets;
    for (auto [l, offset] : llvm::zip(arena, arenaOffsets)) {
      if (auto arg = dyn_cast<BlockArgument>(l.value))
        func.setArgAttr(arg.getArgNumber(), sc::kArenaOffsetAttr, b.getI64IntegerAttr(offset));
      else
        offsets[l.value.getDefiningOp()].push_back(offset);
    }
    for (auto &[op, list] : offsets)
      op->setAttr(sc::kArenaOffsetsAttr, b.getDenseI64ArrayAttr(list));
    module->setAttr(sc::kArenaBytesAttr, b.getI64IntegerAttr(plan.arenaBytes));
    module->setAttr(sc::kNaiveArenaBytesAttr, b.getI64IntegerAttr(plan.naiveBytes));
    module->setAttr(sc::kPersistentBytesAttr, b.getI64IntegerAttr(persistentBytes));
    if (hostPersistentBytes || !lifetimes[1].empty()) {
      module->setAttr(sc::kHostArenaBytesAttr, b.getI64IntegerAttr(hostPlan.arenaBytes));
      module->setAttr(sc::kHostPersistentBytesAttr, b.getI64IntegerAttr(hostPersistentBytes));
    }
    return success();
  }
};

} // namespace
} // namespace shardc
