// PLACEHOLDER: ScRaiseLinear is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCRAISELINEAR
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScRaiseLinearPass : impl::ScRaiseLinearBase<ScRaiseLinearPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
