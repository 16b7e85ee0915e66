// RUN: shardc-opt --sc-raise-moe --split-input-file %s | FileCheck %s

// The experts of an exported Mixtral block (T = 4 tokens, k = 2, E = 4 experts, H = 8, I = 6),
// as PyTorch's exporter writes transformers' batched_mm experts: one sc.moe_experts.
// CHECK-LABEL: func @experts
// CHECK-SAME: (%[[X:[^:]*]]: tensor<4x8xf32>, %[[IDS:[^:]*]]: tensor<4x2xi64>, %[[W:[^:]*]]: tensor<4x2xf32>, %[[GU:[^:]*]]: tensor<4x12x8xf32>, %[[DN:[^:]*]]: tensor<4x8x6xf32>)
// CHECK: %[[Y:.*]], %{{.*}} = sc.moe_experts %[[X]], %[[IDS]], %[[W]], %[[GU]], %[[DN]] : (tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<4x8xf32>, tensor<8x6xf32>)
// CHECK-NOT: sc.gather_nd
// CHECK-NOT: sc.matmul
// CHECK: return %[[Y]]
func.func @experts(%x: tensor<4x8xf32>, %ids: tensor<4x2xi64>, %w: tensor<4x2xf32>, %gu: tensor<4x12x8xf32>, %dn: tensor<4x8x6xf32>) -> tensor<4x8xf32> {
  %xu = sc.unsqueeze %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1x8xf32>
  %xe = sc.expand %xu : (tensor<4x1x8xf32>) -> tensor<4x2x8xf32>
  %xr = sc.reshape %xe : (tensor<4x2x8xf32>) -> tensor<8x8xf32>
  %i1 = sc.reshape %ids : (tensor<4x2xi64>) -> tensor<8xi64>
  %idx = sc.unsqueeze %i1 {axes = array<i64: 1>} : (tensor<8xi64>) -> tensor<8x1xi64>
  %g1 = sc.gather_nd %gu, %idx : (tensor<4x12x8xf32>, tensor<8x1xi64>) -> tensor<8x12x8xf32>
  %xc = sc.unsqueeze %xr {axes = array<i64: 2>} : (tensor<8x8xf32>) -> tensor<8x8x1xf32>
  %m1 = sc.matmul %g1, %xc : (tensor<8x12x8xf32>, tensor<8x8x1xf32>) -> tensor<8x12x1xf32>
  %s1 = sc.squeeze %m1 {axes = array<i64: 2>} : (tensor<8x12x1xf32>) -> tensor<8x12xf32>
  %gate, %up = sc.split %s1 {axis = 1 : i64} : (tensor<8x12xf32>) -> (tensor<8x6xf32>, tensor<8x6xf32>)
  %act0 = sc.silu %gate : (tensor<8x6xf32>) -> tensor<8x6xf32>
  %act = sc.mul %act0, %up : (tensor<8x6xf32>, tensor<8x6xf32>) -> tensor<8x6xf32>
  %g2 = sc.gather_nd %dn, %idx : (tensor<4x8x6xf32>, tensor<8x1xi64>) -> tensor<8x8x6xf32>
  %ac = sc.unsqueeze %act {axes = array<i64: 2>} : (tensor<8x6xf32>) -> tensor<8x6x1xf32>
  %m2 = sc.matmul %g2, %ac : (tensor<8x8x6xf32>, tensor<8x6x1xf32>) -> tensor<8x8x1xf32>
  %s2 = sc.squeeze %m2 {axes = array<i64: 2>} : (tensor<8x8x1xf32>) -> tensor<8x8xf32>
  %w1 = sc.reshape %w : (tensor<4x2xf32>) -> tensor<8xf32>
  %wc = sc.unsqueeze %w1 {axes = array<i64: 1>} : (tensor<8xf32>) -> tensor<8x1xf32>
  %sc = sc.mul %s2, %wc : (tensor<8x8xf32>, tensor<8x1xf32>) -> tensor<8x8xf32>
  %r = sc.reshape %sc : (tensor<8x8xf32>) -> tensor<4x2x8xf32>
  %y = sc.reduce_sum %r {axes = array<i64: 1>, keepdims = false} : (tensor<4x2x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Negative: the gathers read different index tensors (not one router's choice): unchanged.
// CHECK-LABEL: func @two_routers
// CHECK-NOT: sc.moe_experts
// CHECK: sc.gather_nd
func.func @two_routers(%x: tensor<4x8xf32>, %ids: tensor<4x2xi64>, %ids2: tensor<4x2xi64>, %w: tensor<4x2xf32>, %gu: tensor<4x12x8xf32>, %dn: tensor<4x8x6xf32>) -> tensor<4x8xf32> {
  %xu = sc.unsqueeze %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x1x8xf32>
  %xe = sc.expand %xu : (tensor<4x1x8xf32>) -> tensor<4x2x8xf32>
  %xr = sc.reshape %xe : (tensor<4x2x8xf32>) -> tensor<8x8xf32>
  %idx = sc.reshape %ids : (tensor<4x2xi64>) -> tensor<8x1xi64>
  %idx2 = sc.reshape %ids2 : (tensor<4x2xi64>) -> tensor<8x1xi64>
  %g1 = sc.gather_nd %gu, %idx : (tensor<4x12x8xf32>, tensor<8x1xi64>) -> tensor<8x12x8xf32>
  %xc = sc.unsqueeze %xr {axes = array<i64: 2>} : (tensor<8x8xf32>) -> tensor<8x8x1xf32>
  %m1 = sc.matmul %g1, %xc : (tensor<8x12x8xf32>, tensor<8x8x1xf32>) -> tensor<8x12x1xf32>
  %s1 = sc.squeeze %m1 {axes = array<i64: 2>} : (tensor<8x12x1xf32>) -> tensor<8x12xf32>
  %gate, %up = sc.split %s1 {axis = 1 : i64} : (tensor<8x12xf32>) -> (tensor<8x6xf32>, tensor<8x6xf32>)
  %act0 = sc.silu %gate : (tensor<8x6xf32>) -> tensor<8x6xf32>
  %act = sc.mul %act0, %up : (tensor<8x6xf32>, tensor<8x6xf32>) -> tensor<8x6xf32>
  %g2 = sc.gather_nd %dn, %idx2 : (tensor<4x8x6xf32>, tensor<8x1xi64>) -> tensor<8x8x6xf32>
  %ac = sc.unsqueeze %act {axes = array<i64: 2>} : (tensor<8x6xf32>) -> tensor<8x6x1xf32>
  %m2 = sc.matmul %g2, %ac : (tensor<8x8x6xf32>, tensor<8x6x1xf32>) -> tensor<8x8x1xf32>
  %s2 = sc.squeeze %m2 {axes = array<i64: 2>} : (tensor<8x8x1xf32>) -> tensor<8x8xf32>
  %wc = sc.reshape %w : (tensor<4x2xf32>) -> tensor<8x1xf32>
  %sc = sc.mul %wc, %s2 : (tensor<8x1xf32>, tensor<8x8xf32>) -> tensor<8x8xf32>
  %r = sc.reshape %sc : (tensor<8x8xf32>) -> tensor<4x2x8xf32>
  %y = sc.reduce_sum %r {axes = array<i64: 1>, keepdims = false} : (tensor<4x2x8xf32>) -> tensor<4x8xf32>
  return %y : tensor<4x8xf32>
}

// -----

// Negative: the rows are not the tokens repeated k times (a [4, 2, 8] input, not an expand).
// CHECK-LABEL: func @not_repeated
// CHECK-NOT: sc.moe_experts
func.func @not_repeated(%xk: tensor<4x2x8xf32>, %ids: tensor<4x2xi64>, %w: tensor<4x2xf32>, %gu: tensor<4x12x8xf32>, %dn: tensor<4x8x6xf32>) -> tensor<4x8xf32> {
  %xr = sc.reshape %xk : (tensor<4x2x8xf32>) -> tensor<8x8xf32>
  %idx = sc.reshape %ids : (tensor<4x2xi64>) -> tensor<8x1xi64>
  %g1 = sc.gather_nd %gu, %idx : (tensor<4x12x8xf32>, tensor<8x1xi64>) -> tensor<8x12x8xf32>
  %xc = sc.unsqueeze %xr {axes = array<i64: 2>} : (tensor<8x8xf32>) -> tensor<8x8x1xf32>
  %m1 = sc.matmul %g1, %xc : (tensor<8x12x8xf32>, tensor<8x8x1xf32>) -> tensor<8x12x1xf32>
  %s1 = sc.squeeze %m1 {axes = array<i64: 2>} : (tensor<8x12x1xf32>) -> tensor<8x12xf32>
  %gate, %up = sc.split %s1 {axis = 1 : i64} : (tensor<8x12xf32>) -> (tensor<8x6xf32>, tensor<8x6xf32>)
  %act0 = sc.silu %gate : (tensor<8x6xf32>) -> tensor<8x6xf32>
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
