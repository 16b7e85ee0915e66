// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @range
// CHECK: sc.range %arg0, %arg1, %arg2
func.func @range(%a: tensor<i64>, %b: tensor<i64>, %c: tensor<i64>) -> tensor<10xi64> {
  %0 = sc.range %a, %b, %c : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<10xi64>
  return %0 : tensor<10xi64>
}
