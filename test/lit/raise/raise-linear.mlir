// RUN: shardc-opt --sc-raise-linear --split-input-file %s | FileCheck %s

// The exporter's folded [K, N] weight, then a bias parameter added after it.
// CHECK-LABEL: func @folded_weight_with_bias
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK-DAG: %[[W:.*]] = sc.param "q_proj.weight"
// CHECK-DAG: %[[B:.*]] = sc.param "q_proj.bias"
// CHECK: %[[Y:.*]] = sc.linear %[[X]], %[[W]], %[[B]] :
// CHECK-NOT: sc.matmul
// CHECK-NOT: sc.add
// CHECK: return %[[Y]]
func.func @folded_weight_with_bias(%x: tensor<2x8x16xf32>) -> tensor<2x8x32xf32> {
  %w = sc.param "q_proj.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "val_1", tied = [], transform = #sc.transform<transpose>} : tensor<16x32xf32>
  %b = sc.param "q_proj.bias" {file = "m.onnx", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<32xf32>
  %0 = sc.matmul %x, %w : (tensor<2x8x16xf32>, tensor<16x32xf32>) -> tensor<2x8x32xf32>
  %1 = sc.add %0, %b : (tensor<2x8x32xf32>, tensor<32xf32>) -> tensor<2x8x32xf32>
  return %1 : tensor<2x8x32xf32>
}

// -----

// Bias first (add is commutative).
// CHECK-LABEL: func @bias_on_the_left
// CHECK: sc.linear %{{.*}}, %{{.*}}, %{{.*}} : (tensor<4x16xf32>, tensor<16x32xf32>, tensor<32xf32>)
// CHECK-NOT: sc.add
func.func @bias_on_the_left(%x: tensor<4x16xf32>) -> tensor<4x32xf32> {
  %w = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
  %b = sc.param "b" {file = "m.onnx", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<32xf32>
  %0 = sc.matmul %x, %w : (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>
  %1 = sc.add %b, %0 : (tensor<32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  return %1 : tensor<4x32xf32>
}

// -----

// Tied lm_head: matmul with transpose(param [N, K]) keeps the [N, K] parameter.
// CHECK-LABEL: func @tied_head_through_transpose
// CHECK: %[[E:.*]] = sc.param "lm_head.weight"
// CHECK-NOT: sc.transpose
// CHECK: sc.linear %{{.*}}, %[[E]] {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<64x16xf32>) -> tensor<2x8x64xf32>
func.func @tied_head_through_transpose(%x: tensor<2x8x16xf32>) -> tensor<2x8x64xf32> {
  %e = sc.param "lm_head.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "e", tied = ["embed.weight"], transform = #sc.transform<none>} : tensor<64x16xf32>
  %t = sc.transpose %e {perm = array<i64: 1, 0>} : (tensor<64x16xf32>) -> tensor<16x64xf32>
  %0 = sc.matmul %x, %t : (tensor<2x8x16xf32>, tensor<16x64xf32>) -> tensor<2x8x64xf32>
  return %0 : tensor<2x8x64xf32>
}

// -----

// Gemm(x, W, b) with transB: a linear over PyTorch's [N, K] weight.
// CHECK-LABEL: func @gemm_trans_b
// CHECK: sc.linear %{{.*}}, %{{.*}}, %{{.*}} {transpose_weight = true} : (tensor<4x16xf32>, tensor<32x16xf32>, tensor<32xf32>) -> tensor<4x32xf32>
// CHECK-NOT: sc.gemm
func.func @gemm_trans_b(%x: tensor<4x16xf32>) -> tensor<4x32xf32> {
  %w = sc.param "fc.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
  %b = sc.param "fc.bias" {file = "m.onnx", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<32xf32>
  %0 = sc.gemm %x, %w, %b {trans_b = true} : (tensor<4x16xf32>, tensor<32x16xf32>, tensor<32xf32>) -> tensor<4x32xf32>
  return %0 : tensor<4x32xf32>
}

// -----

// GPT-2's fused QKV stays linear + split (packed QKV is a sharding concern).
// CHECK-LABEL: func @fused_qkv_keeps_split
// CHECK: %[[L:.*]] = sc.linear
// CHECK: sc.split %[[L]] {axis = 2 : i64}
func.func @fused_qkv_keeps_split(%x: tensor<2x8x16xf32>) -> (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>) {
  %w = sc.param "c_attn.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x48xf32>
  %b = sc.param "c_attn.bias" {file = "m.onnx", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<48xf32>
  %0 = sc.matmul %x, %w : (tensor<2x8x16xf32>, tensor<16x48xf32>) -> tensor<2x8x48xf32>
  %1 = sc.add %0, %b : (tensor<2x8x48xf32>, tensor<48xf32>) -> tensor<2x8x48xf32>
  %q, %k, %v = sc.split %1 {axis = 2 : i64} : (tensor<2x8x48xf32>) -> (tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>)
  return %q, %k, %v : tensor<2x8x16xf32>, tensor<2x8x16xf32>, tensor<2x8x16xf32>
}

// -----

// Negative: the weight is an activation, not a parameter.
// CHECK-LABEL: func @activation_weight_unchanged
// CHECK: sc.matmul
// CHECK-NOT: sc.linear
func.func @activation_weight_unchanged(%x: tensor<4x16xf32>, %w: tensor<16x32xf32>) -> tensor<4x32xf32> {
  %0 = sc.matmul %x, %w : (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>
  return %0 : tensor<4x32xf32>
}

// -----

// Negative: a [4x32] "bias" is not a bias; the linear is raised, the add stays.
// CHECK-LABEL: func @full_matrix_add_stays
// CHECK: %[[L:.*]] = sc.linear
// CHECK: sc.add %[[L]], %{{.*}} : (tensor<4x32xf32>, tensor<4x32xf32>)
func.func @full_matrix_add_stays(%x: tensor<4x16xf32>) -> tensor<4x32xf32> {
  %w = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
  %b = sc.param "b" {file = "m.onnx", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<4x32xf32>
  %0 = sc.matmul %x, %w : (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>
  %1 = sc.add %0, %b : (tensor<4x32xf32>, tensor<4x32xf32>) -> tensor<4x32xf32>
  return %1 : tensor<4x32xf32>
}

// -----

// Negative: Gemm with alpha != 1 or a non-transposed perm on the weight.
// CHECK-LABEL: func @gemm_alpha_and_batched_weight_unchanged
// CHECK: sc.gemm
// CHECK: sc.matmul
// CHECK-NOT: sc.linear
func.func @gemm_alpha_and_batched_weight_unchanged(%x: tensor<4x16xf32>, %y: tensor<2x4x16xf32>) -> (tensor<4x32xf32>, tensor<2x4x32xf32>) {
  %w = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
  %w3 = sc.param "w3" {file = "m.onnx", offset = 0 : i64, onnx_name = "w3", tied = [], transform = #sc.transform<none>} : tensor<2x16x32xf32>
  %0 = sc.gemm %x, %w {alpha = 2.0 : f32} : (tensor<4x16xf32>, tensor<16x32xf32>) -> tensor<4x32xf32>
  %1 = sc.matmul %y, %w3 : (tensor<2x4x16xf32>, tensor<2x16x32xf32>) -> tensor<2x4x32xf32>
  return %0, %1 : tensor<4x32xf32>, tensor<2x4x32xf32>
}
