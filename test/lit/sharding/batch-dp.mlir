// Data parallel: the batch dim of inputs is split over dp_replicate x dp_shard; the result
// is all-gathered back to Replicate before it is returned.
// RUN: shardc-opt --sc-shard %s | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 2], ["dp_shard", 2], ["cp", 1], ["tp", 1]]} {
  func.func @main(%x: tensor<8x16xf32>) -> tensor<8x16xf32> {
    %e = sc.exp %x : (tensor<8x16xf32>) -> tensor<8x16xf32>
    return %e : tensor<8x16xf32>
  }
}

// CHECK: func.func @main(%{{.*}}: tensor<2x16xf32> {sc.global_shape = array<i64: 8, 16>, sc.sharding = #sc.sharding<{{\[}}[dp_replicate, dp_shard], []]>})
// CHECK: sc.exp {{.*}} -> tensor<2x16xf32>
// CHECK: sc.all_gather {{.*}}{axes = ["dp_replicate", "dp_shard"], dim = 0 : i64{{.*}} -> tensor<8x16xf32>
