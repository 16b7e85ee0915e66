// The sc dialect: ONNX's tensor ops with static shapes in their types and shape operands
// folded to attributes, plus the semantic ops that raising produces (linear, attention…).
#ifndef SHARDC_SC_OPS
#define SHARDC_SC_OPS

include "mlir/IR/OpBase.td"
include "mlir/IR/AttrTypeBase.td"
include "mlir/IR/BuiltinAttributes.td"
include "mlir/IR/CommonAttrConstraints.td"
include "mlir/IR/CommonTypeConstraints.td"
include "mlir/Interfaces/SideEffectInterfaces.td"
include "ScShardingInterface.td"
include "ScOpInterfaces.td"

def Sc_Dialect : Dialect {
  let name = "sc";
  let cppNamespace = "::shardc::sc";
  let hasConstantMaterializer = 1;
  let useDefaultAttributePrinterParser = 1;
  // Every `sc.*` discardable attribute is checked (lib/Dialect/ScAttrVerifier.cpp).
  let hasOperationAttrVerify = 1;
  let hasRegionArgAttrVerify = 1;
  let hasRegionResultAttrVerify = 1;
  let summary = "shardc's tensor dialect: ONNX ops with static shapes and semantic ops";
  let description = [{
    Every value is a statically shaped ranked tensor. Weights are `sc.param` references
    (file, offset, dtype, transform), never dense attributes. Locations carry the ONNX node
    name and the PyTorch module path.
  }];
}

include "ScAttrs.td"

def Sc_Tensor : RankedTensorOf<[AnyType]>;

// Every tensor op defines its sharding rule (lib/Dialect/ScShardingRules.cpp).
defvar Sc_HasShardingRule = DeclareOpInterfaceMethods<Sc_ShardingRuleOpInterface>;
// An op sc-autodiff differentiates defines its VJP rule (lib/Dialect/ScVjpRules.cpp).
defvar Sc_HasVjp = DeclareOpInterfaceMethods<Sc_VjpOpInterface>;

// Every compute op lowers to one artifact step and has a cost (StepOpInterface): by default
// its mnemonic with no attributes (an elementwise formula op: the step `formula` naming its
// row); `stepMethods` names the methods the op defines itself, in
// lib/Dialect/ScStepLowering.cpp.
class Sc_Op<string mnemonic, list<Trait> traits = [], list<string> stepMethods = []>
    : Op<Sc_Dialect, mnemonic, !listconcat(traits, [Pure, Sc_HasShardingRule,
                                 DeclareOpInterfaceMethods<Sc_StepOpInterface, stepMethods>])> {
  let hasVerifier = 1;
}

