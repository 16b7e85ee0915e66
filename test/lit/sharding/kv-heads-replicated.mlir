// kv heads fewer than tp: 4 query heads, 1 kv head, tp = 2 (Qwen2-style MQA). k_proj stays
// replicated, the kv head is repeated twice before the attention, and each rank slices the
// copy its two query heads read: no collective before the attention.
// (With 2 kv heads and tp = 4 the copies are sliced after the repeat instead: e2e matrix.)
// RUN: shardc-opt --sc-shard %s 2>&1 | FileCheck %s

#q = loc("node_q"("m.attn.q_proj"("t.onnx":1:0)))
#k = loc("node_k"("m.attn.k_proj"("t.onnx":2:0)))
#a = loc("node_sdpa"("m.attn"("t.onnx":3:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"m.attn.q_proj" = #sc.tp_style<colwise>, "m.attn.k_proj" = #sc.tp_style<colwise>}} {
  func.func @main(%x: tensor<1x8x32xf32>) -> tensor<1x4x8x8xf32> {
    %wq = sc.param "m.attn.q_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<32x32xf32>
    %wk = sc.param "m.attn.k_proj.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "k", tied = [], transform = #sc.transform<none>} : tensor<8x32xf32>
    %q = sc.linear %x, %wq {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<32x32xf32>) -> tensor<1x8x32xf32> loc(#q)
    %k = sc.linear %x, %wk {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<8x32xf32>) -> tensor<1x8x8xf32> loc(#k)
    %q4 = sc.reshape %q : (tensor<1x8x32xf32>) -> tensor<1x8x4x8xf32>
    %k4 = sc.reshape %k : (tensor<1x8x8xf32>) -> tensor<1x8x1x8xf32>
    %qt = sc.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x4x8xf32>) -> tensor<1x4x8x8xf32>
    %kt = sc.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x1x8xf32>) -> tensor<1x1x8x8xf32>
    %a = sc.attention %qt, %kt, %kt {causal = true, scale = 0.35 : f32} : (tensor<1x4x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x4x8x8xf32> loc(#a)
    return %a : tensor<1x4x8x8xf32>
  }
}

// CHECK: t.onnx:3:0: remark: kv heads (1) fewer than tp (2): each kv head is repeated 2 times so that every rank holds the one its query heads read; replicated: m.attn.k_proj
// CHECK: sc.param "m.attn.q_proj.weight" {{.*}}: tensor<16x32xf32>
// CHECK: sc.param "m.attn.k_proj.weight" {{.*}}: tensor<8x32xf32>
// CHECK-NOT: sc.all_gather
// CHECK-NOT: sc.all_reduce
// The repeat is split backward onto the expand: each rank broadcasts its one copy.
// CHECK: %[[K:.*]] = sc.reshape {{.*}} -> tensor<1x1x1x8x8xf32>
// CHECK: %[[E:.*]] = sc.expand %[[K]] {sc.sharding = [#sc.sharding<{{\[}}[], [], [tp], [], []]>]} : (tensor<1x1x1x8x8xf32>) -> tensor<1x1x1x8x8xf32>
// CHECK: %[[R:.*]] = sc.reshape %[[E]] {{.*}} -> tensor<1x1x8x8xf32>
// CHECK: sc.attention {{.*}}, %[[R]], {{.*}} : (tensor<1x2x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK: sc.all_gather {{.*}} {axes = ["tp"], dim = 1 : i64
