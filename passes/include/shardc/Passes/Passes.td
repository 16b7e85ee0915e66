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

def ScRaiseMoe : Pass<"sc-raise-moe", "mlir::func::FuncOp"> {
  let summary = "the experts and router of an exported MoE block -> sc.moe_experts, sc.moe_router";
  let description = [{
    Matches what PyTorch's exporter writes for transformers' "batched_mm" experts: each of the
    T·k (token, choice) rows gathers its expert's stacked gate_up [E, 2I, H] and down [E, H, I]
    weights (GatherND on the router's TopK indices), multiplies them with the repeated token
    and silu(gate)·up (or gelu(gate)·up), scales by its routing weight, and the k choices of a
    token are summed. The whole chain becomes one sc.moe_experts (dropless grouped GEMMs). The
    router feeding it (softmax or sigmoid of the router logits, an optional frozen score bias,
    DeepSeek's group-limited selection, TopK, renormalisation, scaling) becomes one
    sc.moe_router; shared experts stay as they are. docs/moe.md.
  }];
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
    ops are not contiguous in the dependence order. Layers are found here once: in a sharded
    compile it runs right after sc-apply-plan (whose rewrites see the flat program), and
    propagation (a layer passes its yielded shardings out), FSDP grouping in
    sc-insert-reshards, partitioning, fusion and the artifact work on the regions.
  }];
}

def ScReportUnraised : Pass<"sc-report-unraised", "mlir::func::FuncOp"> {
  let summary = "reports the primitive ops left after raising, grouped by module path";
  let description = [{
    Emits one remark per op kind still present that a raising pass should have absorbed
    (softmax, isnan, where, sigmoid, erf, pow, reciprocal...), with counts and module paths.
  }];
}

def ScPrintShardingRules : Pass<"sc-print-sharding-rules", "mlir::func::FuncOp"> {
  let summary = "emits each op's sharding rule as a remark (for tests and plan debugging)";
  let description = [{
    For every op with a ShardingRuleOpInterface rule, a remark in factor notation:
    `(i, j, k), (l, k) -> (i, j, l) reduction={k}`: one letter per factor, a compound dim
    as `j*k`, a broadcast dim as `1`; then the reduction factors, the factors that must
    stay whole, the reduction kind and how Partial operands may flow. Ops without a rule
    say `whole tensors`.
  }];
}

def ScFuseLinearEpilogue : Pass<"sc-fuse-linear-epilogue", "mlir::func::FuncOp"> {
  let summary = "folds a tanh GELU that only reads a biased linear into the linear's epilogue";
  let description = [{
    `gelu(linear(x, W, b), approximate = "tanh")` where the GELU is the linear's only reader
    becomes `linear(x, W, b) {epilogue = "gelu_tanh"}`: cuBLASLt applies it in the GEMM's
    epilogue (CUBLASLT_EPILOGUE_GELU_BIAS), so the activation costs no pass over memory,
    and the CPU kernel applies the same formula to the f32 result before rounding. Only
    with a bias (cuBLASLt's GELU epilogues this backend plans take one). Run on the
    per-rank program, after partitioning (a collective between the two keeps them apart),
    before sc-fuse-elementwise.
  }];
}

def ScFuseElementwise : Pass<"sc-fuse-elementwise", "mlir::func::FuncOp"> {
  let summary = "groups elementwise ops into sc.fused regions, one generated kernel each";
  let description = [{
    Walks each block from its end: an elementwise op on float tensors (add, sub, mul, div,
    pow, neg, exp, log, sqrt, reciprocal, tanh, sigmoid, erf, cos, sin, silu, gelu, cast)
    starts a group, which absorbs the producers of its operands that are elementwise, of
    the same shape, and read only inside the group. Splat constants are cloned into the
    region. Each group, a single op included, becomes one sc.fused op whose body the
    artifact emitter compiles into a kernel for the CPU and for CUDA. Run on the per-rank
    program, after partitioning.
  }];
}

def ScAddLoss : Pass<"sc-add-loss", "mlir::ModuleOp"> {
  let summary = "appends the causal-LM loss to the program of a `mode: train` plan";
  let description = [{
    Runs when the module has `sc.train` (set by `shardc compile` for a plan with
    `mode: train`); otherwise does nothing. Finds the graph's int64 input `input_ids` [B, S]
    (or its only int64 [B, S] input) and its logits: the output [B, S, V] of float type
    (the one named `logits` when several fit). The labels are the input ids shifted by one
    inside each sequence (labels[b, s] = ids[b, s + 1], -100 at s = S - 1), or, with
    `sc.train = {labels = "input"}`, a new graph input `labels` [B, S] (int64, -100 =
    ignored) shifted the same way. It appends sc.token_loss (summed cross-entropy and label
    count, both sums over batch and sequence) and their quotient, returned as a new graph
    output `loss` (f32 scalar) after the existing outputs, which stay. Runs before
    sc-apply-plan, so the shift is in the original token order (context parallelism permutes
    the shifted labels with the logits). Errors: no int64 [B, S] input, no logits-like
    output (naming the outputs and the ONNX nodes that produce them).
  }];
}

def ScUnrollMicrobatches : Pass<"sc-unroll-microbatches", "mlir::ModuleOp"> {
  let summary = "gradient accumulation: the forward and loss cloned once per micro-batch";
  let description = [{
    Runs when `sc.train` has `gradient_accumulation_steps` g > 1, after sc-apply-plan and
    sc-mixed-precision and before sc-autodiff (passes/Microbatch.cpp). Every input of rank >= 1
    gets a leading dim g ([B, S] becomes [g, B, S], the data-parallel split moving to dim 1);
    the ops that depend on the inputs are cloned once per micro-batch j, each reading slice j,
    their module paths prefixed with `mb<j>.` (so each micro-batch's layers are layers of their
    own). The loss becomes the sum of the micro-batches' summed cross-entropies divided by the
    step's count of label tokens (counted from the labels, so no micro-batch's backward waits
    for a later forward); the model's other outputs are dropped. With `defer_fsdp_grad_sync`
    false each micro-batch reads each trainable parameter through a layout constraint whose
    backward sc-schedule-microbatches points at the parameter's storage layout.
  }];
}

