// Uneven shards, torch.chunk style: a dim that does not divide over its axes is padded with
// zeros to the next multiple (sc.file_shape keeps the file's shape for the runtime).
// FSDP over dp_shard = 4: a linear's [10, 8] weight becomes [12, 8], stored 3 rows per rank
// and gathered; the linear computes 12 outputs and drops the last 2. A [6] scale read by a
// mul becomes [8], 2 per rank, and the mul reads a slice of the gathered 6. Vocabulary
// parallel over tp = 4: a 10-row table is padded to 12 and looked up as is (ids never reach
// the padding); the tied lm_head computes 12 logits and drops the last 2.
// RUN: shardc-opt --sc-apply-plan %s -split-input-file | FileCheck %s --check-prefix=PLAN
// RUN: shardc-opt --sc-shard %s -split-input-file | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 4], ["cp", 1], ["tp", 1]]} {
  func.func @main(%x: tensor<4x8xf32>, %z: tensor<4x6xf32>) -> (tensor<4x10xf32>, tensor<4x6xf32>) {
    %w = sc.param "blk.w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<10x8xf32>
    %g = sc.param "blk.g" {file = "w.bin", offset = 320 : i64, onnx_name = "g", tied = [], transform = #sc.transform<none>} : tensor<6xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<10x8xf32>) -> tensor<4x10xf32>
    %m = sc.mul %z, %g : (tensor<4x6xf32>, tensor<6xf32>) -> tensor<4x6xf32>
    return %y, %m : tensor<4x10xf32>, tensor<4x6xf32>
  }
}

// PLAN: %[[P:.*]] = sc.param "blk.w" {{.*}}sc.file_shape = array<i64: 10, 8>{{.*}}sc.storage_sharding = #sc.sharding<{{\[}}[dp_shard], []]>{{.*}} : tensor<12x8xf32>
// PLAN: %[[G:.*]] = sc.param "blk.g" {{.*}}sc.file_shape = array<i64: 6>{{.*}} : tensor<8xf32>
// PLAN: %[[GS:.*]] = sc.slice %[[G]] {starts = array<i64: 0>, steps = array<i64: 1>} : (tensor<8xf32>) -> tensor<6xf32>
// PLAN: %[[Y:.*]] = sc.linear %{{.*}}, %[[P]] {{.*}} -> tensor<4x12xf32>
// PLAN: sc.slice %[[Y]] {{.*}} : (tensor<4x12xf32>) -> tensor<4x10xf32>
// PLAN: sc.mul %{{.*}}, %[[GS]]

// CHECK: %[[P:.*]] = sc.param "blk.w" {{.*}} : tensor<3x8xf32>
// CHECK: %[[G:.*]] = sc.param "blk.g" {{.*}} : tensor<2xf32>
// CHECK-DAG: %[[PG:.*]] = sc.all_gather %[[P]] {axes = ["dp_shard"], dim = 0 : i64{{.*}} : (tensor<3x8xf32>) -> tensor<12x8xf32>
// CHECK-DAG: %[[GG:.*]] = sc.all_gather %[[G]] {axes = ["dp_shard"], dim = 0 : i64{{.*}} : (tensor<2xf32>) -> tensor<8xf32>
// CHECK-DAG: %[[GS:.*]] = sc.slice %[[GG]] {{.*}} : (tensor<8xf32>) -> tensor<6xf32>
// CHECK: sc.linear {{.*}}, %[[PG]] {{.*}} -> tensor<1x12xf32>
// CHECK: sc.mul %{{.*}}, %[[GS]]

// -----

#emb = loc("node_emb"("m.embed"("t.onnx":1:0)))
#head = loc("node_head"("m.lm_head"("t.onnx":2:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 4]],
                   sc.tp_styles = {"m.embed" = #sc.tp_style<embedding_rowwise>, "m.lm_head" = #sc.tp_style<colwise_rep>}} {
  func.func @main(%ids: tensor<2x3xi64>) -> tensor<2x3x10xf32> {
    %t = sc.param "m.embed.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "t", tied = ["m.lm_head.weight"], transform = #sc.transform<none>} : tensor<10x8xf32>
    %e = sc.embedding %t, %ids : (tensor<10x8xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32> loc(#emb)
    %l = sc.linear %e, %t {transpose_weight = true} : (tensor<2x3x8xf32>, tensor<10x8xf32>) -> tensor<2x3x10xf32> loc(#head)
    return %l : tensor<2x3x10xf32>
  }
}

// PLAN: %[[T:.*]] = sc.param "m.embed.weight" {{.*}}sc.file_shape = array<i64: 10, 8>{{.*}} : tensor<12x8xf32>
// PLAN: sc.embedding %[[T]], %{{.*}} : (tensor<12x8xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
// PLAN: %[[L:.*]] = sc.linear %{{.*}}, %[[T]] {{.*}} -> tensor<2x3x12xf32>
// PLAN: %[[A:.*]] = sc.sharding_constraint %[[L]] over ["tp"] to <{{\[}}[], [], []]>
// PLAN: sc.slice %[[A]] {{.*}} : (tensor<2x3x12xf32>) -> tensor<2x3x10xf32>

// CHECK: %[[T:.*]] = sc.param "m.embed.weight" {{.*}} : tensor<3x8xf32>
// CHECK: sc.embedding %[[T]], %{{.*}} rows_from %{{.*}} {{{.*}}vocab_size = 12 : i64} : (tensor<3x8xf32>, tensor<2x3xi64>, tensor<i64>) -> tensor<2x3x8xf32>
// CHECK: sc.all_reduce
// CHECK: %[[L:.*]] = sc.linear %{{.*}}, %[[T]] {{.*}} -> tensor<2x3x3xf32>
// CHECK: %[[G:.*]] = sc.all_gather %[[L]] {axes = ["tp"], dim = 2 : i64{{.*}} -> tensor<2x3x12xf32>
// CHECK: sc.slice %[[G]] {{.*}} : (tensor<2x3x12xf32>) -> tensor<2x3x10xf32>
