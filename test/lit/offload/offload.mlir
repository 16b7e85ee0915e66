// RUN: shardc-opt --sc-offload %s | FileCheck %s
// RUN: shardc-opt --sc-offload --sc-fuse-elementwise --sc-hoist-load-steps --sc-plan-memory %s | FileCheck %s --check-prefix=PLAN

// CPU offload (sc-offload, passes/Offload.cpp): the ops sc-add-optimizer marked sc.host (a
// master, its update and assign) stay on the host; the device gradient they read is copied to
// the host right after it is computed, the master is copied to the device right before the
// device op that reads it (one copy per reading op), and the cast of the master to bf16 runs on
// the host, so that copy moves bf16.
// CHECK-LABEL: func @step
// CHECK: %[[W:.*]] = sc.state "m.w" init %{{.*}} {sc.host}
// CHECK: %[[WB:.*]] = sc.cast %[[W]] {sc.host}
// CHECK: %[[WD:.*]] = sc.copy %[[WB]] {sc.copy_to = "device"} : (tensor<16xbf16>) -> tensor<16xbf16>
// CHECK: %[[Y:.*]] = sc.mul %arg0, %[[WD]]
// CHECK: %[[G:.*]] = sc.neg %[[Y]]
// CHECK-NEXT: %[[GH:.*]] = sc.copy %[[G]] {sc.copy_to = "host"}
// CHECK: %[[GH32:.*]] = sc.cast %[[GH]] {sc.host}
// CHECK: %[[W1:.*]] = sc.sub %[[W]], %[[GH32]] {sc.host}
// CHECK: sc.assign %[[W1]] to %[[W]] {sc.host}
// CHECK: %[[ND:.*]] = sc.copy %{{.*}} {sc.copy_to = "device"} : (tensor<f32>) -> tensor<f32>
// CHECK: return %[[Y]], %[[ND]]

// sc-plan-memory: the host state in the host persistent block, host values and the copies to
// the host in the host arena, both planned apart from the device's.
// PLAN: module attributes {{{.*}}sc.host_arena_bytes = {{[1-9][0-9]*}} : i64, sc.host_persistent_bytes = 64 : i64{{.*}}sc.persistent_bytes = 0 : i64
// PLAN: sc.state "m.w" {{.*}}sc.persistent_offsets = array<i64: 0>
// PLAN: sc.fused %{{.*}} {sc.arena_offsets = array<i64: 0>, sc.host}
module attributes {sc.train = {labels = "input_ids", offload_policy = "cpu"}} {
  func.func @step(%x: tensor<16xbf16>) -> (tensor<16xbf16>, tensor<f32>) {
    %p = sc.param "m.w" {file = "m.onnx", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<16xf32>
    %w = sc.state "m.w" init %p {sc.host} : (tensor<16xf32>) -> tensor<16xf32>
    %wb = sc.cast %w : (tensor<16xf32>) -> tensor<16xbf16>
    %y = sc.mul %x, %wb : (tensor<16xbf16>, tensor<16xbf16>) -> tensor<16xbf16>
    %g = sc.neg %y : (tensor<16xbf16>) -> tensor<16xbf16>
    %g32 = sc.cast %g {sc.host} : (tensor<16xbf16>) -> tensor<16xf32>
    %w1 = sc.sub %w, %g32 {sc.host} : (tensor<16xf32>, tensor<16xf32>) -> tensor<16xf32>
    sc.assign %w1 to %w {sc.host} : tensor<16xf32>
    %n = sc.reduce_sum %g32 {axes = array<i64: 0>, keepdims = false, sc.host} : (tensor<16xf32>) -> tensor<f32>
    return %y, %n : tensor<16xbf16>, tensor<f32>
  }
}
