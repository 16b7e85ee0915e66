// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @trilu
// CHECK: sc.trilu %arg0
func.func @trilu(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.trilu %x {k = 1 : i64, upper = true} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
