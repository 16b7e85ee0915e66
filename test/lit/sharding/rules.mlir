// The sharding rule of each sc op family (ShardingRuleOpInterface), in the factor notation of
// sc-print-sharding-rules: one letter per factor, `j*k` a compound dim, `1` a broadcast dim;
// reduction factors make results Partial, `whole` factors keep their dims unsplit, and
// `partial` says where Partial operands may flow unreduced. Notable: a linear with a bias
// keeps its contraction whole (partial sums would each add the bias); attention shards the
// kv-head factor j of the query heads j*k, so each query head stays with its kv head, and
// may split the query sequence l (context parallel) but not the keys' n; an embedding's
// vocabulary is a reduction (vocabulary parallel gives Partial); a mean's reduced dim is
// whole; reshards state their own transition.
// RUN: shardc-opt --sc-print-sharding-rules %s -verify-diagnostics -o /dev/null

func.func @rules(%a: tensor<2x3x4xf32>, %b: tensor<4xf32>, %m: tensor<2x4x8xf32>, %w: tensor<8x4xf32>,
                 %q: tensor<2x4x6x8xf32>, %k: tensor<2x2x6x8xf32>, %ids: tensor<2x3xi64>, %t: tensor<10x4xf32>,
                 %cs: tensor<6x8xf32>, %g: tensor<5x4xf32>, %c1: tensor<2x1xf32>, %i8: tensor<3xi64>, %b8: tensor<8xf32>, %a2: tensor<5x4xf32>) {
  // expected-remark @+1 {{sc.add: (i, j, k), (k) -> (i, j, k) partial=all-operands}}
  %0 = sc.add %a, %b : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.mul: (i, j, k), (k) -> (i, j, k) partial=one-operand}}
  %1 = sc.mul %a, %b : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.div: (i, j, k), (k) -> (i, j, k) partial=first-operand}}
  %2 = sc.div %a, %b : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.exp: (i, j, k) -> (i, j, k) partial=none}}
  %3 = sc.exp %a : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.cast: (i, j, k) -> (i, j, k) partial=unary}}
  %4 = sc.cast %a : (tensor<2x3x4xf32>) -> tensor<2x3x4xbf16>
  // expected-remark @+1 {{sc.linear: (i, j, k), (l, k) -> (i, j, l) reduction={k}:sum partial=none}}
  %5 = sc.linear %a, %w {transpose_weight = true} : (tensor<2x3x4xf32>, tensor<8x4xf32>) -> tensor<2x3x8xf32>
  // expected-remark @+1 {{sc.linear: (i, j, k), (l, k), (l) -> (i, j, l) reduction={k}:sum whole={k} partial=none}}
  %6 = sc.linear %a, %w, %b8 {transpose_weight = true} : (tensor<2x3x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<2x3x8xf32>
  // expected-remark @+1 {{sc.matmul: (i, j, k), (i, k, l) -> (i, j, l) reduction={k}:sum partial=none}}
  %7 = sc.matmul %a, %m : (tensor<2x3x4xf32>, tensor<2x4x8xf32>) -> tensor<2x3x8xf32>
  // expected-remark @+1 {{sc.attention: (i, j*k, l, m), (i, j, n, m), (i, j, n, o) -> (i, j*k, l, o) whole={k,m,n,o} partial=none}}
  %8 = sc.attention %q, %k, %k {causal = true, scale = 0.35 : f32} : (tensor<2x4x6x8xf32>, tensor<2x2x6x8xf32>, tensor<2x2x6x8xf32>) -> tensor<2x4x6x8xf32>
  // expected-remark @+1 {{sc.rms_norm: (i, j, k), (k) -> (i, j, k) whole={k} partial=none}}
  %9 = sc.rms_norm %a, %b {axis = -1 : i64, epsilon = 1.0e-5 : f32} : (tensor<2x3x4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.softmax: (i, j, k) -> (i, j, k) whole={j} partial=none}}
  %10 = sc.softmax %a {axis = 1 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.rotary: (i, j, k, l), (k, l), (k, l) -> (i, j, k, l) whole={l} partial=none}}
  %11 = sc.rotary %q, %cs, %cs : (tensor<2x4x6x8xf32>, tensor<6x8xf32>, tensor<6x8xf32>) -> tensor<2x4x6x8xf32>
  // expected-remark @+1 {{sc.embedding: (i, j), (k, l) -> (k, l, j) reduction={i}:sum partial=none}}
  %12 = sc.embedding %t, %ids : (tensor<10x4xf32>, tensor<2x3xi64>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.reduce_sum: (i, j, k) -> (i, j, 1) reduction={k}:sum partial=none}}
  %13 = sc.reduce_sum %a {axes = array<i64: 2>, keepdims = true} : (tensor<2x3x4xf32>) -> tensor<2x3x1xf32>
  // expected-remark @+1 {{sc.reduce_mean: (i, j, k) -> (i, j) reduction={k}:sum whole={k} partial=none}}
  %14 = sc.reduce_mean %a {axes = array<i64: 2>, keepdims = false} : (tensor<2x3x4xf32>) -> tensor<2x3xf32>
  // expected-remark @+1 {{sc.reshape: (i, j, k*l) -> (i, j, k, l) partial=unary}}
  %15 = sc.reshape %a : (tensor<2x3x4xf32>) -> tensor<2x3x2x2xf32>
  // expected-remark @+1 {{sc.transpose: (i, j, k) -> (i, k, j) partial=unary}}
  %16 = sc.transpose %a {perm = array<i64: 0, 2, 1>} : (tensor<2x3x4xf32>) -> tensor<2x4x3xf32>
  // expected-remark @+1 {{sc.slice: (i, k, j) -> (i, l, j) whole={k,l} partial=none}}
  %17 = sc.slice %a {starts = array<i64: 0, 1, 0>, steps = array<i64: 1, 1, 1>} : (tensor<2x3x4xf32>) -> tensor<2x2x4xf32>
  // expected-remark @+1 {{sc.concat: (i, k, j), (i, l, j) -> (i, m, j) whole={k,l,m} partial=none}}
  %18 = sc.concat %a, %a {axis = 1 : i64} : (tensor<2x3x4xf32>, tensor<2x3x4xf32>) -> tensor<2x6x4xf32>
  // expected-remark @+1 {{sc.gather: (i, j), (k) -> (k, j) whole={i} partial=none}}
  %19 = sc.gather %g, %i8 {axis = 0 : i64} : (tensor<5x4xf32>, tensor<3xi64>) -> tensor<3x4xf32>
  // expected-remark @+1 {{sc.expand: (i, 1) -> (i, j) partial=unary}}
  %20 = sc.expand %c1 : (tensor<2x1xf32>) -> tensor<2x5xf32>
  // expected-remark @+1 {{sc.shape: whole tensors}}
  %21 = sc.shape %a : (tensor<2x3x4xf32>) -> tensor<3xi64>
  // expected-remark @+1 {{sc.all_reduce: whole tensors}}
  %22 = sc.all_reduce %a {axes = ["tp"]} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.gemm: (i, j), (k, j), (k) -> (i, k) reduction={j}:sum whole={j} partial=none}}
  %23 = sc.gemm %a2, %w, %b8 {trans_b = true} : (tensor<5x4xf32>, tensor<8x4xf32>, tensor<8xf32>) -> tensor<5x8xf32>
  // expected-remark @+1 {{sc.trilu: (i, j, k) -> (i, l, m) whole={j,k,l,m} partial=none}}
  %24 = sc.trilu %a {upper = false} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.reduce_max: (i, j, k) -> (i, k) reduction={j}:max partial=none}}
  %25 = sc.reduce_max %a {axes = array<i64: 1>, keepdims = false} : (tensor<2x3x4xf32>) -> tensor<2x4xf32>
  // expected-remark @+1 {{sc.split: (i, j, k) -> (i, j, l), (i, j, m) whole={k,l,m} partial=none}}
  %26:2 = sc.split %a {axis = 2 : i64} : (tensor<2x3x4xf32>) -> (tensor<2x3x1xf32>, tensor<2x3x3xf32>)
  // expected-remark @+1 {{sc.layer_norm: (i, j, k), (k), (k) -> (i, j, k) whole={k} partial=none}}
  %27 = sc.layer_norm %a, %b, %b {axis = -1 : i64} : (tensor<2x3x4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<2x3x4xf32>
  // expected-remark @+1 {{sc.param: () -> (i, j) partial=none}}
  %28 = sc.param "p.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>} : tensor<8x4xf32>
  // expected-remark @+1 {{sc.shard_slice: whole tensors}}
  %29 = sc.shard_slice %a {axes = ["tp"], dim = 0 : i64} : (tensor<2x3x4xf32>) -> tensor<2x3x4xf32>
  return
}
