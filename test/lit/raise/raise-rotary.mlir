// RUN: shardc-opt --sc-raise-rotary --split-input-file %s | FileCheck %s

// x*cos + concat(-x[..., 16:], x[..., :16])*sin, as the exporter writes rotate_half.
// CHECK-LABEL: func @rotate_half
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8x32xf32>, %[[C:.*]]: tensor<1x1x8x32xf32>, %[[S:.*]]: tensor<1x1x8x32xf32>)
// CHECK: %[[R:.*]] = sc.rotary %[[X]], %[[C]], %[[S]] : (tensor<2x4x8x32xf32>, tensor<1x1x8x32xf32>, tensor<1x1x8x32xf32>) -> tensor<2x4x8x32xf32>
// CHECK: return %[[R]]
func.func @rotate_half(%x: tensor<2x4x8x32xf32>, %cos: tensor<1x1x8x32xf32>, %sin: tensor<1x1x8x32xf32>) -> tensor<2x4x8x32xf32> {
  %0 = sc.mul %x, %cos : (tensor<2x4x8x32xf32>, tensor<1x1x8x32xf32>) -> tensor<2x4x8x32xf32>
  %1 = sc.slice %x {starts = array<i64: 0, 0, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<2x4x8x32xf32>) -> tensor<2x4x8x16xf32>
  %2 = sc.slice %x {starts = array<i64: 0, 0, 0, 16>, steps = array<i64: 1, 1, 1, 1>} : (tensor<2x4x8x32xf32>) -> tensor<2x4x8x16xf32>
  %3 = sc.neg %2 : (tensor<2x4x8x16xf32>) -> tensor<2x4x8x16xf32>
  %4 = sc.concat %3, %1 {axis = 3 : i64} : (tensor<2x4x8x16xf32>, tensor<2x4x8x16xf32>) -> tensor<2x4x8x32xf32>
  %5 = sc.mul %4, %sin : (tensor<2x4x8x32xf32>, tensor<1x1x8x32xf32>) -> tensor<2x4x8x32xf32>
  %6 = sc.add %0, %5 : (tensor<2x4x8x32xf32>, tensor<2x4x8x32xf32>) -> tensor<2x4x8x32xf32>
  return %6 : tensor<2x4x8x32xf32>
}

// -----

// Swapped operands of the add and of both muls; concat axis -1.
// CHECK-LABEL: func @swapped_orders
// CHECK-SAME: (%[[X:.*]]: tensor<2x8x16xf32>, %[[C:.*]]: tensor<8x16xf32>, %[[S:.*]]: tensor<8x16xf32>)
// CHECK: sc.rotary %[[X]], %[[C]], %[[S]]
func.func @swapped_orders(%x: tensor<2x8x16xf32>, %cos: tensor<8x16xf32>, %sin: tensor<8x16xf32>) -> tensor<2x8x16xf32> {
  %1 = sc.slice %x {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %2 = sc.slice %x {starts = array<i64: 0, 0, 8>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %3 = sc.neg %2 : (tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %4 = sc.concat %3, %1 {axis = -1 : i64} : (tensor<2x8x8xf32>, tensor<2x8x8xf32>) -> tensor<2x8x16xf32>
  %5 = sc.mul %sin, %4 : (tensor<8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  %0 = sc.mul %cos, %x : (tensor<8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  %6 = sc.add %5, %0 : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %6 : tensor<2x8x16xf32>
}

// -----

// Negative: the halves are not negated the rotate-half way (-x1, x2).
// CHECK-LABEL: func @wrong_half_negated_unchanged
// CHECK-NOT: sc.rotary
// CHECK: sc.concat
func.func @wrong_half_negated_unchanged(%x: tensor<2x8x16xf32>, %cos: tensor<8x16xf32>, %sin: tensor<8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = sc.mul %x, %cos : (tensor<2x8x16xf32>, tensor<8x16xf32>) -> tensor<2x8x16xf32>
  %1 = sc.slice %x {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %2 = sc.slice %x {starts = array<i64: 0, 0, 8>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %3 = sc.neg %1 : (tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %4 = sc.concat %3, %2 {axis = 2 : i64} : (tensor<2x8x8xf32>, tensor<2x8x8xf32>) -> tensor<2x8x16xf32>
  %5 = sc.mul %4, %sin : (tensor<2x8x16xf32>, tensor<8x16xf32>) -> tensor<2x8x16xf32>
  %6 = sc.add %0, %5 : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %6 : tensor<2x8x16xf32>
}

// -----

// Negative: the rotated tensor is not the one multiplied by cos.
// CHECK-LABEL: func @different_tensors_unchanged
// CHECK-NOT: sc.rotary
// CHECK: sc.add
func.func @different_tensors_unchanged(%x: tensor<2x8x16xf32>, %y: tensor<2x8x16xf32>, %cos: tensor<8x16xf32>, %sin: tensor<8x16xf32>) -> tensor<2x8x16xf32> {
  %0 = sc.mul %y, %cos : (tensor<2x8x16xf32>, tensor<8x16xf32>) -> tensor<2x8x16xf32>
  %1 = sc.slice %x {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %2 = sc.slice %x {starts = array<i64: 0, 0, 8>, steps = array<i64: 1, 1, 1>} : (tensor<2x8x16xf32>) -> tensor<2x8x8xf32>
  %3 = sc.neg %2 : (tensor<2x8x8xf32>) -> tensor<2x8x8xf32>
  %4 = sc.concat %3, %1 {axis = 2 : i64} : (tensor<2x8x8xf32>, tensor<2x8x8xf32>) -> tensor<2x8x16xf32>
  %5 = sc.mul %4, %sin : (tensor<2x8x16xf32>, tensor<8x16xf32>) -> tensor<2x8x16xf32>
  %6 = sc.add %0, %5 : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
  return %6 : tensor<2x8x16xf32>
}
