// RUN: shardc-opt --sc-plan-memory --split-input-file --verify-diagnostics %s | FileCheck %s

// Lifetimes are step indices (the load steps count): %x lives until step 2, the 128-byte
// concat from 2 to 3, the slice from 3 to 4, the output from 4 to the end. Largest first:
// the concat at 0; %x beside it at 128; the slice at 128 too (%x is dead by then); the
// output at 0 (the concat is dead). Load-time results are laid out one after another in
// the persistent block, 64-byte aligned.
// CHECK: module attributes {sc.arena_bytes = 192 : i64, sc.naive_arena_bytes = 320 : i64, sc.persistent_bytes = 128 : i64}
// CHECK-LABEL: func @plan
// CHECK-SAME: %arg0: tensor<16xf32> {sc.arena_offset = 128 : i64}
// CHECK: sc.cast %{{.*}} {sc.at_load, sc.persistent_offsets = array<i64: 0>}
// CHECK: sc.neg %{{.*}} {sc.at_load, sc.persistent_offsets = array<i64: 64>}
// CHECK: sc.concat %arg0, %arg0 {axis = 0 : i64, sc.arena_offsets = array<i64: 0>}
// CHECK: sc.slice %{{.*}} {sc.arena_offsets = array<i64: 128>,
// CHECK: sc.neg %{{.*}} {sc.arena_offsets = array<i64: 0>}
module {
  func.func @plan(%x: tensor<16xf32>) -> tensor<16xf32> {
    %w = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<32xf32>
    %wc = sc.cast %w {sc.at_load} : (tensor<32xf32>) -> tensor<32xbf16>
    %wn = sc.neg %wc {sc.at_load} : (tensor<32xbf16>) -> tensor<32xbf16>
    %a = sc.concat %x, %x {axis = 0 : i64} : (tensor<16xf32>, tensor<16xf32>) -> tensor<32xf32>
    %b = sc.slice %a {starts = array<i64: 0>, steps = array<i64: 1>} : (tensor<32xf32>) -> tensor<16xf32>
    %c = sc.neg %b : (tensor<16xf32>) -> tensor<16xf32>
    return %c : tensor<16xf32>
  }
}

// -----

// A layer's result is the buffer its body yields: the exp inside the layer lives until the
// add after the layer reads it (step 2), so the negation (step 1) cannot take its place and
// goes to 128; the output reuses %x's bytes. A split's results get one offset each (an
// output lives to the end, an unread result only at its step).
// CHECK: module attributes {sc.arena_bytes = 192 : i64, sc.naive_arena_bytes = 384 : i64, sc.persistent_bytes = 0 : i64}
// CHECK-LABEL: func @layer
// CHECK-SAME: {sc.arena_offset = 0 : i64}
// CHECK: sc.exp %arg0 {sc.arena_offsets = array<i64: 64>}
// CHECK: sc.neg %arg0 {sc.arena_offsets = array<i64: 128>}
// CHECK: sc.add %{{.*}} {sc.arena_offsets = array<i64: 0>}
// CHECK: sc.split %{{.*}} {axis = 0 : i64, sc.arena_offsets = array<i64: 64, 128>}
module {
  func.func @layer(%x: tensor<16xf32>) -> (tensor<16xf32>, tensor<8xf32>) {
    %l = sc.layer "m.layers.0" -> tensor<16xf32> {
      %a = sc.exp %x : (tensor<16xf32>) -> tensor<16xf32>
      sc.yield %a : tensor<16xf32>
    }
    %b = sc.neg %x : (tensor<16xf32>) -> tensor<16xf32>
    %c = sc.add %l, %b : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    %s:2 = sc.split %c {axis = 0 : i64} : (tensor<16xf32>) -> (tensor<8xf32>, tensor<8xf32>)
    return %c, %s#0 : tensor<16xf32>, tensor<8xf32>
  }
}

// -----

// An output that is not a step result in the arena is refused.
module {
  func.func @unmaterialized(%x: tensor<4xf32>) -> tensor<4xf32> {
    // expected-error @below {{output #0 is not a step result in the arena}}
    return %x : tensor<4xf32>
  }
}
