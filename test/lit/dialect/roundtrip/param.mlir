// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s

// CHECK-LABEL: func @param
// CHECK: sc.param "m.w"
func.func @param() -> tensor<4x8xf32> {
  %0 = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}
