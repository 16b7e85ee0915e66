// sc-fuse-elementwise: an elementwise op (or a normalisation over the last dim) starts a group
// that absorbs the producers of its operands when they are fusible, of its shape, and read
// only inside the group or after it (then they are extra outputs); at most one norm per
// group; splat constants are cloned in; everything else is a kernel boundary.
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

// A value also read after the kernel becomes one more output of it (exp feeds the chain and
// the return); a scalar splat constant becomes part of the kernel; a broadcast [8] input is
// an input like others.
// CHECK-LABEL: func.func @extra_output
// CHECK: %[[F:.*]]:2 = sc.fused %arg0, %arg1 : (tensor<2x8xf32>, tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: %[[E:.*]] = sc.exp
// CHECK-NEXT: sc.constant dense<2.000000e+00> : tensor<f32>
// CHECK-NEXT: sc.mul
// CHECK-NEXT: %[[R:.*]] = sc.add
// CHECK-NEXT: sc.fused_yield %[[R]], %[[E]]
// CHECK: return %[[F]]#0, %[[F]]#1
func.func @extra_output(%a: tensor<2x8xf32>, %b: tensor<8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %two = sc.constant dense<2.0> : tensor<f32>
  %e = sc.exp %a : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %m = sc.mul %e, %two : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %r = sc.add %m, %b : (tensor<2x8xf32>, tensor<8xf32>) -> tensor<2x8xf32>
  return %r, %e : tensor<2x8xf32>, tensor<2x8xf32>
}

// A value read before the kernel would run stays a boundary: the linear needs exp first.
// CHECK-LABEL: func.func @boundary
// CHECK: %[[E:.*]] = sc.fused %arg0 : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.exp
// CHECK: sc.linear %[[E]]
// CHECK: sc.fused %[[E]], %{{.*}} : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
func.func @boundary(%a: tensor<2x8xf32>, %w: tensor<8x8xf32>) -> tensor<2x8xf32> {
  %e = sc.exp %a : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %l = sc.linear %e, %w {transpose_weight = true} : (tensor<2x8xf32>, tensor<8x8xf32>) -> tensor<2x8xf32>
  %r = sc.add %e, %l : (tensor<2x8xf32>, tensor<2x8xf32>) -> tensor<2x8xf32>
  return %r : tensor<2x8xf32>
}

// The residual add before an RMSNorm over the last dim: one row kernel with two outputs,
// the normalised rows and the residual stream read again later. The scale stays an input.
// CHECK-LABEL: func.func @add_rms_norm
// CHECK: %[[F:.*]]:2 = sc.fused %arg0, %arg1, %arg2 : (tensor<2x4x8xf32>, tensor<2x4x8xf32>, tensor<8xf32>)
// CHECK-NEXT: ^bb0
// CHECK-NEXT: %[[A:.*]] = sc.add
// CHECK-NEXT: %[[N:.*]] = sc.rms_norm %[[A]]
// CHECK-NEXT: sc.fused_yield %[[N]], %[[A]]
// CHECK: sc.linear %[[F]]#0
// CHECK: sc.fused %[[F]]#1
func.func @add_rms_norm(%x: tensor<2x4x8xf32>, %y: tensor<2x4x8xf32>, %s: tensor<8xf32>, %w: tensor<8x8xf32>) -> tensor<2x4x8xf32> {
  %a = sc.add %x, %y : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  %n = sc.rms_norm %a, %s {axis = -1 : i64, epsilon = 1.0e-6 : f32} : (tensor<2x4x8xf32>, tensor<8xf32>) -> tensor<2x4x8xf32>
  %l = sc.linear %n, %w {transpose_weight = true} : (tensor<2x4x8xf32>, tensor<8x8xf32>) -> tensor<2x4x8xf32>
  %r = sc.add %a, %l : (tensor<2x4x8xf32>, tensor<2x4x8xf32>) -> tensor<2x4x8xf32>
  return %r : tensor<2x4x8xf32>
}

