// sc-checkpoint-activations after sc-autodiff: with `full` each layer's forward ops that the
// backward reads are recomputed right before the layer's backward first needs them, from the
// kept values (the layer's input and output, the parameters); the backward reads the clones.
// `selective` keeps GEMM results (and the residual adds that read them), so here nothing is
// recomputed; without the key the pass does nothing.
// RUN: shardc-opt --sc-autodiff --sc-checkpoint-activations --split-input-file %s 2>&1 | FileCheck %s

// CHECK: remark: activation checkpointing (full): 2 forward ops of 2 layers recomputed in backward; 64 bytes of forward activations (global) no longer held for the backward
// CHECK-LABEL: func.func @two_layers
// CHECK: %[[W0:.*]] = sc.param "m.layers.0.w"
// CHECK: %[[W1:.*]] = sc.param "m.layers.1.w"
// CHECK: %[[A0:.*]] = sc.linear %arg0, %[[W0]]
// CHECK: %[[H0:.*]] = sc.add %arg0
// CHECK: %[[A1:.*]] = sc.linear %[[H0]], %[[W1]]
// The loss's backward, then layer 1's: a1 recomputed from the kept h0, silu's VJP reads it.
// CHECK: %[[R1:.*]] = sc.linear %[[H0]], %[[W1]] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: sc.silu_grad %[[R1]],
// CHECK: sc.transpose %[[H0]]
// Layer 0's: a0 recomputed from the input.
// CHECK: %[[R0:.*]] = sc.linear %arg0, %[[W0]] : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: sc.silu_grad %[[R0]],
// CHECK-NOT: sc.silu_grad %[[A1]]
// CHECK-NOT: sc.silu_grad %[[A0]]
module attributes {sc.train = {labels = "input_ids", activation_checkpointing = "full"}} {
  func.func @two_layers(%i: tensor<2x4xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w0 = sc.param "m.layers.0.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %w1 = sc.param "m.layers.1.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %a0 = sc.linear %i, %w0 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %s0 = sc.silu %a0 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %h0 = sc.add %i, %s0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %a1 = sc.linear %h0, %w1 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %s1 = sc.silu %a1 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %h1 = sc.add %h0, %s1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %f = sc.reshape %h1 : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
#l0 = loc("n0"("m.layers.0.mlp"("t.onnx":1:0)))
#l1 = loc("n1"("m.layers.1.mlp"("t.onnx":2:0)))

// -----

// CHECK-NOT: remark: activation checkpointing
// CHECK-LABEL: func.func @two_layers_selective
// CHECK: %[[A1:.*]] = sc.linear %{{.*}}, %{{.*}} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
// CHECK-NEXT: sc.silu %[[A1]]
// CHECK: sc.silu_grad %[[A1]],
module attributes {sc.train = {labels = "input_ids", activation_checkpointing = "selective"}} {
  func.func @two_layers_selective(%i: tensor<2x4xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w0 = sc.param "m.layers.0.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %w1 = sc.param "m.layers.1.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %a0 = sc.linear %i, %w0 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %s0 = sc.silu %a0 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %h0 = sc.add %i, %s0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %a1 = sc.linear %h0, %w1 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %s1 = sc.silu %a1 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %h1 = sc.add %h0, %s1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %f = sc.reshape %h1 : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
#l0 = loc("n0"("m.layers.0.mlp"("t.onnx":1:0)))
#l1 = loc("n1"("m.layers.1.mlp"("t.onnx":2:0)))

// -----

// CHECK-LABEL: func.func @two_layers_unchecked
// CHECK-COUNT-3: sc.linear
// CHECK-NOT: sc.linear %{{[0-9]+}}, %{{[0-9]+}} : (tensor<2x4xf32>, tensor<4x4xf32>)
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @two_layers_unchecked(%i: tensor<2x4xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w0 = sc.param "m.layers.0.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %w1 = sc.param "m.layers.1.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %a0 = sc.linear %i, %w0 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %s0 = sc.silu %a0 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %h0 = sc.add %i, %s0 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l0)
    %a1 = sc.linear %h0, %w1 : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %s1 = sc.silu %a1 : (tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %h1 = sc.add %h0, %s1 : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc(#l1)
    %f = sc.reshape %h1 : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
#l0 = loc("n0"("m.layers.0.mlp"("t.onnx":1:0)))
#l1 = loc("n1"("m.layers.1.mlp"("t.onnx":2:0)))
