// packed_colwise over a projection cut by slices into parts of different sizes (Phi-3's
// qkv_proj with grouped kv heads: q 8 features, k and v 4 each): one colwise linear per part,
// each over a view of its block of the stored weight (sc.file_start), split over tp.
// RUN: not shardc-opt --sc-apply-plan --split-input-file %s 2>/dev/null | FileCheck %s
// RUN: not shardc-opt --sc-apply-plan --split-input-file %s 2>&1 >/dev/null | FileCheck %s --check-prefix=ERR

// CHECK-DAG: sc.param "m.attn.qkv_proj.weight.part0" {{.*}}sc.file_start = array<i64: 0, 0>{{.*}}sc.sharding = [#sc.sharding<{{\[}}[tp], []]>]{{.*}} : tensor<8x8xf32>
// CHECK-DAG: sc.param "m.attn.qkv_proj.weight.part1" {{.*}}sc.file_start = array<i64: 8, 0>{{.*}} : tensor<4x8xf32>
// CHECK-DAG: sc.param "m.attn.qkv_proj.weight.part2" {{.*}}sc.file_start = array<i64: 12, 0>{{.*}} : tensor<4x8xf32>
// CHECK: %[[Q:.*]] = sc.linear {{.*}} -> tensor<2x4x8xf32>
// CHECK: %[[K:.*]] = sc.linear {{.*}} -> tensor<2x4x4xf32>
// CHECK: %[[V:.*]] = sc.linear {{.*}} -> tensor<2x4x4xf32>
// CHECK-NOT: sc.slice
// CHECK: return %[[Q]], %[[K]], %[[V]]
#qkv = loc("node_qkv"("m.attn.qkv_proj"("t.onnx":1:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.attn.qkv_proj" = #sc.tp_style<packed_colwise>}} {
  func.func @slices(%x: tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>) {
    %w = sc.param "m.attn.qkv_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#qkv)
    %v = sc.slice %y {starts = array<i64: 0, 0, 12>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x16xf32>) -> tensor<2x4x4xf32>
    %q = sc.slice %y {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x16xf32>) -> tensor<2x4x8xf32>
    %k = sc.slice %y {starts = array<i64: 0, 0, 8>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x16xf32>) -> tensor<2x4x4xf32>
    return %q, %k, %v : tensor<2x4x8xf32>, tensor<2x4x4xf32>, tensor<2x4x4xf32>
  }
}

// -----

// Slices that leave a gap are refused.
// ERR: t.onnx:2:0: error: m.attn.qkv_proj is packed_colwise but its slices do not tile its 16 features
#qkv = loc("node_qkv"("m.attn.qkv_proj"("t.onnx":2:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.attn.qkv_proj" = #sc.tp_style<packed_colwise>}} {
  func.func @gap(%x: tensor<2x4x8xf32>) -> (tensor<2x4x8xf32>, tensor<2x4x4xf32>) {
    %w = sc.param "m.attn.qkv_proj.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#qkv)
    %q = sc.slice %y {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x16xf32>) -> tensor<2x4x8xf32>
    %v = sc.slice %y {starts = array<i64: 0, 0, 12>, steps = array<i64: 1, 1, 1>} : (tensor<2x4x16xf32>) -> tensor<2x4x4xf32>
    return %q, %v : tensor<2x4x8xf32>, tensor<2x4x4xf32>
  }
}
