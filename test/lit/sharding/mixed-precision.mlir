// NeMo's policy (bf16 params/activations, fp32 outputs): parameters are cast right after
// binding, so the FSDP all-gather moves bf16; rotary tables and masks stay f32.
// RUN: shardc-opt --sc-shard %s | FileCheck %s

module attributes {sc.mesh = [["dp_replicate", 1], ["dp_shard", 2], ["cp", 1], ["tp", 1]],
                   sc.mp_policy = {param_dtype = "bf16", reduce_dtype = "fp32", output_dtype = "fp32"}} {
  func.func @main(%x: tensor<2x1x4x8xf32>) -> tensor<2x1x4x8xf32> {
    %w = sc.param "blk.w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %cos = sc.constant dense<1.0> : tensor<1x1x4x8xf32>
    %sin = sc.constant dense<0.0> : tensor<1x1x4x8xf32>
    %m = sc.mul %x, %w : (tensor<2x1x4x8xf32>, tensor<8xf32>) -> tensor<2x1x4x8xf32>
    %r = sc.rotary %m, %cos, %sin : (tensor<2x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xf32>
    return %r : tensor<2x1x4x8xf32>
  }
}

// CHECK: func.func @main(%[[X:.*]]: tensor<1x1x4x8xf32> {{.*}}) -> tensor<2x1x4x8xf32>
// CHECK-DAG: sc.constant {{.*}}dense<1.000000e+00> : tensor<1x1x4x8xf32>
// CHECK-DAG: %[[P:.*]] = sc.param "blk.w" {{.*}} : tensor<4xf32>
// CHECK-DAG: %[[C:.*]] = sc.cast %[[P]] {{.*}} : (tensor<4xf32>) -> tensor<4xbf16>
// CHECK: %[[G:.*]] = sc.all_gather %[[C]] {axes = ["dp_shard"], dim = 0 : i64{{.*}} : (tensor<4xbf16>) -> tensor<8xbf16>
// CHECK: sc.mul %{{.*}}, %[[G]] {{.*}} -> tensor<1x1x4x8xbf16>
// CHECK: sc.rotary {{.*}} : (tensor<1x1x4x8xbf16>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xbf16>
// CHECK: sc.all_gather {{.*}} : (tensor<1x1x4x8xbf16>) -> tensor<2x1x4x8xbf16>
// CHECK: sc.cast {{.*}} : (tensor<2x1x4x8xbf16>) -> tensor<2x1x4x8xf32>
