// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @shape
// CHECK: sc.shape %arg0 {start = 1 : i64}
func.func @shape(%x: tensor<4x8xf32>) -> tensor<1xi64> {
  %0 = sc.shape %x {start = 1 : i64} : (tensor<4x8xf32>) -> tensor<1xi64>
  return %0 : tensor<1xi64>
}
