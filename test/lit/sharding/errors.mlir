// Plan diagnostics of sc-apply-plan.
// RUN: shardc-opt --sc-apply-plan --split-input-file --verify-diagnostics %s

// expected-error @+1 {{sc-apply-plan needs the module attribute sc.mesh}}
module {
  func.func @main(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
    return %x : tensor<4x16xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 3], ["cp", 1], ["tp", 1]]} {
  // expected-error @+1 {{input 0 has batch 4, which does not divide over the data-parallel axes (3 ranks)}}
  func.func @main(%x: tensor<4x16xf32>) -> tensor<4x16xf32> {
    return %x : tensor<4x16xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 4]]} {
  func.func @main(%q: tensor<1x2x8x4xf32>, %k: tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32> {
    // expected-error @+1 {{attention with 2 query heads cannot be split over tp = 4 (the heads must divide)}}
    %a = sc.attention %q, %k, %k {scale = 0.5 : f32} : (tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>, tensor<1x2x8x4xf32>) -> tensor<1x2x8x4xf32>
    return %a : tensor<1x2x8x4xf32>
  }
}

// -----

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 4]]} {
  func.func @main(%q: tensor<1x12x8x4xf32>, %k: tensor<1x6x8x4xf32>) -> tensor<1x12x8x4xf32> {
    // expected-error @+1 {{attention with 6 key/value heads cannot be split over tp = 4 (kv heads must divide tp or be divisible by it)}}
    %a = sc.attention %q, %k, %k {scale = 0.5 : f32} : (tensor<1x12x8x4xf32>, tensor<1x6x8x4xf32>, tensor<1x6x8x4xf32>) -> tensor<1x12x8x4xf32>
    return %a : tensor<1x12x8x4xf32>
  }
}
