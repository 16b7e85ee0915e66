// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @constant
// CHECK: sc.constant dense<[1.000000e+00, 2.000000e+00]>
func.func @constant() -> tensor<2xf32> {
  %0 = sc.constant dense<[1.0, 2.0]> : tensor<2xf32>
  return %0 : tensor<2xf32>
}
