// PLACEHOLDER: ScRaiseAttention is being written; this stub keeps the build green.
#include "shardc/Passes/Passes.h"
#include "shardc/Dialect/ScDialect.h"

namespace shardc {
#define GEN_PASS_DEF_SCRAISEATTENTION
#include "shardc/Passes/Passes.h.inc"
namespace {
struct ScRaiseAttentionPass : impl::ScRaiseAttentionBase<ScRaiseAttentionPass> {
  void runOnOperation() override {}
};
} // namespace
} // namespace shardc
