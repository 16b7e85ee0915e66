// sc-autodiff through sc.linear: dx is a linear with the other orientation, dW a matmul over
// the flattened rows (xᵀ·g for W [K, N], gᵀ·x for transpose_weight's W [N, K]), db the
// gradient summed over every dim but the last.
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// W [K, N] = [4, 3], x a parameter too (so both gradients flow).
// CHECK-LABEL: func.func @linear_kn
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x4xf32> {sc.name = "grad.m.x"}, tensor<4x3xf32> {sc.name = "grad.m.w"})
// CHECK: %[[X:.*]] = sc.param "m.x"
// CHECK: %[[W:.*]] = sc.param "m.w"
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x6xf32>) -> tensor<2x3xf32>
// CHECK: %[[GX:.*]] = sc.linear %[[G]], %[[W]] {transpose_weight = true} : (tensor<2x3xf32>, tensor<4x3xf32>) -> tensor<2x4xf32>
// CHECK: %[[XT:.*]] = sc.transpose %[[X]] {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
// CHECK: %[[GW:.*]] = sc.matmul %[[XT]], %[[G]] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK: return %{{.*}}, %[[GX]], %[[GW]] : tensor<f32>, tensor<2x4xf32>, tensor<4x3xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @linear_kn(%i: tensor<2x2xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %w = sc.param "m.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x3xf32>
    %y = sc.linear %x, %w : (tensor<2x4xf32>, tensor<4x3xf32>) -> tensor<2x3xf32>
    %f = sc.reshape %y : (tensor<2x3xf32>) -> tensor<1x6xf32>
    %c = sc.constant dense<1.0> : tensor<6x1xf32>
    %d = sc.linear %f, %c : (tensor<1x6xf32>, tensor<6x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// transpose_weight, W [N, K] = [3, 4], a 3-D input and a bias: dx is a linear without the
// transpose, dW = g₂ᵀ·x₂ over the 2·5 flattened rows, db sums dims 0 and 1.
// CHECK-LABEL: func.func @linear_nk_bias
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x5x4xf32> {sc.name = "grad.m.x"}, tensor<3x4xf32> {sc.name = "grad.m.w"}, tensor<3xf32> {sc.name = "grad.m.b"})
// CHECK: %[[X:.*]] = sc.param "m.x"
// CHECK: %[[W:.*]] = sc.param "m.w"
// CHECK: %[[Y:.*]] = sc.linear %[[X]], %[[W]], %{{.*}} {transpose_weight = true} : (tensor<2x5x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x5x3xf32>
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x30xf32>) -> tensor<2x5x3xf32>
// CHECK: %[[GX:.*]] = sc.linear %[[G]], %[[W]] : (tensor<2x5x3xf32>, tensor<3x4xf32>) -> tensor<2x5x4xf32>
// CHECK: %[[X2:.*]] = sc.reshape %[[X]] : (tensor<2x5x4xf32>) -> tensor<10x4xf32>
// CHECK: %[[G2:.*]] = sc.reshape %[[G]] : (tensor<2x5x3xf32>) -> tensor<10x3xf32>
// CHECK: %[[GT:.*]] = sc.transpose %[[G2]] {perm = array<i64: 1, 0>} : (tensor<10x3xf32>) -> tensor<3x10xf32>
// CHECK: %[[GW:.*]] = sc.matmul %[[GT]], %[[X2]] : (tensor<3x10xf32>, tensor<10x4xf32>) -> tensor<3x4xf32>
// CHECK: %[[GB:.*]] = sc.reduce_sum %[[G]] {axes = array<i64: 0, 1>, keepdims = false} : (tensor<2x5x3xf32>) -> tensor<3xf32>
// CHECK: return %{{.*}}, %[[GX]], %[[GW]], %[[GB]] : tensor<f32>, tensor<2x5x4xf32>, tensor<3x4xf32>, tensor<3xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @linear_nk_bias(%i: tensor<2x2xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x5x4xf32>
    %w = sc.param "m.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<3x4xf32>
    %b = sc.param "m.b" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<3xf32>
    %y = sc.linear %x, %w, %b {transpose_weight = true} : (tensor<2x5x4xf32>, tensor<3x4xf32>, tensor<3xf32>) -> tensor<2x5x3xf32>
    %f = sc.reshape %y : (tensor<2x5x3xf32>) -> tensor<1x30xf32>
    %c = sc.constant dense<1.0> : tensor<30x1xf32>
    %d = sc.linear %f, %c : (tensor<1x30xf32>, tensor<30x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// Only the weight is trainable (x is an input): no dx linear, and a frozen bias gets no
// reduce_sum.
// CHECK-LABEL: func.func @linear_weight_only
// CHECK-SAME: (%[[I:.*]]: tensor<2x4xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}, tensor<4x3xf32> {sc.name = "grad.m.w"})
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x6xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: %[[IT:.*]] = sc.transpose %[[I]] {perm = array<i64: 1, 0>} : (tensor<2x4xf32>) -> tensor<4x2xf32>
// CHECK-NEXT: %[[GW:.*]] = sc.matmul %[[IT]], %[[G]] : (tensor<4x2xf32>, tensor<2x3xf32>) -> tensor<4x3xf32>
// CHECK-NEXT: return %{{.*}}, %[[GW]] : tensor<f32>, tensor<4x3xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @linear_weight_only(%i: tensor<2x4xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w = sc.param "m.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x3xf32>
    %b = sc.param "m.b" {file = "w.bin", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<3xf32>
    %y = sc.linear %i, %w, %b : (tensor<2x4xf32>, tensor<4x3xf32>, tensor<3xf32>) -> tensor<2x3xf32>
    %f = sc.reshape %y : (tensor<2x3xf32>) -> tensor<1x6xf32>
    %c = sc.constant dense<1.0> : tensor<6x1xf32>
    %d = sc.linear %f, %c : (tensor<1x6xf32>, tensor<6x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
