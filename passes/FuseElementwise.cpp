// sc-fuse-elementwise: elementwise ops grouped into sc.fused regions, each compiled into one
// generated kernel (lib/Codegen/FusedKernels.cpp) for the CPU and for CUDA.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Dialect/ScOffload.h"
#include "shardc/Dialect/ScShapes.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/IRMapping.h"
#include "llvm/ADT/TypeSwitch.h"
#include "llvm/ADT/SetVector.h"

namespace shardc {
#define GEN_PASS_DEF_SCFUSEELEMENTWISE
#include "shardc/Passes/Passes.h.inc"

namespace {

using namespace mlir;

bool isFloatTensor(Type t) {
  auto rt = dyn_cast<RankedTensorType>(t);
  return rt && (rt.getElementType().isF32() || rt.getElementType().isBF16() || rt.getElementType().isF16());
}

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

bool floatTypes(Operation *op) {
  return llvm::all_of(op->getOperandTypes(), isFloatTensor) && llvm::all_of(op->getResultTypes(), isFloatTensor);
}

// A normalisation or softmax over the last dim only, with its scale (and bias) one row of
// that dim: the kernel becomes a row kernel (statistics per row, then the elementwise chain).
bool isRowOp(Operation *op) {
  if (!isa<sc::RmsNormOp, sc::LayerNormOp, sc::SoftmaxOp, sc::LogSoftmaxOp>(op) || !floatTypes(op))
    return false;
  int64_t rank = shapeOf(op->getResult(0)).size();
  int64_t axis = llvm::TypeSwitch<Operation *, int64_t>(op)
                     .Case<sc::RmsNormOp, sc::LayerNormOp>([](auto n) { return (int64_t)n.getAxis(); })
                     .Case<sc::SoftmaxOp, sc::LogSoftmaxOp>([](auto n) { return (int64_t)n.getAxis(); })
                     .Default([](Operation *) { return int64_t(0); });
  if (rank < 1 || (axis < 0 ? axis + rank : axis) != rank - 1)
    return false;
  int64_t c = shapeOf(op->getResult(0)).back();
  return llvm::all_of(op->getOperands().drop_front(), [&](Value v) {
    return shapeOf(v).size() == 1 && shapeOf(v)[0] == c;
  });
}

// A formula op (ElementwiseOpInterface: its scalar arithmetic is one prelude row) or a cast
// (a conversion between the load and the store).
bool isElementwise(Operation *op) { return isa<sc::ElementwiseOpInterface, sc::CastOp>(op) && floatTypes(op); }

// Data movement (transpose, reshape, slice, expand, concat): inside a kernel it is index
// arithmetic on the loads of kernel inputs (a view), never a materialised tensor; so its
// operands must be inputs or other views.
bool isIndexOp(Operation *op) {
  return isa<sc::TransposeOp, sc::ReshapeOp, sc::SqueezeOp, sc::UnsqueezeOp, sc::SliceOp, sc::ExpandOp,
             sc::ConcatOp>(op) &&
         floatTypes(op);
}

// Rotate-half rotary reads its input at the partner position d +- D/2: the input must be a
// view too.
bool isRotary(Operation *op) { return isa<sc::RotaryOp>(op) && floatTypes(op); }

bool isFusible(Operation *op) { return isElementwise(op) || isRowOp(op) || isIndexOp(op) || isRotary(op); }

// `shape` broadcasts (right-aligned, 1s stretch) to `to` without growing it.
bool broadcastsTo(ArrayRef<int64_t> shape, ArrayRef<int64_t> to) {
  SmallVector<int64_t> joined;
  return sc::broadcastShapes(shape, to, joined) && ArrayRef<int64_t>(joined) == to;
}

// A splat float constant: cloned into the region, where it becomes a literal.
bool isSplatConstant(Value v) {
  auto c = v.getDefiningOp<sc::ConstantOp>();
  if (!c || !isFloatTensor(c.getType()))
    return false;
  auto dense = dyn_cast<DenseElementsAttr>(c.getValue());
  return dense && dense.isSplat();
}

struct ScFuseElementwisePass : impl::ScFuseElementwiseBase<ScFuseElementwisePass> {
  void runOnOperation() override {
    SmallVector<Block *> blocks;
    // (Groups: see fuseBlock.)
    getOperation().walk([&](Block *b) {
      if (!isa<sc::FusedOp>(b->getParentOp()))
        blocks.push_back(b);
    });
    for (Block *b : blocks)
      fuseBlock(*b);
  }

