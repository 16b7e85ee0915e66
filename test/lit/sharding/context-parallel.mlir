// Context parallel over cp = 2 on a sequence of 8: tokens are permuted into the
// load-balanced order (chunks 0,3 | 1,2 of size 2), rotary tables are permuted at compile
// time, causal attention gets the permuted causal mask, keys/values are all-gathered over cp
// after rotary, and the output is gathered and put back in order.
// RUN: shardc-opt --sc-apply-plan %s | FileCheck %s --check-prefix=PLAN
// RUN: shardc-opt --sc-shard %s | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 2], ["tp", 1]]} {
  func.func @main(%ids: tensor<1x8xi64>) -> tensor<1x8x4xf32> {
    %tab = sc.param "emb" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<16x4xf32>
    %cos = sc.constant dense<[[[[0.0, 0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0, 2.0]], [[3.0, 3.0, 3.0, 3.0]], [[4.0, 4.0, 4.0, 4.0]], [[5.0, 5.0, 5.0, 5.0]], [[6.0, 6.0, 6.0, 6.0]], [[7.0, 7.0, 7.0, 7.0]]]]> : tensor<1x8x1x4xf32>
    %x = sc.embedding %tab, %ids : (tensor<16x4xf32>, tensor<1x8xi64>) -> tensor<1x8x4xf32>
    %h = sc.reshape %x : (tensor<1x8x4xf32>) -> tensor<1x8x1x4xf32>
    %r = sc.rotary %h, %cos, %cos : (tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>) -> tensor<1x8x1x4xf32>
    %q = sc.transpose %r {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x1x4xf32>) -> tensor<1x1x8x4xf32>
    %a = sc.attention %q, %q, %q {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32>
    %t = sc.transpose %a {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x1x8x4xf32>) -> tensor<1x8x1x4xf32>
    %o = sc.reshape %t : (tensor<1x8x1x4xf32>) -> tensor<1x8x4xf32>
    return %o : tensor<1x8x4xf32>
  }
}

// PLAN-DAG: %[[PERM:.*]] = sc.constant dense<[0, 1, 6, 7, 2, 3, 4, 5]> : tensor<8xi64>
// PLAN-DAG: %[[INV:.*]] = sc.constant dense<[0, 1, 4, 5, 6, 7, 2, 3]> : tensor<8xi64>
// PLAN: sc.gather %arg0, %[[PERM]] {axis = 1 : i64}
// PLAN: sc.constant dense<{{\[\[\[\[}}0.000000e+00{{.*}}1.000000e+00{{.*}}6.000000e+00{{.*}}7.000000e+00{{.*}}2.000000e+00
// PLAN: sc.constant dense<{{\[\[\[\[}}0.000000e+00, 0xFF800000
// PLAN: sc.attention {{.*}} mask %{{.*}} {scale = 5.000000e-01 : f32}
// PLAN: sc.gather %{{.*}}, %[[INV]] {axis = 1 : i64}

// The rank's chunk start, once at the top: its index over cp, times the chunk (4).
// CHECK: %[[TAB:.*]] = sc.constant dense<[0, 4]> : tensor<2xi64>
// CHECK-NEXT: %[[PID:.*]] = sc.process_index {axes = ["cp"]} : tensor<i64>
// CHECK-NEXT: %[[START:.*]] = sc.gather %[[TAB]], %[[PID]] {axis = 0 : i64} : (tensor<2xi64>, tensor<i64>) -> tensor<i64>
// CHECK: sc.dynamic_slice %{{.*}}, %[[START]] {axis = 1 : i64{{.*}} -> tensor<1x4x4xf32>
// CHECK: sc.rotary {{.*}} -> tensor<1x4x1x4xf32>
// CHECK: %[[K:.*]] = sc.all_gather %{{.*}} {axes = ["cp"], dim = 2 : i64{{.*}} : (tensor<1x1x4x4xf32>) -> tensor<1x1x8x4xf32>
// CHECK: sc.attention %{{.*}}, %[[K]], %[[K]] mask %{{.*}} : (tensor<1x1x4x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x4xf32>
// CHECK: sc.all_gather %{{.*}} {axes = ["cp"], dim = 1 : i64{{.*}} -> tensor<1x8x4xf32>
// CHECK: sc.gather
