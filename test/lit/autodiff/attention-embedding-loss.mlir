// sc-autodiff through the ops whose backward is an op of its own: attention (the forward is
// rebuilt with its lse result, which sc.attention_grad reads; the old forward is erased),
// embedding (sc.embedding_grad of the ids and the gradient) and token_loss (sc.token_loss_grad
// of the sum's gradient; the count carries none).
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// GQA attention (4 query heads, 2 key/value heads), causal, with a constant mask; q, k, v
// are parameters.
// CHECK-LABEL: func.func @attention
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<1x4x3x8xf32> {sc.name = "grad.m.q"}, tensor<1x2x3x8xf32> {sc.name = "grad.m.k"}, tensor<1x2x3x8xf32> {sc.name = "grad.m.v"})
// CHECK: %[[Q:.*]] = sc.param "m.q"
// CHECK: %[[K:.*]] = sc.param "m.k"
// CHECK: %[[V:.*]] = sc.param "m.v"
// CHECK: %[[M:.*]] = sc.constant dense<0.000000e+00> : tensor<1x1x3x3xf32>
// CHECK-NOT: sc.attention
// CHECK: %[[O:.*]], %[[LSE:.*]] = sc.attention %[[Q]], %[[K]], %[[V]] mask %[[M]] {causal = true, scale = 0.353553385 : f32} : (tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x1x3x3xf32>) -> (tensor<1x4x3x8xf32>, tensor<1x4x3xf32>)
// CHECK-NEXT: sc.reshape %[[O]] : (tensor<1x4x3x8xf32>) -> tensor<1x96xf32>
// CHECK-NOT: sc.attention %
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x96xf32>) -> tensor<1x4x3x8xf32>
// CHECK: %[[DQ:.*]], %[[DK:.*]], %[[DV:.*]] = sc.attention_grad %[[Q]], %[[K]], %[[V]], %[[O]], %[[LSE]], %[[G]] mask %[[M]] {causal = true, scale = 0.353553385 : f32} : (tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x4x3x8xf32>, tensor<1x4x3xf32>, tensor<1x4x3x8xf32>, tensor<1x1x3x3xf32>) -> (tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>)
// CHECK: return %{{.*}}, %[[DQ]], %[[DK]], %[[DV]] : tensor<f32>, tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @attention(%i: tensor<2x2xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %q = sc.param "m.q" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x4x3x8xf32>
    %k = sc.param "m.k" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x2x3x8xf32>
    %v = sc.param "m.v" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x2x3x8xf32>
    %m = sc.constant dense<0.0> : tensor<1x1x3x3xf32>
    %y = sc.attention %q, %k, %v mask %m {scale = 0.353553385 : f32, causal = true} : (tensor<1x4x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x1x3x3xf32>) -> tensor<1x4x3x8xf32>
    %f = sc.reshape %y : (tensor<1x4x3x8xf32>) -> tensor<1x96xf32>
    %c = sc.constant dense<1.0> : tensor<96x1xf32>
    %d = sc.linear %f, %c : (tensor<1x96xf32>, tensor<96x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// Only the value is trainable: the grad op still computes all three, and only dvalue is
// returned. Without a mask, attention_grad has none.
// CHECK-LABEL: func.func @attention_value_only
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<1x2x3x8xf32> {sc.name = "grad.m.v"})
// CHECK: %[[O:.*]], %[[LSE:.*]] = sc.attention %arg0, %arg1, %[[V:.*]] {scale = 5.000000e-01 : f32}
// CHECK: %{{.*}}, %{{.*}}, %[[DV:.*]] = sc.attention_grad %arg0, %arg1, %[[V]], %[[O]], %[[LSE]], %{{[^ ]*}} {scale = 5.000000e-01 : f32} :
// CHECK: return %{{.*}}, %[[DV]] : tensor<f32>, tensor<1x2x3x8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @attention_value_only(%q: tensor<1x2x3x8xf32> {sc.name = "q"}, %k: tensor<1x2x3x8xf32> {sc.name = "k"}) -> (tensor<f32> {sc.name = "loss"}) {
    %v = sc.param "m.v" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x2x3x8xf32>
    %y = sc.attention %q, %k, %v {scale = 0.5 : f32} : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
    %f = sc.reshape %y : (tensor<1x2x3x8xf32>) -> tensor<1x48xf32>
    %c = sc.constant dense<1.0> : tensor<48x1xf32>
    %d = sc.linear %f, %c : (tensor<1x48xf32>, tensor<48x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// The causal-LM loss as sc-add-loss writes it (token_loss, then the sum divided by the count)
// over an embedding and an lm_head: the table's gradient is embedding_grad of the ids and
// dx, where dx = dlogits·W (the linear's transposed-weight rule), and dlogits is
// token_loss_grad of d sum = 1/count (div's rule).
// CHECK-LABEL: func.func @embedding_token_loss
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x4xi64> {sc.name = "input_ids"}, %[[LAB:.*]]: tensor<2x4xi64> {sc.name = "labels"})
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<16x8xf32> {sc.name = "grad.m.embed"}, tensor<16x8xf32> {sc.name = "grad.m.head"})
// CHECK: %[[E:.*]] = sc.param "m.embed"
// CHECK: %[[H:.*]] = sc.param "m.head"
// CHECK: %[[X:.*]] = sc.embedding %[[E]], %[[IDS]]
// CHECK: %[[LOGITS:.*]] = sc.linear %[[X]], %[[H]] {transpose_weight = true}
// CHECK: %[[SUM:.*]], %[[COUNT:.*]] = sc.token_loss %[[LOGITS]], %[[LAB]]
// CHECK: %[[LOSS:.*]] = sc.div %[[SUM]], %[[COUNT]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: %[[SEED:.*]] = sc.constant dense<1.000000e+00> : tensor<f32>
// CHECK: %[[DSUM:.*]] = sc.div %[[SEED]], %[[COUNT]] : (tensor<f32>, tensor<f32>) -> tensor<f32>
// CHECK: %[[DL:.*]] = sc.token_loss_grad %[[LOGITS]], %[[LAB]], %[[DSUM]] : (tensor<2x4x16xf32>, tensor<2x4xi64>, tensor<f32>) -> tensor<2x4x16xf32>
// CHECK: %[[DX:.*]] = sc.linear %[[DL]], %[[H]] : (tensor<2x4x16xf32>, tensor<16x8xf32>) -> tensor<2x4x8xf32>
// CHECK: %[[DH:.*]] = sc.matmul
// CHECK: %[[DE:.*]] = sc.embedding_grad %[[IDS]], %[[DX]] : (tensor<2x4xi64>, tensor<2x4x8xf32>) -> tensor<16x8xf32>
// CHECK: return %[[LOSS]], %[[DE]], %[[DH]] : tensor<f32>, tensor<16x8xf32>, tensor<16x8xf32>
module attributes {sc.train = {labels = "input"}} {
  func.func @embedding_token_loss(%ids: tensor<2x4xi64> {sc.name = "input_ids"}, %labels: tensor<2x4xi64> {sc.name = "labels"}) -> (tensor<f32> {sc.name = "loss"}) {
    %e = sc.param "m.embed" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32>
    %h = sc.param "m.head" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32>
    %x = sc.embedding %e, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %logits = sc.linear %x, %h {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<16x8xf32>) -> tensor<2x4x16xf32>
    %sum, %count = sc.token_loss %logits, %labels : (tensor<2x4x16xf32>, tensor<2x4xi64>) -> (tensor<f32>, tensor<f32>)
    %l = sc.div %sum, %count : (tensor<f32>, tensor<f32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// An embedding with PyTorch's padding_idx (read by the importer from the exporter's record):
// its gradient gives that row nothing (sc.embedding_grad's padding_idx).
// CHECK-LABEL: func.func @embedding_padding_idx
// CHECK: sc.embedding_grad %{{.*}}, %{{.*}} {padding_idx = 3 : i64} : (tensor<2x4xi64>, tensor<2x4x8xf32>) -> tensor<16x8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @embedding_padding_idx(%ids: tensor<2x4xi64> {sc.name = "input_ids"}) -> (tensor<f32> {sc.name = "loss"}) {
    %e = sc.param "m.embed" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<16x8xf32>
    %x = sc.embedding %e, %ids {padding_idx = 3 : i64} : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    %s = sc.reduce_sum %x {axes = array<i64: 0, 1, 2>, keepdims = false} : (tensor<2x4x8xf32>) -> tensor<f32>
    return %s : tensor<f32>
  }
}
