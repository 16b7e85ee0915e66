// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @reduce_sum
// CHECK: sc.reduce_sum %arg0
func.func @reduce_sum(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
  %0 = sc.reduce_sum %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}
