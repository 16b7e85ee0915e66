// Sequence parallel (Megatron SP) on a one-layer toy: the embedding output is sliced on the
// sequence over tp, a colwise linear all-gathers its input, a rowwise linear's partial sums
// are reduce-scattered into the sequence-sharded residual, and the replicated head gets its
// input all-gathered.
// RUN: shardc-opt --sc-shard %s | FileCheck %s

#q = loc("node_q"("m.layers.0.q"("t.onnx":1:0)))
#o = loc("node_o"("m.layers.0.o"("t.onnx":2:0)))
#head = loc("node_head"("m.head"("t.onnx":3:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.sequence_parallel,
                   sc.tp_styles = {"m.layers.0.q" = #sc.tp_style<colwise>, "m.layers.0.o" = #sc.tp_style<rowwise>}} {
  func.func @main(%ids: tensor<2x8xi64>) -> tensor<2x8x32xf32> {
    %tab = sc.param "m.emb.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %wq = sc.param "m.layers.0.q.weight" {file = "w.bin", offset = 4096 : i64, onnx_name = "q", tied = [], transform = #sc.transform<none>} : tensor<16x16xf32>
    %wo = sc.param "m.layers.0.o.weight" {file = "w.bin", offset = 8192 : i64, onnx_name = "o", tied = [], transform = #sc.transform<none>} : tensor<16x16xf32>
    %wh = sc.param "m.head.weight" {file = "w.bin", offset = 12288 : i64, onnx_name = "h", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %x = sc.embedding %tab, %ids : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
    %h = sc.linear %x, %wq {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32> loc(#q)
    %a = sc.silu %h : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %y = sc.linear %a, %wo {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<16x16xf32>) -> tensor<2x8x16xf32> loc(#o)
    %r = sc.add %x, %y : (tensor<2x8x16xf32>, tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %logits = sc.linear %r, %wh {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<32x16xf32>) -> tensor<2x8x32xf32> loc(#head)
    return %logits : tensor<2x8x32xf32>
  }
}

// The rank's chunk start, once at the top: its index over tp, times the chunk (4).
// CHECK: %[[TAB:.*]] = sc.constant dense<[0, 4]> : tensor<2xi64>
// CHECK-NEXT: %[[PID:.*]] = sc.process_index {axes = ["tp"]} : tensor<i64>
// CHECK-NEXT: %[[START:.*]] = sc.gather %[[TAB]], %[[PID]] {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
// CHECK: %[[E:.*]] = sc.embedding {{.*}} -> tensor<2x8x16xf32>
// CHECK: %[[X:.*]] = sc.dynamic_slice %[[E]], %[[START]] {axis = 1 : i64{{.*}} -> tensor<2x4x16xf32>
// CHECK: %[[XG:.*]] = sc.all_gather %[[X]] {axes = ["tp"], dim = 1 : i64{{.*}} -> tensor<2x8x16xf32>
// CHECK: sc.linear %[[XG]], {{.*}} -> tensor<2x8x8xf32>
// CHECK: %[[Y:.*]] = sc.linear {{.*}} : (tensor<2x8x8xf32>, tensor<16x8xf32>) -> tensor<2x8x16xf32>
// CHECK: %[[RS:.*]] = sc.reduce_scatter %[[Y]] {axes = ["tp"], dim = 1 : i64{{.*}} -> tensor<2x4x16xf32>
// CHECK: %[[R:.*]] = sc.add %[[X]], %[[RS]] {{.*}} -> tensor<2x4x16xf32>
// CHECK: %[[RG:.*]] = sc.all_gather %[[R]] {axes = ["tp"], dim = 1 : i64{{.*}} -> tensor<2x8x16xf32>
// CHECK: sc.linear %[[RG]], {{.*}} -> tensor<2x8x32xf32>
