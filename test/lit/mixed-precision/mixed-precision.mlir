// sc-mixed-precision alone: the input states the module attribute sc-apply-plan copies from
// the plan (sc.mp_policy); no mesh is needed.
// RUN: shardc-opt --sc-mixed-precision --split-input-file --verify-diagnostics %s | FileCheck %s

// bf16 compute, fp32 outputs: the parameter is cast right after it is bound (so an FSDP
// all-gather inserted later moves bf16), the f32 input is cast on entry, activations and
// the norm's result are bf16 (its kernel keeps the statistics in f32), and the output is
// cast back with sc.replicate_operands (gathered in bf16 before the cast).
// CHECK-LABEL: func.func @block
// CHECK-SAME: (%[[X:.*]]: tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
// CHECK-NEXT: %[[XB:.*]] = sc.cast %[[X]] : (tensor<2x4x8xf32>) -> tensor<2x4x8xbf16>
// CHECK-NEXT: %[[S:.*]] = sc.param "blk.norm.weight" {{.*}} : tensor<8xf32>
// CHECK-NEXT: %[[SB:.*]] = sc.cast %[[S]] : (tensor<8xf32>) -> tensor<8xbf16>
// CHECK-NEXT: %[[W:.*]] = sc.param "blk.proj.weight" {{.*}} : tensor<8x8xf32>
// CHECK-NEXT: %[[WB:.*]] = sc.cast %[[W]] : (tensor<8x8xf32>) -> tensor<8x8xbf16>
// CHECK-NEXT: %[[N:.*]] = sc.rms_norm %[[XB]], %[[SB]] {{.*}} : (tensor<2x4x8xbf16>, tensor<8xbf16>) -> tensor<2x4x8xbf16>
// CHECK-NEXT: %[[L:.*]] = sc.linear %[[N]], %[[WB]] {{.*}} : (tensor<2x4x8xbf16>, tensor<8x8xbf16>) -> tensor<2x4x8xbf16>
// CHECK-NEXT: %[[H:.*]] = sc.constant dense<5.000000e-01> : tensor<2x4x8xbf16>
// CHECK-NEXT: %[[M:.*]] = sc.mul %[[L]], %[[H]] : (tensor<2x4x8xbf16>, tensor<2x4x8xbf16>) -> tensor<2x4x8xbf16>
// CHECK-NEXT: %[[O:.*]] = sc.cast %[[M]] {sc.replicate_operands} : (tensor<2x4x8xbf16>) -> tensor<2x4x8xf32>
// CHECK-NEXT: return %[[O]] : tensor<2x4x8xf32>
module attributes {sc.mp_policy = {param_dtype = "bf16", reduce_dtype = "fp32", output_dtype = "fp32"}} {
  func.func @block(%x: tensor<2x4x8xf32>) -> tensor<2x4x8xf32> {
    %s = sc.param "blk.norm.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "s", tied = [], transform = #sc.transform<none>} : tensor<8xf32>
    %w = sc.param "blk.proj.weight" {file = "w.bin", offset = 32 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<8x8xf32>
    %n = sc.rms_norm %x, %s {epsilon = 1.0e-06 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
    %l = sc.linear %n, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
    %h = sc.constant dense<0.5> : tensor<2x4x8xf32>
    %m = sc.mul %l, %h : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
    return %m : tensor<2x4x8xf32>
  }
}

// -----

// Rotary tables stay f32 with the ops that only compute them (autocast does the same); the
// rotated activation is bf16. An additive attention mask and what computes it stay f32.
// CHECK-LABEL: func.func @tables
// CHECK: %[[C:.*]] = sc.constant dense<1.000000e+00> : tensor<1x1x4x8xf32>
// CHECK: %[[CC:.*]] = sc.neg %[[C]] : (tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
// CHECK: %[[SN:.*]] = sc.constant dense<0.000000e+00> : tensor<1x1x4x8xf32>
// CHECK: sc.rotary %{{.*}}, %[[CC]], %[[SN]] : (tensor<2x1x4x8xbf16>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xbf16>
// CHECK: %[[MK:.*]] = sc.constant dense<-1.000000e+09> : tensor<1x1x4x4xf32>
// CHECK: sc.attention {{.*}} mask %[[MK]] {{.*}}: (tensor<2x1x4x8xbf16>, tensor<2x1x4x8xbf16>, tensor<2x1x4x8xbf16>, tensor<1x1x4x4xf32>) -> tensor<2x1x4x8xbf16>
module attributes {sc.mp_policy = {param_dtype = "bf16", output_dtype = "bf16"}} {
  func.func @tables(%q: tensor<2x1x4x8xf32>) -> tensor<2x1x4x8xf32> {
    %cos = sc.constant dense<1.0> : tensor<1x1x4x8xf32>
    %cosn = sc.neg %cos : (tensor<1x1x4x8xf32>) -> tensor<1x1x4x8xf32>
    %sin = sc.constant dense<0.0> : tensor<1x1x4x8xf32>
    %r = sc.rotary %q, %cosn, %sin : (tensor<2x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xf32>
    %mask = sc.constant dense<-1.0e9> : tensor<1x1x4x4xf32>
    %a = sc.attention %r, %r, %r mask %mask {scale = 0.35 : f32} : (tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>, tensor<1x1x4x4xf32>) -> tensor<2x1x4x8xf32>
    return %a : tensor<2x1x4x8xf32>
  }
}

// -----

// A table that also feeds ordinary compute is cast like any activation.
// CHECK-LABEL: func.func @shared_table
// CHECK: sc.constant dense<1.000000e+00> : tensor<1x1x4x8xbf16>
// CHECK: sc.rotary {{.*}} : (tensor<2x1x4x8xbf16>, tensor<1x1x4x8xbf16>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xbf16>
module attributes {sc.mp_policy = {param_dtype = "bf16", output_dtype = "bf16"}} {
  func.func @shared_table(%q: tensor<2x1x4x8xf32>) -> (tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>) {
    %cos = sc.constant dense<1.0> : tensor<1x1x4x8xf32>
    %sin = sc.constant dense<0.0> : tensor<1x1x4x8xf32>
    %r = sc.rotary %q, %cos, %sin : (tensor<2x1x4x8xf32>, tensor<1x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xf32>
    %m = sc.mul %q, %cos : (tensor<2x1x4x8xf32>, tensor<1x1x4x8xf32>) -> tensor<2x1x4x8xf32>
    return %r, %m : tensor<2x1x4x8xf32>, tensor<2x1x4x8xf32>
  }
}

// -----

// fp16 compute with bf16 outputs; integer inputs (token ids) and their embedding lookup
// index stay integers.
// CHECK-LABEL: func.func @fp16
// CHECK-SAME: (%[[IDS:.*]]: tensor<2x4xi64>) -> tensor<2x4x8xbf16>
// CHECK: %[[T:.*]] = sc.param "emb.weight" {{.*}} : tensor<16x8xf32>
// CHECK: %[[TH:.*]] = sc.cast %[[T]] : (tensor<16x8xf32>) -> tensor<16x8xf16>
// CHECK: sc.embedding %[[TH]], %[[IDS]] : (tensor<16x8xf16>, tensor<2x4xi64>) -> tensor<2x4x8xf16>
// CHECK: sc.cast {{.*}} {sc.replicate_operands} : (tensor<2x4x8xf16>) -> tensor<2x4x8xbf16>
module attributes {sc.mp_policy = {param_dtype = "fp16", output_dtype = "bf16"}} {
  func.func @fp16(%ids: tensor<2x4xi64>) -> tensor<2x4x8xf32> {
    %t = sc.param "emb.weight" {file = "w.bin", offset = 0 : i64, onnx_name = "t", tied = [], transform = #sc.transform<none>} : tensor<16x8xf32>
    %e = sc.embedding %t, %ids : (tensor<16x8xf32>, tensor<2x4xi64>) -> tensor<2x4x8xf32>
    return %e : tensor<2x4x8xf32>
  }
}

// -----

// param_dtype fp32 changes nothing (no casts, not even of the outputs).
// CHECK-LABEL: func.func @fp32
// CHECK-NOT: sc.cast
// CHECK: return
module attributes {sc.mp_policy = {param_dtype = "fp32", output_dtype = "bf16"}} {
  func.func @fp32(%x: tensor<4xf32>) -> tensor<4xf32> {
    %w = sc.param "w" {file = "w.bin", offset = 0 : i64, onnx_name = "w", tied = [], transform = #sc.transform<none>} : tensor<4xf32>
    %y = sc.mul %x, %w : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
    return %y : tensor<4xf32>
  }
}

// -----

// Without sc.mp_policy the pass does nothing.
// CHECK-LABEL: func.func @no_policy
// CHECK-NOT: sc.cast
// CHECK: return
module {
  func.func @no_policy(%x: tensor<4xf32>) -> tensor<4xf32> {
    %y = sc.exp %x : (tensor<4xf32>) -> tensor<4xf32>
    return %y : tensor<4xf32>
  }
}

// -----

// expected-error @+1 {{sc.mp_policy dtypes must be bf16, fp16 or fp32}}
module attributes {sc.mp_policy = {param_dtype = "fp8", output_dtype = "fp32"}} {
  func.func @bad(%x: tensor<4xf32>) -> tensor<4xf32> {
    return %x : tensor<4xf32>
  }
}
