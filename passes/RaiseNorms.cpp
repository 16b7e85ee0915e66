// PLACEHOLDER: ScRaiseNorms is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCRAISENORMS
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScRaiseNormsPass : impl::ScRaiseNormsBase<ScRaiseNormsPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
