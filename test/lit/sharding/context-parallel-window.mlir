// Context parallel (cp = 2, sequence 8) on a sliding window (sc.window = 3 beside its exact
// banded mask, as sc-raise-attention leaves a Mistral mask): the upper-left causal flag and the
// band would not hold in the load-balanced order, so both go and the mask, exact on its own, is
// permuted on its query and key dims like any mask fixed at export time.
// RUN: shardc-opt --sc-apply-plan %s | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 2], ["tp", 1]]} {
  func.func @main(%ids: tensor<1x8xi64>) -> tensor<1x8x4xf32> {
    %tab = sc.param "emb" {file = "w.bin", offset = 0 : i64, onnx_name = "e", tied = [], transform = #sc.transform<none>} : tensor<16x4xf32>
    %cos = sc.constant dense<[[[[0.0, 0.0, 0.0, 0.0]], [[1.0, 1.0, 1.0, 1.0]], [[2.0, 2.0, 2.0, 2.0]], [[3.0, 3.0, 3.0, 3.0]], [[4.0, 4.0, 4.0, 4.0]], [[5.0, 5.0, 5.0, 5.0]], [[6.0, 6.0, 6.0, 6.0]], [[7.0, 7.0, 7.0, 7.0]]]]> : tensor<1x8x1x4xf32>
    %x = sc.embedding %tab, %ids : (tensor<16x4xf32>, tensor<1x8xi64>) -> tensor<1x8x4xf32>
    %h = sc.reshape %x : (tensor<1x8x4xf32>) -> tensor<1x8x1x4xf32>
    %r = sc.rotary %h, %cos, %cos : (tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>, tensor<1x8x1x4xf32>) -> tensor<1x8x1x4xf32>
    %q = sc.transpose %r {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x8x1x4xf32>) -> tensor<1x1x8x4xf32>
    %band = sc.constant dense<[[[[0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0, -3.40282347E+38, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0, -3.40282347E+38], [-3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, -3.40282347E+38, 0.0, 0.0, 0.0]]]]> : tensor<1x1x8x8xf32>
    %a = sc.attention %q, %q, %q mask %band {causal = true, sc.window = 3 : i64, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x4xf32>
    %t = sc.transpose %a {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x1x8x4xf32>) -> tensor<1x8x1x4xf32>
    %o = sc.reshape %t : (tensor<1x8x1x4xf32>) -> tensor<1x8x4xf32>
    return %o : tensor<1x8x4xf32>
  }
}

// CHECK-DAG: %[[PERM:.*]] = sc.constant dense<[0, 1, 6, 7, 2, 3, 4, 5]> : tensor<8xi64>
// CHECK-DAG: %[[BAND:.*]] = sc.constant dense<{{\[\[\[\[}}0.000000e+00, -3.40282347E+38
// CHECK: %[[M1:.*]] = sc.gather %[[BAND]], %[[PERM]] {axis = 2 : i64}
// CHECK: %[[M2:.*]] = sc.gather %[[M1]], %[[PERM]] {axis = 3 : i64}
// CHECK: sc.attention %{{.*}}, %{{.*}}, %{{.*}} mask %[[M2]] {scale = 5.000000e-01 : f32}
// CHECK-NOT: sc.window
