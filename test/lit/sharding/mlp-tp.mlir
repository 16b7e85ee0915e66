// Megatron MLP under tp = 2: colwise up, rowwise down -> one all_reduce, local shapes.
// RUN: shardc-opt --sc-shard %s | FileCheck %s
// RUN: shardc-opt --sc-shard %s | FileCheck %s --check-prefix=COLL
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding %s | FileCheck %s --check-prefix=PROP

#up = loc("node_up"("blk.up"("t.onnx":1:0)))
#down = loc("node_down"("blk.down"("t.onnx":2:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.up" = #sc.tp_style<colwise>, "blk.down" = #sc.tp_style<rowwise>}} {
  func.func @main(%x: tensor<4x8x16xf32>) -> tensor<4x8x16xf32> {
    %w1 = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w2 = sc.param "blk.down.weight" {file = "w.bin", offset = 2048 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %h = sc.linear %x, %w1 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#up)
    %a = sc.silu %h : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %y = sc.linear %a, %w2 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32> loc(#down)
    %r = sc.add %x, %y : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    return %r : tensor<4x8x16xf32>
  }
}

// PROP: sc.param "blk.up.weight" {{.*}}sc.sharding = [#sc.sharding<{{\[}}[tp], []]>]
// PROP: sc.param "blk.down.weight" {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [tp]]>]
// PROP: sc.linear {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]
// PROP: sc.linear {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], []], partial = [tp: sum]>]
// PROP: sc.add {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], []]>, #sc.sharding<{{\[}}[], [], []]>]

// COLL-COUNT-1: sc.all_reduce
// COLL-NOT: sc.all_gather
// COLL-NOT: sc.all_reduce
// CHECK: sc.param "blk.up.weight" {{.*}}: tensor<16x16xf32>
// CHECK: sc.param "blk.down.weight" {{.*}}: tensor<16x16xf32>
// CHECK: sc.linear {{.*}} -> tensor<4x8x16xf32>
// CHECK: sc.silu {{.*}} -> tensor<4x8x16xf32>
// CHECK: %[[Y:.*]] = sc.linear
// CHECK: %[[R:.*]] = sc.all_reduce %[[Y]] {axes = ["tp"]
// CHECK: sc.add %{{.*}}, %[[R]]
