// PLACEHOLDER: ScRaiseRotary is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCRAISEROTARY
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScRaiseRotaryPass : impl::ScRaiseRotaryBase<ScRaiseRotaryPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
