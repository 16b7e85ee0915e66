// MoE with tensor parallelism (docs/moe.md, "Tensor parallelism"): without expert TP each tp
// rank slices its contiguous 1/tp of the tokens (sharding constraints from sc-apply-plan) and
// the result is gathered back over tp; with sc.expert_tp the gate and up halves of the fused
// stack become two views of it split on I, concatenated under sc.expert_halves, down is split on
// I, and the Partial result is all-reduced over tp. Tokens that do not divide over tp are an
// error naming the op and its module path.
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding --sc-insert-reshards --sc-partition --split-input-file --verify-diagnostics %s | FileCheck %s

// tp = 2, ep = 1: 8 tokens, 4 per tp rank; the experts whole.
// CHECK-LABEL: func.func @token_split
// CHECK-DAG: %[[START:.*]] = sc.gather {{.*}} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
// CHECK-DAG: %[[X:.*]] = sc.dynamic_slice %arg0, %[[START]] {axis = 0 : i64{{.*}} -> tensor<4x8xf32>
// CHECK-DAG: %[[IDS:.*]] = sc.dynamic_slice %arg1, %[[START]] {axis = 0 : i64{{.*}} -> tensor<4x2xi64>
// CHECK-DAG: %[[W:.*]] = sc.dynamic_slice %arg2, %[[START]] {axis = 0 : i64{{.*}} -> tensor<4x2xf32>
// CHECK: %[[Y:.*]], %{{.*}} = sc.moe_experts %[[X]], %[[IDS]], %[[W]], %{{.*}}, %{{.*}} : (tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<4x8xf32>, tensor<8x6xf32>)
// CHECK: sc.all_gather %[[Y]] {axes = ["tp"], dim = 0 : i64{{.*}} -> tensor<8x8xf32>
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]]} {
  func.func @token_split(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}

// -----

// Expert TP at tp = 2: I = 6 split in 3 per rank; gate (rows 0..5 of the stored stack) and up
// (rows 6..11) each split on I, down on I; every rank computes all 8 tokens.
// CHECK-LABEL: func.func @expert_tp
// CHECK-DAG: %[[GATE:.*]] = sc.param "gate_up.part0" {{.*}}sc.file_shape = array<i64: 4, 12, 8>, sc.file_start = array<i64: 0, 0, 0>{{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [tp], []]>]{{.*}} : tensor<4x3x8xf32>
// CHECK-DAG: %[[UP:.*]] = sc.param "gate_up.part1" {{.*}}sc.file_start = array<i64: 0, 6, 0>{{.*}} : tensor<4x3x8xf32>
// CHECK-DAG: %[[DN:.*]] = sc.param "down" {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]{{.*}} : tensor<4x8x3xf32>
// CHECK: %[[GU:.*]] = sc.concat %[[GATE]], %[[UP]] {axis = 1 : i64, sc.expert_halves{{.*}} -> tensor<4x6x8xf32>
// CHECK: %[[Y:.*]], %{{.*}} = sc.moe_experts %arg0, %arg1, %arg2, %[[GU]], %[[DN]] {sc.sharding = [#sc.sharding<{{\[}}[], []], partial = [tp: sum]>{{.*}} -> (tensor<8x8xf32>, tensor<16x3xf32>)
// CHECK: sc.all_reduce %[[Y]] {axes = ["tp"]
// CHECK-NOT: sc.param "gate_up" {
module attributes {sc.expert_tp, sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]]} {
  func.func @expert_tp(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}

// -----

// Expert TP beside ep = 2 over dp_shard = 4 (ep_shard = 2): the halves split [ep, tp] and stored
// over ep_shard on H (down on H), gathered over ep_shard; the grouped GEMMs on I / tp = 3; the
// result all-reduced over tp after the combine and the unpermute.
// CHECK-LABEL: func.func @expert_tp_ep
// CHECK-DAG: %[[GATE:.*]] = sc.param "gate_up.part0" {{.*}}sc.storage_sharding = #sc.sharding<{{\[}}[ep], [tp], [ep_shard]]>{{.*}} : tensor<2x3x4xf32>
// CHECK-DAG: %[[DN:.*]] = sc.param "down" {{.*}}sc.storage_sharding = #sc.sharding<{{\[}}[ep], [ep_shard], [tp]]>{{.*}} : tensor<2x4x3xf32>
// CHECK-DAG: %[[GATEA:.*]] = sc.all_gather %[[GATE]] {axes = ["ep_shard"], dim = 2 : i64{{.*}} -> tensor<2x3x8xf32>
// CHECK-DAG: %[[GU:.*]] = sc.concat %[[GATEA]], %{{.*}} {axis = 1 : i64, sc.expert_halves{{.*}} -> tensor<2x6x8xf32>
// CHECK-DAG: %[[DNA:.*]] = sc.all_gather %[[DN]] {axes = ["ep_shard"], dim = 1 : i64{{.*}} -> tensor<2x8x3xf32>
// CHECK: sc.moe_dispatch
// CHECK: sc.moe_grouped_gemm %{{.*}}, %{{.*}}, %[[GU]], %[[DNA]] : (tensor<8x8xf32>, tensor<4xi64>, tensor<2x6x8xf32>, tensor<2x8x3xf32>) -> (tensor<8x8xf32>, tensor<8x3xf32>)
// CHECK: sc.moe_combine
// CHECK: %[[Y:.*]] = sc.moe_unpermute
// CHECK: sc.all_reduce %[[Y]] {axes = ["tp"]
module attributes {sc.expert_tp, sc.mesh = [["dp_replicate", 1], ["dp_shard", 4], ["cp", 1], ["tp", 2], ["ep_shard", 2, "sub"], ["ep", 2, "sub"]]} {
  func.func @expert_tp_ep(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}

// -----

// 12 tokens over dp_shard = 2 are 6 per rank, which do not divide over tp = 4.
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 4]]} {
  func.func @uneven_tokens(%x: tensor<12x8xf32>, %ids: tensor<12x2xi64>, %w: tensor<12x2xf32>) -> tensor<12x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    // expected-error @unknown {{sc.moe_experts at m.layers.0.mlp.experts: the 1/tp token split needs the tokens of each data-parallel rank (12 tokens over 2 ranks) to divide over tp = 4}}
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<12x8xf32>, tensor<12x2xi64>, tensor<12x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<12x8xf32>, tensor<24x6xf32>) loc("node_sum"("m.layers.0.mlp.experts"))
    return %y : tensor<12x8xf32>
  }
}

// -----

// Expert TP whose intermediate size does not divide over tp.
module attributes {sc.expert_tp, sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 4]]} {
  func.func @uneven_i(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    // expected-error @below {{expert_tp splits the experts' intermediate size 6, which does not divide over tp = 4}}
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}
