// sc-partition: the global program becomes the per-rank SPMD program: every value's type is
// its local shape; parameters and inputs remember their global shape for weight/input slicing;
// the values that depend on the rank are computed in the program from sc.process_index.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"
#include "mlir/IR/Verifier.h"
#include "shardc/Sharding/Sharding.h"
#include "ApplyPlanSteps.h"

#include <map>

namespace shardc {
#define GEN_PASS_DEF_SCPARTITION
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

// The rank-dependent values of one function, made once at its top: this rank's index over a
// list of mesh axes (sc.process_index), and the start of its chunk of a given size, looked up
// in a constant table of the group's chunk starts (an sc.gather of an i64 scalar: a kernel
// every backend has, where an i64 multiply has none on CUDA).
class RankValues {
public:
  RankValues(func::FuncOp func, const MeshShape &mesh)
      : b(func.getContext()), block(&func.getBody().front()), mesh(mesh) {}

  Value chunkStart(ArrayRef<std::string> axes, int64_t chunk) {
    std::string key = join(axes);
    Value &start = starts[{key, chunk}];
    if (start)
      return start;
    atTop();
    int64_t group = mesh.product(axes);
    SmallVector<int64_t> table;
    for (int64_t i = 0; i < group; ++i)
      table.push_back(i * chunk);
    auto tableType = RankedTensorType::get({group}, b.getI64Type());
    Location loc = named("chunk_start[" + key + "] x " + std::to_string(chunk));
    Value t = sc::ConstantOp::create(b, loc, tableType, DenseIntElementsAttr::get(tableType, ArrayRef<int64_t>(table)));
    last = t.getDefiningOp();
    Value index = processIndex(axes);
    atTop();
    start = sc::GatherOp::create(b, loc, scalar(), t, index, b.getI64IntegerAttr(0));
    last = start.getDefiningOp();
    return start;
  }

private:
  Value processIndex(ArrayRef<std::string> axes) {
    std::string key = join(axes);
    Value &index = indices[key];
    if (!index) {
      atTop();
      SmallVector<StringRef> names(axes.begin(), axes.end());
      index = sc::ProcessIndexOp::create(b, named("process_index[" + key + "]"), scalar(), b.getStrArrayAttr(names));
      last = index.getDefiningOp();
    }
    return index;
  }
  // The top of the function, after what this made already. Set anew before each use: an
  // insertion point kept across uses would name the op that followed, which the callers may
  // erase (a shard_slice at the top of the function), and the next insertion would crash.
  void atTop() {
    if (last)
      b.setInsertionPointAfter(last);
    else
      b.setInsertionPointToStart(block);
  }
  RankedTensorType scalar() { return RankedTensorType::get({}, b.getI64Type()); }
  Location named(const std::string &name) { return NameLoc::get(b.getStringAttr(name)); }
  static std::string join(ArrayRef<std::string> axes) {
    std::string s;
    for (const std::string &a : axes)
      s += (s.empty() ? "" : ",") + a;
    return s;
  }

