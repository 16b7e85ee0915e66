// VJP rules of GELU (one formula row per variant), softmax (y·(g − Σ g·y)), the sum and mean
// reductions (the gradient spread back with reshape + expand) and layer_norm (composed).
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// CHECK-LABEL: func.func @gelu
// CHECK: %[[X:.*]] = sc.param "m.x"
// CHECK-DAG: sc.gelu_erf_grad %[[X]], %{{.*}} : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
// CHECK-DAG: sc.gelu_tanh_grad %[[X]], %{{.*}} : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
// CHECK: sc.add
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @gelu() -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x5xf32>
    %a = sc.gelu %x : (tensor<2x5xf32>) -> tensor<2x5xf32>
    %b = sc.gelu %x {approximate = #sc.gelu_approximation<tanh>} : (tensor<2x5xf32>) -> tensor<2x5xf32>
    %c = sc.mul %a, %b : (tensor<2x5xf32>, tensor<2x5xf32>) -> tensor<2x5xf32>
    %s = sc.reduce_sum %c {axes = array<i64: 0, 1>, keepdims = false} : (tensor<2x5xf32>) -> tensor<f32>
    return %s : tensor<f32>
  }
}

// -----

// The loss's reduce_sum (keepdims false): its gradient is reshaped to [1, 1, 1] and expanded;
// softmax's: y·(g − reduce_sum(g·y) over the axis).
// CHECK-LABEL: func.func @softmax_sum
// CHECK: %[[Y:.*]] = sc.softmax %{{.*}} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
// CHECK: %[[R:.*]] = sc.reshape %{{.*}} : (tensor<f32>) -> tensor<1x1x1xf32>
// CHECK: %[[G:.*]] = sc.expand %[[R]] : (tensor<1x1x1xf32>) -> tensor<2x3x4xf32>
// CHECK: %[[GY:.*]] = sc.mul %[[G]], %[[Y]]
// CHECK: %[[DOT:.*]] = sc.reduce_sum %[[GY]] {axes = array<i64: 2>} : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[D:.*]] = sc.sub %[[G]], %[[DOT]]
// CHECK: sc.mul %[[Y]], %[[D]]
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @softmax_sum() -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x3x4xf32>
    %y = sc.softmax %x : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
    %s = sc.reduce_sum %y {axes = array<i64: 0, 1, 2>, keepdims = false} : (tensor<2x3x4xf32>) -> tensor<f32>
    return %s : tensor<f32>
  }
}

// -----

// A mean's gradient is scaled by 1/count before it is spread back.
// CHECK-LABEL: func.func @mean
// CHECK: %[[K:.*]] = sc.constant dense<1.250000e-01> : tensor<f32>
// CHECK: %[[S:.*]] = sc.mul %{{.*}}, %[[K]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: sc.expand
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @mean() -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %m = sc.reduce_mean %x {axes = array<i64: 0, 1>, keepdims = false} : (tensor<2x4xf32>) -> tensor<f32>
    return %m : tensor<f32>
  }
}

// -----

// layer_norm with a bias: dbias sums g over the rows, dscale sums g·n, dx is composed.
// CHECK-LABEL: func.func @layer_norm
// CHECK-SAME: tensor<8xf32> {sc.name = "grad.m.scale"}, tensor<8xf32> {sc.name = "grad.m.bias"}
// CHECK: sc.layer_norm
// CHECK: sc.reduce_mean
// CHECK: sc.reciprocal
// CHECK: sc.reduce_sum %{{.*}} {axes = array<i64: 0, 1>} : (tensor<2x3x8xf32>) -> tensor<1x1x8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @layer_norm(%x: tensor<2x3x8xf32>) -> (tensor<f32> {sc.name = "loss"}) {
    %s = sc.param "m.scale" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<8xf32>
    %b = sc.param "m.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<8xf32>
    %y = sc.layer_norm %x, %s, %b : (tensor<2x3x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
    %l = sc.reduce_sum %y {axes = array<i64: 0, 1, 2>, keepdims = false} : (tensor<2x3x8xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
