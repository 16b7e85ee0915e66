// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @process_index
// CHECK: sc.process_index {axes = ["dp_shard", "tp"]} : tensor<i64>
func.func @process_index() -> tensor<i64> {
  %0 = sc.process_index {axes = ["dp_shard", "tp"]} : tensor<i64>
  return %0 : tensor<i64>
}
