// What sc-autodiff refuses, each with one error: no `loss` output, a loss that is not an
// f32 scalar, no trainable parameter, an op without a VJP rule on the gradient path, an
// attention mask that depends on a trainable parameter, a linear with a fused epilogue, a
// rotary table that depends on one, a slice with a step, an existing grad.<name> output,
// a program with regions (after sc-group-layers).
// RUN: shardc-opt --sc-autodiff --split-input-file --verify-diagnostics %s

module attributes {sc.train = {labels = "input_ids"}} {
  // expected-error @below {{the output `loss`, which the program lacks}}
  func.func @no_loss(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "logits"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.mul %a, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  // expected-error @below {{the loss must be an f32 scalar, got 'tensor<1x1xf32>'}}
  func.func @loss_not_scalar(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<1x1xf32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.mul %a, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    return %d : tensor<1x1xf32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  // expected-error @below {{mode: train has no trainable parameter}}
  func.func @all_frozen(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "f", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %y = sc.mul %a, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// sc.cumsum has no rule; it is on the path from the loss to m.a.
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @no_rule(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    // expected-error @below {{'sc.cumsum' op has no VJP rule, so sc-autodiff cannot differentiate the loss through it}}
    %e = sc.cumsum %a {axis = 1 : i64} : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %y = sc.mul %e, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// An op without a rule off the gradient path is fine: the softmax reads only an input.
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @no_rule_off_path(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %s = sc.softmax %x : (tensor<2x4xf32>) -> tensor<2x4xf32>
    %y = sc.mul %a, %s : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @trainable_mask(%q: tensor<1x2x3x8xf32> {sc.name = "q"}) -> (tensor<f32> {sc.name = "loss"}) {
    %k = sc.param "m.k" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x2x3x8xf32>
    %b = sc.param "m.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x1x3x3xf32>
    // expected-error @below {{'sc.attention' op has a mask that depends on a trainable parameter}}
    %y = sc.attention %q, %k, %k mask %b {scale = 0.5 : f32} : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>, tensor<1x1x3x3xf32>) -> tensor<1x2x3x8xf32>
    %f = sc.reshape %y : (tensor<1x2x3x8xf32>) -> tensor<1x48xf32>
    %c = sc.constant dense<1.0> : tensor<48x1xf32>
    %d = sc.linear %f, %c : (tensor<1x48xf32>, tensor<48x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @epilogue(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %w = sc.param "m.w" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4x4xf32>
    %b = sc.param "m.b" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<4xf32>
    // expected-error @below {{'sc.linear' op has a fused epilogue; sc-autodiff runs before sc-fuse-linear-epilogue}}
    %y = sc.linear %x, %w, %b {epilogue = #sc.epilogue<gelu_tanh>} : (tensor<2x4xf32>, tensor<4x4xf32>, tensor<4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @trainable_rotary_table(%x: tensor<1x2x3x8xf32> {sc.name = "x"}, %sin: tensor<3x8xf32> {sc.name = "sin"}) -> (tensor<f32> {sc.name = "loss"}) {
    %cos = sc.param "m.cos" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<3x8xf32>
    // expected-error @below {{'sc.rotary' op has a cos/sin table that depends on a trainable parameter}}
    %y = sc.rotary %x, %cos, %sin : (tensor<1x2x3x8xf32>, tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<1x2x3x8xf32>
    %f = sc.reshape %y : (tensor<1x2x3x8xf32>) -> tensor<1x48xf32>
    %c = sc.constant dense<1.0> : tensor<48x1xf32>
    %d = sc.linear %f, %c : (tensor<1x48xf32>, tensor<48x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @strided_slice(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x8xf32>
    // expected-error @below {{'sc.slice' op has a step of 2; its VJP is written for unit steps}}
    %y = sc.slice %a {starts = array<i64: 0, 0>, steps = array<i64: 1, 2>} : (tensor<2x8xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  // expected-error @below {{the graph already has an output named grad.m.a}}
  func.func @name_clash(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}, tensor<2x4xf32> {sc.name = "grad.m.a"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.mul %a, %x : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l, %y : tensor<f32>, tensor<2x4xf32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @vocab_split_embedding(%ids: tensor<2x4xi64> {sc.name = "input_ids"}, %start: tensor<i64> {sc.name = "start"}) -> (tensor<f32> {sc.name = "loss"}) {
    %e = sc.param "m.e" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<8x4xf32>
    // expected-error @below {{'sc.embedding' op is vocabulary-split already; sc-autodiff runs on the global program}}
    %x = sc.embedding %e, %ids rows_from %start {vocab_size = 16 : i64} : (tensor<8x4xf32>, tensor<2x4xi64>, tensor<i64>) -> tensor<2x4x4xf32>
    %f = sc.reshape %x : (tensor<2x4x4xf32>) -> tensor<1x32xf32>
    %c = sc.constant dense<1.0> : tensor<32x1xf32>
    %d = sc.linear %f, %c : (tensor<1x32xf32>, tensor<32x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

module attributes {sc.train = {labels = "input_ids"}} {
  func.func @regions(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    // expected-error @below {{'sc.fused' op sc-autodiff runs on the flat program, before sc-group-layers}}
    %y = sc.fused %a : (tensor<2x4xf32>) -> tensor<2x4xf32> {
    ^bb0(%arg1: tensor<2x4xf32>):
      %n = sc.neg %arg1 : (tensor<2x4xf32>) -> tensor<2x4xf32>
      sc.fused_yield %n : tensor<2x4xf32>
    }
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32>
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