  OpBuilder b;
  Block *block;
  Operation *last = nullptr; // the last op made
  const MeshShape &mesh;
  llvm::StringMap<Value> indices;
  std::map<std::pair<std::string, int64_t>, Value> starts;
};

// Lowers the local slices (sc.shard_slice: this rank's chunk along a dim) to dynamic_slice
// from the chunk's start, and gives a vocabulary-split embedding (and embedding gradient) its
// first row.
void lowerRankDependentOps(func::FuncOp func, const MeshShape &mesh) {
  RankValues values(func, mesh);
  SmallVector<sc::ShardSliceOp> slices;
  func.walk([&](sc::ShardSliceOp s) { slices.push_back(s); });
  for (sc::ShardSliceOp s : slices) {
    auto type = cast<RankedTensorType>(s.getType());
    int64_t dim = (int64_t)s.getDim() < 0 ? (int64_t)s.getDim() + type.getRank() : (int64_t)s.getDim();
    SmallVector<std::string> axes(s.getAxes().getAsValueRange<StringAttr>());
    Value start = values.chunkStart(axes, type.getDimSize(dim));
    OpBuilder b(s);
    // This rank's rows of an embedding gradient (a vocabulary-split table): computed alone,
    // the ids outside them skipped, instead of the whole table's gradient and a slice.
    if (auto grad = s.getInput().getDefiningOp<sc::EmbeddingGradOp>();
        grad && dim == 0 && !grad.getRowStart() && grad->hasOneUse()) {
      auto local = sc::EmbeddingGradOp::create(b, grad.getLoc(), type, grad.getIds(), grad.getDy(), start,
                                               b.getI64IntegerAttr(grad.getType().getDimSize(0)),
                                               grad.getPaddingIdxAttr());
      if (auto sharding = s->getAttr("sc.sharding"))
        local->setAttr("sc.sharding", sharding);
      s.replaceAllUsesWith(local.getResult());
      s.erase();
      grad.erase();
      continue;
    }
    auto slice = sc::DynamicSliceOp::create(b, s.getLoc(), type, s.getInput(), start, b.getI64IntegerAttr(dim));
    if (auto sharding = s->getAttr("sc.sharding"))
      slice->setAttr("sc.sharding", sharding);
    s.replaceAllUsesWith(slice.getResult());
    s.erase();
  }
  // An embedding (or its gradient) whose table is split on the vocabulary holds this rank's rows:
  // the row start of its chunk as a new operand, the whole vocabulary's size as an attribute.
  auto setRowStart = [&](auto e, Value table) {
    auto type = cast<RankedTensorType>(table.getType());
    auto s = getSharding(table);
    if (e.getRowStart() || !s || s->dims.empty() || s->dims[0].empty())
      return;
    SmallVector<std::string> axes(s->dims[0].begin(), s->dims[0].end());
    e.getRowStartMutable().assign(values.chunkStart(axes, type.getDimSize(0)));
    e.setVocabSize(type.getDimSize(0) * mesh.product(axes));
    // The recorded operand shardings name the new operand too (a scalar, whole).
    if (auto operands = e->template getAttrOfType<ArrayAttr>("sc.operand_shardings")) {
      SmallVector<Attribute> list(operands.begin(), operands.end());
      list.push_back(Sharding::replicated(0).toAttr(e.getContext()));
      e->setAttr("sc.operand_shardings", ArrayAttr::get(e.getContext(), list));
    }
  };
  func.walk([&](sc::EmbeddingOp e) { setRowStart(e, e.getTable()); });
  // Its gradient: a vocabulary-split result holds this rank's rows (ids elsewhere add nothing).
  func.walk([&](sc::EmbeddingGradOp e) { setRowStart(e, e.getResult()); });
  // The vocabulary-parallel loss: a vocabulary-split logits slice starts at this rank's chunk.
  auto giveVocabStart = [&](Operation *op, Value logits, Value present, MutableOperandRange start) {
    auto s = getSharding(logits);
    if (present || !s || s->dims.size() != 3 || s->dims[2].empty())
      return;
    SmallVector<std::string> axes(s->dims[2].begin(), s->dims[2].end());
    auto type = cast<RankedTensorType>(logits.getType());
    start.assign(values.chunkStart(axes, type.getDimSize(2)));
    if (auto operands = op->getAttrOfType<ArrayAttr>("sc.operand_shardings")) {
      SmallVector<Attribute> list(operands.begin(), operands.end());
      list.push_back(Sharding::replicated(0).toAttr(op->getContext()));
      op->setAttr("sc.operand_shardings", ArrayAttr::get(op->getContext(), list));
    }
  };
  func.walk([&](sc::TokenLossStatsOp op) {
    giveVocabStart(op, op.getLogits(), op.getVocabStart(), op.getVocabStartMutable());
  });
  func.walk([&](sc::TokenLossStatsGradOp op) {
    giveVocabStart(op, op.getLogits(), op.getVocabStart(), op.getVocabStartMutable());
  });
}

struct ScPartitionPass : impl::ScPartitionBase<ScPartitionPass> {
  void runOnOperation() override {
    auto mesh = MeshShape::fromModule(getOperation());
    if (!mesh) {
      getOperation().emitError() << "sc-partition needs sc.mesh";
      return signalPassFailure();
    }
    bool failed = false;
    auto localize = [&](Value v, Operation *where) -> bool {
      auto type = cast<RankedTensorType>(v.getType());
      auto s = getSharding(v);
      if (!s || s->dims.size() != (size_t)type.getRank())
        return true;
      auto local = s->localShape(type.getShape(), *mesh);
      if (!local) {
        where->emitError() << "a value of shape " << type << " cannot be split as "
                           << s->toDTensorString(*mesh) << ": a dim does not divide over its mesh axes";
        failed = true;
        return false;
      }
      if (ArrayRef<int64_t>(*local) != type.getShape())
        v.setType(RankedTensorType::get(*local, type.getElementType()));
      return true;
    };
    getOperation().walk([&](func::FuncOp func) {
      OpBuilder b(func.getContext());
      for (BlockArgument arg : func.getArguments()) {
        auto type = cast<RankedTensorType>(arg.getType());
        func.setArgAttr(arg.getArgNumber(), "sc.global_shape", b.getDenseI64ArrayAttr(type.getShape()));
        localize(arg, func);
      }
      func.walk([&](Operation *op) {
        if (auto p = dyn_cast<sc::ParamOp>(op))
          op->setAttr("sc.global_shape", b.getDenseI64ArrayAttr(cast<RankedTensorType>(p.getType()).getShape()));
        for (Value r : op->getResults())
          localize(r, op);
      });
      SmallVector<Type> args(func.getBody().front().getArgumentTypes());
      SmallVector<Type> results;
      func.walk([&](func::ReturnOp ret) {
        for (Value v : ret.getOperands())
          results.push_back(v.getType());
      });
      func.setType(FunctionType::get(func.getContext(), args, results));
    });
    if (failed)
      return signalPassFailure();
    getOperation().walk([&](func::FuncOp func) {
      if (!func.getBody().empty())
        lowerRankDependentOps(func, *mesh);
    });
    // Expert parallelism: experts split over ep become dispatch, local experts, combine.
    if (mlir::failed(expandExpertParallel(getOperation(), *mesh)))
      return signalPassFailure();
    // The per-rank program must still verify: a rule that let a dim shard inconsistently
    // shows up here rather than at run time.
    if (mlir::failed(verify(getOperation())))
      signalPassFailure();
  }
};

} // namespace
} // namespace shardc
