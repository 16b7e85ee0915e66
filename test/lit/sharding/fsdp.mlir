// FSDP over dp_shard with TP: a colwise weight is stored [tp, dp_shard]-split on PyTorch's
// dim 0 and all-gathered over dp_shard (only) right before its first use; a weight whose
// tensor-parallel chunk does not divide stays replicated over dp_shard with a remark (padding
// would put zeros inside a tp chunk); an unsplit dim that does not divide is padded
// (fsdp-padded.mlir).
// RUN: shardc-opt --sc-shard %s 2>&1 | FileCheck %s

#up = loc("node_up"("blk.up"("t.onnx":1:0)))
#odd = loc("node_odd"("blk.odd"("t.onnx":2:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.up" = #sc.tp_style<colwise>, "blk.odd" = #sc.tp_style<colwise>}} {
  func.func @main(%x: tensor<4x16xf32>) -> (tensor<4x32xf32>, tensor<4x6xf32>) {
    %w = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %s = sc.param "blk.odd.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<6x16xf32>
    %e = sc.exp %x : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %h = sc.linear %e, %w {transpose_weight = true} : (tensor<4x16xf32>, tensor<32x16xf32>) -> tensor<4x32xf32> loc(#up)
    %o = sc.linear %e, %s {transpose_weight = true} : (tensor<4x16xf32>, tensor<6x16xf32>) -> tensor<4x6xf32> loc(#odd)
    return %h, %o : tensor<4x32xf32>, tensor<4x6xf32>
  }
}

// CHECK: remark: 1 parameter(s) stay replicated over dp_shard because dim 0 (or its tensor-parallel chunk) is split over tp or smaller than 2 and does not divide: blk.odd.weight
// CHECK: sc.param "blk.up.weight" {{.*}}sc.storage_sharding = #sc.sharding<{{\[}}[tp, dp_shard], []]>{{.*}} : tensor<8x16xf32>
// CHECK: sc.exp
// CHECK: %[[G:.*]] = sc.all_gather %{{.*}} {axes = ["dp_shard"], dim = 0 : i64{{.*}} : (tensor<8x16xf32>) -> tensor<16x16xf32>
// CHECK: sc.linear %{{.*}}, %[[G]] {{.*}} -> tensor<2x16xf32>
