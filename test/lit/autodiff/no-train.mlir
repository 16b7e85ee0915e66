// Without sc.train, sc-autodiff changes nothing (an inference compile), even with a
// trainable parameter and a `loss` output; with sc.train the same module (its output renamed) fails with the pass's error.
// RUN: shardc-opt --sc-autodiff %s | FileCheck %s
// RUN: sed 's/^module {/module attributes {sc.train = {labels = "input_ids"}} {/; s/"loss"/"logits"/' %s | not shardc-opt --sc-autodiff 2>&1 | FileCheck --check-prefix=ERR %s

// CHECK-LABEL: func.func @inference
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}) {
// CHECK-NOT: grad.
// CHECK-NOT: sc.silu_grad
// CHECK: return %{{.*}} : tensor<f32>
// ERR: error: sc-autodiff: mode: train differentiates the output `loss`, which the program lacks (sc-add-loss adds it)
module {
  func.func @inference(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.silu %a : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
