// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @layer
// CHECK: sc.layer "m.layers.0" -> tensor<4x8xf32> {
func.func @layer(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.layer "m.layers.0" -> tensor<4x8xf32> {
    %n = sc.neg %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
    sc.yield %n : tensor<4x8xf32>
  }
  return %0 : tensor<4x8xf32>
}
