// packed_colwise: a fused QKV projection followed by an even split becomes one colwise
// linear per part; each part is its own parameter viewing its column block of the stored
// fused weight (sc.file_shape, sc.file_start), stored split over tp like a colwise weight.
// RUN: shardc-opt --sc-apply-plan %s | FileCheck %s
// RUN: shardc-opt --sc-shard %s | FileCheck %s --check-prefix=PART

#qkv = loc("node_qkv"("h.0.attn.c_attn"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"h.0.attn.c_attn" = #sc.tp_style<packed_colwise>}} {
  func.func @main(%x: tensor<8x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
    %w = sc.param "h.0.attn.c_attn.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x48xf32>
    %b = sc.param "h.0.attn.c_attn.bias" {file = "w.bin", offset = 4096 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<48xf32>
    %y = sc.linear %x, %w, %b : (tensor<8x16xf32>, tensor<16x48xf32>, tensor<48xf32>) -> tensor<8x48xf32> loc(#qkv)
    %r = sc.reshape %y : (tensor<8x48xf32>) -> tensor<2x4x48xf32>
    %q, %k, %v = sc.split %r {axis = 2 : i64} : (tensor<2x4x48xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>)
    return %q, %k, %v : tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>
  }
}

// CHECK: %[[W0:.*]] = sc.param "h.0.attn.c_attn.weight.part0" {{.*}}sc.file_shape = array<i64: 16, 48>, sc.file_start = array<i64: 0, 0>, sc.sharding = [#sc.sharding<{{\[}}[], [tp]]>]{{.*}} : tensor<16x16xf32>
// CHECK: sc.param "h.0.attn.c_attn.weight.part1" {{.*}}sc.file_start = array<i64: 0, 16>{{.*}} : tensor<16x16xf32>
// CHECK: sc.param "h.0.attn.c_attn.weight.part2" {{.*}}sc.file_start = array<i64: 0, 32>{{.*}} : tensor<16x16xf32>
// CHECK: %[[B0:.*]] = sc.param "h.0.attn.c_attn.bias.part0" {{.*}}sc.file_start = array<i64: 0>, sc.sharding = [#sc.sharding<{{\[}}[tp]]>]{{.*}} : tensor<16xf32>
// CHECK-NOT: sc.param "h.0.attn.c_attn.weight"
// CHECK-NOT: sc.split
// CHECK-NOT: sc.slice
// CHECK: %[[Q:.*]] = sc.linear %arg0, %[[W0]], %[[B0]]
// CHECK: sc.reshape %[[Q]] {{.*}} -> tensor<2x4x16xf32>

// Partitioned: every rank stores and reads only its tp chunk of each part.
// PART: sc.param "h.0.attn.c_attn.weight.part0" {{.*}} : tensor<16x8xf32>
// PART: sc.param "h.0.attn.c_attn.bias.part0" {{.*}} : tensor<8xf32>
// PART-NOT: sc.dynamic_slice
// PART: sc.linear {{.*}} : (tensor<8x16xf32>, tensor<16x8xf32>, tensor<8xf32>) -> tensor<8x8xf32>
