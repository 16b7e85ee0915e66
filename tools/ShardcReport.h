// `shardc report`: per-rank costs of a compiled artifact (parameters, arena, collectives).
#pragma once

#include "llvm/ADT/StringRef.h"

namespace shardc {
int runReport(llvm::StringRef artifactPath, bool json);
}
