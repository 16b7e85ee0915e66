// RUN: shardc-opt --sc-raise-attention --split-input-file %s | FileCheck %s

// The exporter's SDPA with GQA (8 query heads, 4 kv heads): q and kᵀ each scaled by
// d^-0.25, kᵀ as reshape/transpose/reshape of repeat_kv(k), a causal constant mask, the
// IsNaN/Where guard, and repeat_kv(v).
// CHECK-LABEL: func @exporter_gqa_causal
// CHECK-SAME: (%[[Q:.*]]: tensor<1x8x4x16xf32>, %[[K:.*]]: tensor<1x4x4x16xf32>, %[[V:.*]]: tensor<1x4x4x16xf32>)
// CHECK: %[[A:.*]] = sc.attention %[[Q]], %[[K]], %[[V]] {causal = true, scale = 2.500000e-01 : f32} : (tensor<1x8x4x16xf32>, tensor<1x4x4x16xf32>, tensor<1x4x4x16xf32>) -> tensor<1x8x4x16xf32>
// CHECK-NOT: sc.softmax
// CHECK: return %[[A]]
func.func @exporter_gqa_causal(%q: tensor<1x8x4x16xf32>, %k: tensor<1x4x4x16xf32>, %v: tensor<1x4x4x16xf32>) -> tensor<1x8x4x16xf32> {
  %s = sc.constant dense<0.5> : tensor<f32>
  %zero = sc.constant dense<0.0> : tensor<f32>
  %mask = sc.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x4x4xf32>
  %k0 = sc.unsqueeze %k {axes = array<i64: 2>} : (tensor<1x4x4x16xf32>) -> tensor<1x4x1x4x16xf32>
  %k1 = sc.expand %k0 : (tensor<1x4x1x4x16xf32>) -> tensor<1x4x2x4x16xf32>
  %k2 = sc.reshape %k1 : (tensor<1x4x2x4x16xf32>) -> tensor<8x4x16xf32>
  %k3 = sc.transpose %k2 {perm = array<i64: 0, 2, 1>} : (tensor<8x4x16xf32>) -> tensor<8x16x4xf32>
  %kt = sc.reshape %k3 : (tensor<8x16x4xf32>) -> tensor<1x8x16x4xf32>
  %v0 = sc.unsqueeze %v {axes = array<i64: 2>} : (tensor<1x4x4x16xf32>) -> tensor<1x4x1x4x16xf32>
  %v1 = sc.expand %v0 : (tensor<1x4x1x4x16xf32>) -> tensor<1x4x2x4x16xf32>
  %vr = sc.reshape %v1 : (tensor<1x4x2x4x16xf32>) -> tensor<1x8x4x16xf32>
  %qs = sc.mul %q, %s : (tensor<1x8x4x16xf32>, tensor<f32>) -> tensor<1x8x4x16xf32>
  %ks = sc.mul %kt, %s : (tensor<1x8x16x4xf32>, tensor<f32>) -> tensor<1x8x16x4xf32>
  %sc = sc.matmul %qs, %ks : (tensor<1x8x4x16xf32>, tensor<1x8x16x4xf32>) -> tensor<1x8x4x4xf32>
  %m = sc.add %sc, %mask : (tensor<1x8x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x8x4x4xf32>
  %p = sc.softmax %m {axis = 3 : i64} : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %nan = sc.isnan %p : (tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xi1>
  %g = sc.where %nan, %zero, %p : (tensor<1x8x4x4xi1>, tensor<f32>, tensor<1x8x4x4xf32>) -> tensor<1x8x4x4xf32>
  %o = sc.matmul %g, %vr : (tensor<1x8x4x4xf32>, tensor<1x8x4x16xf32>) -> tensor<1x8x4x16xf32>
  return %o : tensor<1x8x4x16xf32>
}

// -----

// Plain MHA: kᵀ by transpose [0, 1, 3, 2], scores divided by sqrt(d), no guard, -inf mask
// on the left of the add.
// CHECK-LABEL: func @mha_transpose_div_inf_mask
// CHECK-SAME: (%[[Q:.*]]: tensor<2x2x4x16xf32>, %[[K:.*]]: tensor<2x2x4x16xf32>, %[[V:.*]]: tensor<2x2x4x8xf32>)
// CHECK: sc.attention %[[Q]], %[[K]], %[[V]] {causal = true, scale = 2.500000e-01 : f32}
func.func @mha_transpose_div_inf_mask(%q: tensor<2x2x4x16xf32>, %k: tensor<2x2x4x16xf32>, %v: tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32> {
  %d = sc.constant dense<4.0> : tensor<f32>
  %mask = sc.constant dense<[[[[0.0, 0xFF800000, 0xFF800000, 0xFF800000], [0.0, 0.0, 0xFF800000, 0xFF800000], [0.0, 0.0, 0.0, 0xFF800000], [0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x16xf32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %sd = sc.div %sc, %d : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xf32>
  %m = sc.add %mask, %sd : (tensor<1x1x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %m {axis = -1 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x8xf32>) -> tensor<2x2x4x8xf32>
  return %o : tensor<2x2x4x8xf32>
}

// -----

// A padding mask (a function argument, as BERT's) stays the mask operand; no scale -> 1.
// CHECK-LABEL: func @padding_mask_kept
// CHECK-SAME: %[[M:[a-z0-9]+]]: tensor<2x1x1x4xf32>
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[M]] {scale = 1.000000e+00 : f32}
func.func @padding_mask_kept(%q: tensor<2x2x4x16xf32>, %k: tensor<2x2x4x16xf32>, %v: tensor<2x2x4x16xf32>, %mask: tensor<2x1x1x4xf32>) -> tensor<2x2x4x16xf32> {
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x16xf32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %m = sc.add %sc, %mask : (tensor<2x2x4x4xf32>, tensor<2x1x1x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %m {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// A constant mask that is not causal (position (0, 3) visible) is kept, causal stays false.
// CHECK-LABEL: func @almost_causal_mask_kept
// CHECK: %[[M:.*]] = sc.constant
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[M]] {scale = 1.000000e+00 : f32}
func.func @almost_causal_mask_kept(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32> {
  %mask = sc.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, 0.0], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38], [0.0, 0.0, 0.0, 0.0]]]]> : tensor<1x1x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x16xf32>) -> tensor<1x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x2x4x16xf32>, tensor<1x2x16x4xf32>) -> tensor<1x2x4x4xf32>
  %m = sc.add %sc, %mask : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = sc.softmax %m {axis = 3 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %o : tensor<1x2x4x16xf32>
}

// -----

// Negative: softmax over the query axis is not attention.
// CHECK-LABEL: func @softmax_wrong_axis_unchanged
// CHECK-NOT: sc.attention
// CHECK: sc.softmax
func.func @softmax_wrong_axis_unchanged(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32> {
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x16xf32>) -> tensor<1x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x2x4x16xf32>, tensor<1x2x16x4xf32>) -> tensor<1x2x4x4xf32>
  %p = sc.softmax %sc {axis = 2 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %o : tensor<1x2x4x16xf32>
}

// -----

// Negative: kᵀ swaps the wrong dims (perm [0, 2, 1, 3] on a square tensor).
// CHECK-LABEL: func @wrong_key_transpose_unchanged
// CHECK-NOT: sc.attention
// CHECK: sc.softmax
func.func @wrong_key_transpose_unchanged(%q: tensor<1x4x4x4xf32>, %k: tensor<1x4x4x4xf32>, %v: tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32> {
  %kt = sc.transpose %k {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %p = sc.softmax %sc {axis = 3 : i64} : (tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<1x4x4x4xf32>, tensor<1x4x4x4xf32>) -> tensor<1x4x4x4xf32>
  return %o : tensor<1x4x4x4xf32>
}

// -----

// Negative: the guard replaces NaN with 1, not 0.
// CHECK-LABEL: func @guard_wrong_value_unchanged
// CHECK-NOT: sc.attention
// CHECK: sc.where
func.func @guard_wrong_value_unchanged(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32> {
  %one = sc.constant dense<1.0> : tensor<f32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x16xf32>) -> tensor<1x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x2x4x16xf32>, tensor<1x2x16x4xf32>) -> tensor<1x2x4x4xf32>
  %p = sc.softmax %sc {axis = 3 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %nan = sc.isnan %p : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xi1>
  %g = sc.where %nan, %one, %p : (tensor<1x2x4x4xi1>, tensor<f32>, tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = sc.matmul %g, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %o : tensor<1x2x4x16xf32>
}

// -----

// The TorchScript exporter's spelling (dynamo=False, e.g. published sentence-transformers
// files): kᵀ is one transpose [0, 2, 3, 1] of the [B, T, H, D] projection, q and kᵀ each
// scaled by d^-0.25, a padding mask added. k becomes transpose(k', [0, 2, 1, 3]).
// CHECK-LABEL: func @torchscript_key_bthd
// CHECK-SAME: (%[[Q:.*]]: tensor<2x2x4x16xf32>, %[[KP:.*]]: tensor<2x4x2x16xf32>, %[[V:.*]]: tensor<2x2x4x16xf32>, %[[M:.*]]: tensor<2x1x4x4xf32>)
// CHECK: %[[K:.*]] = sc.transpose %[[KP]] {perm = array<i64: 0, 2, 1, 3>} : (tensor<2x4x2x16xf32>) -> tensor<2x2x4x16xf32>
// CHECK: sc.attention %[[Q]], %[[K]], %[[V]] mask %[[M]] {scale = 2.500000e-01 : f32}
// CHECK-NOT: sc.softmax
func.func @torchscript_key_bthd(%q: tensor<2x2x4x16xf32>, %kp: tensor<2x4x2x16xf32>, %v: tensor<2x2x4x16xf32>, %mask: tensor<2x1x4x4xf32>) -> tensor<2x2x4x16xf32> {
  %s = sc.constant dense<0.5> : tensor<f32>
  %kt = sc.transpose %kp {perm = array<i64: 0, 2, 3, 1>} : (tensor<2x4x2x16xf32>) -> tensor<2x2x16x4xf32>
  %qs = sc.mul %q, %s : (tensor<2x2x4x16xf32>, tensor<f32>) -> tensor<2x2x4x16xf32>
  %ks = sc.mul %kt, %s : (tensor<2x2x16x4xf32>, tensor<f32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %qs, %ks : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %m = sc.add %sc, %mask : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %m {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// A transpose with another permutation ([0, 3, 2, 1] of a [B, T, D, H] value) is not kᵀ of
// a projection: left alone.
// CHECK-LABEL: func @torchscript_key_other_perm
// CHECK-NOT: sc.attention
// CHECK: sc.softmax
func.func @torchscript_key_other_perm(%q: tensor<2x2x4x16xf32>, %kp: tensor<2x4x16x2xf32>, %v: tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32> {
  %kt = sc.transpose %kp {perm = array<i64: 0, 3, 2, 1>} : (tensor<2x4x16x2xf32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %sc {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// A constant all-zero mask (ViT's, exported without attention_mask) masks nothing: dropped.
// CHECK-LABEL: func @zero_mask_dropped
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} {scale = 2.500000e-01 : f32} :
// CHECK-NOT: mask
func.func @zero_mask_dropped(%q: tensor<2x2x4x16xf32>, %k: tensor<2x2x4x16xf32>, %v: tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32> {
  %s = sc.constant dense<0.5> : tensor<f32>
  %zero = sc.constant dense<0.0> : tensor<2x1x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x16xf32>) -> tensor<2x2x16x4xf32>
  %qs = sc.mul %q, %s : (tensor<2x2x4x16xf32>, tensor<f32>) -> tensor<2x2x4x16xf32>
  %ks = sc.mul %kt, %s : (tensor<2x2x16x4xf32>, tensor<f32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %qs, %ks : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %m = sc.add %sc, %zero : (tensor<2x2x4x4xf32>, tensor<2x1x4x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %m {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// T5 as torch's newer SDPA decomposition writes it: no scale, the position bias in the mask
// (per head), and the all-masked-row guard where(not(any(not(S == -inf))), 0, softmax(S)),
// `any` a reduce_max over an integer cast. Raised with scale 1 and the mask kept.
// CHECK-LABEL: func @all_masked_row_guard
// CHECK-SAME: %[[M:[a-z0-9]+]]: tensor<2x2x4x4xf32>
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[M]] {scale = 1.000000e+00 : f32}
// CHECK-NOT: sc.softmax
// CHECK-NOT: sc.reduce_max
func.func @all_masked_row_guard(%q: tensor<2x2x4x16xf32>, %k: tensor<2x2x4x16xf32>, %v: tensor<2x2x4x16xf32>, %mask: tensor<2x2x4x4xf32>) -> tensor<2x2x4x16xf32> {
  %ninf = sc.constant dense<0xFF800000> : tensor<f32>
  %f = sc.constant dense<false> : tensor<i1>
  %t = sc.constant dense<true> : tensor<i1>
  %zero = sc.constant dense<0.0> : tensor<2x2x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x16xf32>) -> tensor<2x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %s = sc.add %sc, %mask : (tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %s {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %eq = sc.equal %s, %ninf : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xi1>
  %ne = sc.where %eq, %f, %t : (tensor<2x2x4x4xi1>, tensor<i1>, tensor<i1>) -> tensor<2x2x4x4xi1>
  %ni = sc.cast %ne : (tensor<2x2x4x4xi1>) -> tensor<2x2x4x4xi64>
  %any = sc.reduce_max %ni {axes = array<i64: 3>} : (tensor<2x2x4x4xi64>) -> tensor<2x2x4x1xi64>
  %anyb = sc.cast %any : (tensor<2x2x4x1xi64>) -> tensor<2x2x4x1xi1>
  %none = sc.where %anyb, %f, %t : (tensor<2x2x4x1xi1>, tensor<i1>, tensor<i1>) -> tensor<2x2x4x1xi1>
  %g = sc.where %none, %zero, %p : (tensor<2x2x4x1xi1>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %g, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// The same guard comparing with +inf is not the all-masked-row guard: left alone.
// CHECK-LABEL: func @all_masked_row_guard_wrong_constant
// CHECK-NOT: sc.attention
func.func @all_masked_row_guard_wrong_constant(%q: tensor<2x2x4x16xf32>, %k: tensor<2x2x4x16xf32>, %v: tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32> {
  %pinf = sc.constant dense<0x7F800000> : tensor<f32>
  %f = sc.constant dense<false> : tensor<i1>
  %t = sc.constant dense<true> : tensor<i1>
  %zero = sc.constant dense<0.0> : tensor<2x2x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<2x2x4x16xf32>) -> tensor<2x2x16x4xf32>
  %s = sc.matmul %q, %kt : (tensor<2x2x4x16xf32>, tensor<2x2x16x4xf32>) -> tensor<2x2x4x4xf32>
  %p = sc.softmax %s {axis = 3 : i64} : (tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %eq = sc.equal %s, %pinf : (tensor<2x2x4x4xf32>, tensor<f32>) -> tensor<2x2x4x4xi1>
  %ne = sc.where %eq, %f, %t : (tensor<2x2x4x4xi1>, tensor<i1>, tensor<i1>) -> tensor<2x2x4x4xi1>
  %ni = sc.cast %ne : (tensor<2x2x4x4xi1>) -> tensor<2x2x4x4xi64>
  %any = sc.reduce_max %ni {axes = array<i64: 3>} : (tensor<2x2x4x4xi64>) -> tensor<2x2x4x1xi64>
  %anyb = sc.cast %any : (tensor<2x2x4x1xi64>) -> tensor<2x2x4x1xi1>
  %none = sc.where %anyb, %f, %t : (tensor<2x2x4x1xi1>, tensor<i1>, tensor<i1>) -> tensor<2x2x4x1xi1>
  %g = sc.where %none, %zero, %p : (tensor<2x2x4x1xi1>, tensor<2x2x4x4xf32>, tensor<2x2x4x4xf32>) -> tensor<2x2x4x4xf32>
  %o = sc.matmul %g, %v : (tensor<2x2x4x4xf32>, tensor<2x2x4x16xf32>) -> tensor<2x2x4x16xf32>
  return %o : tensor<2x2x4x16xf32>
}

// -----

// A sliding-window mask (Mistral's, window 2: query i sees keys i - 1 and i) sets `causal` and
// `sc.window = 2` and stays the mask operand (exact for whatever ignores the window).
// CHECK-LABEL: func @sliding_window_mask
// CHECK: %[[MASK:.*]] = sc.constant
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[MASK]] {causal = true, sc.window = 2 : i64, scale = 2.500000e-01 : f32}
func.func @sliding_window_mask(%q: tensor<1x2x4x16xf32>, %k: tensor<1x2x4x16xf32>, %v: tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32> {
  %d = sc.constant dense<4.0> : tensor<f32>
  %mask = sc.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, 0.0, 0.0, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, 0.0, 0.0]]]]> : tensor<1x1x4x4xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x4x16xf32>) -> tensor<1x2x16x4xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x2x4x16xf32>, tensor<1x2x16x4xf32>) -> tensor<1x2x4x4xf32>
  %sd = sc.div %sc, %d : (tensor<1x2x4x4xf32>, tensor<f32>) -> tensor<1x2x4x4xf32>
  %m = sc.add %sd, %mask : (tensor<1x2x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x2x4x4xf32>
  %p = sc.softmax %m {axis = -1 : i64} : (tensor<1x2x4x4xf32>) -> tensor<1x2x4x4xf32>
  %o = sc.matmul %p, %v : (tensor<1x2x4x4xf32>, tensor<1x2x4x16xf32>) -> tensor<1x2x4x16xf32>
  return %o : tensor<1x2x4x16xf32>
}

// -----

// A band that is not anchored on the diagonal (query i sees keys i - 1 only) is no window:
// the mask stays, not causal.
// CHECK-LABEL: func @off_diagonal_band_kept
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %{{.*}} {scale = 2.500000e-01 : f32}
func.func @off_diagonal_band_kept(%q: tensor<1x2x3x16xf32>, %k: tensor<1x2x3x16xf32>, %v: tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32> {
  %d = sc.constant dense<4.0> : tensor<f32>
  %mask = sc.constant dense<[[[[-3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, 0.0, -3.40282347E+38]]]]> : tensor<1x1x3x3xf32>
  %kt = sc.transpose %k {perm = array<i64: 0, 1, 3, 2>} : (tensor<1x2x3x16xf32>) -> tensor<1x2x16x3xf32>
  %sc = sc.matmul %q, %kt : (tensor<1x2x3x16xf32>, tensor<1x2x16x3xf32>) -> tensor<1x2x3x3xf32>
  %sd = sc.div %sc, %d : (tensor<1x2x3x3xf32>, tensor<f32>) -> tensor<1x2x3x3xf32>
  %m = sc.add %sd, %mask : (tensor<1x2x3x3xf32>, tensor<1x1x3x3xf32>) -> tensor<1x2x3x3xf32>
  %p = sc.softmax %m {axis = -1 : i64} : (tensor<1x2x3x3xf32>) -> tensor<1x2x3x3xf32>
  %o = sc.matmul %p, %v : (tensor<1x2x3x3xf32>, tensor<1x2x3x16xf32>) -> tensor<1x2x3x16xf32>
  return %o : tensor<1x2x3x16xf32>
}
