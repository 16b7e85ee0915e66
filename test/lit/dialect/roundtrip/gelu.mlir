// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @gelu
// CHECK: sc.gelu %arg0
func.func @gelu(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  %0 = sc.gelu %x {approximate = #sc.gelu_approximation<tanh>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
