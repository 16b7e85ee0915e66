// Robustness of the importer on corrupt input: a few hundred bit-flipped and truncated
// copies of the shared models, imported in-process under AddressSanitizer. Every mutation
// must end in a successful import or a one-line error naming the file; a crash, an abort or
// an ASan report fails the test.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Import/OnnxImporter.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/MLIRContext.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <random>
#include <string>
#include <vector>

int main(int argc, char **argv) {
  if (argc < 3) {
    llvm::errs() << "usage: shardc-import-mutations <mutations-per-model> <model.onnx>...\n";
    return 2;
  }
  int perModel = std::atoi(argv[1]);
  std::mt19937_64 rng(20261125);
  int imported = 0, rejected = 0, failures = 0;
  for (int m = 2; m < argc; ++m) {
    std::string path = argv[m];
    auto buf = llvm::MemoryBuffer::getFile(path, false, false);
    if (!buf) {
      llvm::errs() << "cannot read " << path << "\n";
      return 2;
    }
    std::string original((*buf)->getBufferStart(), (*buf)->getBufferSize());
    size_t window = std::min<size_t>(original.size(), 100 * 1024);
    for (int i = 0; i < perModel; ++i) {
      std::string bytes = original;
      std::string what;
      switch (i % 4) {
      case 0:
      case 1: { // 1-8 bit flips within the first 100 KB, where the graph structure lives
        int flips = 1 + rng() % 8;
        for (int f = 0; f < flips; ++f) {
          size_t at = rng() % window;
          bytes[at] ^= char(1u << (rng() % 8));
        }
        what = std::to_string(flips) + " bit flips";
        break;
      }
      case 2: { // truncation
        size_t len = rng() % original.size();
        bytes.resize(len);
        what = "truncated to " + std::to_string(len);
        break;
      }
      case 3: { // a run of random bytes
        size_t at = rng() % window, len = 1 + rng() % 64;
        for (size_t k = at; k < std::min(bytes.size(), at + len); ++k)
          bytes[k] = char(rng());
        what = std::to_string(len) + " random bytes at " + std::to_string(at);
        break;
      }
      }
      mlir::MLIRContext ctx;
      ctx.loadDialect<shardc::sc::ScDialect, mlir::func::FuncDialect>();
      ctx.printOpOnDiagnostic(false);
      ctx.getDiagEngine().registerHandler([](mlir::Diagnostic &) { return mlir::success(); });
      auto module = shardc::importOnnxBuffer(ctx, llvm::MemoryBufferRef(bytes, path), path, {});
      if (module) {
        ++imported;
        continue;
      }
      std::string msg = llvm::toString(module.takeError());
      ++rejected;
      if (msg.find('\n') != std::string::npos || msg.rfind(path, 0) != 0) {
        ++failures;
        llvm::errs() << "mutation " << i << " (" << what << "): error is not one line naming the file: " << msg << "\n";
      }
    }
  }
  llvm::outs() << "mutations: " << imported + rejected << ", imported: " << imported << ", rejected with an error: " << rejected
               << ", malformed errors: " << failures << "\n";
  return failures ? 1 : 0;
}
