// RUN: shardc-opt --split-input-file --verify-diagnostics %s
// The dialect verifies the load-step mark and the memory plan's attributes
// (lib/Dialect/ScAttrVerifier.cpp): sc.at_load only on a step whose operands are known at
// load; offsets one per result, persistent ones on load steps only.

func.func @at_load_reads_argument(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.at_load': operand #0 is not a parameter, a constant or a load-time result}}
  %0 = sc.neg %x {sc.at_load} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @at_load_through_layer(%x: tensor<4xf32>) -> tensor<4xf32> {
  %l = sc.layer "m.layers.0" -> tensor<4xf32> {
    %n = sc.neg %x : (tensor<4xf32>) -> tensor<4xf32>
    sc.yield %n : tensor<4xf32>
  }
  // expected-error @below {{'sc.at_load': operand #0 is not a parameter}}
  %0 = sc.exp %l {sc.at_load} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @at_load_no_operands() -> tensor<4xf32> {
  // expected-error @below {{'sc.at_load' is on an op without operands that is not a load-time source}}
  %0 = sc.constant_of_shape {value = 0.0 : f32, sc.at_load} : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @at_load_not_a_step() -> tensor<4xf32> {
  // expected-error @below {{'sc.at_load' is on an op that is not an artifact step}}
  %0 = sc.constant {sc.at_load} dense<1.0> : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @at_load_not_unit(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.at_load' expects a unit attribute}}
  %0 = sc.neg %x {sc.at_load = true} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @offsets_count(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.arena_offsets' has 2 offsets for 1 results}}
  %0 = sc.neg %x {sc.arena_offsets = array<i64: 0, 64>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @persistent_offsets_in_run(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.persistent_offsets' is on an op without 'sc.at_load'}}
  %0 = sc.neg %x {sc.persistent_offsets = array<i64: 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @arena_offsets_at_load() -> tensor<4xf32> {
  %c = sc.constant dense<1.0> : tensor<4xf32>
  // expected-error @below {{'sc.arena_offsets' is on an op with 'sc.at_load'}}
  %0 = sc.neg %c {sc.at_load, sc.arena_offsets = array<i64: 0>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @offsets_negative(%x: tensor<4xf32>) -> tensor<4xf32> {
  // expected-error @below {{'sc.arena_offsets' has a negative offset}}
  %0 = sc.neg %x {sc.arena_offsets = array<i64: -64>} : (tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @below {{'sc.arena_offset' expects a non-negative integer}}
func.func @arg_offset(%x: tensor<4xf32> {sc.arena_offset = "0"}) -> tensor<4xf32> {
  return %x : tensor<4xf32>
}

// -----

// expected-error @below {{'sc.arena_bytes' is not an op attribute}}
func.func @bytes_on_op() attributes {sc.arena_bytes = 64 : i64} {
  return
}

// -----

// expected-error @below {{'sc.persistent_bytes' expects a non-negative integer}}
module attributes {sc.persistent_bytes = -1 : i64} {
}