// A float elementwise op defined by its formula: the row of SC_ELEMENTWISE_FORMULAS
// (runtime/kernels/common/include/shardc/kernels/FusedPrelude.h) named by its mnemonic. Its
// operands broadcast numpy-style to the result and share its element type (the interface
// verifies it), its sharding rule is the broadcast rule with `partialFlow` (where a Partial
// operand may pass unreduced: ShardingRule::PartialFlow), and its step (`formula`), cost,
// fused-kernel body, CPU kernel and import-time folding follow from the formula. A new such op is one
// line here, one row in the formula table and one importer registration.
class Sc_FormulaOp<string mnemonic, string partialFlow, list<Trait> traits = []>
    : Op<Sc_Dialect, mnemonic, !listconcat(traits, [Pure, Sc_ShardingRuleOpInterface, Sc_ElementwiseOpInterface,
                                DeclareOpInterfaceMethods<Sc_StepOpInterface>])> {
  let results = (outs Sc_Tensor:$result);
  let extraClassDeclaration = [{
    std::optional<::shardc::ShardingRule> getShardingRule() {
      return ::shardc::elementwiseShardingRule(getOperation(),
                                               ::shardc::ShardingRule::PartialFlow::}] # partialFlow # [{);
    }
  }];
}
class Sc_UnaryFormulaOp<string mnemonic, string partialFlow = "None", list<Trait> traits = []>
    : Sc_FormulaOp<mnemonic, partialFlow, traits> {
  let arguments = (ins Sc_Tensor:$input);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
class Sc_BinaryFormulaOp<string mnemonic, string partialFlow = "None", list<Trait> traits = []>
    : Sc_FormulaOp<mnemonic, partialFlow, traits> {
  let arguments = (ins Sc_Tensor:$lhs, Sc_Tensor:$rhs);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Sources
//===----------------------------------------------------------------------===//

def Sc_ParamOp : Op<Sc_Dialect, "param", [Pure, Sc_HasShardingRule]> {
  let summary = "a reference to a parameter's bytes in a weight file";
  let description = [{
    `name` is the parameter's module path (`m.model.layers.0.self_attn.q_proj.weight`).
    The bytes are `file` at `offset`, stored in the result type's layout; `transform`
    says how that layout relates to the PyTorch parameter (`none`, `transpose`).
    `onnx_name` is the initializer's name in the graph; `tied` lists further module paths
    that share this storage (tied embeddings).
  }];
  let arguments = (ins StrAttr:$name, StrAttr:$file, I64Attr:$offset,
                       Sc_ParamTransformAttr:$transform, StrAttr:$onnx_name, StrArrayAttr:$tied);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$name attr-dict `:` type($result)";
  let hasVerifier = 1;
}

def Sc_ConstantOp : Op<Sc_Dialect, "constant",
    [Pure, ConstantLike, AllTypesMatch<["value", "result"]>, Sc_HasShardingRule]> {
  let summary = "a small constant (masks, shapes, scalars)";
  let arguments = (ins ElementsAttr:$value);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "attr-dict $value";
  let hasFolder = 1;
  let hasVerifier = 1;
}

//===----------------------------------------------------------------------===//
// Elementwise
//===----------------------------------------------------------------------===//

class Sc_BinaryOp<string mnemonic, list<Trait> traits = []> : Sc_Op<mnemonic, traits> {
  let arguments = (ins Sc_Tensor:$lhs, Sc_Tensor:$rhs);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}
// Partial flows where the op is linear in the partial operands: a sum of partial sums, a
// product or quotient with one partial factor, a sign flip.
def Sc_AddOp : Sc_BinaryFormulaOp<"add", "AllOperands", [Sc_HasVjp]>;
def Sc_SubOp : Sc_BinaryFormulaOp<"sub", "AllOperands", [Sc_HasVjp]>;
def Sc_MulOp : Sc_BinaryFormulaOp<"mul", "OneOperand", [Sc_HasVjp]>;
def Sc_DivOp : Sc_BinaryFormulaOp<"div", "FirstOperand", [Sc_HasVjp]>;
def Sc_PowOp : Sc_BinaryOp<"pow", [Sc_HasVjp, DeclareOpInterfaceMethods<Sc_ElementwiseOpInterface,
                                                                ["hasUniformOperandTypes"]>]> {
  let summary = "ONNX Pow (the exponent may have its own numeric type)";
}
def Sc_MinOp : Sc_BinaryFormulaOp<"min", "None", [Sc_HasVjp]> {
  let summary = "elementwise minimum of two tensors (ONNX Min of two inputs); NaN propagates";
}
def Sc_MaxOp : Sc_BinaryFormulaOp<"max", "None", [Sc_HasVjp]> {
  let summary = "elementwise maximum of two tensors (ONNX Max of two inputs); NaN propagates";
}
def Sc_EqualOp : Sc_BinaryOp<"equal">;

def Sc_WhereOp : Sc_Op<"where", [Sc_HasVjp]> {
  let arguments = (ins Sc_Tensor:$condition, Sc_Tensor:$lhs, Sc_Tensor:$rhs);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$condition `,` $lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

class Sc_UnaryOp<string mnemonic, list<Trait> traits = [], list<string> stepMethods = []>
    : Sc_Op<mnemonic, traits, stepMethods> {
  let arguments = (ins Sc_Tensor:$input);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_NegOp : Sc_UnaryFormulaOp<"neg", "Unary", [Sc_HasVjp]>;
def Sc_SqrtOp : Sc_UnaryFormulaOp<"sqrt", "None", [Sc_HasVjp]>;
def Sc_ReciprocalOp : Sc_UnaryFormulaOp<"reciprocal", "None", [Sc_HasVjp]>;
def Sc_ExpOp : Sc_UnaryFormulaOp<"exp", "None", [Sc_HasVjp]>;
def Sc_LogOp : Sc_UnaryFormulaOp<"log", "None", [Sc_HasVjp]>;
def Sc_TanhOp : Sc_UnaryFormulaOp<"tanh", "None", [Sc_HasVjp]>;
def Sc_SigmoidOp : Sc_UnaryFormulaOp<"sigmoid", "None", [Sc_HasVjp]>;
def Sc_ErfOp : Sc_UnaryFormulaOp<"erf", "None", [Sc_HasVjp]>;
def Sc_CosOp : Sc_UnaryFormulaOp<"cos", "None", [Sc_HasVjp]>;
def Sc_SinOp : Sc_UnaryFormulaOp<"sin", "None", [Sc_HasVjp]>;
def Sc_ReluOp : Sc_UnaryFormulaOp<"relu", "None", [Sc_HasVjp]> {
  let summary = "max(x, 0); NaN stays NaN";
}
// Float only (their rows' integer column is `none`: the CPU kernel refuses integer tensors).
def Sc_AbsOp : Sc_UnaryFormulaOp<"abs", "None", [Sc_HasVjp]>;
def Sc_FloorOp : Sc_UnaryFormulaOp<"floor">;
def Sc_CeilOp : Sc_UnaryFormulaOp<"ceil">;
def Sc_RoundOp : Sc_UnaryFormulaOp<"round"> {
  let summary = "round to the nearest integer, halves to even (ONNX Round)";
}
def Sc_SignOp : Sc_UnaryFormulaOp<"sign"> {
  let summary = "-1, 0 or 1 by the input's sign; NaN stays NaN";
}
def Sc_IsNaNOp : Sc_UnaryOp<"isnan">;
def Sc_SiluOp : Sc_UnaryFormulaOp<"silu", "None", [Sc_HasVjp]> {
  let summary = "x * sigmoid(x) (raised from Sigmoid + Mul)";
}
def Sc_SiluGradOp : Sc_BinaryFormulaOp<"silu_grad"> {
  let summary = "g * silu'(x) for x (lhs) and g (rhs): silu's VJP";
}
def Sc_GeluErfGradOp : Sc_BinaryFormulaOp<"gelu_erf_grad"> {
  let summary = "g * gelu'(x), exact GELU, for x (lhs) and g (rhs)";
}
def Sc_GeluTanhGradOp : Sc_BinaryFormulaOp<"gelu_tanh_grad"> {
  let summary = "g * gelu'(x), tanh-approximated GELU, for x (lhs) and g (rhs)";
}
def Sc_CastOp : Sc_UnaryOp<"cast", [Sc_HasVjp]> {
  let summary = "element type conversion to the result's element type";
}
def Sc_GeluOp : Sc_Op<"gelu", [DeclareOpInterfaceMethods<Sc_ElementwiseOpInterface, ["getFormula"]>, Sc_HasVjp]> {
  let summary = "GELU, exact (erf) or tanh approximation";
  let arguments = (ins Sc_Tensor:$input, DefaultValuedAttr<Sc_GeluApproximationAttr, "::shardc::sc::GeluApproximation::None">:$approximate);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Contractions and normalisations
//===----------------------------------------------------------------------===//

def Sc_MatMulOp : Sc_Op<"matmul", [Sc_HasVjp], ["getCost"]> {
  let summary = "ONNX MatMul (batched, broadcasting batch dims)";
  let arguments = (ins Sc_Tensor:$lhs, Sc_Tensor:$rhs);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$lhs `,` $rhs attr-dict `:` functional-type(operands, results)";
}

def Sc_GemmOp : Sc_Op<"gemm", [], ["lowerToStep", "getCost"]> {
  let summary = "ONNX Gemm: alpha * op(A) op(B) + beta * C";
  let arguments = (ins Sc_Tensor:$a, Sc_Tensor:$b, Optional<Sc_Tensor>:$c,
                   DefaultValuedAttr<F32Attr, "1.0">:$alpha, DefaultValuedAttr<F32Attr, "1.0">:$beta,
                   DefaultValuedAttr<BoolAttr, "false">:$trans_a, DefaultValuedAttr<BoolAttr, "false">:$trans_b);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$a `,` $b (`,` $c^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_LinearOp : Sc_Op<"linear", [Sc_HasVjp], ["lowerToStep", "getCost"]> {
  let summary = "y = x W (+ b): a torch.nn.Linear";
  let description = [{
    `weight` is [K, N] as the exporter folded it, or [N, K] (PyTorch's layout) when
    `transpose_weight` is set. `bias`, when present, is [N]. `epilogue` = "gelu_tanh"
    applies the tanh GELU to x W + b before the result is rounded to its type (a GEMM
    epilogue: sc-fuse-linear-epilogue sets it on the per-rank program).
  }];
  let arguments = (ins Sc_Tensor:$input, Sc_Tensor:$weight, Optional<Sc_Tensor>:$bias,
                   DefaultValuedAttr<BoolAttr, "false">:$transpose_weight,
                   OptionalAttr<Sc_LinearEpilogueAttr>:$epilogue);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `,` $weight (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_EmbeddingOp : Sc_Op<"embedding", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "rows of a [V, H] table selected by integer ids";
  let description = [{
    With `row_start` (an i64 scalar, set by sc-partition for a vocabulary-split table) the
    table holds rows [row_start, row_start + V) of a `vocab_size`-row table: ids outside
    those rows give zero rows (the program sums the ranks' partial results). `padding_idx`
    is PyTorch's (read from the exporter's record of aten.embedding): the forward ignores it,
    the gradient of that row is zero.
  }];
  let arguments = (ins Sc_Tensor:$table, Sc_Tensor:$ids, Optional<Sc_Tensor>:$row_start,
                   OptionalAttr<I64Attr>:$vocab_size, OptionalAttr<I64Attr>:$padding_idx);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$table `,` $ids (`rows_from` $row_start^)? attr-dict `:` functional-type(operands, results)";
  let builders = [OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$table, "::mlir::Value":$ids), [{
    build($_builder, $_state, result, table, ids, ::mlir::Value(), ::mlir::IntegerAttr(), ::mlir::IntegerAttr());
  }]>];
}

def Sc_EmbeddingGradOp : Sc_Op<"embedding_grad", [], ["lowerToStep"]> {
  let summary = "the VJP of sc.embedding: dy's rows added into a zeroed [V, H] table";
  let description = [{
    For ids [...] and dy [..., H], result[id] += dy[row] for every id, except ids equal to
    `padding_idx` (PyTorch's embedding padding_idx: that row gets no gradient). With
    `row_start` (a vocabulary-split table) the result holds rows [row_start, row_start + V)
    of a `vocab_size`-row table and ids outside them add nothing.
  }];
  let arguments = (ins Sc_Tensor:$ids, Sc_Tensor:$dy, Optional<Sc_Tensor>:$row_start,
                   OptionalAttr<I64Attr>:$vocab_size, OptionalAttr<I64Attr>:$padding_idx);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$ids `,` $dy (`rows_from` $row_start^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_SoftmaxOp : Sc_Op<"softmax", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_LogSoftmaxOp : Sc_Op<"log_softmax", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DefaultValuedAttr<I64Attr, "-1">:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

def Sc_LayerNormOp : Sc_Op<"layer_norm", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "ONNX LayerNormalization (statistics over dims axis..rank-1)";
  let arguments = (ins Sc_Tensor:$input, Sc_Tensor:$scale, Optional<Sc_Tensor>:$bias,
                   DefaultValuedAttr<I64Attr, "-1">:$axis, DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `,` $scale (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_RmsNormOp : Sc_Op<"rms_norm", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "RMSNorm: x / sqrt(mean(x^2) + epsilon) * scale";
  let arguments = (ins Sc_Tensor:$input, Sc_Tensor:$scale,
                   DefaultValuedAttr<I64Attr, "-1">:$axis, DefaultValuedAttr<F32Attr, "1.0e-5">:$epsilon);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `,` $scale attr-dict `:` functional-type(operands, results)";
}

def Sc_RotaryOp : Sc_Op<"rotary", [Sc_HasVjp]> {
  let summary = "rotary position embedding, rotate-half form: x*cos + rotate_half(x)*sin";
  let arguments = (ins Sc_Tensor:$input, Sc_Tensor:$cos, Sc_Tensor:$sin);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `,` $cos `,` $sin attr-dict `:` functional-type(operands, results)";
}

def Sc_AttentionOp : Sc_Op<"attention", [Sc_HasVjp], ["lowerToStep", "getCost"]> {
  let summary = "scaled dot-product attention [B, H, S, D], GQA by head ratio";
  let description = [{
    softmax(q kᵀ · scale + mask, with −inf above the diagonal when `causal`) · v.
    `q` has Hq heads, `k`/`v` Hkv heads with Hq a multiple of Hkv. `mask`, when present,
    is additive and broadcasts to [B, Hq, S, T]. The optional second result `lse`, f32
    [B, Hq, S], is each query row's log-sum-exp of its scores (sc-autodiff asks for it: the
    backward recomputes the probabilities from it).
  }];
  let arguments = (ins Sc_Tensor:$query, Sc_Tensor:$key, Sc_Tensor:$value,
                   Optional<Sc_Tensor>:$mask, F32Attr:$scale,
                   DefaultValuedAttr<BoolAttr, "false">:$causal);
  let results = (outs Sc_Tensor:$result, Optional<Sc_Tensor>:$lse);
  let builders = [OpBuilder<(ins "::mlir::Type":$result, "::mlir::Value":$query, "::mlir::Value":$key,
                                 "::mlir::Value":$value, "::mlir::Value":$mask, "::mlir::FloatAttr":$scale,
                                 "::mlir::BoolAttr":$causal), [{
    build($_builder, $_state, result, ::mlir::Type(), query, key, value, mask, scale, causal);
  }]>];
  let assemblyFormat = "$query `,` $key `,` $value (`mask` $mask^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_AttentionGradOp : Sc_Op<"attention_grad", [], ["lowerToStep", "getCost"]> {
  let summary = "the VJP of sc.attention: dq, dk, dv from the saved result and log-sum-exp";
  let description = [{
    Flash-style: the probabilities are recomputed as exp(score − lse) from q, k and the
    forward's `lse`; D = rowsum(dout ∘ out); dS = P ∘ (dout vᵀ − D); dq = scale dS k,
    dk = scale dSᵀ q, dv = Pᵀ dout, with a kv head's dk and dv summed over its query heads.
    `scale`, `causal` and `mask` are the forward's.
  }];
  let arguments = (ins Sc_Tensor:$query, Sc_Tensor:$key, Sc_Tensor:$value, Sc_Tensor:$out,
                   Sc_Tensor:$lse, Sc_Tensor:$dout, Optional<Sc_Tensor>:$mask, F32Attr:$scale,
                   DefaultValuedAttr<BoolAttr, "false">:$causal);
  let results = (outs Sc_Tensor:$dquery, Sc_Tensor:$dkey, Sc_Tensor:$dvalue);
  let assemblyFormat = "$query `,` $key `,` $value `,` $out `,` $lse `,` $dout (`mask` $mask^)? attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Reductions
//===----------------------------------------------------------------------===//

def Sc_TokenLossOp : Sc_Op<"token_loss", [Sc_HasVjp], ["getCost"]> {
  let summary = "summed token cross-entropy and the count of label tokens";
  let description = [{
    For logits [B, S, V] (any float type) and labels [B, S] (i64, already shifted: the
    label of position s is the token it predicts), `sum` is the sum over the positions whose
    label is not -100 (Hugging Face's ignore index) of logsumexp(logits[b, s, :]) -
    logits[b, s, label], and `count` the number of those positions, both f32 scalars,
    computed in f32 with a max-subtracted logsumexp. The mean loss is sum / count; keeping
    the two apart lets data and context parallelism reduce both (they are sums over the
    batch and sequence: sharding those dims makes them Partial) and divide by the global
    count of label tokens. The vocabulary dim must be whole on every rank. A label outside
    [0, V) other than -100 is a run-time error.
  }];
  let arguments = (ins Sc_Tensor:$logits, Sc_Tensor:$labels);
  let results = (outs Sc_Tensor:$sum, Sc_Tensor:$count);
  let assemblyFormat = "$logits `,` $labels attr-dict `:` functional-type(operands, results)";
}

def Sc_TokenLossGradOp : Sc_Op<"token_loss_grad", [], ["getCost"]> {
  let summary = "the VJP of sc.token_loss's sum: dsum · (softmax(logits) − onehot(label))";
  let description = [{
    For logits [B, S, V], labels [B, S] (i64) and `dsum` (f32 scalar, the gradient of the
    summed loss), each row whose label is not -100 gets dsum · (softmax(row) − onehot(label));
    the other rows are zero. The result has the logits' type. The vocabulary stays whole.
  }];
  let arguments = (ins Sc_Tensor:$logits, Sc_Tensor:$labels, Sc_Tensor:$dsum);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$logits `,` $labels `,` $dsum attr-dict `:` functional-type(operands, results)";
}

// The vocabulary-parallel loss (Megatron's vocab-parallel cross-entropy, torchtitan's
// loss_parallel): sc-add-loss writes it instead of sc.token_loss when the logits come out of a
// colwise lm_head split over the vocabulary, as
//   %max = sc.reduce_max %logits {axes = [2], keepdims = false}   (Partial(max) over tp)
//   %m = sc.stop_gradient %max
//   %sumexp, %picked = sc.token_loss_stats %logits, %labels, %m  (both Partial(sum) over tp)
//   %sum, %count = sc.token_loss_combine %sumexp, %picked, %m, %labels
// so that what crosses the vocabulary split is three [B, S] vectors, never the logits.
def Sc_StopGradientOp : Sc_UnaryOp<"stop_gradient", [AllTypesMatch<["input", "result"]>], ["lowerToStep"]> {
  let summary = "the identity, through which sc-autodiff sends no gradient";
  let description = [{
    The value is a constant to the differentiation (torch's `detach`): sc-autodiff never
    marks its result as depending on a trainable parameter, so ops reading it get no request
    for its gradient. sc-add-loss reads the row maxima of the vocabulary-parallel loss through
    it: the loss does not depend on the shift of its log-sum-exp. The step is a `copy`.
  }];
}

def Sc_TokenLossStatsOp : Sc_Op<"token_loss_stats", [Sc_HasVjp], ["getCost"]> {
  let summary = "per-row exponential sums and label logits of a vocabulary slice of the logits";
  let description = [{
    For logits [B, S, V] (a slice of the vocabulary, columns [vocab_start, vocab_start + V)
    of the whole, vocab_start 0 when absent), labels [B, S] (i64, shifted) and the rows'
    maxima `max` [B, S] (f32, over the whole vocabulary), `sumexp[b, s]` = Σ_v exp(logits[b,
    s, v] − max[b, s]) and `picked[b, s]` = logits[b, s, label − vocab_start] when the label
    falls in the slice, else 0 (also for label −100). Both f32, computed in f32 (f64 for f64
    logits). Summed over the slices they are the whole rows' values: the vocabulary dim is a
    reduction (sharded, both results are Partial(sum)). `max` must not need a gradient (read
    it through sc.stop_gradient): the VJP is sc.token_loss_stats_grad.
  }];
  let arguments = (ins Sc_Tensor:$logits, Sc_Tensor:$labels, Sc_Tensor:$max, Optional<Sc_Tensor>:$vocab_start);
  let results = (outs Sc_Tensor:$sumexp, Sc_Tensor:$picked);
  let assemblyFormat = "$logits `,` $labels `,` $max (`vocab_from` $vocab_start^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_TokenLossStatsGradOp : Sc_Op<"token_loss_stats_grad", [], ["getCost"]> {
  let summary = "the VJP of sc.token_loss_stats in its logits";
  let description = [{
    dlogits[b, s, v] = dsumexp[b, s] · exp(logits[b, s, v] − max[b, s]) + dpicked[b, s] ·
    [v + vocab_start == labels[b, s]], in the logits' type. Every dim may be split (the
    vocabulary with `vocab_start`, which sc-partition adds as for sc.token_loss_stats).
  }];
  let arguments = (ins Sc_Tensor:$logits, Sc_Tensor:$labels, Sc_Tensor:$max, Sc_Tensor:$dsumexp,
                   Sc_Tensor:$dpicked, Optional<Sc_Tensor>:$vocab_start);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$logits `,` $labels `,` $max `,` $dsumexp `,` $dpicked (`vocab_from` $vocab_start^)? attr-dict `:` functional-type(operands, results)";
}

def Sc_TokenLossCombineOp : Sc_Op<"token_loss_combine", [Sc_HasVjp], ["getCost"]> {
  let summary = "sc.token_loss's sum and count from the rows' statistics";
  let description = [{
    For sumexp and picked (f32, or f64, [B, S]), max ([B, S], the logits' type) and labels
    (i64 [B, S]): `sum` = Σ over the rows
    whose label is not −100 of log(sumexp) + max − picked (each row's log-sum-exp minus its
    label's logit), `count` the number of those rows; f32 scalars (f64 inputs are summed in
    f64). Batch and sequence are reductions, as for sc.token_loss. Its VJP is composed of
    elementwise ops: d sumexp = dsum / sumexp and d picked = −dsum on the counted rows, zero
    elsewhere; `max` must not need a gradient.
  }];
  let arguments = (ins Sc_Tensor:$sumexp, Sc_Tensor:$picked, Sc_Tensor:$max, Sc_Tensor:$labels);
  let results = (outs Sc_Tensor:$sum, Sc_Tensor:$count);
  let assemblyFormat = "$sumexp `,` $picked `,` $max `,` $labels attr-dict `:` functional-type(operands, results)";
}

class Sc_ReduceOp<string mnemonic, list<Trait> traits = []> : Sc_Op<mnemonic, traits, ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DenseI64ArrayAttr:$axes,
                   DefaultValuedAttr<BoolAttr, "true">:$keepdims);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_ReduceMeanOp : Sc_ReduceOp<"reduce_mean", [Sc_HasVjp]>;
def Sc_ReduceSumOp : Sc_ReduceOp<"reduce_sum", [Sc_HasVjp]>;
def Sc_ReduceMaxOp : Sc_ReduceOp<"reduce_max">;

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

def Sc_ReshapeOp : Sc_UnaryOp<"reshape", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "reshape to the result type (the shape operand folded at import)";
}
def Sc_UnsqueezeOp : Sc_Op<"unsqueeze", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_SqueezeOp : Sc_Op<"squeeze", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DenseI64ArrayAttr:$axes);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_CopyOp : Sc_UnaryOp<"copy", [AllTypesMatch<["input", "result"]>, Sc_HasVjp], ["getCost"]> {
  let summary = "a copy of a value into a buffer of its own in the arena";
  let description = [{
    sc-materialize-outputs returns a copy of each graph output that is a parameter, a
    constant or a function argument, because the runtime reads outputs from the arena. Its
    step is `copy`; its cost is counted as nothing (it is the output's materialisation, not
    the model's work), as it was when the emitter added the copy itself.
  }];
}
def Sc_ExpandOp : Sc_UnaryOp<"expand", [Sc_HasVjp]> {
  let summary = "broadcast to the result type (the shape operand folded at import)";
}
def Sc_TransposeOp : Sc_Op<"transpose", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, DenseI64ArrayAttr:$perm);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_SliceOp : Sc_Op<"slice", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "strided slice; one normalised start and step per dim";
  let arguments = (ins Sc_Tensor:$input, DenseI64ArrayAttr:$starts, DenseI64ArrayAttr:$steps);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_ConcatOp : Sc_Op<"concat", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Variadic<Sc_Tensor>:$inputs, I64Attr:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$inputs attr-dict `:` functional-type(operands, results)";
}
def Sc_SplitOp : Sc_Op<"split", [Sc_HasVjp], ["lowerToStep"]> {
  let summary = "split along an axis; sizes are the results' extents";
  let arguments = (ins Sc_Tensor:$input, I64Attr:$axis);
  let results = (outs Variadic<Sc_Tensor>:$results);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_GatherOp : Sc_Op<"gather", [Sc_HasVjp], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$data, Sc_Tensor:$indices, I64Attr:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$data `,` $indices attr-dict `:` functional-type(operands, results)";
}
def Sc_GatherElementsOp : Sc_Op<"gather_elements", [], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$data, Sc_Tensor:$indices, I64Attr:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$data `,` $indices attr-dict `:` functional-type(operands, results)";
}
// Mixture-of-experts routing as exporters write it (docs/moe.md).
def Sc_TopKOp : Sc_Op<"top_k", [], ["lowerToStep"]> {
  let summary = "the k largest (smallest) elements along an axis, sorted, with their i64 positions";
  let description = [{
    k is the results' extent along `axis`; ties go to the lower position (ONNX TopK's order).
  }];
  let arguments = (ins Sc_Tensor:$input, I64Attr:$axis, DefaultValuedAttr<BoolAttr, "true">:$largest);
  let results = (outs Sc_Tensor:$values, Sc_Tensor:$indices);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_GatherNdOp : Sc_Op<"gather_nd", [], ["lowerToStep"]> {
  let summary = "ONNX GatherND: slices of `data` addressed by the indices' last dim";
  let arguments = (ins Sc_Tensor:$data, Sc_Tensor:$indices, DefaultValuedAttr<I64Attr, "0">:$batch_dims);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$data `,` $indices attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeExpertsOp : Sc_Op<"moe_experts", [Sc_HasVjp], ["getCost", "lowerToStep"]> {
  let summary = "grouped SwiGLU or GeGLU experts of a mixture-of-experts block (sc-raise-moe)";
  let description = [{
    y[t] = sum over j < k of weights[t, j] * down[e] (act(gate_up[e][:I] x[t]) * gate_up[e][I:] x[t]),
    act = `activation`: silu (SwiGLU), gelu_tanh or gelu_erf (GeGLU),
    e = indices[t, j]: x [T, H], indices [T, k] (i64), weights [T, k], gate_up [E, 2I, H] (gate rows
    first), down [E, H, I]. `hidden` [T·k, I] is the activations' workspace (in expert order).
    Dropless: the kernel sorts the T·k rows by expert and runs one GEMM pair per expert.
  }];
  let arguments = (ins Sc_Tensor:$x, Sc_Tensor:$indices, Sc_Tensor:$weights, Sc_Tensor:$gate_up, Sc_Tensor:$down,
                   DefaultValuedAttr<StrAttr, "\"silu\"">:$activation);
  let results = (outs Sc_Tensor:$result, Sc_Tensor:$hidden);
  let assemblyFormat = "$x `,` $indices `,` $weights `,` $gate_up `,` $down attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeRouterOp : Sc_Op<"moe_router", [Sc_HasVjp], ["lowerToStep", "getCost"]> {
  let summary = "the router of a mixture-of-experts block: expert choices and combine weights (sc-raise-moe)";
  let description = [{
    From the router linear's logits [T, E]: scores = softmax(logits) or sigmoid(logits)
    (`scoring`); the choice reads scores + bias (the optional score bias [E], a frozen buffer:
    DeepSeek-V3's e_score_correction_bias); with `n_group` > 1 the E experts are n_group groups,
    each scored by the sum of its `group_k` largest choice scores, and only the `topk_group` best
    groups stay eligible; indices [T, k] (i64) are the k largest eligible choice scores, sorted,
    ties to the lower expert. weights [T, k] are the unbiased scores of the chosen experts, divided
    by their sum (+ `norm_epsilon`) when `normalize`, times `scale` (the routed scaling factor).
  }];
  let arguments = (ins Sc_Tensor:$logits, Optional<Sc_Tensor>:$bias, StrAttr:$scoring,
                   DefaultValuedAttr<I64Attr, "1">:$n_group, DefaultValuedAttr<I64Attr, "1">:$topk_group,
                   DefaultValuedAttr<I64Attr, "2">:$group_k, DefaultValuedAttr<BoolAttr, "false">:$normalize,
                   DefaultValuedAttr<F64Attr, "0.0">:$norm_epsilon, DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Sc_Tensor:$indices, Sc_Tensor:$weights);
  let assemblyFormat = "$logits (`,` $bias^)? attr-dict `:` functional-type(operands, results)";
}

// The backward of the MoE ops (their VJP rules, lib/Dialect/ScMoeTraining.cpp).
def Sc_MoeExpertsGradOp : Sc_Op<"moe_experts_grad", [], ["getCost", "lowerToStep"]> {
  let summary = "the VJP of sc.moe_experts: gradients of x, the combine weights and both expert stacks";
  let description = [{
    Operands as sc.moe_experts's plus dy [T, H]. Each (token, choice) row r = t·k + j of
    expert e recomputes g = gate_up[e][:I] x[t], u = gate_up[e][I:] x[t], h = act(g)·u and
    o = down[e] h; then dweights[r] = dy[t]·o, dh = weights[r] · down[e]ᵀ dy[t],
    dg = dh·u·act'(g), du = dh·act(g); ddown[e] += weights[r] dy[t] ⊗ h, dgate_up[e] +=
    [dg; du] ⊗ x[t], dx[t] += gate_up[e]ᵀ [dg; du]. `work` [T·k, 3I] is the workspace
    ([dg; du] and h per row). The expert gradients sum over the tokens.
  }];
  let arguments = (ins Sc_Tensor:$x, Sc_Tensor:$indices, Sc_Tensor:$weights, Sc_Tensor:$gate_up, Sc_Tensor:$down,
                   Sc_Tensor:$dy, DefaultValuedAttr<StrAttr, "\"silu\"">:$activation);
  let results = (outs Sc_Tensor:$dx, Sc_Tensor:$dweights, Sc_Tensor:$dgate_up, Sc_Tensor:$ddown, Sc_Tensor:$work);
  let assemblyFormat = "$x `,` $indices `,` $weights `,` $gate_up `,` $down `,` $dy attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeGroupedGemmGradOp : Sc_Op<"moe_grouped_gemm_grad", [], ["getCost", "lowerToStep"]> {
  let summary = "the local experts' backward over the dispatched rows (expert parallelism)";
  let description = [{
    sc-partition's expansion of an sc.moe_experts_grad whose experts are split over ep: the rows
    of x, dy and the combine weights as sc.moe_dispatch delivered them (recv_x, recv_dy [R, H],
    recv_w [R, 1]; recv_counts [G·E_l] source-major), the local stacks gate_up [E_l, 2I, H] and
    down [E_l, H, I]. sc.moe_experts_grad's formulas per received row r of local expert e (k = 1):
    dx [R, H] and dweights [R, 1] per row, dgate_up and ddown summed over the received rows,
    work [R, 3I]. Rows past the received total are zero.
  }];
  let arguments = (ins Sc_Tensor:$recv_x, Sc_Tensor:$recv_dy, Sc_Tensor:$recv_w, Sc_Tensor:$recv_counts,
                   Sc_Tensor:$gate_up, Sc_Tensor:$down, DefaultValuedAttr<StrAttr, "\"silu\"">:$activation);
  let results = (outs Sc_Tensor:$dx, Sc_Tensor:$dweights, Sc_Tensor:$dgate_up, Sc_Tensor:$ddown, Sc_Tensor:$work);
  let assemblyFormat = "$recv_x `,` $recv_dy `,` $recv_w `,` $recv_counts `,` $gate_up `,` $down attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeRouterGradOp : Sc_Op<"moe_router_grad", [], ["getCost", "lowerToStep"]> {
  let summary = "the VJP of sc.moe_router in its logits (the choices held fixed)";
  let description = [{
    logits [T, E], indices [T, k] (the router's choice), dweights [T, k]; attributes as the
    router's. With s = softmax or sigmoid of the logits, s_j = s[indices[t, j]] and, when
    `normalize`, S = Σ_j s_j + norm_epsilon: ds_j = scale·(dweights_j / S − Σ_i dweights_i s_i / S²)
    (scale·dweights_j without normalisation) on the chosen experts, zero elsewhere; then
    dlogits = s ⊙ (ds − Σ ds ⊙ s) (softmax) or ds ⊙ s ⊙ (1 − s) (sigmoid). The score bias and
    the group-limited selection only choose, so they get no gradient.
  }];
  let arguments = (ins Sc_Tensor:$logits, Sc_Tensor:$indices, Sc_Tensor:$dweights, StrAttr:$scoring,
                   DefaultValuedAttr<BoolAttr, "false">:$normalize, DefaultValuedAttr<F64Attr, "0.0">:$norm_epsilon,
                   DefaultValuedAttr<F64Attr, "1.0">:$scale);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$logits `,` $indices `,` $dweights attr-dict `:` functional-type(operands, results)";
}

// Expert parallelism (docs/moe.md): sc-partition expands an sc.moe_experts whose expert
// weights are split over the `ep` sub-axis into these five ops, on local shapes. The rows
// cross the ep group in expert order; R = ep·T·k rows is the worst case a rank can receive.
def Sc_MoePermuteOp : Sc_Op<"moe_permute", [], ["lowerToStep", "getCost"]> {
  let summary = "the T·k (token, choice) rows grouped by expert, with counts (expert parallelism)";
  let description = [{
    rows [T·k, H] holds x[t] for every (t, j), grouped by expert indices[t, j] in token order
    (a counting sort); counts [E] (i64) the rows per expert; slots [T·k] (i64) the t·k + j each
    row came from. E is `num_experts`, the experts of every rank.
  }];
  let arguments = (ins Sc_Tensor:$x, Sc_Tensor:$indices, I64Attr:$num_experts);
  let results = (outs Sc_Tensor:$rows, Sc_Tensor:$counts, Sc_Tensor:$slots);
  let assemblyFormat = "$x `,` $indices attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeDispatchOp : Sc_Op<"moe_dispatch", [], ["lowerToStep", "getCost"]> {
  let summary = "all-to-all of the permuted rows to their experts' ranks over `axes` (expert parallelism)";
  let description = [{
    Member g of the group holds experts [g·E/G, (g+1)·E/G). First the counts [E] travel (an
    all-to-all of E/G per member), giving recv_counts [E] laid out [source member][local
    expert]; then each member's rows (all-to-all-v). recv [R, H]: the rows received, by source
    then local expert; the rows past their total are not written.
  }];
  let arguments = (ins Sc_Tensor:$rows, Sc_Tensor:$counts, StrArrayAttr:$axes);
  let results = (outs Sc_Tensor:$recv, Sc_Tensor:$recv_counts);
  let assemblyFormat = "$rows `,` $counts attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeGroupedGemmOp : Sc_Op<"moe_grouped_gemm", [], ["lowerToStep", "getCost"]> {
  let summary = "the local experts' SwiGLU MLPs over the received rows (expert parallelism)";
  let description = [{
    recv [R, H] as sc.moe_dispatch lays it out (recv_counts [G·E_l]: source-major), gate_up
    [E_l, 2I, H], down [E_l, H, I]: out[r] = down[e] (silu(gate_up[e][:I] recv[r]) ·
    gate_up[e][I:] recv[r]) for each received row r of local expert e, in recv's order;
    hidden [R, I] the activations' workspace.
  }];
  let arguments = (ins Sc_Tensor:$recv, Sc_Tensor:$recv_counts, Sc_Tensor:$gate_up, Sc_Tensor:$down);
  let results = (outs Sc_Tensor:$out, Sc_Tensor:$hidden);
  let assemblyFormat = "$recv `,` $recv_counts `,` $gate_up `,` $down attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeCombineOp : Sc_Op<"moe_combine", [], ["lowerToStep", "getCost"]> {
  let summary = "the reverse all-to-all-v: each expert output row back to its token's rank";
  let description = [{
    out [R, H] as sc.moe_grouped_gemm wrote it, recv_counts and counts as sc.moe_dispatch used
    them: result [T·k, H] in sc.moe_permute's row order.
  }];
  let arguments = (ins Sc_Tensor:$out, Sc_Tensor:$recv_counts, Sc_Tensor:$counts, StrArrayAttr:$axes);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$out `,` $recv_counts `,` $counts attr-dict `:` functional-type(operands, results)";
}
def Sc_MoeUnpermuteOp : Sc_Op<"moe_unpermute", [], ["lowerToStep", "getCost"]> {
  let summary = "y[t] = sum over j < k of weights[t, j] · rows[the row of slot t·k + j] (in j order)";
  let arguments = (ins Sc_Tensor:$rows, Sc_Tensor:$slots, Sc_Tensor:$weights);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$rows `,` $slots `,` $weights attr-dict `:` functional-type(operands, results)";
}
def Sc_DynamicSliceOp : Sc_Op<"dynamic_slice", [], ["lowerToStep"]> {
  let summary = "the result's extent of `input` along `axis` from a start given at run time";
  let description = [{
    `start` is an i64 scalar (sc-partition computes it from sc.process_index); the other
    dims are whole. The start must leave the slice inside the input.
  }];
  let arguments = (ins Sc_Tensor:$input, Sc_Tensor:$start, I64Attr:$axis);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `,` $start attr-dict `:` functional-type(operands, results)";
}
def Sc_TriluOp : Sc_Op<"trilu", [], ["lowerToStep"]> {
  let arguments = (ins Sc_Tensor:$input, BoolAttr:$upper, DefaultValuedAttr<I64Attr, "0">:$k);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// ONNX comparisons, remainders, scans and index ops (Less, Mod, LeakyRelu, CumSum, ArgMax,
// ScatterND). Greater/GreaterOrEqual are Less/LessOrEqual with swapped operands; And, Or,
// Not, Xor, Clip, Tile, Pad, Einsum and Conv are composed of other sc ops at import.
//===----------------------------------------------------------------------===//

def Sc_LessOp : Sc_BinaryOp<"less"> {
  let summary = "lhs < rhs (bool result; NaN compares false)";
}
def Sc_LessEqualOp : Sc_BinaryOp<"less_equal"> {
  let summary = "lhs <= rhs (bool result; NaN compares false)";
}
def Sc_LeakyReluOp : Sc_BinaryFormulaOp<"leaky_relu", "None", [Sc_HasVjp]> {
  let summary = "x < 0 ? x * alpha : x, for x (lhs) and alpha (rhs, a scalar constant)";
}
def Sc_ModOp : Sc_BinaryFormulaOp<"mod"> {
  let summary = "remainder with the divisor's sign (ONNX Mod, fmod = 0; Python's %)";
}
def Sc_FmodOp : Sc_BinaryFormulaOp<"fmod"> {
  let summary = "remainder with the dividend's sign (ONNX Mod, fmod = 1; C's fmod and %)";
}
def Sc_CumSumOp : Sc_Op<"cumsum", [], ["lowerToStep"]> {
  let summary = "inclusive or exclusive prefix sums along `axis`, forward or reversed";
  let arguments = (ins Sc_Tensor:$input, I64Attr:$axis,
                   DefaultValuedAttr<BoolAttr, "false">:$exclusive,
                   DefaultValuedAttr<BoolAttr, "false">:$reverse);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_ArgMaxOp : Sc_Op<"arg_max", [], ["lowerToStep"]> {
  let summary = "i64 index of the largest element along `axis` (first or last of ties)";
  let description = [{
    A NaN is larger than any number (the first NaN wins, as in onnxruntime and numpy).
    `keepdims` keeps the reduced dim as 1.
  }];
  let arguments = (ins Sc_Tensor:$input, I64Attr:$axis,
                   DefaultValuedAttr<BoolAttr, "true">:$keepdims,
                   DefaultValuedAttr<BoolAttr, "false">:$select_last_index);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_ArgMinOp : Sc_Op<"arg_min", [], ["lowerToStep"]> {
  let summary = "i64 index of the smallest element along `axis` (first or last of ties)";
  let description = [{
    sc.arg_max's mirror: a NaN is smaller than any number (the first NaN wins, as in numpy).
  }];
  let arguments = (ins Sc_Tensor:$input, I64Attr:$axis,
                   DefaultValuedAttr<BoolAttr, "true">:$keepdims,
                   DefaultValuedAttr<BoolAttr, "false">:$select_last_index);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
}
def Sc_ScatterNDOp : Sc_Op<"scatter_nd", [], ["lowerToStep"]> {
  let summary = "data with the slices that `indices` name replaced by (or combined with) updates";
  let description = [{
    ONNX ScatterND: indices [..., K] address slices data[i0, ..., iK-1]; updates have shape
    indices.shape[:-1] + data.shape[K:]. `reduction` is none (later updates win), add, mul,
    max or min. Negative indices count from the end.
  }];
  let arguments = (ins Sc_Tensor:$data, Sc_Tensor:$indices, Sc_Tensor:$updates,
                   DefaultValuedAttr<StrAttr, "\"none\"">:$reduction);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$data `,` $indices `,` $updates attr-dict `:` functional-type(operands, results)";
}

def Sc_ScatterElementsOp : Sc_Op<"scatter_elements", [], ["lowerToStep"]> {
  let summary = "data with the elements that `indices` name along `axis` replaced by (or combined with) updates";
  let description = [{
    ONNX ScatterElements: for every position p of indices (and updates, of the same shape, no
    larger than data in any dim), result[p with p[axis] = indices[p]] = updates[p], in row-major
    order (later updates win); `reduction` none, add, mul, max or min combines instead.
    Negative indices count from the end; indices are i64.
  }];
  let arguments = (ins Sc_Tensor:$data, Sc_Tensor:$indices, Sc_Tensor:$updates, I64Attr:$axis,
                   DefaultValuedAttr<StrAttr, "\"none\"">:$reduction);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$data `,` $indices `,` $updates attr-dict `:` functional-type(operands, results)";
}

//===----------------------------------------------------------------------===//
// Shape computations (folded to constants at import when shapes are static)
//===----------------------------------------------------------------------===//

def Sc_ShapeOp : Sc_Op<"shape"> {
  let arguments = (ins Sc_Tensor:$input, DefaultValuedAttr<I64Attr, "0">:$start,
                   OptionalAttr<I64Attr>:$end);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}
def Sc_ConstantOfShapeOp : Sc_Op<"constant_of_shape"> {
  let summary = "a tensor of the result type filled with one value";
  let arguments = (ins TypedAttrInterface:$value);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
  let hasFolder = 1;
}
def Sc_RangeOp : Sc_Op<"range"> {
  let arguments = (ins Sc_Tensor:$start, Sc_Tensor:$limit, Sc_Tensor:$delta);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$start `,` $limit `,` $delta attr-dict `:` functional-type(operands, results)";
  let hasFolder = 1;
}

//===----------------------------------------------------------------------===//
// Collectives over mesh axes (inserted by sc-insert-reshards; types become local after
// sc-partition). `axes` name mesh axes, outermost first; the group is every rank that
// agrees on the other axes.
//===----------------------------------------------------------------------===//

// Everything about a collective besides its semantics is generic: it is inserted after
// propagation (no sharding rule: a value reaching one is already laid out), its step is its
// mnemonic with its attributes (lowerCollectiveToStep), its cost the bytes it moves, and the
// runtime's collective table (runtime/comm/CollectiveKernels.cpp) runs it. A collective the
// reshard planner chooses is spelt in compiler/lib/Sharding/Reshard.cpp (spellingOf).
class Sc_CollectiveOp<string mnemonic>
    : Op<Sc_Dialect, mnemonic, [Sc_ShardingRuleOpInterface, Sc_StepOpInterface]> {
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input attr-dict `:` functional-type(operands, results)";
  let extraClassDeclaration = [{
    std::optional<::shardc::ShardingRule> getShardingRule() { return std::nullopt; }
    ::mlir::LogicalResult lowerToStep(::shardc::StepDesc &step) {
      return ::shardc::lowerCollectiveToStep(getOperation(), step);
    }
  }];
}
def Sc_AllReduceOp : Sc_CollectiveOp<"all_reduce"> {
  let summary = "Partial -> Replicate over `axes` (sum or max)";
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes,
                   DefaultValuedAttr<Sc_ReduceKindAttr, "::shardc::sc::ReduceKind::Sum">:$reduce);
}
def Sc_AllGatherOp : Sc_CollectiveOp<"all_gather"> {
  let summary = "Shard(dim) -> Replicate over `axes`: concat along dim in group order";
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes, I64Attr:$dim);
}
def Sc_ReduceScatterOp : Sc_CollectiveOp<"reduce_scatter"> {
  let summary = "Partial -> Shard(dim) over `axes`";
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes, I64Attr:$dim,
                   DefaultValuedAttr<Sc_ReduceKindAttr, "::shardc::sc::ReduceKind::Sum">:$reduce);
}
def Sc_AllToAllOp : Sc_CollectiveOp<"all_to_all"> {
  let summary = "Shard(concat_dim) -> Shard(split_dim) over `axes`";
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes, I64Attr:$split_dim, I64Attr:$concat_dim);
}
def Sc_ShardSliceOp : Sc_CollectiveOp<"shard_slice"> {
  let summary = "Replicate -> Shard(dim) over `axes`: the local chunk, no communication";
  let description = [{
    The chunk depends on the rank: sc-partition lowers it to sc.dynamic_slice from a start
    computed from sc.process_index, so no step is emitted for it.
  }];
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes, I64Attr:$dim);
}

// A layout the plan fixes: no step of its own; sc-insert-reshards replaces it with the
// collectives that produce the layout.
// Training state (sc-add-optimizer): values that persist from run to run, stored in the
// artifact's persistent block as State buffers (docs/artifact-format.md).
def Sc_StateOp : Op<Sc_Dialect, "state", [Sc_HasShardingRule]> {
  let summary = "a value kept across runs (a trained parameter, an optimizer moment, a step count)";
  let description = [{
    The state's value when the run starts. At load it is `init` (a load-time value: the
    parameter it takes over; the emitter copies it once) or zeros. `sc.assign` gives it the
    value the next run starts from. `name` identifies it in checkpoints (shardc-run
    --save-state). Not pure: its value changes between runs, so nothing computed from it
    runs at load.
  }];
  let arguments = (ins Optional<Sc_Tensor>:$init, StrAttr:$name);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$name (`init` $init^)? attr-dict `:` functional-type(operands, results)";
  let hasVerifier = 1;
}

def Sc_AssignOp : Op<Sc_Dialect, "assign", [Sc_HasShardingRule, AllTypesMatch<["value", "state"]>,
                                            DeclareOpInterfaceMethods<Sc_StepOpInterface, ["lowerToStep"]>]> {
  let summary = "the value a state takes for the next run (a copy into its buffer)";
  let description = [{
    Writes `value` into the buffer of `state` (an sc.state result) as the run's last reads
    of the state are done: sc-add-optimizer puts every assign after the program's other ops.
    Its step is a `copy` into the State buffer.
  }];
  let arguments = (ins Sc_Tensor:$value, Sc_Tensor:$state);
  let assemblyFormat = "$value `to` $state attr-dict `:` type($state)";
  let hasVerifier = 1;
}

def Sc_ShardingConstraintOp : Op<Sc_Dialect, "sharding_constraint", [Pure, AllTypesMatch<["input", "result"]>, Sc_HasVjp]> {
  let summary = "the value's layout over `axes`, as the plan asks; other axes propagate";
  let description = [{
    Written by sc-apply-plan where the plan fixes a layout that propagation would not derive:
    the sequence-parallel stream after the embedding (`over ["tp"] to [[], ["tp"], []]`), the
    whole sequence before a replicated lm_head, a colwise_rep output made Replicate, the
    context-parallel split of the token stream, the local share of a packed part.

    `sharding` places the constrained `axes`; an axis of `axes` that `sharding` does not
    mention is replicated over (any pending reduction over it is done). The other mesh axes
    keep the operand's placement. sc-propagate-sharding gives the result that layout, with the
    plan's priority; sc-insert-reshards replaces the op by the collectives planReshard finds
    from the operand's sharding (or fails the pass) and erases it, so no constraint reaches
    sc-partition or the artifact.
  }];
  let arguments = (ins Sc_Tensor:$input, StrArrayAttr:$axes, Sc_ShardingAttr:$sharding);
  let results = (outs Sc_Tensor:$result);
  let assemblyFormat = "$input `over` $axes `to` $sharding attr-dict `:` type($result)";
  let hasVerifier = 1;
}

// This rank's index in its group over `axes`: row-major over the axes in the order listed
// (rt::DeviceMesh::groupIndex). sc-partition creates it for the rank-dependent values of the
// per-rank program (the start of a local slice, a vocabulary split's first row); the runtime
// writes it once at load.
def Sc_ProcessIndexOp : Sc_Op<"process_index", [Sc_LoadTimeSource], ["lowerToStep"]> {
  let summary = "this rank's linear index in the group of mesh axes `axes` (i64 scalar)";
  let arguments = (ins StrArrayAttr:$axes);
  let results = (outs 0DTensorOf<[I64]>:$result);
  let assemblyFormat = "attr-dict `:` type($result)";
}

//===----------------------------------------------------------------------===//
// Structure
//===----------------------------------------------------------------------===//

def Sc_FusedOp : Op<Sc_Dialect, "fused", [IsolatedFromAbove, Pure, Sc_HasShardingRule,
                                          SingleBlockImplicitTerminator<"FusedYieldOp">]> {
  let summary = "an elementwise region compiled into one generated kernel";
  let description = [{
    Formed by sc-fuse-elementwise on the per-rank program: the body computes the results
    elementwise from the block arguments (one per input, broadcast to the results' shape)
    and yields them. The artifact emitter turns each distinct body into one kernel source
    that builds for the CPU (host compiler) and for CUDA (NVRTC), so the CPU tests run the
    code the GPU runs.
  }];
  let arguments = (ins Variadic<Sc_Tensor>:$inputs);
  let results = (outs Variadic<Sc_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$inputs attr-dict `:` functional-type($inputs, $results) $body";
  let hasVerifier = 1;
}

def Sc_FusedYieldOp : Op<Sc_Dialect, "fused_yield", [Pure, Terminator, HasParent<"FusedOp">]> {
  let arguments = (ins Variadic<Sc_Tensor>:$values);
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, mlir::ValueRange()); }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

def Sc_LayerOp : Op<Sc_Dialect, "layer", [SingleBlockImplicitTerminator<"YieldOp">,
                                          RecursiveMemoryEffects]> {
  let summary = "a decoder/encoder layer kept as a unit for FSDP grouping";
  let description = [{
    The region holds the ops of one module (`path`, e.g. `m.model.layers.3`); it may use
    values from above; its results are the values the rest of the program uses.
  }];
  let arguments = (ins StrAttr:$path);
  let results = (outs Variadic<Sc_Tensor>:$results);
  let regions = (region SizedRegion<1>:$body);
  let assemblyFormat = "$path attr-dict-with-keyword (`->` type($results)^)? $body";
  let hasVerifier = 1;
}

def Sc_YieldOp : Op<Sc_Dialect, "yield", [Pure, Terminator, HasParent<"LayerOp">]> {
  let arguments = (ins Variadic<Sc_Tensor>:$values);
  let builders = [OpBuilder<(ins), [{ build($_builder, $_state, mlir::ValueRange()); }]>];
  let assemblyFormat = "($values^ `:` type($values))? attr-dict";
}

#endif // SHARDC_SC_OPS
