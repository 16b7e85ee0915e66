// PLACEHOLDER: ScReportUnraised is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCREPORTUNRAISED
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScReportUnraisedPass : impl::ScReportUnraisedBase<ScReportUnraisedPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
