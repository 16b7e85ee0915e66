// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @unsqueeze
// CHECK: sc.unsqueeze %arg0
func.func @unsqueeze(%x: tensor<4x8xf32>) -> tensor<4x1x8xf32> {
  %0 = sc.unsqueeze %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1x8xf32>
  return %0 : tensor<4x1x8xf32>
}
