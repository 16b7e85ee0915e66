// A rowwise linear's bias is added after the all-reduce of its partial sums (adding it on
// every rank before the reduction would count it tp times).
// RUN: shardc-opt --sc-shard %s | FileCheck %s

#down = loc("node_down"("blk.down"("t.onnx":1:0)))
module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 2]],
                   sc.tp_styles = {"blk.down" = #sc.tp_style<rowwise>}} {
  func.func @main(%x: tensor<4x32xf32>) -> tensor<4x16xf32> {
    %w = sc.param "blk.down.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16x32xf32>
    %b = sc.param "blk.down.bias" {file = "w.bin", offset = 4096 : i64, onnx_name = "b", tied = [], transform = #sc.transform<none>} : tensor<16xf32>
    %y = sc.linear %x, %w, %b {transpose_weight = true} : (tensor<4x32xf32>, tensor<16x32xf32>, tensor<16xf32>) -> tensor<4x16xf32> loc(#down)
    return %y : tensor<4x16xf32>
  }
}

// CHECK: %[[X:.*]] = sc.dynamic_slice %arg0, %{{.*}} {axis = 1 : i64{{.*}} -> tensor<4x16xf32>
// CHECK: %[[P:.*]] = sc.linear %[[X]], %{{[0-9]+}} {{.*}}: (tensor<4x16xf32>, tensor<16x16xf32>) -> tensor<4x16xf32>
// CHECK: %[[R:.*]] = sc.all_reduce %[[P]] {axes = ["tp"]
// CHECK: sc.add %[[R]], %{{[0-9]+}}
