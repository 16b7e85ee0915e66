// sc-fuse-elementwise: an elementwise op starts a group that absorbs the producers of its
// operands when they are elementwise, of its shape, and read only inside the group; splat
// constants are cloned in; everything else is a kernel boundary.
// RUN: shardc-opt --sc-fuse-elementwise %s | FileCheck %s

// SwiGLU: silu(gate) * up is one kernel; the residual add is another (its operand comes
// from a linear).
// CHECK-LABEL: func.func @swiglu
// CHECK: %[[F:.*]] = sc.fused %arg0, %arg1 : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32> {
// CHECK-NEXT: ^bb0(%[[G:.*]]: tensor<2x8xf32>, %[[U:.*]]: tensor<2x8xf32>):
// CHECK-NEXT:   %[[S:.*]] = sc.silu %[[G]]
// CHECK-NEXT:   %[[M:.*]] = sc.mul %[[S]], %[[U]]
// CHECK-NEXT:   sc.fused_yield %[[M]] : tensor<2x8xf32>
// CHECK: %[[L:.*]] = sc.linear %[[F]]
// CHECK: sc.fused %arg2, %[[L]]
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.add
// CHECK-NEXT: sc.fused_yield
func.func @swiglu(%gate: tensor<2x8xf32>, %up: tensor<2x8xf32>, %x: tensor<2x4xf32>, %w: tensor<4x8xf32>) -> tensor<2x4xf32> {
  %s = sc.silu %gate : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %m = sc.mul %s, %up : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  %l = sc.linear %m, %w {transpose_weight = true} : (tensor<2x8xf32>, tensor<4x8xf32>) -> tensor<2x4xf32>
  %r = sc.add %x, %l : (tensor<2x4xf32>, tensor<2x4xf32>) -> tensor<2x4xf32>
  return %r : tensor<2x4xf32>
}

// A value also read outside stays a boundary (exp feeds the group and the return); a scalar
// splat constant becomes part of the kernel; a broadcast [8] input is an input like others.
// CHECK-LABEL: func.func @boundaries
// CHECK: %[[E:.*]] = sc.fused %arg0 : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK: sc.exp
// CHECK: sc.fused %[[E]], %arg1 : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT: sc.mul
// CHECK-NEXT: sc.add
// CHECK-NEXT: sc.fused_yield
func.func @boundaries(%a: tensor<2x8xf32>, %b: tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %two = sc.constant dense<2.0> : tensor<f32>
  %e = sc.exp %a : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %m = sc.mul %e, %two : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %r = sc.add %m, %b : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %r, %e : tensor<2x8xf32>, tensor<2x8xf32>
}

// Mixed precision: the casts join the chain; integer and boolean ops do not fuse.
// CHECK-LABEL: func.func @casts
// CHECK: sc.fused %arg0 : (tensor<4xbf16>) -> tensor<4xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.cast {{.*}} -> tensor<4xf32>
// CHECK-NEXT: sc.tanh
// CHECK: sc.equal
func.func @casts(%a: tensor<4xbf16>, %i: tensor<4xi64>) -> (tensor<4xf32>, tensor<4xi1>) {
  %c = sc.cast %a : (tensor<4xbf16>) -> tensor<4xf32>
  %t = sc.tanh %c : (tensor<4xf32>) -> tensor<4xf32>
  %q = sc.equal %i, %i : (tensor<4xi64>, tensor<4xi64>) -> tensor<4xi1>
  return %t, %q : tensor<4xf32>, tensor<4xi1>
}

// Different shapes are different kernels: the [2, 8] add does not absorb the [8] exp.
// CHECK-LABEL: func.func @shapes
// CHECK: %[[X:.*]] = sc.fused %arg1 : (tensor<8xf32>) -> tensor<8xf32>
// CHECK: sc.fused %arg0, %[[X]] : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
func.func @shapes(%a: tensor<2x8xf32>, %b: tensor<8xf32>) -> tensor<2x8xf32> {
  %x = sc.exp %b : (tensor<8xf32>) -> tensor<8xf32>
  %r = sc.add %a, %x : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %r : tensor<2x8xf32>
}
