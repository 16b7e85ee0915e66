// RUN: shardc-opt --sc-raise-activations --split-input-file %s | FileCheck %s

// CHECK-LABEL: func @silu_both_orders
// CHECK-SAME: (%[[X:.*]]: tensor<4x16xf32>)
// CHECK: %[[A:.*]] = sc.silu %[[X]] : (tensor<4x16xf32>) -> tensor<4x16xf32>
// CHECK: %[[B:.*]] = sc.silu %[[X]]
// CHECK: return %[[A]], %[[B]]
func.func @silu_both_orders(%x: tensor<4x16xf32>) -> (tensor<4x16xf32>, tensor<4x16xf32>) {
  %s = sc.sigmoid %x : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %0 = sc.mul %x, %s : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %1 = sc.mul %s, %x : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %0, %1 : tensor<4x16xf32>, tensor<4x16xf32>
}

// -----

// Negative: x * sigmoid(y) is a gate, not SiLU.
// CHECK-LABEL: func @gate_unchanged
// CHECK-NOT: sc.silu
// CHECK: sc.mul
func.func @gate_unchanged(%x: tensor<4x16xf32>, %y: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %s = sc.sigmoid %y : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %0 = sc.mul %x, %s : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

// GELU, erf form: (x * 0.5) * (1 + erf(x / sqrt 2)).
// CHECK-LABEL: func @gelu_erf
// CHECK-SAME: (%[[X:.*]]: tensor<4x16xf32>)
// CHECK: %[[G:.*]] = sc.gelu %[[X]] : (tensor<4x16xf32>) -> tensor<4x16xf32>
// CHECK: return %[[G]]
func.func @gelu_erf(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %half = sc.constant dense<0.5> : tensor<f32>
  %one = sc.constant dense<1.0> : tensor<f32>
  %sqrt2 = sc.constant dense<1.41421354> : tensor<f32>
  %0 = sc.div %x, %sqrt2 : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.erf %0 : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.add %1, %one : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %3 = sc.mul %x, %half : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %4 = sc.mul %3, %2 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %4 : tensor<4x16xf32>
}

// -----

// GELU, erf form written 0.5 * (x * (1 + erf(x * 0.7071))).
// CHECK-LABEL: func @gelu_erf_other_association
// CHECK: sc.gelu %{{.*}} : (tensor<4x16xf32>)
// CHECK-NOT: approximate
func.func @gelu_erf_other_association(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %half = sc.constant dense<0.5> : tensor<f32>
  %one = sc.constant dense<1.0> : tensor<f32>
  %inv = sc.constant dense<0.707106769> : tensor<f32>
  %0 = sc.mul %x, %inv : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.erf %0 : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.add %one, %1 : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %3 = sc.mul %x, %2 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %4 = sc.mul %half, %3 : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %4 : tensor<4x16xf32>
}

// -----

// GELU, tanh form: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))).
// CHECK-LABEL: func @gelu_tanh
// CHECK: sc.gelu %{{.*}} {approximate = #sc.gelu_approximation<tanh>}
// CHECK-NOT: sc.tanh
func.func @gelu_tanh(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %half = sc.constant dense<0.5> : tensor<f32>
  %one = sc.constant dense<1.0> : tensor<f32>
  %three = sc.constant dense<3.0> : tensor<f32>
  %c = sc.constant dense<0.044715> : tensor<f32>
  %k = sc.constant dense<0.797884583> : tensor<f32>
  %0 = sc.pow %x, %three : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.mul %c, %0 : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.add %x, %1 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %3 = sc.mul %k, %2 : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %4 = sc.tanh %3 : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %5 = sc.add %one, %4 : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %6 = sc.mul %half, %x : (tensor<f32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  %7 = sc.mul %6, %5 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %7 : tensor<4x16xf32>
}

// -----

// Negative: a wrong constant inside erf (x / 2) is not GELU.
// CHECK-LABEL: func @gelu_wrong_constant_unchanged
// CHECK-NOT: sc.gelu
// CHECK: sc.erf
func.func @gelu_wrong_constant_unchanged(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %half = sc.constant dense<0.5> : tensor<f32>
  %one = sc.constant dense<1.0> : tensor<f32>
  %two = sc.constant dense<2.0> : tensor<f32>
  %0 = sc.div %x, %two : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.erf %0 : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.add %1, %one : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %3 = sc.mul %x, %half : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %4 = sc.mul %3, %2 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %4 : tensor<4x16xf32>
}

// -----

// Negative: coefficient 0.25 instead of 0.5.
// CHECK-LABEL: func @gelu_wrong_coefficient_unchanged
// CHECK-NOT: sc.gelu
// CHECK: return
func.func @gelu_wrong_coefficient_unchanged(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %q = sc.constant dense<0.25> : tensor<f32>
  %one = sc.constant dense<1.0> : tensor<f32>
  %sqrt2 = sc.constant dense<1.41421354> : tensor<f32>
  %0 = sc.div %x, %sqrt2 : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %1 = sc.erf %0 : (tensor<4x16xf32>) -> tensor<4x16xf32>
  %2 = sc.add %1, %one : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %3 = sc.mul %x, %q : (tensor<4x16xf32>, tensor<f32>) -> tensor<4x16xf32>
  %4 = sc.mul %3, %2 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32>
  return %4 : tensor<4x16xf32>
}