// A norm over more than the last dim is a library kernel.
// CHECK-LABEL: func.func @norm_two_dims
// CHECK-NOT: sc.fused
// CHECK: sc.layer_norm
func.func @norm_two_dims(%x: tensor<2x4x8xf32>, %s: tensor<4x8xf32>) -> tensor<2x4x8xf32> {
  %n = sc.layer_norm %x, %s {axis = 1 : i64} : (tensor<2x4x8xf32>, tensor<4x8xf32>) -> tensor<2x4x8xf32>
  return %n : tensor<2x4x8xf32>
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

// Data movement is index arithmetic on a kernel input: the head split (reshape, transpose)
// and rotary of a projection are one kernel reading the linear's output in place; the
// value projection's split is a copy kernel of its own; a view of a computed value is not
// formed (the transpose after the exp materialises the exp).
// CHECK-LABEL: func.func @views
// CHECK: %[[Q:.*]] = sc.fused %arg0, %arg1, %arg2 : (tensor<1x4x16xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<1x2x4x8xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.reshape
// CHECK-NEXT: sc.transpose
// CHECK-NEXT: sc.rotary
// CHECK-NEXT: sc.fused_yield
// CHECK: %[[V:.*]] = sc.fused %arg0 : (tensor<1x4x16xf32>) -> tensor<1x2x4x8xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.reshape
// CHECK-NEXT: sc.transpose
// CHECK-NEXT: sc.fused_yield
// CHECK: %[[E:.*]] = sc.fused %arg0 : (tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.exp
// CHECK: sc.fused %[[E]] : (tensor<1x4x16xf32>) -> tensor<1x16x4xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.transpose
func.func @views(%x: tensor<1x4x16xf32>, %cos: tensor<4x8xf32>, %sin: tensor<4x8xf32>) -> (tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x16x4xf32>) {
  %r = sc.reshape %x : (tensor<1x4x16xf32>) -> tensor<1x4x2x8xf32>
  %t = sc.transpose %r {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
  %q = sc.rotary %t, %cos, %sin : (tensor<1x2x4x8xf32>, tensor<4x8xf32>, tensor<4x8xf32>) -> tensor<1x2x4x8xf32>
  %r2 = sc.reshape %x : (tensor<1x4x16xf32>) -> tensor<1x4x2x8xf32>
  %v = sc.transpose %r2 {perm = array<i64: 0, 2, 1, 3>} : (tensor<1x4x2x8xf32>) -> tensor<1x2x4x8xf32>
  %e = sc.exp %x : (tensor<1x4x16xf32>) -> tensor<1x4x16xf32>
  %et = sc.transpose %e {perm = array<i64: 0, 2, 1>} : (tensor<1x4x16xf32>) -> tensor<1x16x4xf32>
  return %q, %v, %et : tensor<1x2x4x8xf32>, tensor<1x2x4x8xf32>, tensor<1x16x4xf32>
}

// Softmax over the last axis is a row kernel too, with its elementwise producers; over
// another axis it stays a library kernel.
// CHECK-LABEL: func.func @softmax_rows
// CHECK: sc.fused %arg0 : (tensor<2x8xf32>) -> tensor<2x8xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.constant
// CHECK-NEXT: sc.mul
// CHECK-NEXT: sc.softmax
// CHECK: sc.softmax {{.*}}axis = 0
func.func @softmax_rows(%x: tensor<2x8xf32>) -> (tensor<2x8xf32>, tensor<2x8xf32>) {
  %half = sc.constant dense<0.5> : tensor<f32>
  %m = sc.mul %x, %half : (tensor<2x8xf32>, tensor<f32>) -> tensor<2x8xf32>
  %s = sc.softmax %m {axis = -1 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  %t = sc.softmax %x {axis = 0 : i64} : (tensor<2x8xf32>) -> tensor<2x8xf32>
  return %s, %t : tensor<2x8xf32>, tensor<2x8xf32>
}

// Concat is a view too: each output element reads the one input whose range holds it (the
// FSDP bucket's flat parameter is built by one such kernel, at load).
// CHECK-LABEL: func.func @concat_view
// CHECK: sc.fused %arg0, %arg1 : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<1x20xf32>
// CHECK-NEXT: ^bb0
// CHECK-NEXT: sc.concat
// CHECK-NEXT: sc.reshape
func.func @concat_view(%a: tensor<2x4xf32>, %b: tensor<3x4xf32>) -> tensor<1x20xf32> {
  %c = sc.concat %a, %b {axis = 0 : i64} : (tensor<2x4xf32>, tensor<3x4xf32>) -> tensor<5x4xf32>
  %r = sc.reshape %c : (tensor<5x4xf32>) -> tensor<1x20xf32>
  return %r : tensor<1x20xf32>
}
