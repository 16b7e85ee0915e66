// sc-apply-plan's diagnostics at ops that carry module paths (their locations are the
// ONNX node's: t.onnx:N:0), beyond sharding/errors.mlir: styles, features, tied weights and
// packed_colwise. The input states what `shardc compile --plan` records on the module:
// sc.mesh and sc.tp_styles (module path -> style).
// RUN: not shardc-opt --sc-apply-plan --split-input-file %s -o /dev/null 2>&1 | FileCheck %s

// CHECK: t.onnx:1:0: error: tensor-parallel style 'embedding_rowwise' of m.x is not implemented yet
#lin = loc("node_x"("m.x"("t.onnx":1:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.x" = #sc.tp_style<embedding_rowwise>}} {
  func.func @style_on_linear(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %w = sc.param "m.x.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#lin)
    return %y : tensor<4x8xf32>
  }
}

// -----

// CHECK: t.onnx:2:0: error: m.x is colwise but its weight is not a parameter
#lin = loc("node_x"("m.x"("t.onnx":2:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.x" = #sc.tp_style<colwise>}} {
  func.func @weight_not_param(%x: tensor<4x8xf32>, %w: tensor<8x8xf32>) -> tensor<4x8xf32> {
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#lin)
    return %y : tensor<4x8xf32>
  }
}

// -----

// CHECK: t.onnx:3:0: error: m.x (rowwise): input features 6 do not divide over tp = 4
#lin = loc("node_x"("m.x"("t.onnx":3:0)))
module attributes {sc.mesh = [["tp", 4]], sc.tp_styles = {"m.x" = #sc.tp_style<rowwise>}} {
  func.func @input_features(%x: tensor<4x6xf32>) -> tensor<4x8xf32> {
    %w = sc.param "m.x.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x6xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x6xf32>, tensor<8x6xf32>) -> tensor<4x8xf32> loc(#lin)
    return %y : tensor<4x8xf32>
  }
}

// -----

// CHECK: t.onnx:4:0: error: m.x (colwise): output features 6 do not divide over tp = 4
// A colwise linear with a bias is not padded (a bias-free one, an lm_head, would be).
#lin = loc("node_x"("m.x"("t.onnx":4:0)))
module attributes {sc.mesh = [["tp", 4]], sc.tp_styles = {"m.x" = #sc.tp_style<colwise>}} {
  func.func @output_features(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
    %w = sc.param "m.x.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<6x8xf32>
    %b = sc.param "m.x.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<6xf32>
    %y = sc.linear %x, %w, %b {transpose_weight = true} : (tensor<4x8xf32>, tensor<6x8xf32>, tensor<6xf32>) -> tensor<4x6xf32> loc(#lin)
    return %y : tensor<4x6xf32>
  }
}

// -----

// CHECK: t.onnx:6:0: error: parameter m.a.weight is used by modules with different tensor-parallel styles; a tied parameter has one storage sharding
// One parameter read by a colwise and a rowwise module: one storage, two shardings.
#a = loc("node_a"("m.a"("t.onnx":5:0)))
#b = loc("node_b"("m.b"("t.onnx":6:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.a" = #sc.tp_style<colwise>, "m.b" = #sc.tp_style<rowwise>}} {
  func.func @tied(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %w = sc.param "m.a.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = ["m.b.weight"], transform = #sc.transform<none>} : tensor<8x8xf32>
    %y = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#a)
    %z = sc.linear %y, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#b)
    return %z : tensor<4x8xf32>
  }
}

// -----

// CHECK: t.onnx:7:0: error: m.attn.c_attn is packed_colwise but its output is not split into parts
#qkv = loc("node_qkv"("m.attn.c_attn"("t.onnx":7:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.attn.c_attn" = #sc.tp_style<packed_colwise>}} {
  func.func @packed_not_split(%x: tensor<2x4x8xf32>) -> tensor<2x4x24xf32> {
    %w = sc.param "m.attn.c_attn.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x24xf32>
    %y = sc.linear %x, %w : (tensor<2x4x8xf32>, tensor<8x24xf32>) -> tensor<2x4x24xf32> loc(#qkv)
    return %y : tensor<2x4x24xf32>
  }
}

// -----

// CHECK: t.onnx:8:0: error: m.attn.c_attn is packed_colwise but its output is not split evenly along the features
#qkv = loc("node_qkv"("m.attn.c_attn"("t.onnx":8:0)))
module attributes {sc.mesh = [["tp", 2]], sc.tp_styles = {"m.attn.c_attn" = #sc.tp_style<packed_colwise>}} {
  func.func @packed_uneven(%x: tensor<2x4x8xf32>) -> (tensor<2x2x24xf32>, tensor<2x2x24xf32>) {
    %w = sc.param "m.attn.c_attn.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x24xf32>
    %y = sc.linear %x, %w : (tensor<2x4x8xf32>, tensor<8x24xf32>) -> tensor<2x4x24xf32> loc(#qkv)
    %a, %b = sc.split %y {axis = 1 : i64} : (tensor<2x4x24xf32>) -> (tensor<2x2x24xf32>, tensor<2x2x24xf32>)
    return %a, %b : tensor<2x2x24xf32>, tensor<2x2x24xf32>
  }
}

// -----

// CHECK: t.onnx:9:0: error: m.attn.c_attn (packed_colwise): each packed part has 6 features, which do not divide over tp = 4
#qkv = loc("node_qkv"("m.attn.c_attn"("t.onnx":9:0)))
module attributes {sc.mesh = [["tp", 4]], sc.tp_styles = {"m.attn.c_attn" = #sc.tp_style<packed_colwise>}} {
  func.func @packed_part(%x: tensor<2x4x8xf32>) -> (tensor<2x4x6xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>) {
    %w = sc.param "m.attn.c_attn.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x18xf32>
    %y = sc.linear %x, %w : (tensor<2x4x8xf32>, tensor<8x18xf32>) -> tensor<2x4x18xf32> loc(#qkv)
    %q, %k, %v = sc.split %y {axis = 2 : i64} : (tensor<2x4x18xf32>) -> (tensor<2x4x6xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>)
    return %q, %k, %v : tensor<2x4x6xf32>, tensor<2x4x6xf32>, tensor<2x4x6xf32>
  }
}
