// sc-propagate-sharding is a fixpoint: a value that only one op reads takes, backward, the
// sharding that op wants, so its producer computes a share instead of the whole tensor
// being sliced afterwards. A value with two readers is not refined.
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding %s | FileCheck %s --check-prefix=PROP
// RUN: shardc-opt --sc-shard %s | FileCheck %s
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding=explain=true %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=EXPLAIN

#up = loc("node_up"("blk.up"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.up" = #sc.tp_style<colwise>}} {
  func.func @main(%x: tensor<4x8x16xf32>) -> (tensor<4x8x32xf32>, tensor<1x8x32xf32>) {
    %w = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %c = sc.constant dense<0.5> : tensor<1x8x32xf32>
    %d = sc.constant dense<0.25> : tensor<1x8x32xf32>
    %h = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#up)
    // One reader: refined backward, priority of the plan's weight.
    %e = sc.exp %c : (tensor<1x8x32xf32>) -> tensor<1x8x32xf32>
    // Two readers (the add and the function result): stays whole.
    %f = sc.tanh %d : (tensor<1x8x32xf32>) -> tensor<1x8x32xf32>
    %y = sc.add %h, %e : (tensor<4x8x32xf32>, tensor<1x8x32xf32>) -> tensor<4x8x32xf32>
    %z = sc.mul %y, %f : (tensor<4x8x32xf32>, tensor<1x8x32xf32>) -> tensor<4x8x32xf32>
    return %z, %f : tensor<4x8x32xf32>, tensor<1x8x32xf32>
  }
}

// EXPLAIN: remark: sharding: results [tp: Shard(2)] from operands [tp: Replicate] [tp: Shard(0)] (priority: plan)
// EXPLAIN: :[[@LINE-10]]:10: remark: sharding: results [tp: Shard(2)] from operands [tp: Replicate] (priority: plan)
// EXPLAIN-NOT: sc.tanh

// PROP: sc.exp {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], [tp]]>]{{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]
// PROP: sc.tanh {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], []]>]
// PROP: sc.add {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], [tp]]>, #sc.sharding<{{\[}}[], [], [tp]]>]

// (The remark shows the operands as they are: the constant is whole, exp wants it split.)
// The constant is sliced before the exp, which then computes 16 of the 32 features; tanh's
// result is sliced for the mul, since the function returns it whole.
// CHECK: %[[C:.*]] = sc.constant {{.*}}dense<5.000000e-01> : tensor<1x8x32xf32>
// CHECK: %[[CS:.*]] = sc.dynamic_slice %[[C]], %{{.*}} {axis = 2 : i64{{.*}} -> tensor<1x8x16xf32>
// CHECK: sc.exp %[[CS]] {{.*}}: (tensor<1x8x16xf32>) -> tensor<1x8x16xf32>
// CHECK: %[[F:.*]] = sc.tanh {{.*}} -> tensor<1x8x32xf32>
// CHECK: sc.dynamic_slice %[[F]], %{{.*}} {axis = 2 : i64
