// Context parallel with a square rotary table: [S, D] with S == head dim == 8. The table's last
// dim pairs with the head dim, so its positions are dim 0, permuted into the load-balanced
// order (chunks of 2: 0, 3 | 1, 2); each row i holds i.
// RUN: shardc-opt --sc-apply-plan %s | FileCheck %s

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @square(%q: tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32> {
    %cos = sc.constant dense<[[0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0], [3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0], [4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0, 4.0], [5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0, 5.0], [6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0, 6.0], [7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0, 7.0]]> : tensor<8x8xf32>
    %r = sc.rotary %q, %cos, %cos : (tensor<1x1x8x8xf32>, tensor<8x8xf32>, tensor<8x8xf32>) -> tensor<1x1x8x8xf32>
    %a = sc.attention %r, %r, %r {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>, tensor<1x1x8x8xf32>) -> tensor<1x1x8x8xf32>
    return %a : tensor<1x1x8x8xf32>
  }
}

// CHECK-LABEL: func.func @square
// CHECK: %[[C:.*]] = sc.constant dense<{{\[}}[0.000000e+00, {{.*}}], [1.000000e+00, {{.*}}], [6.000000e+00, {{.*}}], [7.000000e+00, {{.*}}], [2.000000e+00, {{.*}}], [3.000000e+00, {{.*}}], [4.000000e+00, {{.*}}], [5.000000e+00, {{.*}}]]> : tensor<8x8xf32>
// CHECK-NEXT: %[[S:.*]] = sc.constant dense<{{\[}}[0.000000e+00, {{.*}}], [1.000000e+00, {{.*}}], [6.000000e+00, {{.*}}], [7.000000e+00, {{.*}}], [2.000000e+00, {{.*}}], [3.000000e+00, {{.*}}], [4.000000e+00, {{.*}}], [5.000000e+00, {{.*}}]]> : tensor<8x8xf32>
// CHECK-NEXT: sc.rotary %{{.*}}, %[[C]], %[[S]]