  void fuseBlock(Block &block) {
    llvm::DenseSet<Operation *> grouped;
    SmallVector<SmallVector<Operation *>> groups;
    for (Operation &op : llvm::reverse(block)) {
      if (!isFusible(&op) || grouped.contains(&op))
        continue;
      ArrayRef<int64_t> shape = shapeOf(op.getResult(0));
      llvm::SetVector<Operation *> group;
      SmallVector<Operation *> work{&op};
      group.insert(&op);
      grouped.insert(&op);
      bool hasRowOp = isRowOp(&op);
      while (!work.empty()) {
        Operation *x = work.pop_back_val();
        // A row op's scale and bias stay inputs; only its normalised operand may be fused.
        auto operands = isRowOp(x) ? x->getOperands().take_front(1) : x->getOperands();
        for (auto [k, v] : llvm::enumerate(operands)) {
          Operation *p = v.getDefiningOp();
          if (!p || p->getBlock() != &block || grouped.contains(p) || !isFusible(p) || (isRowOp(p) && hasRowOp))
            continue;
          // CPU offload: host ops (sc.host) and device ops never share a kernel.
          if (sc::isHostOp(p) != sc::isHostOp(&op))
            continue;
          // What an index op or rotary's input reads must be a view; views are read inside
          // the group only, at any shape an index op takes or that broadcasts to the group's.
          bool needsView = isIndexOp(x) || (isRotary(x) && k == 0);
          if (needsView && !isIndexOp(p))
            continue;
          if (isIndexOp(p)) {
            if (!(isIndexOp(x) || broadcastsTo(shapeOf(p->getResult(0)), shape)) ||
                !llvm::all_of(p->getUsers(), [&](Operation *u) { return group.contains(u); }))
              continue;
            group.insert(p);
            grouped.insert(p);
            work.push_back(p);
            continue;
          }
          if (shapeOf(p->getResult(0)) != shape)
            continue;
          // A value read outside the group too becomes one more output of the kernel (the
          // residual stream before a norm), provided those readers come after the kernel.
          bool outsideAfter = llvm::all_of(p->getUsers(), [&](Operation *u) {
            return group.contains(u) || (u->getBlock() == &block && op.isBeforeInBlock(u));
          });
          if (!outsideAfter)
            continue;
          hasRowOp |= isRowOp(p);
          group.insert(p);
          grouped.insert(p);
          work.push_back(p);
        }
      }
      groups.push_back(SmallVector<Operation *>(group.begin(), group.end()));
    }
    for (auto &g : groups)
      materialize(g);
  }

  // `members[0]` is the group's root, the last of them in the block; its result and any
  // member result read outside the group are the kernel's outputs.
  void materialize(SmallVector<Operation *> &members) {
    Operation *root = members.front();
    llvm::sort(members, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    llvm::DenseSet<Operation *> inGroup(members.begin(), members.end());
    llvm::SetVector<Value> inputs;
    for (Operation *m : members)
      for (Value v : m->getOperands())
        if (!inGroup.contains(v.getDefiningOp()) && !isSplatConstant(v))
          inputs.insert(v);
    SmallVector<Value> outputs{root->getResult(0)};
    for (Operation *m : members)
      if (m != root && llvm::any_of(m->getUsers(), [&](Operation *u) { return !inGroup.contains(u); }))
        outputs.push_back(m->getResult(0));
    SmallVector<Type> outputTypes;
    for (Value v : outputs)
      outputTypes.push_back(v.getType());
    OpBuilder b(root);
    auto fused = sc::FusedOp::create(b, root->getLoc(), outputTypes, inputs.getArrayRef());
    if (sc::isHostOp(root))
      fused->setAttr(sc::kHostAttr, b.getUnitAttr());
    Block *body = new Block();
    fused.getBody().push_back(body);
    IRMapping map;
    for (Value in : inputs)
      map.map(in, body->addArgument(in.getType(), in.getLoc()));
    OpBuilder inner = OpBuilder::atBlockBegin(body);
    for (Operation *m : members) {
      for (Value v : m->getOperands())
        if (!map.contains(v) && isSplatConstant(v))
          map.map(v, inner.clone(*v.getDefiningOp())->getResult(0));
      inner.clone(*m, map);
    }
    SmallVector<Value> yielded;
    for (Value v : outputs)
      yielded.push_back(map.lookup(v));
    sc::FusedYieldOp::create(inner, root->getLoc(), yielded);
    for (auto [k, v] : llvm::enumerate(outputs))
      v.replaceUsesWithIf(fused.getResult(k), [&](OpOperand &use) { return !inGroup.contains(use.getOwner()); });
    for (Operation *m : llvm::reverse(members))
      m->erase();
  }
};

} // namespace
} // namespace shardc
