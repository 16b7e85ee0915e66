// RUN: shardc-opt --sc-group-layers --split-input-file --verify-diagnostics %s | FileCheck %s

// Two decoder layers: each becomes one sc.layer yielding the residual stream; the param
// stays at function top and is used from inside the region; an unrelated op without a
// layer path between layer ops is hoisted before the layer.
// CHECK-LABEL: func @two_layers
// CHECK: %[[W:.*]] = sc.param "m.model.layers.0.mlp.up_proj.weight"
// CHECK: %[[N:.*]] = sc.neg %arg1
// CHECK: %[[L0:.*]] = sc.layer "m.model.layers.0" -> tensor<4x16xf32> {
// CHECK:   %[[A:.*]] = sc.linear %arg0, %[[W]]
// CHECK:   %[[R:.*]] = sc.add %arg0, %[[A]]
// CHECK:   sc.yield %[[R]] : tensor<4x16xf32>
// CHECK: }
// CHECK: %[[L1:.*]] = sc.layer "m.model.layers.1" -> tensor<4x16xf32> {
// CHECK:   sc.silu %[[L0]]
// CHECK:   sc.yield
// CHECK: }
// CHECK: sc.add %[[L1]], %[[N]]
func.func @two_layers(%x: tensor<4x16xf32>, %y: tensor<4x16xf32>) -> tensor<4x16xf32> {
  %w = sc.param "m.model.layers.0.mlp.up_proj.weight" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x16xf32> loc("m.model.layers.0.mlp.up_proj.weight")
  %0 = sc.linear %x, %w : (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32> loc("n1"("m.model.layers.0.mlp.up_proj"("m.onnx":1:0)))
  %n = sc.neg %y : (tensor<4x16xf32>) -> tensor<4x16xf32> loc("n2"("m.model.rotary_emb"("m.onnx":2:0)))
  %1 = sc.add %x, %0 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("n3"("m.model.layers.0"("m.onnx":3:0)))
  %2 = sc.silu %1 : (tensor<4x16xf32>) -> tensor<4x16xf32> loc("n4"("m.model.layers.1.mlp.act_fn"("m.onnx":4:0)))
  %3 = sc.mul %2, %1 : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("n5"("m.model.layers.1"("m.onnx":5:0)))
  %4 = sc.add %3, %n : (tensor<4x16xf32>, tensor<4x16xf32>) -> tensor<4x16xf32> loc("n6"("m.model.norm"("m.onnx":6:0)))
  return %4 : tensor<4x16xf32>
}

// -----

// GPT-2's `h.N` and BERT's `encoder.layer.N` containers; a layer yields two values.
// CHECK-LABEL: func @other_containers
// CHECK: sc.layer "transformer.h.0" -> tensor<4xf32>, tensor<4xf32> {
// CHECK: sc.layer "bert.encoder.layer.0" -> tensor<4xf32>
func.func @other_containers(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32> loc("a"("transformer.h.0.attn"("m.onnx":1:0)))
  %1 = sc.exp %x : (tensor<4xf32>) -> tensor<4xf32> loc("b"("transformer.h.0.mlp"("m.onnx":2:0)))
  %2 = sc.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("c"("bert.encoder.layer.0.output"("m.onnx":3:0)))
  return %2 : tensor<4xf32>
}

// -----

// Layers interleaved (layer 0, layer 1, layer 0): refused with a remark, IR unchanged.
// CHECK-LABEL: func @interleaved_refused
// CHECK-NOT: sc.layer
// expected-remark @below {{layers not grouped: the ops of 'm.layers.0' are not contiguous}}
func.func @interleaved_refused(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32> loc("a"("m.layers.0.attn"("m.onnx":1:0)))
  %1 = sc.exp %0 : (tensor<4xf32>) -> tensor<4xf32> loc("b"("m.layers.1.mlp"("m.onnx":2:0)))
  %2 = sc.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("c"("m.layers.0"("m.onnx":3:0)))
  return %2 : tensor<4xf32>
}

// -----

// An op outside any layer that depends on layer 0 and feeds it again: not contiguous.
// CHECK-LABEL: func @dependent_outsider_refused
// CHECK-NOT: sc.layer
// expected-remark @below {{layers not grouped}}
func.func @dependent_outsider_refused(%x: tensor<4xf32>) -> tensor<4xf32> {
  %0 = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32> loc("a"("m.layers.0.attn"("m.onnx":1:0)))
  %1 = sc.exp %0 : (tensor<4xf32>) -> tensor<4xf32> loc("b"("m.norm"("m.onnx":2:0)))
  %2 = sc.add %0, %1 : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32> loc("c"("m.layers.0"("m.onnx":3:0)))
  return %2 : tensor<4xf32>
}
