// sc-fuse-elementwise: elementwise ops grouped into sc.fused regions, each compiled into one
// generated kernel (lib/Codegen/FusedKernels.cpp) for the CPU and for CUDA.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"

#include "mlir/IR/IRMapping.h"
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

bool isFusible(Operation *op) {
  if (!isa<sc::AddOp, sc::SubOp, sc::MulOp, sc::DivOp, sc::PowOp, sc::NegOp, sc::ExpOp, sc::LogOp, sc::SqrtOp,
           sc::ReciprocalOp, sc::TanhOp, sc::SigmoidOp, sc::ErfOp, sc::CosOp, sc::SinOp, sc::SiluOp, sc::GeluOp,
           sc::CastOp>(op))
    return false;
  return llvm::all_of(op->getOperandTypes(), isFloatTensor) && llvm::all_of(op->getResultTypes(), isFloatTensor);
}

ArrayRef<int64_t> shapeOf(Value v) { return cast<RankedTensorType>(v.getType()).getShape(); }

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
      while (!work.empty()) {
        Operation *x = work.pop_back_val();
        for (Value v : x->getOperands()) {
          Operation *p = v.getDefiningOp();
          if (!p || p->getBlock() != &block || grouped.contains(p) || !isFusible(p) ||
              shapeOf(p->getResult(0)) != shape)
            continue;
          // Only values read inside the group stay inside it.
          if (!llvm::all_of(p->getUsers(), [&](Operation *u) { return group.contains(u); }))
            continue;
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

  // `members[0]` is the group's root: its result is the only one read outside.
  void materialize(SmallVector<Operation *> &members) {
    Operation *root = members.front();
    llvm::sort(members, [](Operation *a, Operation *b) { return a->isBeforeInBlock(b); });
    llvm::DenseSet<Operation *> inGroup(members.begin(), members.end());
    llvm::SetVector<Value> inputs;
    for (Operation *m : members)
      for (Value v : m->getOperands())
        if (!inGroup.contains(v.getDefiningOp()) && !isSplatConstant(v))
          inputs.insert(v);
    OpBuilder b(root);
    auto fused = sc::FusedOp::create(b, root->getLoc(), root->getResultTypes(), inputs.getArrayRef());
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
    sc::FusedYieldOp::create(inner, root->getLoc(), ValueRange{map.lookup(root->getResult(0))});
    root->getResult(0).replaceAllUsesWith(fused.getResult(0));
    for (Operation *m : llvm::reverse(members))
      m->erase();
  }
};

} // namespace
} // namespace shardc
