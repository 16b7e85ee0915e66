// shardc-opt: mlir-opt with the sc dialect and every shardc pass and pipeline registered,
// for pass debugging and lit tests.
#include "shardc/Dialect/ScDialect.h"
#include "shardc/Passes/Passes.h"

#include "mlir/Dialect/Func/IR/FuncOps.h"
#include "mlir/IR/DialectRegistry.h"
#include "mlir/Tools/mlir-opt/MlirOptMain.h"
#include "mlir/Transforms/Passes.h"
#include "llvm/Support/CommandLine.h"
#include "llvm/Support/raw_ostream.h"

int main(int argc, char **argv) {
  mlir::registerTransformsPasses();
  shardc::registerAllShardcPasses();
  mlir::DialectRegistry registry;
  registry.insert<shardc::sc::ScDialect, mlir::func::FuncDialect>();
  llvm::cl::AddExtraVersionPrinter(
      [](llvm::raw_ostream &os) { os << "shardc-opt " << SHARDC_VERSION << "\n"; });
  return mlir::asMainReturnCode(mlir::MlirOptMain(argc, argv, "shardc optimizer driver\n", registry));
}
