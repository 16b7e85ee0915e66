// sc-insert-reshards alone, beyond the transitions of sharding/reshard-transitions.mlir: the
// input states what sc-propagate-sharding leaves (sc.mesh, sc.sharding per value,
// sc.operand_shardings per op, and sc.storage_sharding on FSDP parameters).
// RUN: shardc-opt --sc-insert-reshards --split-input-file --verify-diagnostics %s | FileCheck %s

// FSDP: a parameter stored as a dp_shard slice is all-gathered to its compute sharding once,
// before its layer's first op; the gathers of one layer share an sc.fsdp_group, the next
// layer's get another; a parameter outside the layers is gathered right before its use
// (a group of its own).
// CHECK-LABEL: func.func @fsdp
// CHECK: %[[A:.*]] = sc.param "m.layers.0.a.weight" {{.*}}sc.sharding = [#sc.sharding<{{\[}}[dp_shard], []]>]
// CHECK: %[[B:.*]] = sc.param "m.layers.0.b.weight"
// CHECK: %[[C:.*]] = sc.param "m.layers.1.c.weight"
// CHECK: %[[H:.*]] = sc.param "m.head.weight"
// CHECK: %[[GA:.*]] = sc.all_gather %[[A]] {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64, sc.sharding = [#sc.sharding<{{\[}}[], []]>]}
// CHECK: %[[GB:.*]] = sc.all_gather %[[B]] {axes = ["dp_shard"], dim = 1 : i64, sc.fsdp_group = 0 : i64
// CHECK: %[[Y0:.*]] = sc.linear %arg0, %[[GA]]
// CHECK: %[[Y1:.*]] = sc.linear %[[Y0]], %[[GB]]
// CHECK: %[[GC:.*]] = sc.all_gather %[[C]] {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 1 : i64
// CHECK: %[[Y2:.*]] = sc.linear %[[Y1]], %[[GC]]
// CHECK: %[[GH:.*]] = sc.all_gather %[[H]] {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 2 : i64
// CHECK: %[[Y3:.*]] = sc.linear %[[Y2]], %[[GH]]
// The function's result is made whole.
// CHECK: %[[R:.*]] = sc.all_gather %[[Y3]] {axes = ["dp_shard"], dim = 0 : i64, sc.sharding = [#sc.sharding<{{\[}}[], []]>]}
// CHECK: return %[[R]]
#l0a = loc("node_a"("m.layers.0.a"("t.onnx":1:0)))
#l0b = loc("node_b"("m.layers.0.b"("t.onnx":2:0)))
#l1c = loc("node_c"("m.layers.1.c"("t.onnx":3:0)))
#head = loc("node_h"("m.head"("t.onnx":4:0)))
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 1]]} {
  func.func @fsdp(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[dp_shard], []]>}) -> tensor<4x8xf32> {
    %a = sc.param "m.layers.0.a.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "a", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[dp_shard], []]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %b = sc.param "m.layers.0.b.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "b", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[], [dp_shard]]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %c = sc.param "m.layers.1.c.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "c", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[dp_shard], []]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %h = sc.param "m.head.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "h", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[dp_shard], []]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %y0 = sc.linear %x, %a {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#l0a)
    %y1 = sc.linear %y0, %b {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#l0b)
    %y2 = sc.linear %y1, %c {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#l1c)
    %y3 = sc.linear %y2, %h {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#head)
    return %y3 : tensor<4x8xf32>
  }
}

// -----

// sc.fsdp_prefetch: layer 1's group is gathered before layer 0's first op (FSDP2's
// prefetch of the next layer), layer 0's as before.
// CHECK-LABEL: func.func @prefetch
// CHECK: sc.all_gather %{{.*}} {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64
// CHECK-NEXT: sc.all_gather %{{.*}} {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64
// CHECK-NEXT: sc.linear
// CHECK-NEXT: sc.linear
#p0 = loc("node_a"("m.layers.0.a"("t.onnx":1:0)))
#p1 = loc("node_c"("m.layers.1.c"("t.onnx":3:0)))
module attributes {sc.mesh = [["dp_shard", 2]], sc.fsdp_prefetch} {
  func.func @prefetch(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %a = sc.param "m.layers.0.a.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "a", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[dp_shard], []]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %c = sc.param "m.layers.1.c.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "c", sc.sharding = [#sc.sharding<[[], []]>], sc.storage_sharding = #sc.sharding<[[dp_shard], []]>, tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %y0 = sc.linear %x, %a {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#p0)
    %y1 = sc.linear %y0, %c {transpose_weight = true, sc.operand_shardings = [#sc.sharding<[[], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[], []]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32> loc(#p1)
    return %y1 : tensor<4x8xf32>
  }
}

// -----

// Mixed precision casts the parameter first: the cast takes the storage sharding and the
// gather moves bf16.
// CHECK-LABEL: func.func @cast_first
// CHECK: %[[P:.*]] = sc.param "m.layers.0.w"
// CHECK: %[[C:.*]] = sc.cast %[[P]] {sc.sharding = [#sc.sharding<{{\[}}[dp_shard]]>]} : (tensor<8xf32>) -> tensor<8xbf16>
// CHECK: sc.all_gather %[[C]] {axes = ["dp_shard"], dim = 0 : i64, {{.*}} : (tensor<8xbf16>) -> tensor<8xbf16>
module attributes {sc.mesh = [["dp_shard", 2]]} {
  func.func @cast_first(%x: tensor<8xbf16>) -> tensor<8xbf16> {
    %p = sc.param "m.layers.0.w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.sharding = [#sc.sharding<[[]]>], sc.storage_sharding = #sc.sharding<[[dp_shard]]>, tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %c = sc.cast %p {sc.operand_shardings = [#sc.sharding<[[]]>], sc.sharding = [#sc.sharding<[[]]>]} : (tensor<8xf32>) -> tensor<8xbf16>
    %y = sc.mul %x, %c {sc.operand_shardings = [#sc.sharding<[[]]>, #sc.sharding<[[]]>], sc.sharding = [#sc.sharding<[[]]>]} : (tensor<8xbf16>, tensor<8xbf16>) -> tensor<8xbf16>
    return %y : tensor<8xbf16>
  }
}

// -----

// A pending max is reduced with a max all_reduce, then serves any user.
// CHECK-LABEL: func.func @partial_max
// CHECK: sc.all_reduce %arg0 {axes = ["tp"], reduce = #sc.reduce<max>, sc.sharding = [#sc.sharding<{{\[}}[], []]>]}
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @partial_max(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[], []], partial = [tp: max]>}) -> tensor<4x8xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}

// -----

// The plan's layout constraints become the collectives from the operand's layout to theirs,
// where they stand, and go: a partial sum split over the sequence is a reduce-scatter (the
// vocabulary-parallel embedding under sequence parallelism), the whole sequence again an
// all-gather; a constraint that changes nothing leaves nothing.
// CHECK-LABEL: func.func @constraints
// CHECK: %[[RS:.*]] = sc.reduce_scatter %arg0 {axes = ["tp"], dim = 1 : i64, sc.sharding = [#sc.sharding<{{\[}}[], [tp], []]>]}
// CHECK: %[[N:.*]] = sc.exp %[[RS]]
// CHECK: %[[G:.*]] = sc.all_gather %[[N]] {axes = ["tp"], dim = 1 : i64, sc.sharding = [#sc.sharding<{{\[}}[], [], []]>]}
// CHECK-NOT: sc.sharding_constraint
// CHECK: return %[[G]]
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @constraints(%x: tensor<2x8x16xf32> {sc.sharding = #sc.sharding<[[], [], []], partial = [tp: sum]>}) -> tensor<2x8x16xf32> {
    %s = sc.sharding_constraint %x over ["tp"] to <[[], [tp], []]> {sc.sharding = [#sc.sharding<[[], [tp], []]>]} : tensor<2x8x16xf32>
    %n = sc.exp %s {sc.operand_shardings = [#sc.sharding<[[], [tp], []]>], sc.sharding = [#sc.sharding<[[], [tp], []]>]} : (tensor<2x8x16xf32>) -> tensor<2x8x16xf32>
    %g = sc.sharding_constraint %n over ["tp"] to <[[], [], []]> {sc.sharding = [#sc.sharding<[[], [], []]>]} : tensor<2x8x16xf32>
    %k = sc.sharding_constraint %g over ["tp"] to <[[], [], []]> {sc.sharding = [#sc.sharding<[[], [], []]>]} : tensor<2x8x16xf32>
    return %k : tensor<2x8x16xf32>
  }
}

// -----

// A constraint the planner cannot reach fails the pass at the constraint.
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @odd_constraint(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
    // expected-error @+1 {{no collective sequence takes [tp: Replicate] to [tp: Shard(0)] (shape does not divide)}}
    %y = sc.sharding_constraint %x over ["tp"] to <[[tp], []]> {sc.sharding = [#sc.sharding<[[tp], []]>]} : tensor<3x8xf32>
    return %y : tensor<3x8xf32>
  }
}

// -----

// A wanted sharding whose dim does not divide has no collective sequence.
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @odd(%x: tensor<3x8xf32>) -> tensor<3x8xf32> {
    // expected-error @+1 {{no collective sequence takes [tp: Replicate] to [tp: Shard(0)] (shape does not divide)}}
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[tp], []]>], sc.sharding = [#sc.sharding<[[tp], []]>]} : (tensor<3x8xf32>) -> tensor<3x8xf32>
    return %y : tensor<3x8xf32>
  }
}

// -----

// expected-error @+1 {{sc-insert-reshards needs sc.mesh (run sc-apply-plan first)}}
module {
  func.func @no_mesh(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
