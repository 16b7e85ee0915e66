// Context parallel with rotary tables the program computes (a dynamic-shape export: cos/sin of
// the position ids it builds): no constant to permute at compile time, so each table is gathered
// into the load-balanced order right after it is computed, once for every rotary that reads it
// (both layers here); the gather's indices are the permutation's (chunks of 2: 0, 1, 6, 7 | ...).
// A table given as an input (second function) is gathered after the index constants.
// RUN: shardc-opt --sc-apply-plan --split-input-file %s | FileCheck %s

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @computed(%q: tensor<1x1x8x4xf32>, %pos: tensor<8x4xf32>) -> tensor<1x1x8x4xf32> {
    %cos = sc.cos %pos : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %sin = sc.sin %pos : (tensor<8x4xf32>) -> tensor<8x4xf32>
    %r1 = sc.rotary %q, %cos, %sin : (tensor<1x1x8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<1x1x8x4xf32>
    %a1 = sc.attention %r1, %r1, %r1 {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32>
    %r2 = sc.rotary %a1, %cos, %sin : (tensor<1x1x8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<1x1x8x4xf32>
    %a2 = sc.attention %r2, %r2, %r2 {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32>
    return %a2 : tensor<1x1x8x4xf32>
  }
}

// CHECK-LABEL: func.func @computed
// CHECK: %[[P:.*]] = sc.constant dense<[0, 1, 6, 7, 2, 3, 4, 5]> : tensor<8xi64>
// CHECK: %[[COS:.*]] = sc.cos
// CHECK-NEXT: %[[GC:.*]] = sc.gather %[[COS]], %[[P]] {axis = 0 : i64}
// CHECK: %[[SIN:.*]] = sc.sin
// CHECK-NEXT: %[[GS:.*]] = sc.gather %[[SIN]], %[[P]] {axis = 0 : i64}
// CHECK: sc.rotary %{{.*}}, %[[GC]], %[[GS]]
// CHECK: sc.rotary %{{.*}}, %[[GC]], %[[GS]]
// CHECK-NOT: sc.gather %[[COS]]

// -----

module attributes {sc.mesh = [["cp", 2]]} {
  func.func @input_table(%q: tensor<1x1x8x4xf32>, %cos: tensor<8x4xf32>) -> tensor<1x1x8x4xf32> {
    %sin = sc.constant dense<0.0> : tensor<8x4xf32>
    %r = sc.rotary %q, %cos, %sin : (tensor<1x1x8x4xf32>, tensor<8x4xf32>, tensor<8x4xf32>) -> tensor<1x1x8x4xf32>
    %a = sc.attention %r, %r, %r {causal = true, scale = 0.5 : f32} : (tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>, tensor<1x1x8x4xf32>) -> tensor<1x1x8x4xf32>
    return %a : tensor<1x1x8x4xf32>
  }
}

// CHECK-LABEL: func.func @input_table
// CHECK: %[[P:.*]] = sc.constant dense<[0, 1, 6, 7, 2, 3, 4, 5]> : tensor<8xi64>
// CHECK: %[[GC:.*]] = sc.gather %arg1, %[[P]] {axis = 0 : i64}
// CHECK: sc.rotary %{{.*}}, %[[GC]], %{{.*}}
