// Gradient accumulation with the MoE auxiliary loss (router_aux_loss_coef, docs/moe.md#training):
// sc-unroll-microbatches clones the router and its aux loss per micro-batch (each micro-batch's
// aux from its own routers' statistics, as Hugging Face computes it per forward); the step's aux
// output is the micro-batches' mean and the loss adds coef times it to the summed cross-entropy
// over the step's label count.
// RUN: shardc-opt --sc-add-loss --sc-unroll-microbatches %s | FileCheck %s

// CHECK-LABEL: func.func @step(%arg0: tensor<2x2x4xi64> {sc.name = "input_ids"}) -> (tensor<f32> {sc.name = "loss"}, tensor<f32> {sc.name = "aux"})
// CHECK: %[[C:.*]] = sc.constant dense<2.000000e-02> : tensor<f32>
// CHECK: %[[I0:.*]], %{{.*}} = sc.moe_router
// CHECK: %[[S0:.*]], %{{.*}} = sc.token_loss
// CHECK: sc.reshape %[[I0]]
// CHECK: %[[A0:.*]] = sc.mul %{{.*}}, %{{.*}} : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: %[[I1:.*]], %{{.*}} = sc.moe_router
// CHECK: %[[S1:.*]], %{{.*}} = sc.token_loss
// CHECK: sc.reshape %[[I1]]
// CHECK: %[[A1:.*]] = sc.mul %{{.*}}, %{{.*}} : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: %[[SUM:.*]] = sc.add %[[S0]], %[[S1]]
// CHECK: %[[COUNT:.*]] = sc.add
// CHECK: %[[CE:.*]] = sc.div %[[SUM]], %[[COUNT]]
// CHECK: %[[TOTAL:.*]] = sc.add %[[A0]], %[[A1]]
// CHECK: %[[HALF:.*]] = sc.constant dense<5.000000e-01> : tensor<f32>
// CHECK: %[[AUX:.*]] = sc.mul %[[TOTAL]], %[[HALF]]
// CHECK: %[[TERM:.*]] = sc.mul %[[C]], %[[AUX]]
// CHECK: %[[LOSS:.*]] = sc.add %[[CE]], %[[TERM]]
// CHECK: return %[[LOSS]], %[[AUX]] : tensor<f32>, tensor<f32>
// CHECK-NOT: sc.moe_router

module attributes {sc.train = {labels = "input_ids", gradient_accumulation_steps = 2 : i64, router_aux_loss_coef = 2.0e-02 : f64}} {
  func.func @step(%ids: tensor<2x4xi64> {sc.name = "input_ids"}) -> (tensor<2x4x16xf32> {sc.name = "logits"}) {
    %e = sc.param "m.e" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32>
    %r = sc.param "m.r" {file = "w.bin", offset = 0 : i64, onnx_name = "r", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x8xf32>
    %h = sc.param "m.h" {file = "w.bin", offset = 0 : i64, onnx_name = "h", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %x = sc.embedding %e, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %t = sc.reshape %x : (tensor<2x4x8xf32>) -> tensor<8x8xf32>
    %rl = sc.linear %t, %r {transpose_weight = true} : (tensor<8x8xf32>, tensor<4x8xf32>) -> tensor<8x4xf32>
    %ri, %rw = sc.moe_router %rl {scoring = "softmax", normalize = false, norm_epsilon = 0.0 : f64, scale = 1.0 : f64} : (tensor<8x4xf32>) -> (tensor<8x2xi64>, tensor<8x2xf32>)
    %rw3 = sc.reshape %rw : (tensor<8x2xf32>) -> tensor<2x4x2xf32>
    %s = sc.reduce_sum %rw3 {axes = array<i64: 2>, keepdims = true} : (tensor<2x4x2xf32>) -> tensor<2x4x1xf32>
    %y = sc.mul %x, %s : (tensor<2x4x8xf32>, tensor<2x4x1xf32>) -> tensor<2x4x8xf32>
    %logits = sc.linear %y, %h {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
    return %logits : tensor<2x4x16xf32>
  }
}
