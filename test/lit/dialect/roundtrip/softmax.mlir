// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @softmax
// CHECK: sc.softmax %arg0
func.func @softmax(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.softmax %x {axis = 0 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
