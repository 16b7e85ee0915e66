// Rules through an attention block under tp = 2: the reshape splits the projected features
// into (heads, head_dim) and tp lands on heads; the transpose carries it to dim 1; GQA keeps
// each query head with its kv head (4 query heads, 2 kv heads -> 2 and 1 per rank); the
// explain option says why each result is sharded.
// RUN: shardc-opt --sc-shard %s | FileCheck %s
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding="explain=true" %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=EXPLAIN

#q = loc("node_q"("m.attn.q"("t.onnx":1:0)))
#k = loc("node_k"("m.attn.k"("t.onnx":2:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"m.attn.q" = #sc.tp_style<colwise>, "m.attn.k" = #sc.tp_style<colwise>}} {
  func.func @main(%x: tensor<1x8x32xf32>) -> tensor<1x4x8x8xf32> {
    %wq = sc.param "m.attn.q.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<32x32xf32>
    %wk = sc.param "m.attn.k.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "k", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %q = sc.linear %x, %wq {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<32x32xf32>) -> tensor<1x8x32xf32> loc(#q)
    %k = sc.linear %x, %wk {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<16x32xf32>) -> tensor<1x8x16xf32> loc(#k)
    %q4 = sc.reshape %q : (tensor<1x8x32xf32>) -> tensor<1x8x4x8xf32>
    %k4 = sc.reshape %k : (tensor<1x8x16xf32>) -> tensor<1x8x2x8xf32>
    %qt = sc.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x4x8xf32>) -> tensor<1x4x8x8xf32>
    %kt = sc.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
    %a = sc.attention %qt, %kt, %kt {causal = true, scale = 0.35 : f32} : (tensor<1x4x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>
    return %a : tensor<1x4x8x8xf32>
  }
}

// CHECK: sc.reshape {{.*}}: (tensor<1x8x16xf32>) -> tensor<1x8x2x8xf32>
// CHECK: sc.reshape {{.*}}: (tensor<1x8x8xf32>) -> tensor<1x8x1x8xf32>
// CHECK: sc.transpose {{.*}} -> tensor<1x2x8x8xf32>
// CHECK: sc.transpose {{.*}} -> tensor<1x1x8x8xf32>
// CHECK: %[[A:.*]] = sc.attention {{.*}} : (tensor<1x2x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK: sc.all_gather %[[A]] {axes = ["tp"], dim = 1 : i64{{.*}} -> tensor<1x4x8x8xf32>

// EXPLAIN: remark: sharding: results [tp: Shard(2)] from operands [tp: Replicate] [tp: Shard(0)]
// EXPLAIN: remark: sharding: results [tp: Shard(2)] from operands [tp: Shard(2)]
// EXPLAIN: remark: sharding: results [tp: Shard(1)] from operands [tp: Shard(2)]
// EXPLAIN: remark: sharding: results [tp: Shard(1)] from operands [tp: Shard(1)] [tp: Shard(1)] [tp: Shard(1)]
