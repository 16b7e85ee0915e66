// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @reshape
// CHECK: sc.reshape %arg0
func.func @reshape(%x: tensor<4x8xf32>) -> tensor<32xf32> {
  %0 = sc.reshape %x : (tensor<4x8xf32>) -> tensor<32xf32>
  return %0 : tensor<32xf32>
}
