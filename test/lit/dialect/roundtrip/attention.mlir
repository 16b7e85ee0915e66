// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @attention
// CHECK: sc.attention %arg0, %arg1, %arg2 mask %arg3 {scale = 2.500000e-01 : f32}
func.func @attention(%q: tensor<2x8x4x16xf32>, %k: tensor<2x2x6x16xf32>, %v: tensor<2x2x6x16xf32>, %m: tensor<2x1x1x6xf32>) -> tensor<2x8x4x16xf32> {
  %0 = sc.attention %q, %k, %v mask %m {scale = 2.5e-01 : f32} : (tensor<2x8x4x16xf32>, tensor<2x2x6x16xf32>, tensor<2x2x6x16xf32>, tensor<2x1x1x6xf32>) -> tensor<2x8x4x16xf32>
  return %0 : tensor<2x8x4x16xf32>
}
