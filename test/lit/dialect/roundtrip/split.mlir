// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @split
// CHECK: sc.split %arg0 {axis = 1 : i64}
func.func @split(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  %0:2 = sc.split %x {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x3xf32>, tensor<4x5xf32>)
  return %0#0 : tensor<4x3xf32>
}
