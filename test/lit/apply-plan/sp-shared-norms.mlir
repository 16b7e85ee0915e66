// sc-apply-plan under sequence parallelism, a parallel-residual block with a norm per branch
// (GPT-NeoX): two norms read the residual and feed colwise linears only, so their input is
// constrained whole over tp once (one all-gather of the residual, sharding/insert-reshards make
// it) and both norms read that; the residual's other user (the add) keeps the split value.
// A norm whose output also feeds something else is left alone (second function).
// RUN: shardc-opt --sc-apply-plan --split-input-file %s | FileCheck %s

// CHECK-LABEL: func.func @two_norms
// CHECK: %[[E:.*]] = sc.sharding_constraint %{{.*}} over ["tp"] to <{{\[}}[], [tp], []]>
// CHECK: %[[W:.*]] = sc.sharding_constraint %[[E]] over ["tp"] to <{{\[}}[], [], []]>
// CHECK-NOT: sc.sharding_constraint
// CHECK: sc.layer_norm %[[W]],
// CHECK: sc.layer_norm %[[W]],
// CHECK: sc.concat %[[E]], %[[E]]

// CHECK-LABEL: func.func @norm_read_elsewhere
// CHECK: %[[E2:.*]] = sc.sharding_constraint %{{.*}} over ["tp"] to <{{\[}}[], [tp], []]>
// CHECK-NOT: sc.sharding_constraint
// CHECK: sc.layer_norm %[[E2]],
// CHECK: sc.layer_norm %[[E2]],
#l1 = loc("node_q"("m.layers.0.attention.query_key_value"("t.onnx":1:0)))
#l2 = loc("node_h"("m.layers.0.mlp.dense_h_to_4h"("t.onnx":2:0)))
module attributes {sc.mesh = [["tp", 2]], sc.sequence_parallel,
                   sc.tp_styles = {"m.layers.0.attention.query_key_value" = #sc.tp_style<colwise>,
                                   "m.layers.0.mlp.dense_h_to_4h" = #sc.tp_style<colwise>}} {
  func.func @two_norms(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %t = sc.param "m.embed.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "t", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %s = sc.param "m.ln.weight" {file = "w.bin", offset = 512 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %w1 = sc.param "m.layers.0.attention.query_key_value.weight" {file = "w.bin", offset = 544 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %w2 = sc.param "m.layers.0.mlp.dense_h_to_4h.weight" {file = "w.bin", offset = 1056 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %e = sc.embedding %t, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %n1 = sc.layer_norm %e, %s, %s {epsilon = 1.0e-5 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %n2 = sc.layer_norm %e, %s, %s {epsilon = 1.0e-5 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %a = sc.linear %n1, %w1 {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#l1)
    %m = sc.linear %n2, %w2 {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#l2)
    %am = sc.add %a, %m : (tensor<2x4x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    %r = sc.concat %e, %e {axis = 2 : i64} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x16xf32>
    %y = sc.add %am, %r : (tensor<2x4x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    return %y : tensor<2x4x16xf32>
  }
}

// -----

#l1 = loc("node_q"("m.layers.0.attention.query_key_value"("t.onnx":1:0)))
#l2 = loc("node_h"("m.layers.0.mlp.dense_h_to_4h"("t.onnx":2:0)))
module attributes {sc.mesh = [["tp", 2]], sc.sequence_parallel,
                   sc.tp_styles = {"m.layers.0.attention.query_key_value" = #sc.tp_style<colwise>,
                                   "m.layers.0.mlp.dense_h_to_4h" = #sc.tp_style<colwise>}} {
  func.func @norm_read_elsewhere(%ids: tensor<2x4xi64>) -> tensor<2x4x16xf32> {
    %t = sc.param "m.embed.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "t", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %s = sc.param "m.ln.weight" {file = "w.bin", offset = 512 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %w1 = sc.param "m.layers.0.attention.query_key_value.weight" {file = "w.bin", offset = 544 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %w2 = sc.param "m.layers.0.mlp.dense_h_to_4h.weight" {file = "w.bin", offset = 1056 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %e = sc.embedding %t, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %n1 = sc.layer_norm %e, %s, %s {epsilon = 1.0e-5 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %n2 = sc.layer_norm %e, %s, %s {epsilon = 1.0e-5 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %a = sc.linear %n1, %w1 {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#l1)
    %m = sc.linear %n2, %w2 {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#l2)
    %am = sc.add %a, %m : (tensor<2x4x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    %r = sc.concat %n2, %e {axis = 2 : i64} : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x16xf32>
    %y = sc.add %am, %r : (tensor<2x4x16xf32>, tensor<2x4x16xf32>) -> tensor<2x4x16xf32>
    return %y : tensor<2x4x16xf32>
  }
}
