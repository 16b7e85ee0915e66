// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @expand
// CHECK: sc.expand %arg0
func.func @expand(%x: tensor<1x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.expand %x : (tensor<1x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
