// RUN: shardc-opt --sc-hoist-load-steps --split-input-file %s | FileCheck %s
// RUN: shardc-opt --sc-hoist-load-steps --sc-hoist-load-steps --split-input-file %s | FileCheck %s

// What computes from parameters and constants alone runs at load: the cast of a parameter
// (mixed precision), a slice of the cast, a local shard_slice (no communication), a fused
// region over a parameter and a constant (its body is not walked). An all_gather communicates and stays in the run,
// and so does what reads it; a step that reads an argument stays; a step writing a graph
// output stays even when it reads only load-time values (the exp); an op without operands that is no
// load-time source (constant_of_shape) stays.
// CHECK-LABEL: func @hoist
// CHECK: sc.cast %[[W:[^ ]*]] {sc.at_load}
// CHECK: sc.slice {{.*}}sc.at_load
// CHECK: sc.shard_slice {{.*}}sc.at_load
// CHECK: sc.fused {{.*}}{sc.at_load}
// CHECK: sc.all_gather
// CHECK-NOT: sc.at_load
// CHECK: sc.neg %{{[^ ]*}} :
// CHECK: sc.linear %arg0
// CHECK-NOT: sc.at_load
// CHECK: sc.constant_of_shape {value
// CHECK-NOT: sc.at_load
// CHECK: sc.exp %{{[^ ]*}} :
// CHECK: return %arg0, %{{[^ ]*}}, %{{[^ ]*}}, %{{[^ ]*}} :
func.func @hoist(%x: tensor<2x8xbf16>) -> (tensor<2x8xbf16>, tensor<8xf32>, tensor<4x8xf32>, tensor<8xf32>) {
  %w = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
  %b = sc.param "m.b" {file = "m.onnx", offset = 256 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
  %c = sc.constant dense<2.0> : tensor<8xf32>
  %wc = sc.cast %w : (tensor<8x8xf32>) -> tensor<8x8xbf16>
  %ws = sc.slice %wc {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<8x8xbf16>) -> tensor<4x8xbf16>
  %wl = sc.shard_slice %ws {axes = ["tp"], dim = 0 : i64} : (tensor<4x8xbf16>) -> tensor<2x8xbf16>
  %f = sc.fused %b, %c : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32> {
  ^bb0(%p: tensor<8xf32>, %q: tensor<8xf32>):
    %s = sc.mul %p, %q : (tensor<8xf32>, tensor<8xf32>) -> tensor<8xf32>
    sc.fused_yield %s : tensor<8xf32>
  }
  %g = sc.all_gather %wl {axes = ["tp"], dim = 0 : i64} : (tensor<2x8xbf16>) -> tensor<4x8xbf16>
  %gn = sc.neg %g : (tensor<4x8xbf16>) -> tensor<4x8xbf16>
  %y = sc.linear %x, %gn {transpose_weight = true} : (tensor<2x8xbf16>, tensor<4x8xbf16>) -> tensor<2x4xbf16>
  %cs = sc.constant_of_shape {value = 0.0 : f32} : tensor<4x8xf32>
  %e = sc.exp %f : (tensor<8xf32>) -> tensor<8xf32>
  return %x, %b, %cs, %e : tensor<2x8xbf16>, tensor<8xf32>, tensor<4x8xf32>, tensor<8xf32>
}

// -----

// sc.layer bodies are walked where the layer stands, and a layer's result is the value its
// body yields: the cast inside layer 0 runs at load, so the negation after the layer that
// reads it does too; the add reads the argument and stays.
// CHECK-LABEL: func @layers
// CHECK: sc.layer "m.layers.0"
// CHECK: sc.cast {{.*}}{sc.at_load}
// CHECK: sc.yield
// CHECK: sc.neg %{{.*}}#1 {sc.at_load}
// CHECK: sc.add
// CHECK-NOT: sc.at_load
// CHECK: return
func.func @layers(%x: tensor<8xbf16>) -> tensor<8xbf16> {
  %w = sc.param "m.layers.0.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
  %l:2 = sc.layer "m.layers.0" -> tensor<8xbf16>, tensor<8xbf16> {
    %wc = sc.cast %w : (tensor<8xf32>) -> tensor<8xbf16>
    %a = sc.add %x, %wc : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
    sc.yield %a, %wc : tensor<8xbf16>, tensor<8xbf16>
  }
  %n = sc.neg %l#1 : (tensor<8xbf16>) -> tensor<8xbf16>
  %r = sc.add %l#0, %n : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
  return %r : tensor<8xbf16>
}

// -----

// A mark that no longer holds is removed (the pass recomputes every mark), and with it the
// op's stale memory-plan offsets: this negation writes a graph output.
// CHECK-LABEL: func @stale
// CHECK: sc.neg %{{[^ ]*}} : (tensor<8xf32>)
func.func @stale() -> tensor<8xf32> {
  %w = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
  %n = sc.neg %w {sc.at_load, sc.persistent_offsets = array<i64: 0>} : (tensor<8xf32>) -> tensor<8xf32>
  return %n : tensor<8xf32>
}
