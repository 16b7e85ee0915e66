// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @constant_of_shape
// CHECK: sc.constant_of_shape {value = 0.000000e+00 : f32} : tensor<4x8xf32>
func.func @constant_of_shape() -> tensor<4x8xf32> {
  %0 = sc.constant_of_shape {value = 0.0 : f32} : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
