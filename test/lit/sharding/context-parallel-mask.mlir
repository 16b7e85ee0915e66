// Under context parallel a mask fixed at export time (here a parameter: masks over 64 KiB
// are imported as references) is permuted on its query and key dims into the load-balanced
// order; a mask computed from the inputs follows the permuted inputs instead.
// RUN: shardc-opt --sc-apply-plan %s 2>/dev/null | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 2], ["tp", 1]]} {
  func.func @main(%q: tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32> {
    %m = sc.param "mask" {file = "w.bin", offset = 0 : i64, onnx_name = "m", tied = [], transform = #sc.transform<none>} : tensor<1x1x8x8xf32>
    %a = sc.attention %q, %q, %q mask %m {scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x4xf32>
    return %a : tensor<1x1x8x4xf32>
  }
}

// CHECK-DAG: %[[M:.*]] = sc.param "mask"
// CHECK-DAG: %[[P:.*]] = sc.constant dense<[0, 1, 6, 7, 2, 3, 4, 5]> : tensor<8xi64>
// CHECK: %[[G2:.*]] = sc.gather %[[M]], %[[P]] {axis = 2 : i64}
// CHECK: %[[G3:.*]] = sc.gather %[[G2]], %[[P]] {axis = 3 : i64}
// CHECK: sc.attention {{.*}} mask %[[G3]]
