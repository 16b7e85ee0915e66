// PLACEHOLDER: ScRaiseActivations is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCRAISEACTIVATIONS
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScRaiseActivationsPass : impl::ScRaiseActivationsBase<ScRaiseActivationsPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
