// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @isnan
// CHECK: sc.isnan %arg0
func.func @isnan(%x: tensor<4x8xf32>) -> tensor<4x8xi1> {
  %0 = sc.isnan %x : (tensor<4x8xf32>) -> tensor<4x8xi1>
  return %0 : tensor<4x8xi1>
}
