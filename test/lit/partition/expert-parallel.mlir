// Expert parallelism: sc-apply-plan splits the experts of sc.moe_experts over the ep sub-axis
// (stored over ep_shard too), propagation keeps the tokens split over dp_shard, and
// sc-partition expands the op into permute, dispatch, grouped GEMMs, combine and unpermute.
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding --sc-insert-reshards --sc-partition --split-input-file --verify-diagnostics %s | FileCheck %s

// ep = 2 over dp_shard = 4 (ep_shard = 2): 8 tokens, 2 per rank, k = 2, E = 4 experts (2 per
// rank), H = 8, I = 6. Each rank sends its 4 rows and can receive ep * 4 = 8.
// CHECK-LABEL: func.func @experts
// CHECK-DAG: %[[GU:.*]] = sc.param "gate_up" {{.*}}sc.storage_sharding = #sc.sharding<{{\[}}[ep], [ep_shard], []]>{{.*}} : tensor<2x6x8xf32>
// CHECK-DAG: %[[DN:.*]] = sc.param "down" {{.*}} : tensor<2x4x6xf32>
// CHECK-DAG: %[[GUA:.*]] = sc.all_gather %[[GU]] {axes = ["ep_shard"], dim = 1 : i64{{.*}} -> tensor<2x12x8xf32>
// CHECK-DAG: %[[DNA:.*]] = sc.all_gather %[[DN]] {axes = ["ep_shard"], dim = 1 : i64{{.*}} -> tensor<2x8x6xf32>
// CHECK: %[[ROWS:.*]], %[[COUNTS:.*]], %[[SLOTS:.*]] = sc.moe_permute %{{.*}}, %{{.*}} {num_experts = 4 : i64} : (tensor<2x8xf32>, tensor<2x2xi64>) -> (tensor<4x8xf32>, tensor<4xi64>, tensor<4xi64>)
// CHECK: %[[RECV:.*]], %[[RC:.*]] = sc.moe_dispatch %[[ROWS]], %[[COUNTS]] {axes = ["ep"]} : (tensor<4x8xf32>, tensor<4xi64>) -> (tensor<8x8xf32>, tensor<4xi64>)
// CHECK: %[[OUT:.*]], %{{.*}} = sc.moe_grouped_gemm %[[RECV]], %[[RC]], %[[GUA]], %[[DNA]] : (tensor<8x8xf32>, tensor<4xi64>, tensor<2x12x8xf32>, tensor<2x8x6xf32>) -> (tensor<8x8xf32>, tensor<8x6xf32>)
// CHECK: %[[BACK:.*]] = sc.moe_combine %[[OUT]], %[[RC]], %[[COUNTS]] {axes = ["ep"]} : (tensor<8x8xf32>, tensor<4xi64>, tensor<4xi64>) -> tensor<4x8xf32>
// CHECK: %[[Y:.*]] = sc.moe_unpermute %[[BACK]], %[[SLOTS]], %{{.*}} : (tensor<4x8xf32>, tensor<4xi64>, tensor<2x2xf32>) -> tensor<2x8xf32>
// CHECK: sc.all_gather %[[Y]] {axes = ["dp_shard"], dim = 0 : i64
// CHECK-NOT: sc.moe_experts
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 4], ["cp", 1], ["tp", 1], ["ep_shard", 2, "sub"], ["ep", 2, "sub"]]} {
  func.func @experts(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}

// -----

// Without ep the experts stay whole (FSDP-stored on dim 0) and the tokens split over dp_shard:
// one sc.moe_experts on the rank's 4 tokens.
// CHECK-LABEL: func.func @no_ep
// CHECK: sc.moe_experts {{.*}} : (tensor<4x8xf32>, tensor<4x2xi64>, tensor<4x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<4x8xf32>, tensor<8x6xf32>)
// CHECK-NOT: sc.moe_dispatch
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 1]]} {
  func.func @no_ep(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<4x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<4x8x6xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}

// -----

// Experts that do not divide over ep.
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 1], ["ep_shard", 1, "sub"], ["ep", 2, "sub"]]} {
  func.func @uneven(%x: tensor<8x8xf32>, %ids: tensor<8x2xi64>, %w: tensor<8x2xf32>) -> tensor<8x8xf32> {
    %gu = sc.param "gate_up" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>} : tensor<3x12x8xf32>
    %dn = sc.param "down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>} : tensor<3x8x6xf32>
    // expected-error @below {{3 experts do not divide over ep = 2}}
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<8x8xf32>, tensor<8x2xi64>, tensor<8x2xf32>, tensor<3x12x8xf32>, tensor<3x8x6xf32>) -> (tensor<8x8xf32>, tensor<16x6xf32>)
    return %y : tensor<8x8xf32>
  }
}
