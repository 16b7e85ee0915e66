// sc-apply-plan alone on kv heads fewer than tp (sharding/kv-heads-replicated.mlir runs the
// whole sharding pipeline): 4 query heads, 1 kv head, tp = 2. The query projection is seeded
// colwise; the key projection keeps whole weights (no sc.sharding) and its head is repeated
// tp / kv = 2 times (reshape, expand, reshape) before the attention, once per operand.
// RUN: shardc-opt --sc-apply-plan %s 2>&1 | FileCheck %s

// CHECK: t.onnx:3:0: remark: kv heads (1) fewer than tp (2): each kv head is repeated 2 times so that every rank holds the one its query heads read; replicated: m.attn.k_proj
// CHECK: sc.param "m.attn.q_proj.weight" {{.*}}sc.sharding = [#sc.sharding<{{\[}}[tp], []]>]{{.*}} : tensor<32x32xf32>
// CHECK: %[[WK:.*]] = sc.param "m.attn.k_proj.weight"
// CHECK-NOT: sc.sharding
// CHECK-SAME: : tensor<8x32xf32>
// CHECK: %[[KT:.*]] = sc.transpose {{.*}} -> tensor<1x1x8x8xf32>
// CHECK: %[[K5:.*]] = sc.reshape %[[KT]] : (tensor<1x1x8x8xf32>) -> tensor<1x1x1x8x8xf32>
// CHECK: %[[KX:.*]] = sc.expand %[[K5]] : (tensor<1x1x1x8x8xf32>) -> tensor<1x1x2x8x8xf32>
// CHECK: %[[K:.*]] = sc.reshape %[[KX]] : (tensor<1x1x2x8x8xf32>) -> tensor<1x2x8x8xf32>
// CHECK: %[[V:.*]] = sc.reshape {{.*}} -> tensor<1x2x8x8xf32>
// CHECK: sc.attention %{{.*}}, %[[K]], %[[V]] {{.*}} : (tensor<1x4x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32>

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
