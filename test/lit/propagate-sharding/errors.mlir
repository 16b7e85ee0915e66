// sc-propagate-sharding's diagnostics.
// RUN: shardc-opt --sc-propagate-sharding --split-input-file --verify-diagnostics %s

// expected-error @+1 {{sc-propagate-sharding needs sc.mesh (run sc-apply-plan first)}}
module {
  func.func @no_mesh(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
