// The VJP of expert_tp's halves (docs/moe.md#training): when sc.moe_experts reads the concat of
// the gate and up halves (sc.expert_halves), its sc.moe_experts_grad is marked sc.expert_halves
// (its rule then splits I as the forward's does, and the gradients of x and of the weights are
// Partial) and the concat's gradient is an sc.split marked sc.expert_halves (each half's part
// from the local [gate_r; up_r]), not slices that would gather it first.
// RUN: shardc-opt --sc-autodiff %s | FileCheck %s

// CHECK-LABEL: func.func @halves
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<4x6x8xf32> {sc.name = "grad.m.gate_up.part0"}, tensor<4x6x8xf32> {sc.name = "grad.m.gate_up.part1"}, tensor<4x8x6xf32> {sc.name = "grad.m.down"})
// CHECK: %[[CAT:.*]] = sc.concat %{{.*}}, %{{.*}} {axis = 1 : i64, sc.expert_halves}
// CHECK: %{{.*}}, %{{.*}}, %[[DGU:.*]], %[[DDN:.*]], %{{.*}} = sc.moe_experts_grad %{{.*}}, %{{.*}}, %{{.*}}, %[[CAT]], %{{.*}}, %{{.*}} {sc.expert_halves}
// CHECK: %[[HALVES:.*]]:2 = sc.split %[[DGU]] {axis = 1 : i64, sc.expert_halves} : (tensor<4x12x8xf32>) -> (tensor<4x6x8xf32>, tensor<4x6x8xf32>)
// CHECK-NOT: sc.slice
// CHECK: return %{{.*}}, %[[HALVES]]#0, %[[HALVES]]#1, %[[DDN]]
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @halves(%x: tensor<5x8xf32> {sc.name = "x"}, %ids: tensor<5x2xi64> {sc.name = "ids"}, %w: tensor<5x2xf32> {sc.name = "w"}) -> (tensor<f32> {sc.name = "loss"}) {
    %g = sc.param "m.gate_up.part0" {file = "w.bin", offset = 0 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x6x8xf32>
    %u = sc.param "m.gate_up.part1" {file = "w.bin", offset = 768 : i64, onnx_name = "gu", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x6x8xf32>
    %dn = sc.param "m.down" {file = "w.bin", offset = 1536 : i64, onnx_name = "dn", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x8x6xf32>
    %gu = sc.concat %g, %u {axis = 1 : i64, sc.expert_halves} : (tensor<4x6x8xf32>, tensor<4x6x8xf32>) -> tensor<4x12x8xf32>
    %y, %h = sc.moe_experts %x, %ids, %w, %gu, %dn : (tensor<5x8xf32>, tensor<5x2xi64>, tensor<5x2xf32>, tensor<4x12x8xf32>, tensor<4x8x6xf32>) -> (tensor<5x8xf32>, tensor<10x6xf32>)
    %f = sc.reshape %y : (tensor<5x8xf32>) -> tensor<1x40xf32>
    %c = sc.constant dense<1.0> : tensor<40x1xf32>
    %d = sc.linear %f, %c : (tensor<1x40xf32>, tensor<40x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
