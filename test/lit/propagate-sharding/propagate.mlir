// sc-propagate-sharding alone: the input states the seeds sc-apply-plan leaves (sc.mesh, the
// parameters' sc.sharding from the plan's styles, the inputs' batch split, the plan's own
// shard_slice / all_gather); the pass gives every value a sharding and records, per op, the
// operand shardings it needs (sc.operand_shardings).
// RUN: shardc-opt --sc-propagate-sharding --split-input-file --verify-diagnostics %s | FileCheck %s
// RUN: shardc-opt --sc-propagate-sharding=explain=true --split-input-file %s -o /dev/null 2>&1 | FileCheck %s --check-prefix=EXPLAIN

// Megatron MLP: the colwise weight shards the hidden features, silu keeps them, the rowwise
// contraction makes the result Partial; mul(Partial, Partial) is not linear, so it wants
// its operands reduced (sc-insert-reshards will all_reduce there).
// CHECK-LABEL: func.func @mlp
// CHECK: %[[H:.*]] = sc.linear {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], []]>, #sc.sharding<{{\[}}[tp], []]>], sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]
// CHECK: sc.silu %[[H]] {sc.operand_shardings = [#sc.sharding<{{\[}}[], [], [tp]]>], sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]}
// CHECK: sc.linear {{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], []], partial = [tp: sum]>]
// CHECK: sc.mul {{.*}}{sc.operand_shardings = [#sc.sharding<{{\[}}[], [], []]>, #sc.sharding<{{\[}}[], [], []]>], sc.sharding = [#sc.sharding<{{\[}}[], [], []]>]}
// EXPLAIN: [[@LINE+8]]:10: remark: sharding: results [tp: Shard(2)] from operands [tp: Replicate] [tp: Shard(0)] (priority: plan)
// EXPLAIN: [[@LINE+8]]:10: remark: sharding: results [tp: Shard(2)] from operands [tp: Shard(2)] (priority: plan)
// EXPLAIN: [[@LINE+8]]:10: remark: sharding: results [tp: Partial(sum)] from operands [tp: Shard(2)] [tp: Shard(1)] (priority: plan)
// EXPLAIN-NOT: sc.mul
module attributes {sc.mesh = [["dp_shard", 1], ["tp", 2]]} {
  func.func @mlp(%x: tensor<4x8x16xf32> {sc.sharding = #sc.sharding<[[], [], []]>}) -> tensor<4x8x16xf32> {
    %w1 = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w1", sc.sharding = [#sc.sharding<[[tp], []]>], tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %w2 = sc.param "blk.down.weight" {file = "w.bin", offset = 2048 : i64, onnx_name = "w2", sc.sharding = [#sc.sharding<[[], [tp]]>], tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %h = sc.linear %x, %w1 {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32>
    %a = sc.silu %h : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    %y = sc.linear %a, %w2 {transpose_weight = true} : (tensor<4x8x32xf32>, tensor<16x32xf32>) -> tensor<4x8x16xf32>
    %s = sc.mul %y, %y : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    %r = sc.add %x, %s : (tensor<4x8x16xf32>, tensor<4x8x16xf32>) -> tensor<4x8x16xf32>
    return %r : tensor<4x8x16xf32>
  }
}

// -----

// Partial flows through add(Partial, Partial) and through a reshape; an add of a replicated
// bias must reduce first (each rank would add it once more).
// CHECK-LABEL: func.func @partial_flow
// CHECK: %[[S:.*]] = sc.add {{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], []], partial = [tp: sum]>, #sc.sharding<{{\[}}[], []], partial = [tp: sum]>], sc.sharding = [#sc.sharding<{{\[}}[], []], partial = [tp: sum]>]
// CHECK: %[[R:.*]] = sc.reshape %[[S]] {{.*}}sc.sharding = [#sc.sharding<{{\[}}[]], partial = [tp: sum]>]
// CHECK: sc.add %[[R]], %{{.*}} {sc.operand_shardings = [#sc.sharding<{{\[}}[]]>, #sc.sharding<{{\[}}[]]>], sc.sharding = [#sc.sharding<{{\[}}[]]>]}
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @partial_flow(%a: tensor<4x8xf32>, %b: tensor<4x8xf32>) -> tensor<32xf32> {
    %w = sc.param "p.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.sharding = [#sc.sharding<[[tp], []]>], tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %bias = sc.param "p.bias" {file = "w.bin", offset = 0 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<32xf32>
    %ya = sc.linear %a, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %yb = sc.linear %b, %w : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    %s = sc.add %ya, %yb : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    %r = sc.reshape %s : (tensor<4x8xf32>) -> tensor<32xf32>
    %o = sc.add %r, %bias : (tensor<32xf32>, tensor<32xf32>) -> tensor<32xf32>
    return %o : tensor<32xf32>
  }
}

// -----

// Data and tensor parallel on a 2-D mesh: the batch seed (dp_shard on the input's dim 0)
// and the plan's colwise weight combine on the linear's result.
// CHECK-LABEL: func.func @two_axes
// CHECK: sc.linear {{.*}}sc.sharding = [#sc.sharding<{{\[}}[dp_shard], [], [tp]]>]
// CHECK: sc.gelu {{.*}}sc.sharding = [#sc.sharding<{{\[}}[dp_shard], [], [tp]]>]
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  func.func @two_axes(%x: tensor<4x8x16xf32> {sc.sharding = #sc.sharding<[[dp_shard], [], []]>}) -> tensor<4x8x32xf32> {
    %w = sc.param "blk.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.sharding = [#sc.sharding<[[tp], []]>], tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %h = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8x16xf32>, tensor<32x16xf32>) -> tensor<4x8x32xf32>
    %g = sc.gelu %h : (tensor<4x8x32xf32>) -> tensor<4x8x32xf32>
    return %g : tensor<4x8x32xf32>
  }
}