def ScScheduleMicrobatches : Pass<"sc-schedule-microbatches", "mlir::ModuleOp"> {
  let summary = "gradient accumulation: each micro-batch's backward right after its forward";
  let description = [{
    Runs after sc-autodiff when `sc.train` has `gradient_accumulation_steps` g > 1. Reorders
    the flat program (a topological order by priority) as forward 0, backward 0, forward 1,
    backward 1, ... so that a micro-batch's activations die before the next forward starts
    and the memory plan reuses them. With `defer_fsdp_grad_sync` false, the backward of each
    micro-batch's parameter constraint is set to the parameter's storage layout, so every
    micro-batch's gradient is reduce-scattered to the shard and the shards are added.
  }];
}

def ScAutodiff : Pass<"sc-autodiff", "mlir::ModuleOp"> {
  let summary = "reverse-mode autodiff of a `mode: train` program: the gradients of the loss";
  let description = [{
    Runs when the module has `sc.train`, after sc-add-loss, sc-apply-plan and (for bf16 or
    fp16 compute) sc-mixed-precision, on the flat global program. Seeds
    d loss = 1 at the output `loss` and walks the ops in reverse, calling each op's VJP rule
    (VjpOpInterface, lib/Dialect/ScVjpRules.cpp) for the operands that depend on a trainable
    parameter (`sc.trainable` on sc.param) and reach the loss; gradients of a value read
    several times (a residual, a tied weight) add up. The backward ops follow the forward
    program, with the forward ops' locations marked as the backward's. Each trainable
    parameter's gradient becomes a new graph output `grad.<parameter name>` in the stored
    layout (zeros when the loss does not read it); without an optimizer the parts of a packed
    projection (`<name>.part<i>`) are concatenated back into `grad.<name>`. Errors: no
    output `loss`, no trainable
    parameter, an op on a gradient path without a VJP rule (naming its ONNX node and module
    path).
  }];
}

def ScCheckpointActivations : Pass<"sc-checkpoint-activations", "mlir::ModuleOp"> {
  let summary = "activation checkpointing of a `mode: train` program: each layer's activations recomputed in backward";
  let description = [{
    Runs when `sc.train` has `activation_checkpointing` ("full" or "selective"), after
    sc-autodiff, on the flat global program. For each layer (module path `<container>.N`,
    the one definition sc-group-layers uses), the forward ops whose results the backward
    reads are cloned right before the first backward op that reads one of them, recomputed
    from the values kept: the layer's inputs and outputs, and in selective mode also the
    results of its linear, matmul and attention ops and of the adds that read one (a residual
    add after a rowwise projection, whose collective then runs once); the backward reads the
    clones. The
    clones carry the backward's locations. Remark: how many ops of how many layers are
    recomputed.
  }];
}

def ScAddOptimizer : Pass<"sc-add-optimizer", "mlir::ModuleOp"> {
  let summary = "the optimizer step of a `mode: train` plan with `optimizer:` (AdamW), after sc-autodiff";
  let description = [{
    Runs when `sc.train` has an `optimizer` (and optionally `max_grad_norm`); otherwise does
    nothing. Each trainable parameter becomes training state (`sc.state "<name>" init
    %param`, every reader moved to it), with zero-initialised states for AdamW's moments
    (`adamw.exp_avg.<name>`, `adamw.exp_avg_sq.<name>`) and the step count
    (`optimizer.step`). The gradient outputs of sc-autodiff are consumed: the global
    gradient norm (returned as `grad_norm`, before clipping), clip_grad_norm_'s factor
    min(1, max_norm / (norm + 1e-6)), then torch.optim.AdamW's update (decoupled weight
    decay, bias-corrected moments) with this step's lr (constant, or from `lr_scheduler`:
    linear warmup, then cosine to min_lr; returned as `lr`), and `sc.assign` of every new
    value to its state after all other ops. Errors: a trainable parameter without a gradient
    output, a parameter that is not f32.
  }];
}

