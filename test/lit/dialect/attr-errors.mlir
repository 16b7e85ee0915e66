// RUN: shardc-opt --split-input-file --verify-diagnostics %s
// The sc dialect verifies every `sc.*` discardable attribute (lib/Dialect/ScAttrVerifier.cpp).

// expected-error @below {{unknown sc dialect attribute 'sc.meshes'}}
module attributes {sc.meshes = [["tp", 2]]} {
}

// -----

// expected-error @below {{'sc.mesh' expects [["axis", size >= 1], ...]}}
module attributes {sc.mesh = [["tp", 0]]} {
}

// -----

// expected-error @below {{'sc.tp_styles': the style of 'm.x' must be a #sc.tp_style}}
module attributes {sc.tp_styles = {"m.x" = "colwise"}} {
}

// -----

// expected-error @below {{'sc.mp_policy': param_dtype must be a dtype name string}}
module attributes {sc.mp_policy = {param_dtype = 16 : i64}} {
}

// -----

// expected-error @below {{'sc.mp_policy': unknown key 'compute_dtype'}}
module attributes {sc.mp_policy = {compute_dtype = "bf16"}} {
}

// -----

func.func @mesh_on_op(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.mesh' is not an op attribute}}
  %0 = sc.exp %x {sc.mesh = [["tp", 2]]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @unknown_op_attr(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{unknown sc dialect attribute 'sc.shardings'}}
  %0 = sc.exp %x {sc.shardings = [#sc.sharding<[[]]>]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sharding_not_array(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.sharding' expects an array of #sc.sharding}}
  %0 = sc.exp %x {sc.sharding = #sc.sharding<[[tp]]>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sharding_dictionary(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.sharding' expects #sc.sharding attributes}}
  %0 = sc.exp %x {sc.sharding = [{dims = [["tp"]]}]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sharding_count(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.operand_shardings' has 2 shardings for 1 values}}
  %0 = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[]]>, #sc.sharding<[[]]>]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @sharding_rank(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{has 1 dims for a value of rank 2}}
  %0 = sc.exp %x {sc.sharding = [#sc.sharding<[[tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

// expected-error @below {{'sc.sharding': partial axes with different reduction kinds are not supported}}
func.func @mixed_kinds(%x: tensor<4xf32> {sc.sharding = #sc.sharding<[[]], partial = [tp: sum, dp_shard: max]>}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @below {{'sc.name' expects a string}}
func.func @arg_name(%x: tensor<4xf32> {sc.name = 3 : i64}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @below {{'sc.fsdp_group' is not a function result attribute}}
func.func @result_attr(%x: tensor<4xf32>) -> (tensor<4xf32> {sc.fsdp_group = 0 : i64}) {
  return %x : tensor<4xf32>
}

// -----

func.func @fsdp_group_type(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.fsdp_group' expects an integer}}
  %0 = sc.exp %x {sc.fsdp_group = "zero"} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @axis_twice(%x: tensor<4x8xf32>) -> tensor<4x8xf32> {
  // expected-error @below {{sharding: mesh axis 'tp' is used twice}}
  %0 = sc.exp %x {sc.sharding = [#sc.sharding<[[tp], [tp]]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
  return %0 : tensor<4x8xf32>
}

// -----

func.func @unknown_kind(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{unknown reduction kind 'avg' (expected sum or max)}}
  %0 = sc.exp %x {sc.sharding = [#sc.sharding<[[]], partial = [tp: avg]>]} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

module attributes {sc.mesh = [["tp", 2]]} {
  // expected-error @below {{'sc.sharding': 'dp_shard' is not an axis of the module's sc.mesh}}
  func.func @axis_not_in_mesh(%x: tensor<4xf32> {sc.sharding = #sc.sharding<[[dp_shard]]>}) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}

// -----

// The valid forms verify.
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]], sc.tp_styles = {"m.x" = #sc.tp_style<colwise>},
                   sc.mp_policy = {param_dtype = "bf16", reduce_dtype = "fp32", output_dtype = "fp32"},
                   sc.fsdp_prefetch, sc.sequence_parallel, sc.source = "m.onnx"} {
  func.func @ok(%x: tensor<4x8xf32> {sc.name = "x", sc.global_shape = array<i64: 8, 8>,
                                     sc.sharding = #sc.sharding<[[dp_shard], []], partial = [tp: max]>})
      -> (tensor<4x8xf32> {sc.name = "y"}) {
    %0 = sc.exp %x {sc.operand_shardings = [#sc.sharding<[[dp_shard], []]>], sc.replicate_operands,
                    sc.sharding = [#sc.sharding<[[dp_shard], [tp]]>], sc.fsdp_group = 1 : i64} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %0 : tensor<4x8xf32>
  }
}

// -----

// expected-error @below {{'sc.train' expects {labels = "input_ids" | "input", optimizer = {lr, beta1, beta2, eps, weight_decay} (optional), lr_scheduler = {warmup_steps, total_steps, min_lr} (optional), max_grad_norm = <float> (optional), activation_checkpointing = "full" | "selective" (optional), reshard_after_forward = "true" | "false" | "auto" (optional), gradient_accumulation_steps = <int >= 1> (optional), defer_fsdp_grad_sync = <bool> (optional), master_dtype = "bf16" | "fp32" (optional), loss_parallel = <bool> (optional), offload_policy = "cpu" (optional), router_aux_loss_coef = <float> (optional), router_bias_update_speed = <float> (optional)}, got {labels = "targets"}}}
module attributes {sc.train = {labels = "targets"}} {
}

// -----

module attributes {sc.train = {labels = "input"}} {
  // expected-error @below {{'sc.train' is not}}
  func.func @f() attributes {sc.train = {labels = "input"}} {
    return
  }
}

// -----

// sc.trainable (mode: train) is a unit attribute of sc.param only.
func.func @trainable_on_exp(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.trainable' is only valid on sc.param}}
  %0 = sc.exp %x {sc.trainable} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @trainable_not_unit() -> tensor<4xf32> {
  // expected-error @below {{'sc.trainable' expects a unit attribute}}
  %0 = sc.param "w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.trainable = true, tied = [], transform = #sc.transform<none>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @trainable_ok() -> tensor<4xf32> {
  %0 = sc.param "w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", sc.trainable, tied = [], transform = #sc.transform<none>} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// sc.window (a sliding window, sc-raise-attention) is a positive width on a causal
// sc.attention that keeps its mask.
func.func @window_without_mask(%q: tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32> {
  // expected-error @below {{'sc.window' is only valid on a causal sc.attention with a mask}}
  %0 = sc.attention %q, %q, %q {causal = true, sc.window = 2 : i64, scale = 0.5 : f32} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
  return %0 : tensor<1x1x4x8xf32>
}

// -----

func.func @window_not_positive(%q: tensor<1x1x4x8xf32>, %m: tensor<4x4xf32>) -> tensor<1x1x4x8xf32> {
  // expected-error @below {{'sc.window' must be a positive integer}}
  %0 = sc.attention %q, %q, %q mask %m {causal = true, sc.window = 0 : i64, scale = 0.5 : f32} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<4x4xf32>) -> tensor<1x1x4x8xf32>
  return %0 : tensor<1x1x4x8xf32>
}

// -----

func.func @window_ok(%q: tensor<1x1x4x8xf32>, %m: tensor<4x4xf32>) -> tensor<1x1x4x8xf32> {
  %0 = sc.attention %q, %q, %q mask %m {causal = true, sc.window = 2 : i64, scale = 0.5 : f32} : (tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<4x4xf32>) -> tensor<1x1x4x8xf32>
  return %0 : tensor<1x1x4x8xf32>
}
