// PLACEHOLDER: ScGroupLayers is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCGROUPLAYERS
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScGroupLayersPass : impl::ScGroupLayersBase<ScGroupLayersPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
