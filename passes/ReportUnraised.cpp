// ScReportUnraised: remarks on the primitive ops that raising should have absorbed, so a
// user sees which exporter spellings shardc did not recognise (and where) before sharding.
#include "PatternMatchers.h"
#include "shardc/Dialect/ScLocation.h"
#include "shardc/Passes/Passes.h"

#include "llvm/ADT/MapVector.h"
#include "llvm/ADT/SetVector.h"
#include "llvm/ADT/StringExtras.h"

using namespace mlir;

namespace shardc {
#define GEN_PASS_DEF_SCREPORTUNRAISED
#include "shardc/Passes/Passes.h.inc"

namespace {

// The kind under which an op is reported, or "" when it is not a leftover.
StringRef unraisedKind(Operation *op) {
  if (isa<sc::SoftmaxOp, sc::IsNaNOp, sc::WhereOp, sc::SigmoidOp, sc::ErfOp, sc::TanhOp,
          sc::PowOp, sc::ReciprocalOp>(op))
    return op->getName().getStringRef();
  if (isa<sc::MatMulOp, sc::GemmOp>(op) &&
      llvm::any_of(op->getOperands(), [](Value v) {
        if (auto tr = v.getDefiningOp<sc::TransposeOp>())
          v = tr.getInput();
        return static_cast<bool>(match::paramOf(v));
      }))
    return op->getName().getStringRef() == "sc.matmul" ? "sc.matmul with a parameter operand"
                                                       : "sc.gemm with a parameter operand";
  return "";
}

struct Leftovers {
  Operation *first = nullptr;
  unsigned count = 0;
  llvm::SetVector<StringRef> paths;
};

struct ScReportUnraisedPass : impl::ScReportUnraisedBase<ScReportUnraisedPass> {
  void runOnOperation() override {
    llvm::MapVector<StringRef, Leftovers> byKind;
    getOperation().walk([&](Operation *op) {
      StringRef kind = unraisedKind(op);
      if (kind.empty())
        return;
      Leftovers &l = byKind[kind];
      if (!l.first)
        l.first = op;
      ++l.count;
      std::string path = modulePathOf(op->getLoc());
      // Uniqued in the context so the StringRef outlives this walk.
      l.paths.insert(StringAttr::get(op->getContext(), path.empty() ? "<no module path>" : path).getValue());
    });
    for (auto &[kind, l] : byKind)
      l.first->emitRemark() << "unraised: " << l.count << " x " << kind << " in "
                            << llvm::join(l.paths.getArrayRef(), ", ");
    markAllAnalysesPreserved();
  }
};

} // namespace
} // namespace shardc