// -----

// Priorities: the input is split on dim 0 over tp (a batch seed) and the parameter on dim 1
// over tp (the plan): tp can shard one dim only, and the plan wins, so the input is wanted
// resharded onto dim 1.
// CHECK-LABEL: func.func @plan_over_batch
// CHECK: sc.add {{.*}}{sc.operand_shardings = [#sc.sharding<{{\[}}[], [tp]]>, #sc.sharding<{{\[}}[], [tp]]>], sc.sharding = [#sc.sharding<{{\[}}[], [tp]]>]}
// EXPLAIN: remark: sharding: results [tp: Shard(1)] from operands [tp: Shard(0)] [tp: Shard(1)] (priority: plan)
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @plan_over_batch(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[[tp], []]>}) -> tensor<4x8xf32> {
    %p = sc.param "p" {file = "w.bin", offset = 0 : i64, onnx_name = "p", sc.sharding = [#sc.sharding<[[], [tp]]>], tied = [], transform = #sc.transform<none>} : tensor<4x8xf32>
    %y = sc.add %x, %p : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}

// -----

// The plan's layout constraints are fixed seeds: a constraint over tp places tp (sequence
// parallel) or removes it (the whole sequence before a replicated linear) and keeps the
// other axes (dp_shard on the batch); the constraints record no operand shardings (sc-insert-reshards
// reads both sides). A value one op reads is refined backward when its producer can
// compute the share (exp of a constant), a value with two readers is not.
// CHECK-LABEL: func.func @plan_constraints
// CHECK: %[[SL:.*]] = sc.sharding_constraint %arg0 over ["tp"] to <{{\[}}[], [tp], []]> {sc.sharding = [#sc.sharding<{{\[}}[dp_shard], [tp], []]>]}
// CHECK: %[[N:.*]] = sc.rms_norm %[[SL]]{{.*}}sc.sharding = [#sc.sharding<{{\[}}[dp_shard], [tp], []]>]
// CHECK: %[[G:.*]] = sc.sharding_constraint %[[N]] over ["tp"] to <{{\[}}[], [], []]> {sc.sharding = [#sc.sharding<{{\[}}[dp_shard], [], []]>]}
// CHECK: sc.exp %{{.*}}sc.operand_shardings = [#sc.sharding<{{\[}}[], [], [tp]]>], sc.sharding = [#sc.sharding<{{\[}}[], [], [tp]]>]
// CHECK: sc.tanh %{{.*}}sc.sharding = [#sc.sharding<{{\[}}[], [], []]>]
// CHECK: sc.linear %[[G]]
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  func.func @plan_constraints(%x: tensor<2x8x16xf32> {sc.sharding = #sc.sharding<[[dp_shard], [], []]>}) -> (tensor<2x8x32xf32>, tensor<1x8x32xf32>) {
    %s = sc.param "norm.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<16xf32>
    %w = sc.param "up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.sharding = [#sc.sharding<[[tp], []]>], tied = [], transform = #sc.transform<none>} : tensor<32x16xf32>
    %c = sc.constant dense<0.5> : tensor<1x8x32xf32>
    %d = sc.constant dense<0.25> : tensor<1x8x32xf32>
    %sl = sc.sharding_constraint %x over ["tp"] to <[[], [tp], []]> : tensor<2x8x16xf32>
    %n = sc.rms_norm %sl, %s {epsilon = 1.0e-06 : f32} : (tensor<2x8x16xf32>, tensor<16xf32>) -> tensor<2x8x16xf32>
    %g = sc.sharding_constraint %n over ["tp"] to <[[], [], []]> : tensor<2x8x16xf32>
    %e = sc.exp %c : (tensor<1x8x32xf32>) -> tensor<1x8x32xf32>
    %f = sc.tanh %d : (tensor<1x8x32xf32>) -> tensor<1x8x32xf32>
    %h = sc.linear %g, %w {transpose_weight = true} : (tensor<2x8x16xf32>, tensor<32x16xf32>) -> tensor<2x8x32xf32>
    %y = sc.add %h, %e : (tensor<2x8x32xf32>, tensor<1x8x32xf32>) -> tensor<2x8x32xf32>
    %z = sc.mul %y, %f : (tensor<2x8x32xf32>, tensor<1x8x32xf32>) -> tensor<2x8x32xf32>
    return %z, %f : tensor<2x8x32xf32>, tensor<1x8x32xf32>
  }
}

// -----

// sc.replicate_operands (the output-dtype cast of sc-mixed-precision) wants whole operands
// even where its rule would keep the sharding.
// CHECK-LABEL: func.func @replicate_operands
// CHECK: sc.cast {{.*}}{sc.operand_shardings = [#sc.sharding<{{\[}}[], []]>], sc.replicate_operands, sc.sharding = [#sc.sharding<{{\[}}[], []]>]}
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @replicate_operands(%x: tensor<4x8xbf16> {sc.sharding = #sc.sharding<[[], [tp]]>}) -> tensor<4x8xf32> {
    %y = sc.cast %x {sc.replicate_operands} : (tensor<4x8xbf16>) -> tensor<4x8xf32>
    return %y : tensor<4x8xf32>
  }
}
