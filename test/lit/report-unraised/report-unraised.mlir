// RUN: shardc-opt --sc-report-unraised --verify-diagnostics --split-input-file %s | FileCheck %s

// Leftover primitive ops are reported once per kind, at the first one, with counts; the
// IR is unchanged. (Module paths: see module-paths.mlir.)
// CHECK-LABEL: func @leftovers
// CHECK-COUNT-2: sc.softmax
// CHECK: sc.matmul
func.func @leftovers(%x: tensor<4x16xf32>, %s: tensor<4x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x4xi1>) {
  %w = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x16xf32>
  // expected-remark @below {{unraised: 2 x sc.softmax in <no module path>}}
  %0 = sc.softmax %s : (tensor<4x4xf32>) -> tensor<4x4xf32>
  %1 = sc.softmax %s : (tensor<4x4xf32>) -> tensor<4x4xf32>
  // expected-remark @below {{unraised: 1 x sc.sigmoid}}
  %2 = sc.sigmoid %x : (tensor<4x16xf32>) -> tensor<4x16xf32>
  // expected-remark @below {{unraised: 1 x sc.matmul with a parameter operand}}
  %3 = sc.matmul %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
  // expected-remark @below {{unraised: 1 x sc.isnan}}
  %4 = sc.isnan %s : (tensor<4x4xf32>) -> tensor<4x4xi1>
  return %0, %1, %2, %3, %4 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>, tensor<4x4xi1>
}

// -----

// Raised ops and activation-only matmuls are not reported (no remark expected).
// CHECK-LABEL: func @nothing_left
func.func @nothing_left(%x: tensor<4x16xf32>, %y: tensor<16x4xf32>) -> (tensor<4x4xf32>, tensor<4x16xf32>) {
  %0 = sc.matmul %x, %y : (tensor<4x16xf32>, tensor<16x4xf32>) -> tensor<4x4xf32>
  %1 = sc.silu %x : (tensor<4x16xf32>) -> tensor<4x16xf32>
  return %0, %1 : tensor<4x4xf32>, tensor<4x16xf32>
}
