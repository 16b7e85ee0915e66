// sc-autodiff through sc.rms_norm and sc.rotary, whose rules compose elementwise ops and
// reductions (the values are checked by unit.autodiff_fd).
// RUN: shardc-opt --sc-autodiff --split-input-file %s | FileCheck %s

// rms_norm over the last dim (x [2, 3, 8], scale [8], epsilon 1e-6): r = 1/sqrt(mean(x²) + ε)
// per row, n = x·r; dscale = Σ g·n over dims 0 and 1; dx = r·(g·scale − n·mean(g·scale·n)).
// CHECK-LABEL: func.func @rms_norm
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<2x3x8xf32> {sc.name = "grad.m.x"}, tensor<8xf32> {sc.name = "grad.m.scale"})
// CHECK: %[[X:.*]] = sc.param "m.x"
// CHECK: %[[S:.*]] = sc.param "m.scale"
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x48xf32>) -> tensor<2x3x8xf32>
// CHECK: %[[SQ:.*]] = sc.mul %[[X]], %[[X]] : (tensor<2x3x8xf32>, tensor<2x3x8xf32>) -> tensor<2x3x8xf32>
// CHECK: %[[MS:.*]] = sc.reduce_mean %[[SQ]] {axes = array<i64: 2>} : (tensor<2x3x8xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[EPS:.*]] = sc.constant dense<9.99999997E-7> : tensor<f32>
// CHECK: %[[V:.*]] = sc.add %[[MS]], %[[EPS]] : (tensor<2x3x1xf32>, tensor<f32>) -> tensor<2x3x1xf32>
// CHECK: %[[SD:.*]] = sc.sqrt %[[V]] : (tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[R:.*]] = sc.reciprocal %[[SD]] : (tensor<2x3x1xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[N:.*]] = sc.mul %[[X]], %[[R]] : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
// CHECK: %[[GN:.*]] = sc.mul %[[G]], %[[N]]
// CHECK: %[[GS0:.*]] = sc.reduce_sum %[[GN]] {axes = array<i64: 0, 1>} : (tensor<2x3x8xf32>) -> tensor<1x1x8xf32>
// CHECK: %[[GSC:.*]] = sc.reshape %[[GS0]] : (tensor<1x1x8xf32>) -> tensor<8xf32>
// CHECK: %[[GSS:.*]] = sc.mul %[[G]], %[[S]] : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
// CHECK: %[[P:.*]] = sc.mul %[[GSS]], %[[N]]
// CHECK: %[[DOT:.*]] = sc.reduce_mean %[[P]] {axes = array<i64: 2>} : (tensor<2x3x8xf32>) -> tensor<2x3x1xf32>
// CHECK: %[[ND:.*]] = sc.mul %[[N]], %[[DOT]]
// CHECK: %[[IN:.*]] = sc.sub %[[GSS]], %[[ND]]
// CHECK: %[[GX:.*]] = sc.mul %[[IN]], %[[R]] : (tensor<2x3x8xf32>, tensor<2x3x1xf32>) -> tensor<2x3x8xf32>
// CHECK: return %{{.*}}, %[[GX]], %[[GSC]] : tensor<f32>, tensor<2x3x8xf32>, tensor<8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @rms_norm(%i: tensor<2x2xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x3x8xf32>
    %s = sc.param "m.scale" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<8xf32>
    %y = sc.rms_norm %x, %s {epsilon = 1.0e-6 : f32} : (tensor<2x3x8xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
    %f = sc.reshape %y : (tensor<2x3x8xf32>) -> tensor<1x48xf32>
    %c = sc.constant dense<1.0> : tensor<48x1xf32>
    %d = sc.linear %f, %c : (tensor<1x48xf32>, tensor<48x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// rms_norm normalising the last two dims (axis = 1 of [2, 3, 4]), scale [3, 4]: the row
// statistics reduce dims 1 and 2, dscale sums dim 0.
// CHECK-LABEL: func.func @rms_norm_axis1
// CHECK: sc.reduce_mean %{{.*}} {axes = array<i64: 1, 2>} : (tensor<2x3x4xf32>) -> tensor<2x1x1xf32>
// CHECK: %[[GS0:.*]] = sc.reduce_sum %{{.*}} {axes = array<i64: 0>} : (tensor<2x3x4xf32>) -> tensor<1x3x4xf32>
// CHECK: %[[GSC:.*]] = sc.reshape %[[GS0]] : (tensor<1x3x4xf32>) -> tensor<3x4xf32>
// CHECK: sc.reduce_mean %{{.*}} {axes = array<i64: 1, 2>} : (tensor<2x3x4xf32>) -> tensor<2x1x1xf32>
// CHECK: return %{{.*}}, %{{.*}}, %[[GSC]] : tensor<f32>, tensor<2x3x4xf32>, tensor<3x4xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @rms_norm_axis1(%i: tensor<2x2xf32> {sc.name = "i"}) -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x3x4xf32>
    %s = sc.param "m.scale" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<3x4xf32>
    %y = sc.rms_norm %x, %s {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<3x4xf32>) -> tensor<2x3x4xf32>
    %f = sc.reshape %y : (tensor<2x3x4xf32>) -> tensor<1x24xf32>
    %c = sc.constant dense<1.0> : tensor<24x1xf32>
    %d = sc.linear %f, %c : (tensor<1x24xf32>, tensor<24x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}

// -----

// rotary (x [1, 2, 3, 8], tables [3, 8]): dx = g·cos + [u₂, −u₁] with u = g·sin split in
// halves of the last dim.
// CHECK-LABEL: func.func @rotary
// CHECK-SAME: (%[[COS:[^:]*]]: tensor<3x8xf32> {sc.name = "cos"}, %[[SIN:[^:]*]]: tensor<3x8xf32> {sc.name = "sin"})
// CHECK-SAME: -> (tensor<f32> {sc.name = "loss"}, tensor<1x2x3x8xf32> {sc.name = "grad.m.x"})
// CHECK: %[[G:.*]] = sc.reshape %{{.*}} : (tensor<1x48xf32>) -> tensor<1x2x3x8xf32>
// CHECK: %[[U:.*]] = sc.mul %[[G]], %[[SIN]] : (tensor<1x2x3x8xf32>, tensor<3x8xf32>) -> tensor<1x2x3x8xf32>
// CHECK: %[[U1:.*]] = sc.slice %[[U]] {starts = array<i64: 0, 0, 0, 0>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x2x3x8xf32>) -> tensor<1x2x3x4xf32>
// CHECK: %[[U2:.*]] = sc.slice %[[U]] {starts = array<i64: 0, 0, 0, 4>, steps = array<i64: 1, 1, 1, 1>} : (tensor<1x2x3x8xf32>) -> tensor<1x2x3x4xf32>
// CHECK: %[[NU1:.*]] = sc.neg %[[U1]] : (tensor<1x2x3x4xf32>) -> tensor<1x2x3x4xf32>
// CHECK: %[[ROT:.*]] = sc.concat %[[U2]], %[[NU1]] {axis = 3 : i64} : (tensor<1x2x3x4xf32>, tensor<1x2x3x4xf32>) -> tensor<1x2x3x8xf32>
// CHECK: %[[GC:.*]] = sc.mul %[[G]], %[[COS]] : (tensor<1x2x3x8xf32>, tensor<3x8xf32>) -> tensor<1x2x3x8xf32>
// CHECK: %[[GX:.*]] = sc.add %[[GC]], %[[ROT]] : (tensor<1x2x3x8xf32>, tensor<1x2x3x8xf32>) -> tensor<1x2x3x8xf32>
// CHECK: return %{{.*}}, %[[GX]] : tensor<f32>, tensor<1x2x3x8xf32>
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @rotary(%cos: tensor<3x8xf32> {sc.name = "cos"}, %sin: tensor<3x8xf32> {sc.name = "sin"}) -> (tensor<f32> {sc.name = "loss"}) {
    %x = sc.param "m.x" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<1x2x3x8xf32>
    %y = sc.rotary %x, %cos, %sin : (tensor<1x2x3x8xf32>, tensor<3x8xf32>, tensor<3x8xf32>) -> tensor<1x2x3x8xf32>
    %f = sc.reshape %y : (tensor<1x2x3x8xf32>) -> tensor<1x48xf32>
    %c = sc.constant dense<1.0> : tensor<48x1xf32>
    %d = sc.linear %f, %c : (tensor<1x48xf32>, tensor<48x1xf32>) -> tensor<1x1xf32>
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32>
    return %l : tensor<f32>
  }
}
