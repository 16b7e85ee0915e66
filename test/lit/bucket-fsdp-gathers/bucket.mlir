// sc-bucket-fsdp-gathers alone, on per-rank programs as sc-partition leaves them: local
// shapes, and the parameter all_gathers sc-insert-reshards issued at one point tagged with
// their FSDP group (sc.fsdp_group).
// RUN: shardc-opt --sc-bucket-fsdp-gathers --split-input-file %s | FileCheck %s
// RUN: shardc-opt --sc-bucket-fsdp-gathers --split-input-file --mlir-print-debuginfo %s | FileCheck %s --check-prefix=LOC

// Two shards of one layer split on dim 0 (dp_shard = 2): one row each, one concat, one
// all_gather of [1, 20] -> [2, 20], and each parameter cut out (slice, reshape) right before
// its first use, in the user's location.
// CHECK-LABEL: func.func @dim0
// CHECK: %[[A:.*]] = sc.param "l.0.a"
// CHECK: %[[B:.*]] = sc.param "l.0.b"
// CHECK: %[[AR:.*]] = sc.reshape %[[A]] : (tensor<2x4xf32>) -> tensor<1x8xf32>
// CHECK: %[[BR:.*]] = sc.reshape %[[B]] : (tensor<3x4xf32>) -> tensor<1x12xf32>
// CHECK: %[[FLAT:.*]] = sc.concat %[[AR]], %[[BR]] {axis = 1 : i64} : (tensor<1x8xf32>, tensor<1x12xf32>) -> tensor<1x20xf32>
// CHECK: %[[ALL:.*]] = sc.all_gather %[[FLAT]] {axes = ["dp_shard"], dim = 0 : i64} : (tensor<1x20xf32>) -> tensor<2x20xf32>
// CHECK: %[[X1:.*]] = sc.exp %arg0
// CHECK: %[[AS:.*]] = sc.slice %[[ALL]] {starts = array<i64: 0, 0>, steps = array<i64: 1, 1>} : (tensor<2x20xf32>) -> tensor<2x8xf32>
// CHECK: %[[AW:.*]] = sc.reshape %[[AS]] : (tensor<2x8xf32>) -> tensor<4x4xf32>
// CHECK: %[[Y:.*]] = sc.linear %[[X1]], %[[AW]]
// CHECK: %[[BS:.*]] = sc.slice %[[ALL]] {starts = array<i64: 0, 8>, steps = array<i64: 1, 1>} : (tensor<2x20xf32>) -> tensor<2x12xf32>
// CHECK: %[[BW:.*]] = sc.reshape %[[BS]] : (tensor<2x12xf32>) -> tensor<6x4xf32>
// CHECK: sc.linear %[[Y]], %[[BW]]
// CHECK-NOT: sc.all_gather
// LOC-LABEL: func.func @dim0
// LOC: sc.all_gather
// LOC: sc.slice {{.*}} loc(#[[UA:loc[0-9]*]])
// LOC-NEXT: sc.reshape {{.*}} loc(#[[UA]])
// LOC-NEXT: sc.linear {{.*}} loc(#[[UA]])
// LOC: #[[UA]] = loc("use_a")
#use_a = loc("use_a")
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 1]]} {
  func.func @dim0(%x: tensor<3x4xf32>) -> tensor<3x6xf32> {
    %a = sc.param "l.0.a" {file = "w.bin", offset = 0 : i64, onnx_name = "a", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %b = sc.param "l.0.b" {file = "w.bin", offset = 64 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<3x4xf32>
    %ga = sc.all_gather %a {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gb = sc.all_gather %b {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<3x4xf32>) -> tensor<6x4xf32>
    %x1 = sc.exp %x : (tensor<3x4xf32>) -> tensor<3x4xf32>
    %y = sc.linear %x1, %ga {transpose_weight = true} : (tensor<3x4xf32>, tensor<4x4xf32>) -> tensor<3x4xf32> loc(#use_a)
    %z = sc.linear %y, %gb {transpose_weight = true} : (tensor<3x4xf32>, tensor<6x4xf32>) -> tensor<3x6xf32>
    return %z : tensor<3x6xf32>
  }
}

// -----

// A shard split on dim 1 ([4, 3] of a [4, 6] weight) is one row as well; after the gather
// its [G, P, c, Q] = [2, 4, 3, 1] view is transposed to [P, G, c, Q] before the final
// reshape. Its partner, split on dim 0, needs no transpose.
// CHECK-LABEL: func.func @dim1
// CHECK: sc.concat {{.*}} -> tensor<1x20xf32>
// CHECK: %[[ALL:.*]] = sc.all_gather {{.*}} : (tensor<1x20xf32>) -> tensor<2x20xf32>
// CHECK: sc.slice %[[ALL]] {starts = array<i64: 0, 0>{{.*}} -> tensor<2x12xf32>
// CHECK-NEXT: sc.reshape {{.*}} : (tensor<2x12xf32>) -> tensor<2x4x3x1xf32>
// CHECK-NEXT: sc.transpose {{.*}} {perm = array<i64: 1, 0, 2, 3>} : (tensor<2x4x3x1xf32>) -> tensor<4x2x3x1xf32>
// CHECK-NEXT: sc.reshape {{.*}} : (tensor<4x2x3x1xf32>) -> tensor<4x6xf32>
// CHECK: sc.slice %[[ALL]] {starts = array<i64: 0, 12>{{.*}} -> tensor<2x8xf32>
// CHECK-NEXT: sc.reshape {{.*}} : (tensor<2x8xf32>) -> tensor<4x4xf32>
module attributes {sc.mesh = [["dp_shard", 2]]} {
  func.func @dim1(%x: tensor<2x4xf32>) -> tensor<2x4xf32> {
    %a = sc.param "l.0.a" {file = "w.bin", offset = 0 : i64, onnx_name = "a", tied = [], transform = #sc.transform<none>} : tensor<4x3xf32>
    %b = sc.param "l.0.b" {file = "w.bin", offset = 96 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %ga = sc.all_gather %a {axes = ["dp_shard"], dim = 1 : i64, sc.fsdp_group = 0 : i64} : (tensor<4x3xf32>) -> tensor<4x6xf32>
    %gb = sc.all_gather %b {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %y = sc.linear %x, %ga : (tensor<2x4xf32>, tensor<4x6xf32>) -> tensor<2x6xf32>
    %z = sc.linear %x, %gb {transpose_weight = true} : (tensor<2x4xf32>, tensor<4x4xf32>) -> tensor<2x4xf32>
    return %z : tensor<2x4xf32>
  }
}

// -----

// Only gathers of one group, one set of axes and one dtype merge: two layers give two
// buckets; a bf16 shard of layer 0 and a lone gather stay as they are, and so does a
// gather without sc.fsdp_group (an activation's).
// CHECK-LABEL: func.func @groups
// CHECK: sc.concat {{.*}} -> tensor<1x16xf32>
// CHECK-NEXT: sc.all_gather {{.*}} {axes = ["dp_shard"], dim = 0 : i64} : (tensor<1x16xf32>) -> tensor<2x16xf32>
// CHECK: sc.all_gather %{{.*}} {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xbf16>) -> tensor<4x4xbf16>
// CHECK: sc.concat {{.*}} -> tensor<1x16xf32>
// CHECK-NEXT: sc.all_gather {{.*}} : (tensor<1x16xf32>) -> tensor<2x16xf32>
// CHECK: sc.all_gather %{{.*}} {axes = ["tp"], dim = 0 : i64, sc.fsdp_group = 2 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
// CHECK: sc.all_gather %arg0 {axes = ["dp_shard"], dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
// CHECK-NOT: sc.concat
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]]} {
  func.func @groups(%x: tensor<2x4xf32>) -> tensor<4x4xf32> {
    %p0 = sc.param "l.0.p" {file = "w.bin", offset = 0 : i64, onnx_name = "p0", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %q0 = sc.param "l.0.q" {file = "w.bin", offset = 0 : i64, onnx_name = "q0", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %h0 = sc.param "l.0.h" {file = "w.bin", offset = 0 : i64, onnx_name = "h0", tied = [], transform = #sc.transform<none>} : tensor<2x4xbf16>
    %p1 = sc.param "l.1.p" {file = "w.bin", offset = 0 : i64, onnx_name = "p1", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %q1 = sc.param "l.1.q" {file = "w.bin", offset = 0 : i64, onnx_name = "q1", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %t1 = sc.param "l.1.t" {file = "w.bin", offset = 0 : i64, onnx_name = "t1", tied = [], transform = #sc.transform<none>} : tensor<2x4xf32>
    %gp0 = sc.all_gather %p0 {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gq0 = sc.all_gather %q0 {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gh0 = sc.all_gather %h0 {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xbf16>) -> tensor<4x4xbf16>
    %gp1 = sc.all_gather %p1 {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 1 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gq1 = sc.all_gather %q1 {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 1 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gt1 = sc.all_gather %t1 {axes = ["tp"], dim = 0 : i64, sc.fsdp_group = 2 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gx = sc.all_gather %x {axes = ["dp_shard"], dim = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %c0 = sc.cast %gh0 : (tensor<4x4xbf16>) -> tensor<4x4xf32>
    %s0 = sc.add %gp0, %gq0 : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %s1 = sc.add %s0, %c0 : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %s2 = sc.add %gp1, %gq1 : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %s3 = sc.add %s1, %s2 : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %s4 = sc.add %s3, %gt1 : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    %s5 = sc.add %s4, %gx : (tensor<4x4xf32>, tensor<4x4xf32>) -> tensor<4x4xf32>
    return %s5 : tensor<4x4xf32>
  }
}

// -----

// Without sc.mesh the pass leaves the function alone.
// CHECK-LABEL: func.func @no_mesh
// CHECK-COUNT-2: sc.all_gather
// CHECK-NOT: sc.concat
module {
  func.func @no_mesh(%a: tensor<2x4xf32>, %b: tensor<2x4xf32>) -> (tensor<4x4xf32>, tensor<4x4xf32>) {
    %ga = sc.all_gather %a {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    %gb = sc.all_gather %b {axes = ["dp_shard"], dim = 0 : i64, sc.fsdp_group = 0 : i64} : (tensor<2x4xf32>) -> tensor<4x4xf32>
    return %ga, %gb : tensor<4x4xf32>, tensor<4x4xf32>
  }
}
