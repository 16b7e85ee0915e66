// RUN: shardc-opt --sc-raise-norms --split-input-file %s | FileCheck %s

// The exporter's spelling: scale * (x * reciprocal(sqrt(mean(x^2) + eps))).
// CHECK-LABEL: func @exporter_rms_norm
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>)
// CHECK: %[[S:.*]] = sc.param "norm.weight"
// CHECK: %[[Y:.*]] = sc.rms_norm %[[X]], %[[S]] {epsilon = 9.99999997E-7 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
// CHECK: return %[[Y]]
func.func @exporter_rms_norm(%x: tensor<2x8x16xf32>) -> tensor<2x8x16xf32> {
  %s = sc.param "norm.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<16xf32>
  %two = sc.constant dense<2.0> : tensor<f32>
  %eps = sc.constant dense<1.0e-6> : tensor<f32>
  %0 = sc.pow %x, %two : (tensor<2x8x16xf32>, tensor<f32>) -> tensor<2x8x16xf32>
  %1 = sc.reduce_mean %0 {axes = array<i64: 2>} : (tensor<2x8x16xf32>) -> tensor<2x8x1xf32>
  %2 = sc.add %1, %eps : (tensor<2x8x1xf32>, tensor<f32>) -> tensor<2x8x1xf32>
  %3 = sc.sqrt %2 : (tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %4 = sc.reciprocal %3 : (tensor<2x8x1xf32>) -> tensor<2x8x1xf32>
  %5 = sc.mul %x, %4 : (tensor<2x8x16xf32>, tensor<2x8x1xf32>) -> tensor<2x8x16xf32>
  %6 = sc.mul %s, %5 : (tensor<16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %6 : tensor<2x8x16xf32>
}

// -----

// Swapped operand orders everywhere and the division spelling; eps 1e-5 is the default.
// CHECK-LABEL: func @swapped_orders_and_division
// CHECK: sc.rms_norm %{{.*}}, %{{.*}} : (tensor<4x16xf32>, tensor<16xf32>)
// CHECK-NOT: sc.div
// CHECK: return
func.func @swapped_orders_and_division(%x: tensor<4x16xf32>, %s: tensor<16xf32>) -> tensor<4x16xf32> {
  %two = sc.constant dense<2.0> : tensor<f32>
  %eps = sc.constant dense<1.0e-5> : tensor<f32>
  %0 = sc.pow %x, %two : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.reduce_mean %0 {axes = array<i64: 1>} : (tensor<4x16xf32>) -> tensor<4x1xf32>
  %2 = sc.add %eps, %1 : (tensor<f32>, tensor<4x1xf32>) -> tensor<4x1xf32>
  %3 = sc.sqrt %2 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %4 = sc.div %x, %3 : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %5 = sc.mul %4, %s : (tensor<4x16xf32>, tensor<16xf32>) -> tensor<4x16xf32>
  return %5 : tensor<4x16xf32>
}

// -----

// reciprocal on the left of the inner mul.
// CHECK-LABEL: func @reciprocal_first
// CHECK: sc.rms_norm
func.func @reciprocal_first(%x: tensor<4x16xf32>, %s: tensor<16xf32>) -> tensor<4x16xf32> {
  %two = sc.constant dense<2.0> : tensor<f32>
  %eps = sc.constant dense<1.0e-5> : tensor<f32>
  %0 = sc.pow %x, %two : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.reduce_mean %0 {axes = array<i64: 1>} : (tensor<4x16xf32>) -> tensor<4x1xf32>
  %2 = sc.add %1, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %3 = sc.sqrt %2 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %4 = sc.reciprocal %3 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %5 = sc.mul %4, %x : (tensor<4x1xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %6 = sc.mul %s, %5 : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %6 : tensor<4x16xf32>
}

// -----

// Negative: the mean is over dim 0, not the last dim.
// CHECK-LABEL: func @wrong_axis_unchanged
// CHECK-NOT: sc.rms_norm
// CHECK: sc.reduce_mean
func.func @wrong_axis_unchanged(%x: tensor<16x16xf32>, %s: tensor<16xf32>) -> tensor<16x16xf32> {
  %two = sc.constant dense<2.0> : tensor<f32>
  %eps = sc.constant dense<1.0e-5> : tensor<f32>
  %0 = sc.pow %x, %two : (tensor<16x16xf32>, tensor<f32>) -> tensor<16x16xf32>
  %1 = sc.reduce_mean %0 {axes = array<i64: 0>} : (tensor<16x16xf32>) -> tensor<1x16xf32>
  %2 = sc.add %1, %eps : (tensor<1x16xf32>, tensor<f32>) -> tensor<1x16xf32>
  %3 = sc.sqrt %2 : (tensor<1x16xf32>) -> tensor<1x16xf32>
  %4 = sc.reciprocal %3 : (tensor<1x16xf32>) -> tensor<1x16xf32>
  %5 = sc.mul %x, %4 : (tensor<16x16xf32>, tensor<1x16xf32>) -> tensor<16x16xf32>
  %6 = sc.mul %s, %5 : (tensor<16xf32>, tensor<16x16xf32>) -> tensor<16x16xf32>
  return %6 : tensor<16x16xf32>
}

// -----

// Negative: pow(x, 3) is not a mean square; nor is a mean of a different tensor.
// CHECK-LABEL: func @wrong_exponent_or_tensor_unchanged
// CHECK-NOT: sc.rms_norm
// CHECK: return
func.func @wrong_exponent_or_tensor_unchanged(%x: tensor<4x16xf32>, %y: tensor<4x16xf32>, %s: tensor<16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %two = sc.constant dense<2.0> : tensor<f32>
  %three = sc.constant dense<3.0> : tensor<f32>
  %eps = sc.constant dense<1.0e-5> : tensor<f32>
  %0 = sc.pow %x, %three : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.reduce_mean %0 {axes = array<i64: 1>} : (tensor<4x16xf32>) -> tensor<4x1xf32>
  %2 = sc.add %1, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %3 = sc.sqrt %2 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %4 = sc.reciprocal %3 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %5 = sc.mul %x, %4 : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %6 = sc.mul %s, %5 : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %10 = sc.pow %y, %two : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %11 = sc.reduce_mean %10 {axes = array<i64: 1>} : (tensor<4x16xf32>) -> tensor<4x1xf32>
  %12 = sc.add %11, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %13 = sc.sqrt %12 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %14 = sc.reciprocal %13 : (tensor<4x1xf32>) -> tensor<4x1xf32>
  %15 = sc.mul %x, %14 : (tensor<4x16xf32>, tensor<4x1xf32>) -> tensor<4x16xf32>
  %16 = sc.mul %s, %15 : (tensor<16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %6, %16 : tensor<4x16xf32>, tensor<4x16xf32>
}
