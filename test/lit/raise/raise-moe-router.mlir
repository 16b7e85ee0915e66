// RUN: shardc-opt --sc-raise-moe --split-input-file %s | FileCheck %s

// The routers of exported MoE blocks (T = 4 tokens, E = 8 experts, k = 2), feeding raised
// experts: each becomes one sc.moe_router from the router linear's logits.

// Mixtral: softmax, top_k, renormalised.
// CHECK-LABEL: func @mixtral
// CHECK-SAME: (%[[L:[^:]*]]: tensor<4x8xf32>
// CHECK: %[[I:.*]], %[[W:.*]] = sc.moe_router %[[L]] {normalize = true, scoring = "softmax"} : (tensor<4x8xf32>) -> (tensor<4x2xi64>, tensor<4x2xf32>)
// CHECK: sc.moe_experts %{{.*}}, %[[I]], %[[W]],
// CHECK-NOT: sc.top_k
func.func @mixtral(%l: tensor<4x8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %p = sc.softmax %l {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %p {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %s = sc.reduce_sum %v {axes = array<i64: 1>} : (tensor<4x2xf32>) -> tensor<4x1xf32>
  %w = sc.div %v, %s : (tensor<4x2xf32>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %w, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Qwen2-MoE (norm_topk_prob false): the top_k values are the weights.
// CHECK-LABEL: func @qwen2
// CHECK: sc.moe_router %{{[^ ]*}} {scoring = "softmax"} : (tensor<4x8xf32>) -> (tensor<4x2xi64>, tensor<4x2xf32>)
// CHECK-NOT: sc.top_k
func.func @qwen2(%l: tensor<4x8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %p = sc.softmax %l {axis = -1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %p {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %y, %h = sc.moe_experts %x, %i, %v, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// DeepSeek-V3: sigmoid, a score bias to choose only, 2 groups of 4 scored by their top 2, the
// best group kept, the unbiased scores gathered, renormalised (+1e-20) and scaled by 2.5.
// CHECK-LABEL: func @deepseek
// CHECK-SAME: (%[[L:[^:]*]]: tensor<4x8xf32>
// CHECK: %[[B:.*]] = sc.constant dense<{{.*}}> : tensor<8xf32>
// CHECK: %[[I:.*]], %[[W:.*]] = sc.moe_router %[[L]], %[[B]] {n_group = 2 : i64, norm_epsilon = 9.99999968{{[0-9]*}}E-21 : f64, normalize = true, scale = 2.500000e+00 : f64, scoring = "sigmoid"} : (tensor<4x8xf32>, tensor<8xf32>) -> (tensor<4x2xi64>, tensor<4x2xf32>)
// CHECK: sc.moe_experts %{{.*}}, %[[I]], %[[W]],
// CHECK-NOT: sc.top_k
// CHECK-NOT: sc.scatter_elements
// CHECK-NOT: sc.gather_elements
func.func @deepseek(%l: tensor<4x8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %bias = sc.constant dense<[0.1, -0.1, 0.2, 0.0, 0.05, 0.3, -0.2, 0.0]> : tensor<8xf32>
  %zeros = sc.constant dense<0.0> : tensor<4x2xf32>
  %ones = sc.constant dense<1.0> : tensor<4x1xf32>
  %ninf = sc.constant dense<0xFF800000> : tensor<f32>
  %f = sc.constant dense<false> : tensor<i1>
  %t = sc.constant dense<true> : tensor<i1>
  %eps = sc.constant dense<1.0e-20> : tensor<f32>
  %scale = sc.constant dense<2.5> : tensor<f32>
  %s = sc.sigmoid %l : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %c = sc.add %s, %bias : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %cg = sc.reshape %c : (tensor<4x8xf32>) -> tensor<4x2x4xf32>
  %gv, %gi = sc.top_k %cg {axis = 2 : i64} : (tensor<4x2x4xf32>) -> (tensor<4x2x2xf32>, tensor<4x2x2xi64>)
  %gs = sc.reduce_sum %gv {axes = array<i64: 2>, keepdims = false} : (tensor<4x2x2xf32>) -> tensor<4x2xf32>
  %tv, %ti = sc.top_k %gs {axis = 1 : i64} : (tensor<4x2xf32>) -> (tensor<4x1xf32>, tensor<4x1xi64>)
  %gm = sc.scatter_elements %zeros, %ti, %ones {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x1xi64>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %gu3 = sc.unsqueeze %gm {axes = array<i64: 2>} : (tensor<4x2xf32>) -> tensor<4x2x1xf32>
  %ge = sc.expand %gu3 : (tensor<4x2x1xf32>) -> tensor<4x2x4xf32>
  %mf = sc.reshape %ge : (tensor<4x2x4xf32>) -> tensor<4x8xf32>
  %mb = sc.cast %mf : (tensor<4x8xf32>) -> tensor<4x8xi1>
  %nm = sc.where %mb, %f, %t : (tensor<4x8xi1>, tensor<i1>, tensor<i1>) -> tensor<4x8xi1>
  %masked = sc.where %nm, %ninf, %c : (tensor<4x8xi1>, tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %masked {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %g = sc.gather_elements %s, %i {axis = 1 : i64} : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
  %sum = sc.reduce_sum %g {axes = array<i64: 1>} : (tensor<4x2xf32>) -> tensor<4x1xf32>
  %den = sc.add %sum, %eps : (tensor<4x1xf32>, tensor<f32>) -> tensor<4x1xf32>
  %n = sc.div %g, %den : (tensor<4x2xf32>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %w = sc.mul %n, %scale : (tensor<4x2xf32>, tensor<f32>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %w, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Negative: the bias is a function argument (it may change per call: not a frozen buffer).
// CHECK-LABEL: func @bias_not_frozen
// CHECK-NOT: sc.moe_router
// CHECK: sc.top_k
func.func @bias_not_frozen(%l: tensor<4x8xf32>, %bias: tensor<8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %s = sc.sigmoid %l : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %c = sc.add %s, %bias : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %c {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %g = sc.gather_elements %s, %i {axis = 1 : i64} : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %g, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Negative: the weights are divided by the sum of other values.
// CHECK-LABEL: func @other_sum
// CHECK-NOT: sc.moe_router
// CHECK: sc.top_k
func.func @other_sum(%l: tensor<4x8xf32>, %o: tensor<4x2xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %p = sc.softmax %l {axis = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %p {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %s = sc.reduce_sum %o {axes = array<i64: 1>} : (tensor<4x2xf32>) -> tensor<4x1xf32>
  %w = sc.div %v, %s : (tensor<4x2xf32>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %w, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Negative: the weights gather the scores at other indices than the experts chosen.
// CHECK-LABEL: func @other_indices
// CHECK-NOT: sc.moe_router
// CHECK: sc.top_k
func.func @other_indices(%l: tensor<4x8xf32>, %j: tensor<4x2xi64>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %s = sc.sigmoid %l : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %s {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %g = sc.gather_elements %s, %j {axis = 1 : i64} : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %g, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Negative: the softmax runs over the tokens, not the experts.
// CHECK-LABEL: func @softmax_over_tokens
// CHECK-NOT: sc.moe_router
// CHECK: sc.top_k
func.func @softmax_over_tokens(%l: tensor<4x8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %p = sc.softmax %l {axis = 0 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %p {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %y, %h = sc.moe_experts %x, %i, %v, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// Negative: DeepSeek's group mask kept where it should be dropped (where(mask, -inf, choice)).
// CHECK-LABEL: func @mask_inverted
// CHECK-NOT: sc.moe_router
// CHECK: sc.scatter_elements
func.func @mask_inverted(%l: tensor<4x8xf32>, %x: tensor<4x16xf32>, %gu: tensor<8x12x16xf32>, %dn: tensor<8x16x6xf32>) -> tensor<4x16xf32> {
  %bias = sc.constant dense<0.1> : tensor<8xf32>
  %zeros = sc.constant dense<0.0> : tensor<4x2xf32>
  %ones = sc.constant dense<1.0> : tensor<4x1xf32>
  %ninf = sc.constant dense<0xFF800000> : tensor<f32>
  %s = sc.sigmoid %l : (tensor<4x8xf32>) -> tensor<4x8xf32>
  %c = sc.add %s, %bias : (tensor<4x8xf32>, tensor<8xf32>) -> tensor<4x8xf32>
  %cg = sc.reshape %c : (tensor<4x8xf32>) -> tensor<4x2x4xf32>
  %gv, %gi = sc.top_k %cg {axis = 2 : i64} : (tensor<4x2x4xf32>) -> (tensor<4x2x2xf32>, tensor<4x2x2xi64>)
  %gs = sc.reduce_sum %gv {axes = array<i64: 2>, keepdims = false} : (tensor<4x2x2xf32>) -> tensor<4x2xf32>
  %tv, %ti = sc.top_k %gs {axis = 1 : i64} : (tensor<4x2xf32>) -> (tensor<4x1xf32>, tensor<4x1xi64>)
  %gm = sc.scatter_elements %zeros, %ti, %ones {axis = 1 : i64} : (tensor<4x2xf32>, tensor<4x1xi64>, tensor<4x1xf32>) -> tensor<4x2xf32>
  %gu3 = sc.unsqueeze %gm {axes = array<i64: 2>} : (tensor<4x2xf32>) -> tensor<4x2x1xf32>
  %ge = sc.expand %gu3 : (tensor<4x2x1xf32>) -> tensor<4x2x4xf32>
  %mf = sc.reshape %ge : (tensor<4x2x4xf32>) -> tensor<4x8xf32>
  %mb = sc.cast %mf : (tensor<4x8xf32>) -> tensor<4x8xi1>
  %masked = sc.where %mb, %ninf, %c : (tensor<4x8xi1>, tensor<f32>, tensor<4x8xf32>) -> tensor<4x8xf32>
  %v, %i = sc.top_k %masked {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x2xf32>, tensor<4x2xi64>)
  %g = sc.gather_elements %s, %i {axis = 1 : i64} : (tensor<4x8xf32>, tensor<4x2xi64>) -> tensor<4x2xf32>
  %y, %h = sc.moe_experts %x, %i, %g, %gu, %dn : (tensor<4x16xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<8x12x16xf32>, tensor<8x16x6xf32>) -> (tensor<4x16xf32>, tensor<8x6xf32>)
  return %y : tensor<4x16xf32>
}

// -----

// GeGLU experts (gelu_tanh(gate) * up): sc.moe_experts with activation gelu_tanh.
// CHECK-LABEL: func @geglu
// CHECK: sc.moe_experts {{.*}} {activation = "gelu_tanh"}
// CHECK-NOT: sc.gather_nd
func.func @geglu(%x: tensor<4x8xf32>, %ids: tensor<4x2xi64>, %w: tensor<4x2xf32>, %gu: tensor<4x12x8xf32>, %dn: tensor<4x8x6xf32>) -> tensor<4x8xf32> {
  %xu = sc.unsqueeze %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1x8xf32>
  %xe = sc.expand %xu : (tensor<4x1x8xf32>) -> tensor<4x2x8xf32>
  %xr = sc.reshape %xe : (tensor<4x2x8xf32>) -> tensor<8x8xf32>
  %idx = sc.reshape %ids : (tensor<4x2xi64>) -> tensor<8x1xi64>
  %g1 = sc.gather_nd %gu, %idx : (tensor<4x12x8xf32>, tensor<8x1xi64>) -> tensor<8x12x8xf32>
  %xc = sc.unsqueeze %xr {axes = array<i64: 2>} : (tensor<8x8xf32>) -> tensor<8x8x1xf32>
  %m1 = sc.matmul %g1, %xc : (tensor<8x12x8xf32>, tensor<8x8x1xf32>) -> tensor<8x12x1xf32>
  %s1 = sc.squeeze %m1 {axes = array<i64: 2>} : (tensor<8x12x1xf32>) -> tensor<8x12xf32>
  %gate, %up = sc.split %s1 {axis = 1 : i64} : (tensor<8x12xf32>) -> (tensor<8x6xf32>, tensor<8x6xf32>)
  %act0 = sc.gelu %gate {approximate = #sc.gelu_approximation<tanh>} : (tensor<8x6xf32>) -> tensor<8x6xf32>
  %act = sc.mul %act0, %up : (tensor<8x6xf32>, tensor<8x6xf32>) -> tensor<8x6xf32>
  %g2 = sc.gather_nd %dn, %idx : (tensor<4x8x6xf32>, tensor<8x1xi64>) -> tensor<8x8x6xf32>
  %ac = sc.unsqueeze %act {axes = array<i64: 2>} : (tensor<8x6xf32>) -> tensor<8x6x1xf32>
  %m2 = sc.matmul %g2, %ac : (tensor<8x8x6xf32>, tensor<8x6x1xf32>) -> tensor<8x8x1xf32>
  %s2 = sc.squeeze %m2 {axes = array<i64: 2>} : (tensor<8x8x1xf32>) -> tensor<8x8xf32>
  %wc = sc.reshape %w : (tensor<4x2xf32>) -> tensor<8x1xf32>
  %sc = sc.mul %s2, %wc : (tensor<8x8xf32>, tensor<8x1xf32>) -> tensor<8x8xf32>
  %r = sc.reshape %sc : (tensor<8x8xf32>) -> tensor<4x2x8xf32>
  %y = sc.reduce_sum %r {axes = array<i64: 1>, keepdims = false} : (tensor<4x2x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}
