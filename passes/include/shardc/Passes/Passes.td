// Passes of shardc. Each pass's description says what it does, its options and what it
// refuses; `shardc-opt --help` prints them.
#ifndef SHARDC_PASSES
#define SHARDC_PASSES

include "mlir/Pass/PassBase.td"

def ScRaiseLinear : Pass<"sc-raise-linear", "mlir::func::FuncOp"> {
  let summary = "MatMul/Gemm with a parameter operand (and Add of a bias) -> sc.linear";
  let description = [{
    Recognises `matmul(x, W)`, `matmul(x, transpose(W))`, `gemm(x, W, b)` and
    `add(matmul(x, W), b)` where W is an sc.param, and the fused-QKV form
    `split(linear(x, Wqkv, b))`, producing sc.linear with `transpose_weight` set when the
    parameter is stored in PyTorch's [out, in] layout.
  }];
}

def ScRaiseNorms : Pass<"sc-raise-norms", "mlir::func::FuncOp"> {
  let summary = "decomposed RMSNorm -> sc.rms_norm";
  let description = [{
    `scale * (x * reciprocal(sqrt(reduce_mean(pow(x, 2)) + eps)))` (and the rsqrt and
    division spellings) over the last dim becomes sc.rms_norm; ONNX
    LayerNormalization/RMSNormalization are imported directly.
  }];
}

def ScRaiseActivations : Pass<"sc-raise-activations", "mlir::func::FuncOp"> {
  let summary = "x*sigmoid(x) -> sc.silu; erf and tanh GELU spellings -> sc.gelu";
}

def ScRaiseRotary : Pass<"sc-raise-rotary", "mlir::func::FuncOp"> {
  let summary = "x*cos + concat(-x2, x1)*sin -> sc.rotary";
}

def ScRaiseAttention : Pass<"sc-raise-attention", "mlir::func::FuncOp"> {
  let summary = "decomposed scaled dot-product attention -> sc.attention";
  let description = [{
    Matches softmax(q kᵀ · s (+ mask)) v with the scale applied to q and/or k (split as
    sqrt(s) on each, as PyTorch's exporter writes it), k transposed through
    transpose or reshape/transpose/reshape, the IsNaN/Where guard after the softmax, and
    GQA spelled as unsqueeze/expand/reshape of k and v. A constant mask whose values are
    0 on and below the diagonal and a large negative above becomes `causal` and is
    dropped; any other additive mask is kept as the mask operand.
  }];
}

def ScGroupLayers : Pass<"sc-group-layers", "mlir::func::FuncOp"> {
  let summary = "wraps the ops of each decoder/encoder layer in an sc.layer region";
  let description = [{
    Ops whose module path lies under `<prefix>.layers.N` (or `h.N`, `layer.N`, `blocks.N`)
    are moved into one sc.layer per N, in program order; the layer's results are the values
    used after it. Refuses (leaves the function unchanged with a remark) when a layer's
    ops are not contiguous in the dependence order.
  }];
}

def ScReportUnraised : Pass<"sc-report-unraised", "mlir::func::FuncOp"> {
  let summary = "reports the primitive ops left after raising, grouped by module path";
  let description = [{
    Emits one remark per op kind still present that a raising pass should have absorbed
    (softmax, isnan, where, sigmoid, erf, pow, reciprocal...), with counts and module paths.
  }];
}

#endif // SHARDC_PASSES