def ScUpdateRouterBias : Pass<"sc-update-router-bias", "mlir::ModuleOp"> {
  let summary = "DeepSeek-V3's auxiliary-loss-free load balancing: the routers' score biases as state, updated each step";
  let description = [{
    Runs when `sc.train` has `router_bias_update_speed` γ (after sc-add-optimizer). Each
    router's score bias (a frozen sc.param: e_score_correction_bias) becomes
    `sc.state "router_bias.<name>" init %param`; after the step it takes
    bias + d − mean(d), d = γ·sign(mean(c) − c), c the (token, choice) pairs each expert got
    over the step (all micro-batches; reduced over the data-parallel ranks by propagation),
    as torchtitan's load_balance_coeff. Errors: no optimizer, no router with a score bias, a
    trainable or non-f32 bias.
  }];
}

def ScApplyPlan : Pass<"sc-apply-plan", "mlir::ModuleOp"> {
  let summary = "seeds shardings from the mesh and tensor-parallel styles recorded on the module";
  let description = [{
    Reads `sc.mesh` (axes outermost first) and `sc.tp_styles` (module path -> style, as
    resolved from the plan by `shardc compile --plan`) and seeds, as DTensor's
    parallelize_module would: colwise linears shard the weight's output features (and the
    bias) over `tp`, rowwise linears the input features; graph inputs are split on the batch
    dim over the data-parallel axes (dp_replicate, dp_shard). Refuses, with an error at the
    op, attention whose query or kv heads do not divide `tp` and features that do not
    divide. colwise_rep and rowwise_rep shard like colwise/rowwise and make the module's
    output Replicate; packed_colwise turns a fused projection followed by an even split into
    one colwise linear per part; embedding_rowwise splits an embedding table's rows (the
    vocabulary) over `tp`. Where the plan fixes an activation's layout (colwise_rep outputs,
    sequence parallelism, the context-parallel split, a packed part's share) it writes an
    sc.sharding_constraint; it inserts no collective (sc-insert-reshards does).
  }];
}

def ScMixedPrecision : Pass<"sc-mixed-precision", "mlir::ModuleOp"> {
  let summary = "casts per the plan's mp_policy (FSDP2 MixedPrecisionPolicy semantics)";
  let description = [{
    Reads `sc.mp_policy = {param_dtype, output_dtype}` (bf16 | fp16 | fp32). Parameters
    are cast to param_dtype right after they are bound (so the FSDP all-gather moves
    param_dtype bytes), f32 inputs are cast on entry, every floating-point activation is
    computed in param_dtype and the graph outputs are cast to output_dtype. Kernels keep
    norm statistics, softmax and rotary arithmetic in f32, and rotary cos/sin tables stay
    f32 (as autocast does). Does nothing when param_dtype is fp32.

    A `mode: train` program (`sc.train`) is cast before sc-autodiff (option `train`): the
    backward inherits the forward's dtypes, and each parameter's cast differentiates into a
    cast of its gradient back to f32, so gradients are reduced in f32 (reduce_dtype: fp32;
    another reduce_dtype is refused) and the optimizer updates f32 parameters. An inference
    program is cast after sc-group-layers (the default, `train=false`); each invocation
    leaves the other kind of program alone.
  }];
  let options = [Option<"train", "train", "bool", "false",
                        "cast a `mode: train` program (before sc-autodiff) instead of an inference one">];
}

def ScPropagateSharding : Pass<"sc-propagate-sharding", "mlir::ModuleOp"> {
  let summary = "gives every value a sharding from the seeds, through each op's sharding rule";
  let description = [{
    A whole-function fixpoint over each op's ShardingRuleOpInterface rule. Values carry
    the priority of their seed (plan > batch > derived); an op's factors take the axes of
    its operands and results in that order, forward sweeps project them onto results (a
    sharded reduction factor makes the result Partial), backward sweeps refine a value only
    this op reads when its producer can compute that sharding. At the fixpoint each op
    records, as `sc.operand_shardings`, the sharding each operand must have. Partial values
    flow only where the rule allows (add(Partial, Partial), mul by a replicated value, data
    movement). Option `explain` emits a remark per sharded op saying why.
  }];
  let options = [Option<"explain", "explain", "bool", "false", "emit a remark per sharded op">];
}

