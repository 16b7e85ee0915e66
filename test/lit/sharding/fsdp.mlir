// FSDP over dp_shard with TP: a colwise weight is stored [tp, dp_shard]-split on PyTorch's
// dim 0 and all-gathered over dp_shard (only) right before its first use; a weight whose
// chunk does not divide stays replicated with a remark.
// RUN: shardc-opt --sc-shard %s 2>&1 | FileCheck %s

#up = loc("node_up"("blk.up"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.up" = "colwise"}} {
  func.func @main(%x: tensor<4x16xf32>) -> tensor<4x32xf32> {
    %w = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = "none"} : tensor<32x16xf32>
    %s = sc.param "odd.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "s", tied = [], transform = "none"} : tensor<3xf32>
    %e = sc.exp %x : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %h = sc.linear %e, %w {transpose_weight = true} : (tensor<4x16xf32>, tensor<32x16xf32>) -> tensor<4x32xf32> loc(#up)
    return %h : tensor<4x32xf32>
  }
}

// CHECK: remark: 1 parameter(s) stay replicated over dp_shard because dim 0 does not divide by 2 (uneven FSDP shards are not supported yet): odd.weight
// CHECK: sc.param "blk.up.weight" {{.*}}sc.storage_sharding = {dims = {{\[}}["tp", "dp_shard"], []]}{{.*}} : tensor<8x16xf32>
// CHECK: sc.exp
// CHECK: %[[G:.*]] = sc.all_gather %{{.*}} {axes = ["dp_shard"], dim = 0 : i64{{.*}} : (tensor<8x16xf32>) -> tensor<16x16xf32>
// CHECK: sc.linear %{{.*}}, %[[G]] {{.*}} -> tensor<2x16xf32>
