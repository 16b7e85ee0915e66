// sc-autodiff through the data-movement VJP rules: reshape and transpose move the gradient
// back (the inverse permutation), a slice pads it with zeros (one concat per sliced dim), a
// concat slices each operand's part out, a sharding constraint constrains the gradient alike.
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// CHECK-LABEL: func.func @reshape_transpose
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x3x4xf32> {sc.name = "grad.m.a"})
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x24xf32>) -> tensor<4x6xf32>
// CHECK: %[[GR:.*]] = sc.reshape %[[G]] : (tensor<4x6xf32>) -> tensor<4x2x3xf32>
// CHECK: %[[GT:.*]] = sc.transpose %[[GR]] {perm = array<i64: 1, 2, 0>} : (tensor<4x2x3xf32>) -> tensor<2x3x4xf32>
// CHECK: return %{{.*}}, %[[GT]] : tensor<f32>, tensor<2x3x4xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @reshape_transpose(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x3x4xf32>
    %t = sc.transpose %a {perm = array<i64: 2, 0, 1>} : (tensor<2x3x4xf32>) -> tensor<4x2x3xf32>
    %y = sc.reshape %t : (tensor<4x2x3xf32>) -> tensor<4x6xf32>
    %f = sc.reshape %y : (tensor<4x6xf32>) -> tensor<1x24xf32>
    %c = sc.constant dense<1.0> : tensor<24x1xf32>
    %d = sc.linear %f, %c : (tensor<1x24xf32>, tensor<24x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// A slice of rows 1..2 and columns 2..5 of a [4, 6] parameter: zeros before and after on
// dim 0 (1 and 1 rows), then before only on dim 1 (2 columns).
// CHECK-LABEL: func.func @slice
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<4x6xf32> {sc.name = "grad.m.a"})
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x8xf32>) -> tensor<2x4xf32>
// CHECK: %[[Z0:.*]] = sc.constant dense<0.000000e+00> : tensor<1x4xf32>
// CHECK: %[[Z1:.*]] = sc.constant dense<0.000000e+00> : tensor<1x4xf32>
// CHECK: %[[R:.*]] = sc.concat %[[Z0]], %[[G]], %[[Z1]] {axis = 0 : i64} : (tensor<1x4xf32>, tensor<2x4xf32>, tensor<1x4xf32>) -> tensor<4x4xf32>
// CHECK: %[[Z2:.*]] = sc.constant dense<0.000000e+00> : tensor<4x2xf32>
// CHECK: %[[C:.*]] = sc.concat %[[Z2]], %[[R]] {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x4xf32>) -> tensor<4x6xf32>
// CHECK: return %{{.*}}, %[[C]] : tensor<f32>, tensor<4x6xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @slice(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x6xf32>
    %y = sc.slice %a {starts = array<i64: 1, 2>, steps = array<i64: 1, 1>} : (tensor<4x6xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// A concat of a parameter, an input and a parameter on the last axis (-1): each parameter's
// gradient is its slice of the result's; the input's part is not sliced.
// CHECK-LABEL: func.func @concat
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x1xf32> {sc.name = "grad.m.a"}, tensor<2x3xf32> {sc.name = "grad.m.b"})
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x12xf32>) -> tensor<2x6xf32>
// CHECK: %[[GA:.*]] = sc.slice %[[G]] {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<2x6xf32>) -> tensor<2x1xf32>
// CHECK-NEXT: %[[GB:.*]] = sc.slice %[[G]] {starts = array<i64: 0, 3>, steps = array<i64: 1, 1>} : (tensor<2x6xf32>) -> tensor<2x3xf32>
// CHECK-NEXT: return %{{.*}}, %[[GA]], %[[GB]] : tensor<f32>, tensor<2x1xf32>, tensor<2x3xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @concat(%x: tensor<2x2xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x1xf32>
    %b = sc.param "m.b" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x3xf32>
    %y = sc.concat %a, %x, %b {axis = -1 : i64} : (tensor<2x1xf32>, tensor<2x2xf32>, tensor<2x3xf32>) -> tensor<2x6xf32>
    %f = sc.reshape %y : (tensor<2x6xf32>) -> tensor<1x12xf32>
    %c = sc.constant dense<1.0> : tensor<12x1xf32>
    %d = sc.linear %f, %c : (tensor<1x12xf32>, tensor<12x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// The plan's constraint holds for the gradient: the same axes and sharding.
// CHECK-LABEL: func.func @sharding_constraint
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x32xf32>) -> tensor<2x4x4xf32>
// CHECK: %[[GC:.*]] = sc.sharding_constraint %[[G]] over ["tp"] to <{{\[}}[], [tp], []]> : tensor<2x4x4xf32>
// CHECK: return %{{.*}}, %[[GC]] : tensor<f32>, tensor<2x4x4xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @sharding_constraint(%x: tensor<2x4x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4x4xf32>
    %y = sc.sharding_constraint %a over ["tp"] to <[[], [tp], []]> : tensor<2x4x4xf32>
    %f = sc.reshape %y : (tensor<2x4x4xf32>) -> tensor<1x32xf32>
    %c = sc.constant dense<1.0> : tensor<32x1xf32>
    %d = sc.linear %f, %c : (tensor<1x32xf32>, tensor<32x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
