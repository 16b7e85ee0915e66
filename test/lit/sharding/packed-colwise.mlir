// packed_colwise: a fused QKV projection followed by an even split becomes one colwise
// linear per part over column blocks of the fused weight, each sliced locally over tp.
// RUN: shardc-opt --sc-apply-plan %s | FileCheck %s

#qkv = loc("node_qkv"("h.0.attn.c_attn"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"h.0.attn.c_attn" = "packed_colwise"}} {
  func.func @main(%x: tensor<8x16xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>) {
    %w = sc.param "h.0.attn.c_attn.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = "none"} : tensor<16x48xf32>
    %b = sc.param "h.0.attn.c_attn.bias" {file = "w.bin", offset = 4096 : i64, onnx_name = "b", tied = [], transform = "none"} : tensor<48xf32>
    %y = sc.linear %x, %w, %b : (tensor<8x16xf32>, tensor<16x48xf32>, tensor<48xf32>) -> tensor<8x48xf32> loc(#qkv)
    %r = sc.reshape %y : (tensor<8x48xf32>) -> tensor<2x4x48xf32>
    %q, %k, %v = sc.split %r {axis = 2 : i64} : (tensor<2x4x48xf32>) -> (tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>)
    return %q, %k, %v : tensor<2x4x16xf32>, tensor<2x4x16xf32>, tensor<2x4x16xf32>
  }
}

// CHECK-NOT: sc.split
// CHECK: %[[W0:.*]] = sc.slice %{{.*}} {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<16x48xf32>) -> tensor<16x16xf32>
// CHECK: %[[S0:.*]] = sc.shard_slice %[[W0]] {axes = ["tp"], dim = 1 : i64}
// CHECK: %[[B0:.*]] = sc.slice %{{.*}} {starts = array<i64: 0>, steps = array<i64: 1>} : (tensor<48xf32>) -> tensor<16xf32>
// CHECK: %[[SB0:.*]] = sc.shard_slice %[[B0]] {axes = ["tp"], dim = 0 : i64}
// CHECK: %[[Q:.*]] = sc.linear %arg0, %[[S0]], %[[SB0]]
// CHECK: sc.reshape %[[Q]] {{.*}} -> tensor<2x4x16xf32>
// CHECK: sc.slice %{{.*}} {starts = array<i64: 0, 16>
// CHECK: sc.slice %{{.*}} {starts = array<i64: 0, 32>
