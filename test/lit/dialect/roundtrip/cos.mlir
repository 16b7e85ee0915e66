// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @cos
// CHECK: sc.cos %arg0
func.func @cos(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.cos %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
