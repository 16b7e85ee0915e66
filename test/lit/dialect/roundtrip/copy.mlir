// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @copy
// CHECK: sc.copy %arg0 : (tensor<4x8xf32>) -> tensor<4x8xf32>
func.func @copy(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.copy %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
