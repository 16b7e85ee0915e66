// sc-partition alone on the rank-dependent values: each local slice (sc.shard_slice) becomes
// a dynamic_slice from a start computed in the program: sc.process_index over the slice's
// axes, then the chunk's start looked up in a constant table of the group's starts. One
// process_index per axes list and one start per (axes, chunk), at the top of the function.
// RUN: shardc-opt --sc-partition --split-input-file %s | FileCheck %s

// CHECK-LABEL: func.func @slices
// CHECK-NEXT: %[[T1:.*]] = sc.constant dense<[0, 4]> : tensor<2xi64>
// CHECK-NEXT: %[[P1:.*]] = sc.process_index {axes = ["tp"]} : tensor<i64>
// CHECK-NEXT: %[[S1:.*]] = sc.gather %[[T1]], %[[P1]] {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
// CHECK-NEXT: %[[T2:.*]] = sc.constant dense<[0, 2, 4, 6]> : tensor<4xi64>
// CHECK-NEXT: %[[P2:.*]] = sc.process_index {axes = ["dp_shard", "tp"]} : tensor<i64>
// CHECK-NEXT: %[[S2:.*]] = sc.gather %[[T2]], %[[P2]] {axis = 0 : i64} : (tensor<4xi64>, tensor<i64>) -> tensor<i64>
// CHECK-NEXT: %[[W:.*]] = sc.param "w"
// CHECK-NEXT: sc.dynamic_slice %arg0, %[[S1]] {axis = 1 : i64, sc.sharding = {{.*}}} : (tensor<4x8xf32>, tensor<i64>) -> tensor<4x4xf32>
// CHECK-NEXT: sc.dynamic_slice %[[W]], %[[S2]] {axis = 0 : i64, sc.sharding = {{.*}}} : (tensor<8x4xf32>, tensor<i64>) -> tensor<2x4xf32>
// CHECK-NEXT: sc.exp
// The same axes and chunk reuse the start.
// CHECK-NEXT: sc.dynamic_slice %{{.*}}, %[[S1]] {axis = 1 : i64, sc.sharding = {{.*}}} : (tensor<4x8xf32>, tensor<i64>) -> tensor<4x4xf32>
// CHECK-NOT: sc.shard_slice
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  func.func @slices(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>) {
    %w = sc.param "w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x4xf32>
    %s = sc.shard_slice %x {axes = ["tp"], dim = 1 : i64, sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %ws = sc.shard_slice %w {axes = ["dp_shard", "tp"], dim = 0 : i64, sc.sharding = [#sc.sharding<[[dp_shard, tp], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %e = sc.exp %x : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %es = sc.shard_slice %e {axes = ["tp"], dim = -1 : i64, sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %s, %ws, %es : tensor<4x8xf32>, tensor<8x4xf32>, tensor<4x8xf32>
  }
}

// -----

// A vocabulary-split embedding (the table's rows over tp) gets its first row as an operand,
// computed the same way, and the whole table's rows as vocab_size; the step then reads no
// rank-dependent attribute. An unsplit embedding is left as it is.
// CHECK-LABEL: func.func @vocab
// CHECK-NEXT: %[[T:.*]] = sc.constant dense<[0, 8]> : tensor<2xi64>
// CHECK-NEXT: %[[P:.*]] = sc.process_index {axes = ["tp"]} : tensor<i64>
// CHECK-NEXT: %[[S:.*]] = sc.gather %[[T]], %[[P]] {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
// CHECK: %[[E:.*]] = sc.embedding %{{.*}}, %arg0 rows_from %[[S]] {sc.operand_shardings = [#sc.sharding<{{\[}}[tp], []]>, #sc.sharding<{{\[}}[], []]>, #sc.sharding<[]>], {{.*}}vocab_size = 16 : i64} : (tensor<8x4xf32>, tensor<2x3xi64>, tensor<i64>) -> tensor<2x3x4xf32>
// CHECK: sc.all_reduce %[[E]]
// CHECK: sc.embedding %{{.*}}, %arg0 : (tensor<16x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @vocab(%ids: tensor<2x3xi64>) -> (tensor<2x3x4xf32>, tensor<2x3x4xf32>) {
    %tab = sc.param "emb" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>, sc.sharding = [#sc.sharding<[[tp], []]>]} : tensor<16x4xf32>
    %whole = sc.param "pos" {file = "w.bin", offset = 256 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>} : tensor<16x4xf32>
    %e = sc.embedding %tab, %ids {sc.operand_shardings = [#sc.sharding<[[tp], []]>, #sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[], [], []], partial = [tp: sum]>]} : (tensor<16x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    %r = sc.all_reduce %e {axes = ["tp"], reduce = #sc.reduce<sum>, sc.sharding = [#sc.sharding<[[], [], []]>]} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
    %p = sc.embedding %whole, %ids : (tensor<16x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
    return %r, %p : tensor<2x3x4xf32>, tensor<2x3x4xf32>
  }
}

// -----

// A shard_slice that is the function's first op: lowering it erases the op the top of the
// function was found before, and the next start (other axes) still goes to the top (this
// crashed sc-partition on a tp = 2 MoE training step without an optimizer).
// CHECK-LABEL: func.func @first
// CHECK-NEXT: %[[T1:.*]] = sc.constant dense<[0, 4]> : tensor<2xi64>
// CHECK-NEXT: %[[P1:.*]] = sc.process_index {axes = ["tp"]} : tensor<i64>
// CHECK-NEXT: %[[S1:.*]] = sc.gather %[[T1]], %[[P1]]
// CHECK-NEXT: %[[T2:.*]] = sc.constant dense<[0, 2]> : tensor<2xi64>
// CHECK-NEXT: %[[P2:.*]] = sc.process_index {axes = ["dp_shard"]} : tensor<i64>
// CHECK-NEXT: %[[S2:.*]] = sc.gather %[[T2]], %[[P2]]
// CHECK-NEXT: sc.dynamic_slice %arg0, %[[S1]] {axis = 1 : i64
// CHECK-NEXT: sc.dynamic_slice %arg0, %[[S2]] {axis = 0 : i64
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  func.func @first(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
    %s = sc.shard_slice %x {axes = ["tp"], dim = 1 : i64, sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %d = sc.shard_slice %x {axes = ["dp_shard"], dim = 0 : i64, sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %s, %d : tensor<4x8xf32>, tensor<4x8xf32>
  }
}
