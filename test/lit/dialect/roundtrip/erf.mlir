// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @erf
// CHECK: sc.erf %arg0
func.func @erf(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.erf %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