def ScInsertReshards : Pass<"sc-insert-reshards", "mlir::ModuleOp"> {
  let summary = "inserts the collectives that turn each value's sharding into what its users need";
  let description = [{
    Partial -> Replicate: all_reduce; Partial -> Shard(d) on the same axes: reduce_scatter;
    Shard(a) -> Shard(b) on the same axes: all_to_all; Shard -> Replicate: all_gather;
    Replicate -> Shard: shard_slice (local). Function results are made replicated.
  }];
}

def ScPartition : Pass<"sc-partition", "mlir::ModuleOp"> {
  let summary = "rewrites the global program into the per-rank SPMD program (local shapes)";
  let description = [{
    Every value's type becomes its local shape under its sharding; parameters and graph
    inputs keep their global shape in `sc.global_shape` so the artifact can bind each rank's
    slice. Refuses dims that do not divide over their axes. The values that depend on the
    rank are computed in the program from `sc.process_index` (this rank's index over mesh
    axes), made once per axes list at the top of the function: each `sc.shard_slice`
    becomes `sc.dynamic_slice` from its chunk's start (`sc.gather` of a constant table of
    the group's starts at the index), and a vocabulary-split `sc.embedding` gets its first
    row the same way (`rows_from`, with `vocab_size`).
  }];
}

def ScBucketFsdpGathers : Pass<"sc-bucket-fsdp-gathers", "mlir::func::FuncOp"> {
  let summary = "merges each FSDP group's parameter all-gathers into one (FSDP2's flat parameter)";
  let description = [{
    On the per-rank program, after sc-partition: the all_gathers sc-insert-reshards issued
    at one point (`sc.fsdp_group`, a decoder layer's parameters) with the same axes and
    dtype become one. Each shard is laid out as one row ([1, n]; a transpose first for a
    shard split on a dim other than 0), the rows are concatenated, one all_gather moves
    them ([G, N]), and each parameter is cut back out (slice, then the inverse layout).
    The layout ops are views, so sc-fuse-elementwise makes the concat one kernel.
  }];
}

def ScMaterializeOutputs : Pass<"sc-materialize-outputs", "mlir::func::FuncOp"> {
  let summary = "copies each graph output that is a parameter, a constant or an argument (sc.copy)";
  let description = [{
    The runtime reads a run's outputs from the arena, so a function result whose buffer is a
    weight (sc.param), a constant or a function argument (also through sc.layer results)
    becomes an sc.copy of it, placed before the return in output order and located at
    `output <name>` (the result's sc.name, else `output<i>`); its step is `copy`. Other
    results are left as they are. Runs once after the program is final (the compile
    pipeline's last passes: this, sc-hoist-load-steps, sc-plan-memory).
  }];
}

def ScHoistLoadSteps : Pass<"sc-hoist-load-steps", "mlir::func::FuncOp"> {
  let summary = "marks the steps computed from weights and constants alone as load steps (sc.at_load)";
  let description = [{
    In the emitter's step order (program order, sc.layer bodies inline, sc.fused as one
    step), a step op gets the unit attribute `sc.at_load` when every operand is a
    parameter, a constant or a result of an op already marked (through sc.layer results),
    or, with no operands, when it is a load-time source (the Sc_LoadTimeSource trait: its
    value depends on the rank alone). Steps that communicate between ranks (the collective
    table's `communicatesBetweenRanks`: an FSDP all-gather moves the cast shard in every
    run) and steps writing a function result stay in the run. The runtime runs marked steps
    once when it loads the artifact, into a persistent block (mixed-precision casts of
    parameters, packed views, slices of constant tables). Earlier marks are recomputed.
  }];
}

def ScPlanMemory : Pass<"sc-plan-memory", "mlir::ModuleOp"> {
  let summary = "assigns every step result an arena or persistent offset (the artifact's memory plan)";
  let description = [{
    On the final per-rank program (one function): buffer lifetimes are step indices in the
    emitter's order, load steps and output copies included (a value lives from its defining
    step to its last reader; function arguments from before the first step; graph outputs
    to the end; an sc.layer's result is the buffer its body yields). Arena buffers are
    placed largest first in the best-fitting 64-byte-aligned gap among those live at the
    same time (compiler/lib/Artifact/MemoryPlan.cpp); results of `sc.at_load` ops are laid
    out one after another in a persistent block. Records `sc.arena_offsets` or
    `sc.persistent_offsets` on each step op (one per result), `sc.arena_offset` on each
    function argument, and `sc.arena_bytes`, `sc.naive_arena_bytes` and
    `sc.persistent_bytes` on the module; the artifact emitter reads them. Refuses a graph
    output that is a parameter, a constant, an argument or a load-time result (run
    sc-materialize-outputs and sc-hoist-load-steps in that order first).
  }];
}

#endif // SHARDC_PASSES
