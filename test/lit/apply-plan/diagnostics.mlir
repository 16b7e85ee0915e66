// sc-apply-plan's diagnostics beyond sharding/errors.mlir (mesh, batch, heads): sequence
// parallel and context parallel. The input states what `shardc compile --plan` records on
// the module: sc.mesh and sc.sequence_parallel.
// RUN: shardc-opt --sc-apply-plan --split-input-file --verify-diagnostics %s

module attributes {sc.mesh = [["tp", 2]], sc.sequence_parallel} {
  func.func @sp_odd_sequence(%ids: tensor<2x3xi64>) -> tensor<2x3x8xf32> {
    %t = sc.param "m.embed.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "t", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    // expected-error @+1 {{sequence parallel needs the sequence length (dim 1 of 'tensor<2x3x8xf32>') to divide over tp = 2}}
    %e = sc.embedding %t, %ids : (tensor<16x8xf32>, tensor<2x3xi64>) -> tensor<2x3x8xf32>
    return %e : tensor<2x3x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  // expected-error @+1 {{context parallel (cp = 2) needs attention in the model}}
  func.func @cp_no_attention(%x: tensor<1x8xf32>) -> tensor<1x8xf32> {
    return %x : tensor<1x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  // expected-error @+1 {{context parallel needs the sequence (6) to divide by 2 * cp = 4}}
  func.func @cp_odd_sequence(%q: tensor<1x1x6x4xf32>) -> tensor<1x1x6x4xf32> {
    %a = sc.attention %q, %q, %q {causal = true, scale = 0.5 : f32} : (tensor<1x1x6x4xf32>, tensor<1x1x6x4xf32>, tensor<1x1x6x4xf32>) -> tensor<1x1x6x4xf32>
    return %a : tensor<1x1x6x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @cp_two_lengths(%q: tensor<1x1x8x4xf32>, %p: tensor<1x1x4x4xf32>) -> (tensor<1x1x8x4xf32>, tensor<1x1x4x4xf32>) {
    %a = sc.attention %q, %q, %q {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32>
    // expected-error @+1 {{context parallel needs one sequence length, found 8 and 4}}
    %b = sc.attention %p, %p, %p {causal = true, scale = 0.5 : f32} : (tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x4x4xf32>
    return %a, %b : tensor<1x1x8x4xf32>, tensor<1x1x4x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @cp_cross_attention(%q: tensor<1x1x8x4xf32>, %k: tensor<1x1x4x4xf32>) -> tensor<1x1x8x4xf32> {
    // expected-error @+1 {{context parallel needs self-attention (query and key lengths 8 and 4 differ)}}
    %a = sc.attention %q, %k, %k {scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x4x4xf32>, tensor<1x1x4x4xf32>) -> tensor<1x1x8x4xf32>
    return %a : tensor<1x1x8x4xf32>
  }
}


// -----

module attributes {sc.mesh = [["cp", 2]]} {
  // A square [S, D] table (S == head dim) is fine: the last dim pairs with the head dim. A
  // table over heads, positions and head dims that are all 8 is not.
  func.func @cp_table_ambiguous(%q: tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32> {
    %cos = sc.constant dense<1.0> : tensor<8x8x8xf32>
    %sin = sc.constant dense<0.0> : tensor<8x8x8xf32>
    // expected-error @+1 {{context parallel: cannot tell the position dim of the rotary table 'tensor<8x8x8xf32>'}}
    %r = sc.rotary %q, %cos, %sin : (tensor<1x8x8x8xf32>, tensor<8x8x8xf32>, tensor<8x8x8xf32>) -> tensor<1x8x8x8xf32>
    %a = sc.attention %r, %r, %r {causal = true, scale = 0.5 : f32} : (tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>, tensor<1x8x8x8xf32>) -> tensor<1x8x8x8xf32>
    return %a : tensor<1x8x8x8xf32>
  }
}

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @cp_causal_and_mask(%q: tensor<1x1x8x4xf32>, %m: tensor<1x1x8x8xf32>) -> tensor<1x1x8x4xf32> {
    // expected-error @+1 {{context parallel: causal attention with an extra mask is not supported yet}}
    %a = sc.attention %q, %q, %q mask %m {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x4xf32>
    return %a : tensor<1x1x8x4xf32>
  }
}
