// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @slice
// CHECK: sc.slice %arg0
func.func @slice(%x: tensor<4x8xf32>) -> tensor<2x4xf32> {
  %0 = sc.slice %x {starts = array<i64: 1, 0>, steps = array<i64: 2, 2>} : (tensor<4x8xf32>) -> tensor<2x4xf32>
  return %0 : tensor<2x4xf32>
}
