// RUN: shardc-opt --verify-roundtrip %s | FileCheck %s
// RUN: shardc-opt --mlir-print-op-generic %s | shardc-opt | FileCheck %s
// The typed attributes print in their short form; a default-valued enum is elided.

// CHECK: module attributes {sc.mesh = {{\[}}["dp_shard", 2], ["tp", 2]], sc.tp_styles = {m.up = #sc.tp_style<colwise>, m.x = #sc.tp_style<packed_colwise>}}
module attributes {sc.mesh = [["dp_shard", 2], ["tp", 2]],
                   sc.tp_styles = {"m.x" = #sc.tp_style<packed_colwise>, "m.up" = #sc.tp_style<colwise>}} {
  // CHECK-LABEL: func @attrs
  // CHECK-SAME: sc.sharding = #sc.sharding<{{\[}}[dp_shard], []], partial = [tp: max]>
  func.func @attrs(%x: tensor<4x8xf32> {sc.sharding = #sc.sharding<[["dp_shard"], []], partial = ["tp": max]>},
                   %w: tensor<8x8xf32>) -> tensor<4x8xf32> {
    // CHECK: sc.all_reduce %arg0 {axes = ["tp"], reduce = #sc.reduce<max>, sc.sharding = [#sc.sharding<{{\[}}[dp_shard], []]>]}
    %0 = sc.all_reduce %x {axes = ["tp"], reduce = #sc.reduce<max>, sc.sharding = [#sc.sharding<[[dp_shard], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    // CHECK: sc.all_reduce %{{.*}} {axes = ["tp"], sc.sharding = [#sc.sharding<{{\[}}[dp_shard, tp], []]>]}
    %1 = sc.all_reduce %0 {axes = ["tp"], reduce = #sc.reduce<sum>, sc.sharding = [#sc.sharding<[[dp_shard, tp], []]>]} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    // CHECK: sc.linear %{{.*}}, %arg1 {epilogue = #sc.epilogue<gelu_tanh>, sc.sharding = [#sc.sharding<{{\[}}[], []], partial = [tp: sum]>]}
    %2 = sc.linear %1, %w {epilogue = #sc.epilogue<gelu_tanh>, sc.sharding = [#sc.sharding<[[], []], partial = [tp: sum]>]} : (tensor<4x8xf32>, tensor<8x8xf32>) -> tensor<4x8xf32>
    // CHECK: sc.gelu %{{.*}} : (tensor<4x8xf32>)
    %3 = sc.gelu %2 {approximate = #sc.gelu_approximation<none>} : (tensor<4x8xf32>) -> tensor<4x8xf32>
    return %3 : tensor<4x8xf32>
  }
}
