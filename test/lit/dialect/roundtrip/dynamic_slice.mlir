// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @dynamic_slice
// CHECK: sc.dynamic_slice %arg0, %arg1 {axis = 1 : i64}
func.func @dynamic_slice(%x: tensor<4x8xf32>, %s: tensor<i64>) -> tensor<4x2xf32> {
  %0 = sc.dynamic_slice %x, %s {axis = 1 : i64} : (tensor<4x8xf32>, tensor<i64>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}
