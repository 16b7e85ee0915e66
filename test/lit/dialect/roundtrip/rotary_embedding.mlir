// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @rotary_embedding
// CHECK: sc.rotary_embedding %arg0, %arg1, %arg2 positions %arg3
func.func @rotary_embedding(%x: tensor<2x4x8x16xf32>, %c: tensor<32x8xf32>, %s: tensor<32x8xf32>, %p: tensor<2x8xi64>) -> tensor<2x4x8x16xf32> {
  %0 = sc.rotary_embedding %x, %c, %s positions %p : (tensor<2x4x8x16xf32>, tensor<32x8xf32>, tensor<32x8xf32>, tensor<2x8xi64>) -> tensor<2x4x8x16xf32>
  return %0 : tensor<2x4x8x16xf32>
}
