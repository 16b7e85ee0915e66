// The reshard planner alone, one transition per function, on 1-D and 2-D meshes: each op
// records the sharding it needs in sc.operand_shardings and sc-insert-reshards builds the
// collectives in between.
// RUN: shardc-opt --sc-insert-reshards --split-input-file %s | FileCheck %s

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // CHECK-LABEL: @shard_to_shard
  // CHECK: sc.all_to_all %arg0 {axes = ["tp"], concat_dim = 0 : i64, {{.*}}split_dim = 1 : i64}
  func.func @shard_to_shard(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[tp], []]>}) -> tensor<4x8xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[], [tp]]>], sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // CHECK-LABEL: @partial_to_shard
  // CHECK: sc.reduce_scatter %arg0 {axes = ["tp"], dim = 1 : i64
  func.func @partial_to_shard(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[], []], partial = [tp: sum]>}) -> tensor<4x8xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[], [tp]]>], sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // Partial over tp and sharded over dp_shard on dim 0, wanted replicated: an all-reduce
  // over tp, then an all-gather over dp_shard.
  // CHECK-LABEL: @two_axes
  // CHECK: %[[R:.*]] = sc.all_reduce %arg0 {axes = ["tp"]
  // CHECK: sc.all_gather %[[R]] {axes = ["dp_shard"], dim = 0 : i64
  func.func @two_axes(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[dp_shard], []], partial = [tp: sum]>}) -> tensor<4x8xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[], []]>], sc.sharding = [#sc.sharding<[[], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // Two axes on one dim, outer one kept: only the inner axis is gathered.
  // CHECK-LABEL: @inner_axis
  // CHECK: sc.all_gather %arg0 {axes = ["tp"], dim = 0 : i64
  // CHECK-NOT: sc.shard_slice
  func.func @inner_axis(%x: tensor<8x4xf32> {sc.sharding = #sc.sharding<[[dp_shard, tp], []]>}) -> tensor<8x4xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %z = sc.neg %y {sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>], sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    return %z : tensor<8x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["tp", 2]]} {
  // Replicate -> Shard is a local slice; two users share one reshard.
  // CHECK-LABEL: @replicate_to_shard
  // CHECK-COUNT-1: sc.shard_slice
  // CHECK-NOT: sc.shard_slice
  func.func @replicate_to_shard(%x: tensor<4x8xf32>) -> (tensor<4x8xf32>, tensor<4x8xf32>) {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[], [tp]]>], sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    %z = sc.neg %x {sc.operand_shardings = [#sc.sharding<[[], [tp]]>], sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y, %z : tensor<4x8xf32>, tensor<4x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // The planner searches for the cheapest sequence (wire bytes, then steps): adding an inner
  // axis to a sharded dim is a local slice, not a gather and a re-slice.
  // CHECK-LABEL: @refine_inner
  // CHECK-NEXT: %[[S:.*]] = sc.shard_slice %arg0 {axes = ["dp_shard"], dim = 0 : i64
  // CHECK-NEXT: sc.exp %[[S]]
  func.func @refine_inner(%x: tensor<8x4xf32> {sc.sharding = #sc.sharding<[[tp], []]>}) -> tensor<8x4xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[tp, dp_shard], []]>], sc.sharding = [#sc.sharding<[[tp, dp_shard], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %z = sc.neg %y {sc.operand_shardings = [#sc.sharding<[[tp, dp_shard], []]>], sc.sharding = [#sc.sharding<[[tp, dp_shard], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    return %z : tensor<8x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // The inner axis of a two-axis dim moves to another dim in one all_to_all; the outer axis
  // stays.
  // CHECK-LABEL: @move_inner
  // CHECK-NEXT: %[[A:.*]] = sc.all_to_all %arg0 {axes = ["tp"], concat_dim = 0 : i64, {{.*}}split_dim = 1 : i64}
  // CHECK-NEXT: sc.exp %[[A]]
  func.func @move_inner(%x: tensor<8x4xf32> {sc.sharding = #sc.sharding<[[dp_shard, tp], []]>}) -> tensor<8x4xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[dp_shard], [tp]]>], sc.sharding = [#sc.sharding<[[dp_shard], [tp]]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %z = sc.neg %y {sc.operand_shardings = [#sc.sharding<[[dp_shard], [tp]]>], sc.sharding = [#sc.sharding<[[dp_shard], [tp]]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    return %z : tensor<8x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  // Partial over tp, wanted Shard over (dp_shard, tp) on dim 0 where dp_shard already
  // splits it: one reduce_scatter appends tp.
  // CHECK-LABEL: @scatter_inner
  // CHECK-NEXT: %[[R:.*]] = sc.reduce_scatter %arg0 {axes = ["tp"], dim = 0 : i64
  // CHECK-NEXT: sc.exp %[[R]]
  func.func @scatter_inner(%x: tensor<8x4xf32> {sc.sharding = #sc.sharding<[[dp_shard], []], partial = [tp: sum]>}) -> tensor<8x4xf32> {
    %y = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[dp_shard, tp], []]>], sc.sharding = [#sc.sharding<[[dp_shard, tp], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %z = sc.neg %y {sc.operand_shardings = [#sc.sharding<[[dp_shard, tp], []]>], sc.sharding = [#sc.sharding<[[dp_shard, tp], []]>]} : (tensor<8x4xf32>) -> tensor<8x4xf32>
    return %z : tensor<8x4xf32>
  }
}
