// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @matmul
// CHECK: sc.matmul %arg0, %arg1
func.func @matmul(%x: tensor<2x4x8xf32>, %y: tensor<8x16xf32>) -> tensor<2x4x16xf32> {
  %0 = sc.matmul %x, %y : (tensor<2x4x8xf32>, tensor<8x16xf32>) -> tensor<2x4x16xf32>
  return %0 : tensor<2x4x16xf32>
}
