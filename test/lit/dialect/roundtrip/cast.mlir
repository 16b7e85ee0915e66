// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @cast
// CHECK: sc.cast %arg0
func.func @cast(%x: tensor<4x8xf32>) -> tensor<4x8xf16> {
  %0 = sc.cast %x : (tensor<4x8xf32>) -> tensor<4x8xf16>
  return %0 : tensor<4x8xf16>
}
