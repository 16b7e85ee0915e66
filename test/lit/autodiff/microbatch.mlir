// Gradient accumulation (gradient_accumulation_steps = 2): sc-unroll-microbatches gives the
// batch input a leading dim 2 and clones the forward and the loss per micro-batch (module paths
// mb0., mb1.); the loss is the micro-batches' summed cross-entropy over the step's label count,
// counted from the labels; sc-schedule-microbatches runs micro-batch 0's backward before
// micro-batch 1's forward and adds the weight's gradient in micro-batch order.
// RUN: shardc-opt --sc-add-loss --sc-unroll-microbatches --sc-autodiff --sc-schedule-microbatches --mlir-print-debuginfo %s | FileCheck %s
// RUN: shardc-opt --sc-add-loss --sc-unroll-microbatches %s | FileCheck %s --check-prefix=UNROLL

// UNROLL-LABEL: func.func @step(%arg0: tensor<2x2x4xi64> {sc.name = "input_ids"}) -> (tensor<f32> {sc.name = "loss"})
// UNROLL: sc.slice %arg0 {starts = array<i64: 0, 0, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x2x4xi64>) -> tensor<1x2x4xi64>
// UNROLL: sc.slice %arg0 {starts = array<i64: 1, 0, 0>
// UNROLL: %[[S0:.*]], %{{.*}} = sc.token_loss
// UNROLL: sc.equal %{{.*}}, %{{.*}} : (tensor<2x4xi64>, tensor<i64>) -> tensor<2x4xi1>
// UNROLL: %[[S1:.*]], %{{.*}} = sc.token_loss
// UNROLL: %[[SUM:.*]] = sc.add %[[S0]], %[[S1]]
// UNROLL: %[[COUNT:.*]] = sc.add
// UNROLL: %[[LOSS:.*]] = sc.div %[[SUM]], %[[COUNT]]
// UNROLL: return %[[LOSS]] : tensor<f32>

// The schedule: forward 0, backward 0, forward 1, backward 1; the sum of the two gradients.
// CHECK-LABEL: func.func @step
// CHECK: sc.embedding %{{.*}}, %[[IDS0:[0-9]+]] :
// CHECK: sc.token_loss_grad
// CHECK: %[[G0:[0-9]+]] = sc.embedding_grad %[[IDS0]],
// CHECK: sc.embedding %{{.*}}, %[[IDS1:[0-9]+]] :
// CHECK: sc.token_loss_grad
// CHECK: %[[G1:[0-9]+]] = sc.embedding_grad %[[IDS1]],
// CHECK: sc.add %[[G0]], %[[G1]] : (tensor<16x8xf32>, tensor<16x8xf32>)
// CHECK: #{{.*}} = loc("mb0.m.model.embed_tokens"(
// CHECK: #{{.*}} = loc("mb1.m.model.embed_tokens"(

module attributes {sc.train = {labels = "input_ids", gradient_accumulation_steps = 2 : i64}} {
  func.func @step(%ids: tensor<2x4xi64> {sc.name = "input_ids"}) -> (tensor<2x4x16xf32> {sc.name = "logits"}) {
    %e = sc.param "m.e" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32> loc(#le)
    %h = sc.param "m.h" {file = "w.bin", offset = 0 : i64, onnx_name = "h", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32> loc(#lh)
    %x = sc.embedding %e, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32> loc(#le)
    %logits = sc.linear %x, %h {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32> loc(#lh)
    return %logits : tensor<2x4x16xf32>
  }
}
#le = loc("e"("m.model.embed_tokens"("m.onnx":1:0)))
#lh = loc("h"("m.lm_head"("m.onnx":2:0)))
