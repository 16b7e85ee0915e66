// A parallel residual block under tp = 2: x + attn(x) + mlp(x), two rowwise outputs, each
// Partial over tp (here two MLP-shaped branches; the second rowwise linear has a bias, which
// sc-apply-plan adds after its matmul). In the exporter's order, (x + a) + (m + bias), each
// Partial meets a whole value and is all-reduced on its own; sc-propagate-sharding
// reassociates the add tree to (a + m) + (x + bias) so that the two are reduced once.
// RUN: shardc-opt --sc-shard --split-input-file %s | FileCheck %s
// RUN: shardc-opt --sc-apply-plan --sc-propagate-sharding --split-input-file %s | FileCheck %s --check-prefix=PROP

// CHECK-LABEL: func.func @parallel_residual
// CHECK-COUNT-1: sc.all_reduce
// CHECK-NOT: sc.all_reduce
// CHECK: return
// The Partials are summed first (Partial + Partial stays Partial), the rest after.
// PROP-LABEL: func.func @parallel_residual
// PROP: %[[A:.*]] = sc.linear {{.*}}partial = [tp: sum]
// PROP: %[[M:.*]] = sc.linear {{.*}}partial = [tp: sum]
// PROP: %[[S:.*]] = sc.add %[[A]], %[[M]] {{.*}}partial = [tp: sum]
// PROP: %[[R:.*]] = sc.add %arg0, %{{.*}}
// PROP: sc.add %[[S]], %[[R]] {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], []]>, #sc.sharding<{{\[}}[], [], []]>]
#a1 = loc("node_a1"("blk.attn.up"("t.onnx":1:0)))
#a2 = loc("node_a2"("blk.attn.down"("t.onnx":2:0)))
#m1 = loc("node_m1"("blk.mlp.up"("t.onnx":3:0)))
#m2 = loc("node_m2"("blk.mlp.down"("t.onnx":4:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.attn.up" = #sc.tp_style<colwise>, "blk.attn.down" = #sc.tp_style<rowwise>,
                                   "blk.mlp.up" = #sc.tp_style<colwise>, "blk.mlp.down" = #sc.tp_style<rowwise>}} {
  func.func @parallel_residual(%x: tensor<4x8x16xf32>) -> tensor<4x8x16xf32> {
    %w1 = sc.param "blk.attn.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w2 = sc.param "blk.attn.down.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %w3 = sc.param "blk.mlp.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w3", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w4 = sc.param "blk.mlp.down.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w4", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %b4 = sc.param "blk.mlp.down.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "b4", tied = [], transform = #sc.transform<none>} : tensor<16xf32>
    %h1 = sc.linear %x, %w1 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#a1)
    %g1 = sc.silu %h1 : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %a = sc.linear %g1, %w2 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32> loc(#a2)
    %h2 = sc.linear %x, %w3 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#m1)
    %g2 = sc.silu %h2 : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %m = sc.linear %g2, %w4, %b4 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>, tensor<16xf32>) -> tensor<4x8x16xf32> loc(#m2)
    %xa = sc.add %x, %a : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    %r = sc.add %xa, %m : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    return %r : tensor<4x8x16xf32>
  }
}

// -----

// A Partial also read elsewhere (here returned) is reduced for that reader anyway: the tree
// is left as written, two all-reduces.
// CHECK-LABEL: func.func @read_elsewhere
// CHECK-COUNT-2: sc.all_reduce
// CHECK-NOT: sc.all_reduce
// CHECK: return
// PROP-LABEL: func.func @read_elsewhere
#a1 = loc("node_a1"("blk.attn.up"("t.onnx":1:0)))
#a2 = loc("node_a2"("blk.attn.down"("t.onnx":2:0)))
#m1 = loc("node_m1"("blk.mlp.up"("t.onnx":3:0)))
#m2 = loc("node_m2"("blk.mlp.down"("t.onnx":4:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.attn.up" = #sc.tp_style<colwise>, "blk.attn.down" = #sc.tp_style<rowwise>,
                                   "blk.mlp.up" = #sc.tp_style<colwise>, "blk.mlp.down" = #sc.tp_style<rowwise>}} {
  func.func @read_elsewhere(%x: tensor<4x8x16xf32>) -> (tensor<4x8x16xf32>, tensor<4x8x16xf32>) {
    %w1 = sc.param "blk.attn.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w2 = sc.param "blk.attn.down.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %w3 = sc.param "blk.mlp.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w3", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w4 = sc.param "blk.mlp.down.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w4", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %h1 = sc.linear %x, %w1 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#a1)
    %a = sc.linear %h1, %w2 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32> loc(#a2)
    %h2 = sc.linear %x, %w3 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32> loc(#m1)
    %m = sc.linear %h2, %w4 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32> loc(#m2)
    %xa = sc.add %x, %a : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    %r = sc.add %xa, %m : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    return %r, %m : tensor<4x8x16xf32>, tensor<4x8x16xf32>
  }
}
