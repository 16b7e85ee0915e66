// sc-add-loss's refusals: no token ids, no logits-like output (the message names the outputs
// and the ONNX nodes and module paths that produce them).
// RUN: not shardc-opt --sc-add-loss --split-input-file %s -o /dev/null 2>&1 | FileCheck %s

// CHECK: error: sc-add-loss: mode: train needs the logits, a float output [2, 8, V]; the outputs are: 'hidden' [2, 8] f32 from node 'node_norm' (m.model.norm)
#n = loc("node_norm"("m.model.norm"("t.onnx":5:0)))
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @no_logits(%ids: tensor<2x8xi64> {sc.name = "input_ids"}, %x: tensor<2x8xf32>) -> (tensor<2x8xf32> {sc.name = "hidden"}) {
    %y = sc.neg %x : (tensor<2x8xf32>) -> tensor<2x8xf32> loc(#n)
    return %y : tensor<2x8xf32>
  }
}

// -----

// CHECK: error: sc-add-loss: mode: train needs the token ids, an int64 input [B, S] named input_ids; the graph has no int64 [B, S] input
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @no_ids(%x: tensor<2x8x16xf32> {sc.name = "x"}) -> (tensor<2x8x16xf32> {sc.name = "logits"}) {
    %y = sc.neg %x : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    return %y : tensor<2x8x16xf32>
  }
}

// -----

// CHECK: error: sc-add-loss: the graph already has an output named loss
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @taken(%ids: tensor<2x8xi64> {sc.name = "input_ids"}, %x: tensor<2x8x16xf32>) -> (tensor<2x8x16xf32> {sc.name = "logits"}, tensor<2x8x16xf32> {sc.name = "loss"}) {
    return %x, %x : tensor<2x8x16xf32>, tensor<2x8x16xf32>
  }
}
