// sc-autodiff on parameters that view their stored tensor differently: a view repeating each
// block (sc.file_repeat {dim, block, times}: kv heads fewer than tp) gets the sum of its copies'
// gradients, in the stored shape when returned and spread back over the copies for an
// optimizer; a padded view (sc.file_shape smaller than the type: uneven shards) returns the
// gradient of the stored part.
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// W [3, 4] views the stored [3, 2], each block of 2 columns twice over (block 2, times 2).
// CHECK-LABEL: func.func @repeated_returned
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<3x2xf32> {sc.name = "grad.m.k"})
// CHECK: %[[GW:.*]] = sc.matmul %{{.*}} : (tensor<3x2xf32>, tensor<2x4xf32>) -> tensor<3x4xf32>
// CHECK: %[[S:.*]] = sc.reshape %[[GW]] : (tensor<3x4xf32>) -> tensor<3x1x2x2xf32>
// CHECK: %[[R:.*]] = sc.reduce_sum %[[S]] {axes = array<i64: 2>} : (tensor<3x1x2x2xf32>) -> tensor<3x1x1x2xf32>
// CHECK: %[[G:.*]] = sc.reshape %[[R]] : (tensor<3x1x1x2xf32>) -> tensor<3x2xf32>
// CHECK: return %{{.*}}, %[[G]] : tensor<f32>, tensor<3x2xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @repeated_returned(%x: tensor<2x3xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w = sc.param "m.k" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable, sc.file_shape = array<i64: 3, 2>, sc.file_repeat = array<i64: 1, 2, 2>} : tensor<3x4xf32>
    %y = sc.linear %x, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<[[1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0]]> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// With an optimizer the summed gradient is expanded back over the copies (the view's shape).
// CHECK-LABEL: func.func @repeated_optimizer
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<3x4xf32> {sc.name = "grad.m.k"})
// CHECK: %[[R:.*]] = sc.reduce_sum %{{.*}} {axes = array<i64: 2>} : (tensor<3x1x2x2xf32>) -> tensor<3x1x1x2xf32>
// CHECK: %[[E:.*]] = sc.expand %[[R]] : (tensor<3x1x1x2xf32>) -> tensor<3x1x2x2xf32>
// CHECK: %[[G:.*]] = sc.reshape %[[E]] : (tensor<3x1x2x2xf32>) -> tensor<3x4xf32>
// CHECK: return %{{.*}}, %[[G]] : tensor<f32>, tensor<3x4xf32>
module attributes {sc.train = {labels = "input_ids", optimizer = {lr = 1.0e-3 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.01 : f64}}} {
  func.func @repeated_optimizer(%x: tensor<2x3xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w = sc.param "m.k" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable, sc.file_shape = array<i64: 3, 2>, sc.file_repeat = array<i64: 1, 2, 2>} : tensor<3x4xf32>
    %y = sc.linear %x, %w : (tensor<2x3xf32>, tensor<3x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<[[1.0], [2.0], [3.0], [4.0], [5.0], [6.0], [7.0], [8.0]]> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// A table padded from 5 to 6 rows: the gradient returned is its first 5 rows.
// CHECK-LABEL: func.func @padded_returned
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<5x2xf32> {sc.name = "grad.m.t"})
// CHECK: %[[GT:.*]] = sc.embedding_grad %{{.*}} -> tensor<6x2xf32>
// CHECK: %[[G:.*]] = sc.slice %[[GT]] {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<6x2xf32>) -> tensor<5x2xf32>
// CHECK: return %{{.*}}, %[[G]] : tensor<f32>, tensor<5x2xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @padded_returned(%ids: tensor<1x3xi64> {sc.name = "input_ids"}) -> (tensor<f32> {sc.name = "loss"}) {
    %t = sc.param "m.t" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable, sc.file_shape = array<i64: 5, 2>} : tensor<6x2xf32>
    %e = sc.embedding %t, %ids : (tensor<6x2xf32>, tensor<1x3xi64>) -> tensor<1x3x2xf32>
    %f = sc.reshape %e : (tensor<1x3x2xf32>) -> tensor<1x6xf32>
    %c = sc.constant dense<[[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]> : tensor<6x1xf32>
    %d = sc.linear %f, %c : (tensor<1x6xf32>, tensor<6x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
