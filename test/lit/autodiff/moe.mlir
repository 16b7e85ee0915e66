// The VJP rules of a raised MoE block (docs/moe.md#training): the router's combine weights
// carry its gradient to the router logits through sc.moe_router_grad (the choice held fixed,
// no gradient for the frozen score bias); sc.moe_experts_grad gives the gradients of the
// tokens, the combine weights and both expert stacks at once.
// RUN: shardc-opt --sc-autodiff %s | FileCheck %s

// CHECK-LABEL: func.func @moe_block
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<4x8xf32> {sc.name = "grad.m.gate"}, tensor<4x12x8xf32> {sc.name = "grad.m.gate_up"}, tensor<4x8x6xf32> {sc.name = "grad.m.down"})
// CHECK: %[[GATE:.*]] = sc.param "m.gate"
// CHECK: %[[GU:.*]] = sc.param "m.gate_up"
// CHECK: %[[DN:.*]] = sc.param "m.down"
// CHECK: %[[LOGITS:.*]] = sc.linear %[[X:.*]], %[[GATE]]
// CHECK: %[[IDS:.*]], %[[W:.*]] = sc.moe_router %[[LOGITS]], %{{.*}} {norm_epsilon = {{.*}}, normalize = true, scale = 2.500000e+00 : f64, scoring = "sigmoid"}
// CHECK: sc.moe_experts %[[X]], %[[IDS]], %[[W]], %[[GU]], %[[DN]]
// CHECK: %[[DX:.*]], %[[DW:.*]], %[[DGU:.*]], %[[DDN:.*]], %{{.*}} = sc.moe_experts_grad %[[X]], %[[IDS]], %[[W]], %[[GU]], %[[DN]], %{{.*}} : (tensor<5x8xf32>, tensor<5x2xi64>, tensor<5x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>, tensor<5x8xf32>) -> (tensor<5x8xf32>, tensor<5x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>, tensor<10x18xf32>)
// CHECK: %[[DL:.*]] = sc.moe_router_grad %[[LOGITS]], %[[IDS]], %[[DW]] {norm_epsilon = {{.*}}, normalize = true, scale = 2.500000e+00 : f64, scoring = "sigmoid"} : (tensor<5x4xf32>, tensor<5x2xi64>, tensor<5x2xf32>) -> tensor<5x4xf32>
// CHECK: %[[DLT:.*]] = sc.transpose %[[DL]]
// CHECK: %[[DGATE:.*]] = sc.matmul %[[DLT]], %[[X]]
// CHECK: return %{{.*}}, %[[DGATE]], %[[DGU]], %[[DDN]]
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @moe_block(%x: tensor<5x8xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %gate = sc.param "m.gate" {file = "w.bin", offset = 0 : i64, onnx_name = "g", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x8xf32>
    %bias = sc.param "m.bias" {file = "w.bin", offset = 128 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<4xf32>
    %gu = sc.param "m.gate_up" {file = "w.bin", offset = 256 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x12x8xf32>
    %dn = sc.param "m.down" {file = "w.bin", offset = 2048 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x8x6xf32>
    %logits = sc.linear %x, %gate {transpose_weight = true} : (tensor<5x8xf32>, tensor<4x8xf32>) -> tensor<5x4xf32>
    %ids, %w = sc.moe_router %logits, %bias {scoring = "sigmoid", normalize = true, norm_epsilon = 1.0e-20 : f64, scale = 2.5 : f64} : (tensor<5x4xf32>, tensor<4xf32>) -> (tensor<5x2xi64>, tensor<5x2xf32>)
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<5x8xf32>, tensor<5x2xi64>, tensor<5x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<5x8xf32>, tensor<10x6xf32>)
    %f = sc.reshape %y : (tensor<5x8xf32>) -> tensor<1x40xf32>
    %c = sc.constant dense<1.0> : tensor<40x1xf32>
    %d = sc.linear %f, %c : (tensor<1x40xf32>, tensor<40x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
