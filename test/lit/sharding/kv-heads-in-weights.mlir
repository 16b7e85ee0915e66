// kv heads fewer than tp where key and value come straight from their projections (the
// exporter's Llama graph): 4 query heads, 2 kv heads, tp = 4. Each kv head is repeated twice
// in the k/v weights (a view of the stored bytes: sc.file_repeat), so k_proj and v_proj have
// 4 heads, split over tp like q_proj: each rank stores and computes the one kv head its query
// head reads, and nothing but the output is gathered.
// RUN: shardc-opt --sc-apply-plan %s 2>&1 | FileCheck %s --check-prefix=PLAN
// RUN: shardc-opt --sc-shard %s 2>&1 | FileCheck %s

#q = loc("node_q"("m.attn.q_proj"("t.onnx":1:0)))
#k = loc("node_k"("m.attn.k_proj"("t.onnx":2:0)))
#v = loc("node_v"("m.attn.v_proj"("t.onnx":3:0)))
#a = loc("node_sdpa"("m.attn"("t.onnx":4:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 4]],
                   sc.tp_styles = {"m.attn.q_proj" = #sc.tp_style<colwise>, "m.attn.k_proj" = #sc.tp_style<colwise>, "m.attn.v_proj" = #sc.tp_style<colwise>}} {
  func.func @main(%x: tensor<1x8x32xf32>) -> tensor<1x4x8x8xf32> {
    %wq = sc.param "m.attn.q_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<32x32xf32>
    %wk = sc.param "m.attn.k_proj.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "k", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %wv = sc.param "m.attn.v_proj.weight" {file = "w.bin", offset = 6144 : i64, onnx_name = "v", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %q = sc.linear %x, %wq {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<32x32xf32>) -> tensor<1x8x32xf32> loc(#q)
    %k = sc.linear %x, %wk {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<16x32xf32>) -> tensor<1x8x16xf32> loc(#k)
    %v = sc.linear %x, %wv {transpose_weight = true} : (tensor<1x8x32xf32>, tensor<16x32xf32>) -> tensor<1x8x16xf32> loc(#v)
    %q4 = sc.reshape %q : (tensor<1x8x32xf32>) -> tensor<1x8x4x8xf32>
    %k4 = sc.reshape %k : (tensor<1x8x16xf32>) -> tensor<1x8x2x8xf32>
    %v4 = sc.reshape %v : (tensor<1x8x16xf32>) -> tensor<1x8x2x8xf32>
    %qt = sc.transpose %q4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x4x8xf32>) -> tensor<1x4x8x8xf32>
    %kt = sc.transpose %k4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
    %vt = sc.transpose %v4 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x2x8xf32>) -> tensor<1x2x8x8xf32>
    %a = sc.attention %qt, %kt, %vt {causal = true, scale = 0.35 : f32} : (tensor<1x4x8x8xf32>, tensor<1x2x8x8xf32>, tensor<1x2x8x8xf32>) -> tensor<1x4x8x8xf32> loc(#a)
    return %a : tensor<1x4x8x8xf32>
  }
}

// PLAN: remark: kv heads (2) fewer than tp (4): each kv head of m.attn.k_proj and m.attn.v_proj is repeated 2 times in its weight
// PLAN: sc.param "m.attn.k_proj.weight" {{.*}}sc.file_repeat = array<i64: 0, 8, 2>, sc.file_shape = array<i64: 16, 32>{{.*}} : tensor<32x32xf32>
// PLAN: sc.reshape {{.*}} : (tensor<1x8x32xf32>) -> tensor<1x8x4x8xf32>
// PLAN: sc.attention {{.*}} : (tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>, tensor<1x4x8x8xf32>) -> tensor<1x4x8x8xf32>

// CHECK: sc.param "m.attn.k_proj.weight" {{.*}} : tensor<8x32xf32>
// CHECK-NOT: sc.dynamic_slice
// CHECK-NOT: sc.all_reduce
// CHECK: sc.attention {{.*}} : (tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32>
// CHECK: sc.all_gather {{.*}} {axes = ["tp"], dim = 1 : i64
