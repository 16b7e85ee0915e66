// The backward ops carry the location of the forward op they differentiate, marked as the
// backward's (fused<"backward">[...]: messages and profiles name the node, sc-group-layers
// keeps them out of the forward layers); the seed carries the loss's, an accumulation the
// contribution's, never marked twice. The forward keeps its own.
// RUN: shardc-opt --sc-autodiff --mlir-print-debuginfo --mlir-print-local-scope %s | FileCheck %s

// CHECK-LABEL: func.func @locs
// CHECK: sc.mul %{{.*}}, %{{.*}} : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc("mul_node")
// CHECK: sc.linear {{.*}} loc("dot")
// CHECK: sc.constant dense<1.000000e+00> : tensor<f32> loc(fused<"backward">["scalar"])
// CHECK: sc.reshape {{.*}} loc(fused<"backward">["scalar"])
// CHECK: sc.linear {{.*}} {transpose_weight = true} {{.*}} loc(fused<"backward">["dot"])
// CHECK: sc.reshape {{.*}} loc(fused<"backward">["flat"])
// CHECK: sc.mul {{.*}} loc(fused<"backward">["mul_node"])
// CHECK: sc.mul {{.*}} loc(fused<"backward">["mul_node"])
// CHECK: sc.add {{.*}} loc(fused<"backward">["mul_node"])
// CHECK-NEXT: return
module attributes {sc.train = {labels = "input_ids"}} {
  func.func @locs(%x: tensor<2x4xf32> {sc.name = "x"}) -> (tensor<f32> {sc.name = "loss"}) {
    %a = sc.param "m.a" {file = "w.bin", offset = 0 : i64, onnx_name = "p", tied = [], transform = #sc.transform<none>, sc.trainable} : tensor<2x4xf32>
    %y = sc.mul %a, %a : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32> loc("mul_node")
    %f = sc.reshape %y : (tensor<2x4xf32>) -> tensor<1x8xf32> loc("flat")
    %c = sc.constant dense<1.0> : tensor<8x1xf32>
    %d = sc.linear %f, %c : (tensor<1x8xf32>, tensor<8x1xf32>) -> tensor<1x1xf32> loc("dot")
    %l = sc.reshape %d : (tensor<1x1xf32>) -> tensor<f32> loc("scalar")
    return %l : tensor<f32>
  }
}
