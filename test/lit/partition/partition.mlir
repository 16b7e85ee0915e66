// sc-partition alone: the input states what sc-insert-reshards leaves (sc.mesh, every value's
// sc.sharding, the collectives already in place); the pass rewrites each type to its local
// shape and records the global shapes of the inputs and parameters.
// RUN: shardc-opt --sc-partition --split-input-file --verify-diagnostics %s | FileCheck %s

// Tensor parallel MLP on tp = 2: a colwise weight [out 16, in 8] split on dim 0, a rowwise
// weight split on its input features, a Partial result reduced by all_reduce, and a
// replicated input and output left as they are.
// CHECK-LABEL: func.func @mlp
// CHECK-SAME: (%[[X:.*]]: tensor<4x8xf32> {sc.global_shape = array<i64: 4, 8>}) -> tensor<4x8xf32>
// CHECK: %[[W1:.*]] = sc.param "mlp.up.weight" {{.*}}sc.global_shape = array<i64: 16, 8>{{.*}} : tensor<8x8xf32>
// CHECK: %[[W2:.*]] = sc.param "mlp.down.weight" {{.*}}sc.global_shape = array<i64: 8, 16>{{.*}} : tensor<8x8xf32>
// CHECK: %[[H:.*]] = sc.linear %[[X]], %[[W1]] {{.*}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
// CHECK: %[[A:.*]] = sc.silu %[[H]] {{.*}} : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: %[[P:.*]] = sc.linear %[[A]], %[[W2]] {{.*}} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
// CHECK: %[[R:.*]] = sc.all_reduce %[[P]] {{.*}} : (tensor<4x8xf32>) -> tensor<4x8xf32>
// CHECK: return %[[R]] : tensor<4x8xf32>
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @mlp(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
    %w1 = sc.param "mlp.up.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w1", tied = [], transform = #sc.transform<none>, sc.sharding = [#sc.sharding<[[tp], []]>]} : tensor<16x8xf32>
    %w2 = sc.param "mlp.down.weight" {file = "w.bin", offset = 512 : i64, onnx_name = "w2", tied = [], transform = #sc.transform<none>, sc.sharding = [#sc.sharding<[[], [tp]]>]} : tensor<8x16xf32>
    %h = sc.linear %x, %w1 {transpose_weight = true, sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x8xf32>, tensor<16x8xf32>) -> tensor<4x16xf32>
    %a = sc.silu %h {sc.sharding = [#sc.sharding<[[], [tp]]>]} : (tensor<4x16xf32>) -> tensor<4x16xf32>
    %p = sc.linear %a, %w2 {transpose_weight = true, sc.sharding = [#sc.sharding<[[], []], partial = [tp: sum]>]} : (tensor<4x16xf32>, tensor<8x16xf32>) -> tensor<4x8xf32>
    %r = sc.all_reduce %p {axes = ["tp"], reduce = #sc.reduce<sum>, sc.sharding = [#sc.sharding<[[], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %r : tensor<4x8xf32>
  }
}

// -----

// Data parallel on a 2-D mesh: the input split on the batch over (dp_replicate, dp_shard)
// becomes [8 / 4, ...]; the function type follows its arguments and results; a value split
// over one axis of several is divided by that axis only; the gather's result is whole.
// CHECK-LABEL: func.func @batch
// CHECK-SAME: (%{{.*}}: tensor<2x3x8xf32> {sc.global_shape = array<i64: 8, 3, 8>, sc.sharding = {{.*}}}) -> tensor<8x3x8xf32>
// CHECK: sc.exp {{.*}} -> tensor<2x3x8xf32>
// CHECK: sc.all_gather {{.*}} : (tensor<2x3x8xf32>) -> tensor<4x3x8xf32>
// CHECK: sc.all_gather {{.*}} : (tensor<4x3x8xf32>) -> tensor<8x3x8xf32>
module attributes {sc.mesh = [["dp_replicate", 2], ["dp_shard", 2], ["tp", 1]]} {
  func.func @batch(%x: tensor<8x3x8xf32> {sc.sharding = #sc.sharding<[[dp_replicate, dp_shard], [], []]>}) -> tensor<8x3x8xf32> {
    %e = sc.exp %x {sc.sharding = [#sc.sharding<[[dp_replicate, dp_shard], [], []]>]} : (tensor<8x3x8xf32>) -> tensor<8x3x8xf32>
    %g1 = sc.all_gather %e {axes = ["dp_shard"], dim = 0 : i64, sc.sharding = [#sc.sharding<[[dp_replicate], [], []]>]} : (tensor<8x3x8xf32>) -> tensor<8x3x8xf32>
    %g2 = sc.all_gather %g1 {axes = ["dp_replicate"], dim = 0 : i64, sc.sharding = [#sc.sharding<[[], [], []]>]} : (tensor<8x3x8xf32>) -> tensor<8x3x8xf32>
    return %g2 : tensor<8x3x8xf32>
  }
}

// -----

// Values without sc.sharding (or whose sharding does not name every dim) keep their type;
// a mesh axis of size 1 divides nothing.
// CHECK-LABEL: func.func @untouched
// CHECK-SAME: (%{{.*}}: tensor<3x5xf32> {sc.global_shape = array<i64: 3, 5>}) -> tensor<3x5xf32>
// CHECK: sc.neg {{.*}} : (tensor<3x5xf32>) -> tensor<3x5xf32>
// CHECK: sc.exp {{.*}} : (tensor<3x5xf32>) -> tensor<3x5xf32>
module attributes {sc.mesh = [["dp_shard", 1], ["tp", 2]]} {
  func.func @untouched(%x: tensor<3x5xf32>) -> tensor<3x5xf32> {
    %n = sc.neg %x {sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<3x5xf32>) -> tensor<3x5xf32>
    %e = sc.exp %n : (tensor<3x5xf32>) -> tensor<3x5xf32>
    return %e : tensor<3x5xf32>
  }
}

// -----

// A dim that does not divide over its axes is refused at the op that holds it.
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @odd(%x: tensor<4x6xf32>) -> tensor<4x6xf32> {
    // expected-error @+1 {{a value of shape 'tensor<3x6xf32>' cannot be split as [tp: Shard(0)]: a dim does not divide over its mesh axes}}
    %w = sc.param "odd.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>, sc.sharding = [#sc.sharding<[[tp], []]>]} : tensor<3x6xf32>
    %y = sc.exp %x : (tensor<4x6xf32>) -> tensor<4x6xf32>
    return %y : tensor<4x6xf32>
  }
}

// -----

// A function argument that does not divide: the error is at the function.
module attributes {sc.mesh = [["dp_shard", 4]]} {
  // expected-error @+1 {{a value of shape 'tensor<6x2xf32>' cannot be split as [dp_shard: Shard(0)]}}
  func.func @odd_input(%x: tensor<6x2xf32> {sc.sharding = #sc.sharding<[[dp_shard], []]>}) -> tensor<6x2xf32> {
    return %x : tensor<6x2xf32>
  }
}

// -----

// Shardings that disagree with an op's shape rule fail the per-rank program's verifier
// (here a linear whose weight is split on the contraction but whose input is not).
module attributes {sc.mesh = [["tp", 2]]} {
  func.func @inconsistent(%x: tensor<4x8xf32>) -> tensor<4x6xf32> {
    %w = sc.param "bad.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>, sc.sharding = [#sc.sharding<[[tp], []]>]} : tensor<8x6xf32>
    // expected-error @+1 {{'sc.linear' op input features 8 differ from the weight's 4 (weight [4x6])}}
    %y = sc.linear %x, %w : (tensor<4x8xf32>, tensor<8x6xf32>) -> tensor<4x6xf32>
    return %y : tensor<4x6xf32>
  }
}

// -----

// expected-error @+1 {{sc-partition needs sc.mesh}}
module {
  func.func @no_mesh(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
