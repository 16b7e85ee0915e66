// RUN: shardc-opt --split-input-file --verify-diagnostics %s

func.func @param_negative_offset() -> tensor<4xf32> {
  // expected-error @below {{negative file offset -1}}
  %0 = sc.param "w" {file = "m.onnx", offset = -1 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @param_unknown_transform() -> tensor<4xf32> {
  // expected-error @below {{expected ::shardc::sc::ParamTransform to be one of: none, transpose}}
  // expected-error @below {{failed to parse Sc_ParamTransformAttr parameter 'value'}}
  %0 = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<flip>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @param_transform_string() -> tensor<4xf32> {
  // expected-error @below {{attribute 'transform' failed to satisfy constraint: parameter storage transform}}
  %0 = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = "none"} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @all_reduce_unknown_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{expected ::shardc::sc::ReduceKind to be one of: sum, max}}
  // expected-error @below {{failed to parse Sc_ReduceKindAttr parameter 'value'}}
  %0 = sc.all_reduce %x {axes = ["tp"], reduce = #sc.reduce<avg>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @param_transpose_needs_2d() -> tensor<4xf32> {
  // expected-error @below {{transpose transform needs a 2-D parameter}}
  %0 = sc.param "w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<transpose>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @add_no_broadcast(%x: tensor<4x8xf32>, %y: tensor<3xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{operand shapes [4x8] and [3] do not broadcast}}
  %0 = sc.add %x, %y : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @mul_element_types(%x: tensor<4xf32>, %y: tensor<4xf16>) -> tensor<4xf32> {
  // expected-error @below {{operand element types differ: 'f32' vs 'f16'}}
  %0 = sc.mul %x, %y : (tensor<4xf32>, tensor<4xf16>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sub_result_shape(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<8xf32> {
  // expected-error @below {{result shape [8] differs from the broadcast shape [4]}}
  %0 = sc.sub %x, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @equal_result_bool(%x: tensor<4xf32>, %y: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{result element type 'f32' should be 'i1'}}
  %0 = sc.equal %x, %y : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @where_condition(%c: tensor<4xf32>, %x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{condition must be i1, got 'f32'}}
  %0 = sc.where %c, %x, %x : (tensor<4xf32>, tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @unary_shape(%x: tensor<4xf32>) -> tensor<5xf32> {
  // expected-error @below {{result shape [5] differs from the input shape [4]}}
  %0 = sc.sqrt %x : (tensor<4xf32>) -> tensor<5xf32>
  return %0 : tensor<5xf32>
}

// -----

func.func @isnan_bool(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{result element type 'f32' should be 'i1'}}
  %0 = sc.isnan %x : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @gelu_approximate(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{expected ::shardc::sc::GeluApproximation to be one of: none, tanh}}
  // expected-error @below {{failed to parse Sc_GeluApproximationAttr parameter 'value'}}
  %0 = sc.gelu %x {approximate = #sc.gelu_approximation<fast>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @matmul_contracting(%x: tensor<4x8xf32>, %y: tensor<7x2xf32>) -> tensor<4x2xf32> {
  // expected-error @below {{contracting dims differ: [4x8] . [7x2]}}
  %0 = sc.matmul %x, %y : (tensor<4x8xf32>, tensor<7x2xf32>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

func.func @gemm_rank(%x: tensor<2x4x8xf32>, %y: tensor<8x2xf32>) -> tensor<4x2xf32> {
  // expected-error @below {{A and B must be 2-D, got [2x4x8] and [8x2]}}
  %0 = sc.gemm %x, %y : (tensor<2x4x8xf32>, tensor<8x2xf32>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

func.func @linear_features(%x: tensor<4x8xf32>, %w: tensor<16x7xf32>) -> tensor<4x16xf32> {
  // expected-error @below {{input features 8 differ from the weight's 7 (weight [16x7], transposed)}}
  %0 = sc.linear %x, %w {transpose_weight = true} : (tensor<4x8xf32>, tensor<16x7xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

func.func @linear_bias(%x: tensor<4x8xf32>, %w: tensor<8x16xf32>, %b: tensor<8xf32>) -> tensor<4x16xf32> {
  // expected-error @below {{bias shape [8] should be [16]}}
  %0 = sc.linear %x, %w, %b : (tensor<4x8xf32>, tensor<8x16xf32>, tensor<8xf32>) -> tensor<4x16xf32>
  return %0 : tensor<4x16xf32>
}

// -----

func.func @embedding_ids(%t: tensor<32x8xf32>, %i: tensor<4xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{ids must be integers, got 'f32'}}
  %0 = sc.embedding %t, %i : (tensor<32x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @softmax_axis(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{axis 2 out of range for rank 2}}
  %0 = sc.softmax %x {axis = 2 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @log_softmax_shape(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  // expected-error @below {{result shape differs from the input shape}}
  %0 = sc.log_softmax %x : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

func.func @layer_norm_scale(%x: tensor<4x8xf32>, %s: tensor<4xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{scale shape [4] does not broadcast to the normalised dims [8]}}
  %0 = sc.layer_norm %x, %s : (tensor<4x8xf32>, tensor<4xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @rms_norm_scale(%x: tensor<4x8xf32>, %s: tensor<3xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{scale shape [3] does not broadcast to the normalised dims [8]}}
  %0 = sc.rms_norm %x, %s : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @rotary_odd(%x: tensor<4x7xf32>, %c: tensor<4x7xf32>) -> tensor<4x7xf32> {
  // expected-error @below {{last dim of [4x7] must be even (rotate-half)}}
  %0 = sc.rotary %x, %c, %c : (tensor<4x7xf32>, tensor<4x7xf32>, tensor<4x7xf32>) -> tensor<4x7xf32>
  return %0 : tensor<4x7xf32>
}

// -----

func.func @scatter_nd_updates(%x: tensor<4x8xf32>, %i: tensor<2x1xi64>, %u: tensor<2x4xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{updates shape [2x4] should be [2x8]}}
  %0 = sc.scatter_nd %x, %i, %u : (tensor<4x8xf32>, tensor<2x1xi64>, tensor<2x4xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @arg_max_type(%x: tensor<4x8xf32>) -> tensor<4xi32> {
  // expected-error @below {{result must be i64, got 'i32'}}
  %0 = sc.arg_max %x {axis = 1 : i64, keepdims = false} : (tensor<4x8xf32>) -> tensor<4xi32>
  return %0 : tensor<4xi32>
}

// -----

func.func @less_result(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{result element type 'f32' should be 'i1'}}
  %0 = sc.less %x, %x : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @attention_gqa_ratio(%q: tensor<1x6x4x8xf32>, %k: tensor<1x4x4x8xf32>) -> tensor<1x6x4x8xf32> {
  // expected-error @below {{query heads 6 are not a multiple of key/value heads 4}}
  %0 = sc.attention %q, %k, %k {scale = 1.0 : f32} : (tensor<1x6x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>) -> tensor<1x6x4x8xf32>
  return %0 : tensor<1x6x4x8xf32>
}

// -----

func.func @attention_mask(%q: tensor<1x4x4x8xf32>, %m: tensor<1x1x3x4xf32>) -> tensor<1x4x4x8xf32> {
  // expected-error @below {{mask shape [1x1x3x4] does not broadcast to the scores [1x4x4x4]}}
  %0 = sc.attention %q, %q, %q mask %m {scale = 1.0 : f32} : (tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x4x4x8xf32>, tensor<1x1x3x4xf32>) -> tensor<1x4x4x8xf32>
  return %0 : tensor<1x4x4x8xf32>
}

// -----

func.func @reduce_axis(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
  // expected-error @below {{axis 2 out of range for rank 2 (axes are normalised at import)}}
  %0 = sc.reduce_mean %x {axes = array<i64: 2>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

func.func @reduce_sum_shape(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
  // expected-error @below {{result shape [4x1] should be [4]}}
  %0 = sc.reduce_sum %x {axes = array<i64: 1>, keepdims = false} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

func.func @reduce_max_repeated(%x: tensor<4x8xf32>) -> tensor<4x1xf32> {
  // expected-error @below {{axis 1 repeated}}
  %0 = sc.reduce_max %x {axes = array<i64: 1, 1>} : (tensor<4x8xf32>) -> tensor<4x1xf32>
  return %0 : tensor<4x1xf32>
}

// -----

func.func @reshape_count(%x: tensor<4x8xf32>) -> tensor<30xf32> {
  // expected-error @below {{cannot reshape [4x8] to [30]: element counts differ}}
  %0 = sc.reshape %x : (tensor<4x8xf32>) -> tensor<30xf32>
  return %0 : tensor<30xf32>
}

// -----

func.func @unsqueeze_dim(%x: tensor<4x8xf32>) -> tensor<4x2x8xf32> {
  // expected-error @below {{inserted dim 1 must be 1}}
  %0 = sc.unsqueeze %x {axes = array<i64: 1>} : (tensor<4x8xf32>) -> tensor<4x2x8xf32>
  return %0 : tensor<4x2x8xf32>
}

// -----

func.func @squeeze_dim(%x: tensor<4x8xf32>) -> tensor<8xf32> {
  // expected-error @below {{cannot squeeze dim 0 of size 4}}
  %0 = sc.squeeze %x {axes = array<i64: 0>} : (tensor<4x8xf32>) -> tensor<8xf32>
  return %0 : tensor<8xf32>
}

// -----

func.func @expand_shape(%x: tensor<3x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{cannot expand [3x8] to [4x8]}}
  %0 = sc.expand %x : (tensor<3x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @transpose_perm(%x: tensor<4x8xf32>) -> tensor<8x4xf32> {
  // expected-error @below {{perm is not a permutation}}
  %0 = sc.transpose %x {perm = array<i64: 1, 1>} : (tensor<4x8xf32>) -> tensor<8x4xf32>
  return %0 : tensor<8x4xf32>
}

// -----

func.func @slice_bounds(%x: tensor<4x8xf32>) -> tensor<4x4xf32> {
  // expected-error @below {{dim 1 reads [6, 9] outside [0, 8)}}
  %0 = sc.slice %x {starts = array<i64: 0, 6>, steps = array<i64: 1, 1>} : (tensor<4x8xf32>) -> tensor<4x4xf32>
  return %0 : tensor<4x4xf32>
}

// -----

func.func @concat_sum(%x: tensor<4x8xf32>) -> tensor<4x15xf32> {
  // expected-error @below {{concat axis sums to 16, result has 15}}
  %0 = sc.concat %x, %x {axis = 1 : i64} : (tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<4x15xf32>
  return %0 : tensor<4x15xf32>
}

// -----

func.func @split_sum(%x: tensor<4x8xf32>) -> tensor<4x3xf32> {
  // expected-error @below {{split sizes sum to 6, input has 8}}
  %0:2 = sc.split %x {axis = 1 : i64} : (tensor<4x8xf32>) -> (tensor<4x3xf32>, tensor<4x3xf32>)
  return %0#0 : tensor<4x3xf32>
}

// -----

func.func @gather_indices(%x: tensor<4x8xf32>, %i: tensor<3xf32>) -> tensor<4x3xf32> {
  // expected-error @below {{indices must be integers}}
  %0 = sc.gather %x, %i {axis = 1 : i64} : (tensor<4x8xf32>, tensor<3xf32>) -> tensor<4x3xf32>
  return %0 : tensor<4x3xf32>
}

// -----

func.func @gather_elements_rank(%x: tensor<4x8xf32>, %i: tensor<3xi64>) -> tensor<3xf32> {
  // expected-error @below {{indices rank differs from data rank}}
  %0 = sc.gather_elements %x, %i {axis = 1 : i64} : (tensor<4x8xf32>, tensor<3xi64>) -> tensor<3xf32>
  return %0 : tensor<3xf32>
}

// -----

func.func @trilu_rank(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{needs rank >= 2}}
  %0 = sc.trilu %x {upper = true} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @shape_result(%x: tensor<4x8xf32>) -> tensor<2xi32> {
  // expected-error @below {{result must be a 1-D i64 tensor}}
  %0 = sc.shape %x : (tensor<4x8xf32>) -> tensor<2xi32>
  return %0 : tensor<2xi32>
}

// -----

func.func @constant_of_shape_fill() -> tensor<4xf32> {
  // expected-error @below {{fill value must have the result's element type}}
  %0 = sc.constant_of_shape {value = 0 : i64} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @range_rank(%a: tensor<i64>) -> tensor<2x2xi64> {
  // expected-error @below {{result must be 1-D}}
  %0 = sc.range %a, %a, %a : (tensor<i64>, tensor<i64>, tensor<i64>) -> tensor<2x2xi64>
  return %0 : tensor<2x2xi64>
}

// -----

func.func @layer_yield_types(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{yielded types differ from the result types}}
  %0 = sc.layer "m.layers.0" -> tensor<4xf32> {
    sc.yield
  }
  return %0 : tensor<4xf32>
}

// -----

func.func @constraint_rank(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{sharding has 1 dims for a tensor of rank 2}}
  %0 = sc.sharding_constraint %x over ["tp"] to <[[tp]]> : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @constraint_foreign_axis(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{places mesh axis 'dp_shard', which it does not constrain (axes ["tp"])}}
  %0 = sc.sharding_constraint %x over ["tp"] to <[[dp_shard], []]> : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @constraint_partial(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{a constraint cannot ask for a pending reduction}}
  %0 = sc.sharding_constraint %x over ["tp"] to <[[], []], partial = [tp: sum]> : tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @embedding_rows_from_without_vocab(%t: tensor<32x8xf32>, %i: tensor<4xi64>, %s: tensor<i64>) -> tensor<4x8xf32> {
  // expected-error @below {{row_start and vocab_size go together}}
  %0 = sc.embedding %t, %i rows_from %s : (tensor<32x8xf32>, tensor<4xi64>, tensor<i64>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @token_loss_labels_shape(%x: tensor<2x8x16xf32>, %l: tensor<2x7xi64>) -> tensor<f32> {
  // expected-error @below {{labels [2x7] must be [B, S] of the logits [2x8x16]}}
  %s:2 = sc.token_loss %x, %l : (tensor<2x8x16xf32>, tensor<2x7xi64>) -> (tensor<f32>, tensor<f32>)
  return %s#0 : tensor<f32>
}

// -----

func.func @embedding_small_vocab(%t: tensor<32x8xf32>, %i: tensor<4xi64>, %s: tensor<i64>) -> tensor<4x8xf32> {
  // expected-error @below {{vocab_size 16 is smaller than the table's 32 rows}}
  %0 = sc.embedding %t, %i rows_from %s {vocab_size = 16 : i64} : (tensor<32x8xf32>, tensor<4xi64>, tensor<i64>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @token_loss_labels_type(%x: tensor<2x8x16xf32>, %l: tensor<2x8xi32>) -> tensor<f32> {
  // expected-error @below {{labels must be i64, got 'i32'}}
  %s:2 = sc.token_loss %x, %l : (tensor<2x8x16xf32>, tensor<2x8xi32>) -> (tensor<f32>, tensor<f32>)
  return %s#0 : tensor<f32>
}

// -----

func.func @dynamic_slice_start(%x: tensor<4x8xf32>, %s: tensor<1xi64>) -> tensor<4x2xf32> {
  // expected-error @below {{start must be an i64 scalar, got 'tensor<1xi64>'}}
  %0 = sc.dynamic_slice %x, %s {axis = 1 : i64} : (tensor<4x8xf32>, tensor<1xi64>) -> tensor<4x2xf32>
  return %0 : tensor<4x2xf32>
}

// -----

func.func @token_loss_result(%x: tensor<2x8x16xbf16>, %l: tensor<2x8xi64>) -> tensor<bf16> {
  // expected-error @below {{sum and count must be f32 scalars (tensor<f32>), got 'tensor<bf16>'}}
  %s:2 = sc.token_loss %x, %l : (tensor<2x8x16xbf16>, tensor<2x8xi64>) -> (tensor<bf16>, tensor<bf16>)
  return %s#0 : tensor<bf16>
}

// -----

func.func @dynamic_slice_other_dim(%x: tensor<4x8xf32>, %s: tensor<i64>) -> tensor<2x2xf32> {
  // expected-error @below {{differs from the input [4x8] on dim 0 (only axis 1 is sliced)}}
  %0 = sc.dynamic_slice %x, %s {axis = 1 : i64} : (tensor<4x8xf32>, tensor<i64>) -> tensor<2x2xf32>
  return %0 : tensor<2x2xf32>
}

// -----

func.func @process_index_twice() -> tensor<i64> {
  // expected-error @below {{axis 'tp' is listed twice}}
  %0 = sc.process_index {axes = ["tp", "tp"]} : tensor<i64>
  return %0 : tensor<i64>
}

// -----

func.func @token_loss_rank(%x: tensor<16x16xf32>, %l: tensor<16xi64>) -> tensor<f32> {
  // expected-error @below {{logits must be float [B, S, V], got [16x16] 'f32'}}
  %s:2 = sc.token_loss %x, %l : (tensor<16x16xf32>, tensor<16xi64>) -> (tensor<f32>, tensor<f32>)
  return %s#0 : tensor<f32>
}
