// sc-autodiff's bookkeeping: a value read twice gets the sum of its two gradient
// contributions (one sc.add); a tied parameter (one sc.param read by the embedding and the
// lm_head) gets one output, the sum of both; a frozen parameter gets no output; a trainable
// parameter the loss does not read gets zeros. The outputs follow the parameters' order.
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// y = a·a: each read contributes g·a, summed by one add.
// CHECK-LABEL: func.func @read_twice
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x4xf32> {sc.name = "grad.m.a"})
// CHECK: %[[A:.*]] = sc.param "m.a"
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x8xf32>) -> tensor<2x4xf32>
// CHECK: %[[G0:.*]] = sc.mul %[[G]], %[[A]]
// CHECK: %[[G1:.*]] = sc.mul %[[G]], %[[A]]
// CHECK: %[[SUM:.*]] = sc.add %[[G0]], %[[G1]] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: return %{{.*}}, %[[SUM]] : tensor<f32>, tensor<2x4xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @read_twice(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.mul %a, %a : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// A value read by two ops on different paths (h feeds both a silu and the sum with it).
// CHECK-LABEL: func.func @two_paths
// CHECK: %[[H:.*]] = sc.neg %{{.*}} : (tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x8xf32>) -> tensor<2x4xf32>
// CHECK: %[[GS:.*]] = sc.silu_grad %[[H]], %[[G]]
// CHECK: %[[GH:.*]] = sc.add %[[G]], %[[GS]] : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
// CHECK: %[[GA:.*]] = sc.neg %[[GH]]
// CHECK-NOT: sc.add
// CHECK: return %{{.*}}, %[[GA]] : tensor<f32>, tensor<2x4xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @two_paths(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %h = sc.neg %a : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %s = sc.silu %h : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %y = sc.add %h, %s : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// Tied embeddings: one parameter, read by the embedding and as the lm_head weight, gets one
// output: embedding_grad plus the lm_head's weight gradient. The frozen norm scale gets no
// output, the unread trainable bias gets zeros of its type.
// CHECK-LABEL: func.func @tied
// CHECK-SAME: -> (tensor<2x4x16xf32> {sc.name = "logits"}, tensor<f32> {sc.name = "loss"}, tensor<16x8xf32> {sc.name = "grad.m.embed"}, tensor<8xbf16> {sc.name = "grad.m.unused"})
// CHECK-NOT: grad.m.norm
// CHECK: %[[E:.*]] = sc.param "m.embed"
// CHECK: %[[DL:.*]] = sc.token_loss_grad
// CHECK: %[[DHEAD:.*]] = sc.matmul %{{.*}}, %{{.*}} : (tensor<16x8xf32>, tensor<8x8xf32>) -> tensor<16x8xf32>
// CHECK: %[[DEMB:.*]] = sc.embedding_grad %arg0, %{{.*}} : (tensor<2x4xi64>, tensor<2x4x8xf32>) -> tensor<16x8xf32>
// CHECK: %[[DE:.*]] = sc.add %[[DHEAD]], %[[DEMB]] : (tensor<16x8xf32>, tensor<16x8xf32>) -> tensor<16x8xf32>
// CHECK: %[[Z:.*]] = sc.constant dense<0.000000e+00> : tensor<8xbf16>
// CHECK: return %{{.*}}, %{{.*}}, %[[DE]], %[[Z]] : tensor<2x4x16xf32>, tensor<f32>, tensor<16x8xf32>, tensor<8xbf16>
module attributes {sc.train = {labels = "input"}} {
  func.func @tied(%ids: tensor<2x4xi64> {sc.name = "input_ids"}, %labels: tensor<2x4xi64> {sc.name = "labels"}) -> (tensor<2x4x16xf32> {sc.name = "logits"}, tensor<f32> {sc.name = "loss"}) {
    %e = sc.param "m.embed" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = ["m.head"], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32>
    %n = sc.param "m.norm" {file = "w.bin", offset = 0 : i64, onnx_name = "f", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %u = sc.param "m.unused" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<8xbf16>
    %x = sc.embedding %e, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %xn = sc.rms_norm %x, %n : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %logits = sc.linear %xn, %e {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
    %sum, %count = sc.token_loss %logits, %labels : (tensor<2x4x16xf32>, tensor<2x4xi64>) -> (tensor<f32>, tensor<f32>)
    %l = sc.div %sum, %count : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %logits, %l : tensor<2x4x16xf32>, tensor<f32>
  }
}
