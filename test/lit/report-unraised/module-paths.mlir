// RUN: shardc-opt --sc-report-unraised %s -o /dev/null 2>&1 | FileCheck %s

// The remark names every module path where the kind is left, at the first op's location.
// CHECK: m.onnx:1:0: remark: unraised: 2 x sc.softmax in m.layers.0.self_attn, m.layers.1.self_attn
// CHECK: m.onnx:3:0: remark: unraised: 1 x sc.pow in m.norm
// CHECK: m.onnx:4:0: remark: unraised: 1 x sc.matmul with a parameter operand in m.lm_head
func.func @paths(%x: tensor<4x16xf32>, %s: tensor<4x4xf32>, %two: tensor<f32>) -> (tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>) {
  %w = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x16xf32>
  %0 = sc.softmax %s : (tensor<4x4xf32>) -> tensor<4x4xf32> loc("sm0"("m.layers.0.self_attn"("m.onnx":1:0)))
  %1 = sc.softmax %s : (tensor<4x4xf32>) -> tensor<4x4xf32> loc("sm1"("m.layers.1.self_attn"("m.onnx":2:0)))
  %2 = sc.pow %x, %two : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32> loc("pw"("m.norm"("m.onnx":3:0)))
  %t = sc.transpose %w {perm = array<i64: 1, 0>} : (tensor<16x16xf32>) -> tensor<16x16xf32>
  %3 = sc.matmul %x, %t : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32> loc("mm"("m.lm_head"("m.onnx":4:0)))
  return %0, %1, %2, %3 : tensor<4x4xf32>, tensor<4x4xf32>, tensor<4x16xf32>, tensor<4x16xf32>
}
