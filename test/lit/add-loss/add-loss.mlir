// sc-add-loss: the causal-LM loss appended for a `mode: train` plan (sc.train). The shift
// (slice from position 1, -100 appended), sc.token_loss and the division by the count, the
// new `loss` output after the logits; with {labels = "input"} a new `labels` input is shifted.
// RUN: shardc-opt --sc-add-loss --split-input-file %s | FileCheck %s

// CHECK-LABEL: func.func @ids
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x8xi64> {sc.name = "input_ids"})
// CHECK-SAME: -> (tensor<2x8x16xf32> {sc.name = "logits"}, tensor<f32> {sc.name = "loss"})
// CHECK: %[[LOGITS:.*]] = sc.embedding
// CHECK: %[[NEXT:.*]] = sc.slice %[[IDS]] {starts = array<i64: 0, 1>, steps = array<i64: 1, 1>} : (tensor<2x8xi64>) -> tensor<2x7xi64>
// CHECK: %[[PAD:.*]] = sc.constant dense<-100> : tensor<2x1xi64>
// CHECK: %[[LABELS:.*]] = sc.concat %[[NEXT]], %[[PAD]] {axis = 1 : i64} : (tensor<2x7xi64>, tensor<2x1xi64>) -> tensor<2x8xi64>
// CHECK: %[[SUM:.*]], %[[COUNT:.*]] = sc.token_loss %[[LOGITS]], %[[LABELS]] : (tensor<2x8x16xf32>, tensor<2x8xi64>) -> (tensor<f32>, tensor<f32>)
// CHECK: %[[LOSS:.*]] = sc.div %[[SUM]], %[[COUNT]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: return %[[LOGITS]], %[[LOSS]] : tensor<2x8x16xf32>, tensor<f32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @ids(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xf32> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %y = sc.embedding %t, %ids : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}

// -----

// CHECK-LABEL: func.func @labels_input
// CHECK-SAME: (%{{.*}}: tensor<2x8xi64> {sc.name = "input_ids"}, %[[LAB:.*]]: tensor<2x8xi64> {sc.name = "labels"})
// CHECK-SAME: -> (tensor<2x8x16xbf16> {sc.name = "logits"}, tensor<f32> {sc.name = "loss"})
// CHECK: sc.slice %[[LAB]]
// CHECK: sc.token_loss {{.*}} : (tensor<2x8x16xbf16>, tensor<2x8xi64>) -> (tensor<f32>, tensor<f32>)
module attributes {sc.train = {labels = "input"}} {
  func.func @labels_input(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xbf16> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xbf16>
    %y = sc.embedding %t, %ids : (tensor<32x16xbf16>, tensor<2x8xi64>) -> tensor<2x8x16xbf16>
    return %y : tensor<2x8x16xbf16>
  }
}

// -----

// Without sc.train the pass changes nothing.
// CHECK-LABEL: func.func @inference
// CHECK-NOT: sc.token_loss
// CHECK: return %{{.*}} : tensor<2x8x16xf32>
module {
  func.func @inference(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xf32> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %y = sc.embedding %t, %ids : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}

// -----

// loss_parallel: the vocabulary-parallel form (the row max through sc.stop_gradient, the
// slice statistics, the combine); with an optimizer the step returns the loss alone.
// CHECK-LABEL: func.func @loss_parallel
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"})
// CHECK: %[[LOGITS:.*]] = sc.embedding
// CHECK: %[[LABELS:.*]] = sc.concat
// CHECK: %[[MAX:.*]] = sc.reduce_max %[[LOGITS]] {axes = array<i64: 2>, keepdims = false} : (tensor<2x8x16xbf16>) -> tensor<2x8xbf16>
// CHECK: %[[M:.*]] = sc.stop_gradient %[[MAX]]
// CHECK: %[[SE:.*]], %[[PK:.*]] = sc.token_loss_stats %[[LOGITS]], %[[LABELS]], %[[M]] : (tensor<2x8x16xbf16>, tensor<2x8xi64>, tensor<2x8xbf16>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
// CHECK: %[[SUM:.*]], %[[COUNT:.*]] = sc.token_loss_combine %[[SE]], %[[PK]], %[[M]], %[[LABELS]]
// CHECK: %[[LOSS:.*]] = sc.div %[[SUM]], %[[COUNT]]
// CHECK: return %[[LOSS]] : tensor<f32>
module attributes {sc.train = {labels = "input_ids", loss_parallel = true, optimizer = {lr = 1.0e-3 : f64, beta1 = 0.9 : f64, beta2 = 0.999 : f64, eps = 1.0e-8 : f64, weight_decay = 0.01 : f64}}} {
  func.func @loss_parallel(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xbf16> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xbf16>
    %y = sc.embedding %t, %ids : (tensor<32x16xbf16>, tensor<2x8xi64>) -> tensor<2x8x16xbf16>
    return %y : tensor<2x8x16xbf16>
  }
}

// -----

// Without loss_parallel, a mesh with tp > 1 turns it on; tp = 1 keeps sc.token_loss.
// CHECK-LABEL: func.func @tp2
// CHECK: sc.token_loss_stats
// CHECK-NOT: sc.token_loss %
module attributes {sc.mesh = [["tp", 2]], sc.train = {labels = "input_ids"}} {
  func.func @tp2(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xf32> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %y = sc.embedding %t, %ids : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}

// -----

// CHECK-LABEL: func.func @tp2_off
// CHECK: sc.token_loss %
// CHECK-NOT: sc.token_loss_stats
module attributes {sc.mesh = [["tp", 2]], sc.train = {labels = "input_ids", loss_parallel = false}} {
  func.func @tp2_off(%ids: tensor<2x8xi64> {sc.name = "input_ids"}) -> (tensor<2x8x16xf32> {sc.name = "logits"}) {
    %t = sc.param "m.e.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %y = sc.embedding %t, %ids : (tensor<32x16xf32>, tensor<2x8xi64>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}
