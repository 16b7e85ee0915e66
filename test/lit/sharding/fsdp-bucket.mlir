// FSDP buckets (sc-bucket-fsdp-gathers, on local shapes): the parameters a decoder layer
// gathers together (same axes and dtype) move in one all_gather, as FSDP2 gathers a layer's
// flat parameter: each local shard is one row, the rows are concatenated, gathered once
// ([G, N], rank r's shards in row r), and every parameter is cut back out.
// RUN: shardc-opt --sc-shard %s | FileCheck %s

#l0 = loc("node_a"("m.layers.0.a"("t.onnx":1:0)))
#l1 = loc("node_b"("m.layers.0.b"("t.onnx":2:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 1]]} {
  func.func @main(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
    %wa = sc.param "m.layers.0.a.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "a", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %wb = sc.param "m.layers.0.b.weight" {file = "w.bin", offset = 256 : i64, onnx_name = "b", tied = [], transform = #sc.transform<transpose>} : tensor<8x6xf32>
    %h = sc.linear %x, %wa {transpose_weight = true} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#l0)
    %y = sc.linear %h, %wb : (tensor<4x8xf32>, tensor<8x6xf32>) -> tensor<4x6xf32> loc(#l1)
    return %y : tensor<4x6xf32>
  }
}

// Local shards: a is [4, 8] (rows split), b is [8, 3] (PyTorch's dim 0 is its dim 1). Each
// shard is one contiguous row; after the gather, b's rows [2, 24] are [G, P, c, Q] =
// [2, 8, 3, 1], transposed to [8, 2, 3, 1].
// CHECK: %[[A:.*]] = sc.param "m.layers.0.a.weight" {{.*}} : tensor<4x8xf32>
// CHECK: %[[B:.*]] = sc.param "m.layers.0.b.weight" {{.*}} : tensor<8x3xf32>
// CHECK: %[[AR:.*]] = sc.reshape %[[A]] : (tensor<4x8xf32>) -> tensor<1x32xf32>
// CHECK: %[[BR:.*]] = sc.reshape %[[B]] : (tensor<8x3xf32>) -> tensor<1x24xf32>
// CHECK: %[[FLAT:.*]] = sc.concat %[[AR]], %[[BR]] {axis = 1 : i64} : {{.*}} -> tensor<1x56xf32>
// CHECK: %[[ALL:.*]] = sc.all_gather %[[FLAT]] {axes = ["dp_shard"], dim = 0 : i64} : (tensor<1x56xf32>) -> tensor<2x56xf32>
// Each parameter is cut out right before its first use (so that, with the gather prefetched,
// the layer in between does not wait for it): a's views, a's linear, then b's.
// CHECK: sc.slice %[[ALL]] {starts = array<i64: 0, 0>{{.*}} -> tensor<2x32xf32>
// CHECK: sc.reshape {{.*}} -> tensor<8x8xf32>
// CHECK: sc.linear
// CHECK: sc.slice %[[ALL]] {starts = array<i64: 0, 32>{{.*}} -> tensor<2x24xf32>
// CHECK: sc.reshape {{.*}} -> tensor<2x8x3x1xf32>
// CHECK: sc.transpose {{.*}} -> tensor<8x2x3x1xf32>
// CHECK: sc.reshape {{.*}} -> tensor<8x6xf32>
// CHECK: sc.linear
// CHECK: sc.all_gather
// CHECK-NOT: sc.all_gather
