#!/usr/bin/env python3
# Writes small transformer ONNX models shaped the way PyTorch 2.11's dynamo exporter writes them
# (opset 20, IR 10, decomposed attention, module paths in node metadata_props) for shardc's e2e tests.
"""Synthetic exporter-style models for shardc's end-to-end tests.

No torch here, so the graphs are written with onnx.helper, imitating what
`torch.onnx.export(..., dynamo=True)` produces for Hugging Face classes (studied on
/work/shared/models/llama_tiny.onnx and qwen2_tiny.onnx):

* Linear -> MatMul with an anonymous, already-transposed initializer `val_N` (value_info
  metadata `pkg.onnxscript.optimizer.folded_from` names the parameter), bias -> Add.
* SDPA -> Q and K each scaled by d^-0.25, K transposed through Reshape/Transpose/Reshape,
  additive mask, Softmax, IsNaN/Where guard, MatMul with V.
* Every node carries `namespace`, `pkg.torch.onnx.name_scopes`,
  `pkg.torch.onnx.class_hierarchy` (and `pkg.torch.onnx.fx_node`) giving its module path.
* The graph's metadata_props key `pkg.torch.export.ExportedProgram.graph_signature` lists every
  parameter (`p_model_norm_weight: PARAMETER target='model.norm.weight'`), the folded Linear
  weights and both names of a tied weight included, then the buffers, user inputs and outputs:
  the importer learns from it which folds (`val_N`) are trainable parameters.

The graph builder and the building blocks are in export_graph.py; this file holds the model
zoo, the three families and the writing.

Usage:
  gen_models.py --out DIR [--family F] [--list]
  gen_models.py --out DIR --family llama --layers 32 --hidden 1024 --external-data   # bench model
"""
import argparse
import math
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_graph import (F32_MIN, IR_VERSION, OPSET, ExportGraph, Weights,  # noqa: E402,F401
                          apply_rotary, causal_mask, conv1d, erf_gelu, layer_norm, linear,
                          linear_gemm, merge_heads, rms_norm, root_scopes, rotary_tables, sdpa,
                          split_heads, tanh_gelu)

# ---------------------------------------------------------------------------------------------
# Model zoo. Kept small (hidden <= 256, <= 4 layers) so the whole e2e suite runs in seconds on
# CPU; sizes vary head counts, non-power-of-two widths, GQA ratios and batch sizes on purpose.
# ---------------------------------------------------------------------------------------------
LLAMA_HF = "transformers.models.llama.modeling_llama"
MISTRAL_HF = "transformers.models.mistral.modeling_mistral"
QWEN2_HF = "transformers.models.qwen2.modeling_qwen2"

MODELS = {
    # Llama / Mistral / Qwen2 decoders: RMSNorm, rotary, SiLU MLP, causal mask, GQA.
    "llama_s": dict(family="llama", vocab=256, hidden=64, layers=2, heads=4, kv_heads=2,
                    intermediate=128, batch=2, seq=16),
    "llama_m": dict(family="llama", vocab=512, hidden=128, layers=3, heads=8, kv_heads=2,
                    intermediate=352, batch=2, seq=32),
    # llama_tiny's configuration: check_models.py compares its structure with the real export.
    "llama_l": dict(family="llama", vocab=512, hidden=256, layers=4, heads=8, kv_heads=4,
                    intermediate=512, batch=2, seq=64),
    # kv_heads == heads: the exporter then writes no Unsqueeze/Expand for repeat_kv.
    "llama_mha": dict(family="llama", vocab=256, hidden=128, layers=2, heads=4, kv_heads=4,
                      intermediate=256, batch=2, seq=16),
    # Batch variants for data-parallel tests.
    "llama_s_b4": dict(family="llama", vocab=256, hidden=64, layers=2, heads=4, kv_heads=2,
                       intermediate=128, batch=4, seq=16),
    "llama_s_b8": dict(family="llama", vocab=256, hidden=64, layers=2, heads=4, kv_heads=2,
                       intermediate=128, batch=8, seq=16),
    # Uneven shards (torch.chunk style, padded): vocabulary 251 over tp 2 or dp_shard 4, MLP
    # width 90 over dp_shard 4.
    "llama_odd_b4": dict(family="llama", vocab=251, hidden=64, layers=2, heads=4, kv_heads=2,
                         intermediate=90, batch=4, seq=16),
    # A sequence long enough (192) that the folded causal mask [2, 1, 192, 192] is stored as
    # an initializer rather than a constant: sc-raise-attention reads it to find it causal.
    "llama_s_long": dict(family="llama", vocab=256, hidden=64, layers=2, heads=4, kv_heads=2,
                         intermediate=128, batch=2, seq=192),
    # Weights in one external file next to the .onnx (onnx.save save_as_external_data).
    "llama_s_ext": dict(family="llama", vocab=256, hidden=64, layers=2, heads=4, kv_heads=2,
                        intermediate=128, batch=2, seq=16, external_data=True),
    # Mistral: explicit head_dim, so q_proj's width (heads*head_dim=128) differs from hidden (96).
    "mistral_s": dict(family="llama", variant="mistral", vocab=384, hidden=96, layers=2, heads=4,
                      kv_heads=2, head_dim=32, intermediate=256, batch=2, seq=16,
                      rope_theta=1e6, rms_eps=1e-5),
    # Qwen2: q/k/v biases and tied embeddings (Gather and Transpose+MatMul share one weight).
    "qwen2_s": dict(family="llama", variant="qwen2", vocab=256, hidden=64, layers=2, heads=4,
                    kv_heads=1, intermediate=160, batch=2, seq=16, rope_theta=1e6),

    # GPT-2: Conv1D (Gemm or MatMul+Add), fused QKV Split, LayerNorm, tanh-GELU, learned
    # positions, tied lm_head.
    "gpt2_s": dict(family="gpt2", vocab=256, hidden=64, layers=2, heads=4, batch=2, seq=16,
                   conv1d="gemm"),
    "gpt2_m": dict(family="gpt2", vocab=512, hidden=128, layers=3, heads=4, batch=2, seq=32,
                   conv1d="matmul"),
    "gpt2_l": dict(family="gpt2", vocab=512, hidden=256, layers=2, heads=8, batch=2, seq=64,
                   conv1d="gemm"),
    "gpt2_s_b4": dict(family="gpt2", vocab=256, hidden=64, layers=2, heads=4, batch=4, seq=16,
                      conv1d="gemm"),
    "gpt2_s_b8": dict(family="gpt2", vocab=256, hidden=64, layers=2, heads=4, batch=8, seq=16,
                      conv1d="matmul"),

    # BERT encoder: biases everywhere, erf-GELU, LayerNorm, padding mask from attention_mask.
    "bert_s": dict(family="bert", vocab=256, hidden=64, layers=2, heads=4, intermediate=256,
                   batch=2, seq=16),
    "bert_m": dict(family="bert", vocab=512, hidden=128, layers=2, heads=4, intermediate=512,
                   batch=4, seq=32),
    "bert_l": dict(family="bert", vocab=512, hidden=256, layers=2, heads=4, intermediate=1024,
                   batch=2, seq=64),
    # Linear as Reshape -> Gemm(transB=1) on the named [out, in] weight -> Reshape, the way the
    # TorchScript exporter writes nn.Linear.
    "bert_s_gemm": dict(family="bert", vocab=256, hidden=64, layers=2, heads=4, intermediate=256,
                        batch=2, seq=16, linear="gemm"),
}

FAMILIES = ("llama", "gpt2", "bert")


# ---------------------------------------------------------------------------------------------
# Families.
# ---------------------------------------------------------------------------------------------
def build_llama(cfg, weights, wrap=False):
    variant = cfg.get("variant", "llama")
    hf, prefix = {"llama": (LLAMA_HF, "Llama"), "mistral": (MISTRAL_HF, "Mistral"),
                  "qwen2": (QWEN2_HF, "Qwen2")}[variant]
    B, S, V, H = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["hidden"]
    nh, nkv, inter = cfg["heads"], cfg["kv_heads"], cfg["intermediate"]
    d = cfg.get("head_dim", H // nh)
    rep = nh // nkv
    eps = cfg.get("rms_eps", 1e-6)
    qkv_bias = variant == "qwen2"
    tied = cfg.get("tied", variant == "qwen2")
    assert nh % nkv == 0 and d % 2 == 0

    scopes, pre = root_scopes(f"{hf}.{prefix}ForCausalLM", wrap)
    g = ExportGraph(scopes, pre)
    w = weights
    ids = g.add_input("input_ids", TensorProto.INT64, [B, S])
    cos_np, sin_np = rotary_tables(d, S, cfg.get("rope_theta", 10000.0))
    rope_src = ["_to_copy", "arange", "cat_1", "expand_2", "matmul", "transpose", "unsqueeze",
                g.path("model.rotary_emb.inv_freq")]

    # A tied model keeps the weight under lm_head's name (as the Qwen2 export does); the
    # signature names it twice, embed_tokens first.
    embed_rel = "lm_head.weight" if tied else "model.embed_tokens.weight"
    if tied:
        g.declare(g.path("model.embed_tokens.weight"))
    embed = g.param(embed_rel, w.embedding(g.path(embed_rel), V, H))
    with g.module("model", f"{hf}.{prefix}Model"):
        with g.module("model.embed_tokens", "torch.nn.modules.sparse.Embedding"):
            fx = g.fx("embedding")
            x = g.op("Gather", [embed, ids], fx, "aten.embedding.default", axis=0)
        for i in range(cfg["layers"]):
            L = f"model.layers.{i}"
            with g.module(L, f"{hf}.{prefix}DecoderLayer"):
                h = rms_norm(g, w, x, f"{L}.input_layernorm", f"{hf}.{prefix}RMSNorm", H, eps)
                A = f"{L}.self_attn"
                with g.module(A, f"{hf}.{prefix}Attention"):
                    q = linear(g, w, h, f"{A}.q_proj", nh * d, H, bias=qkv_bias)
                    q = split_heads(g, q, B, S, d)
                    k = linear(g, w, h, f"{A}.k_proj", nkv * d, H, bias=qkv_bias)
                    k = split_heads(g, k, B, S, d)
                    v = linear(g, w, h, f"{A}.v_proj", nkv * d, H, bias=qkv_bias)
                    v = split_heads(g, v, B, S, d)
                    cos = g.folded(cos_np, rope_src + ["cos"], name=g.fx("unsqueeze"))
                    sin = g.folded(sin_np, rope_src + ["sin"], name=g.fx("unsqueeze"))
                    q = apply_rotary(g, q, cos, sin, d)
                    k = apply_rotary(g, k, cos, sin, d)
                    if rep > 1:
                        # repeat_kv: [B, kv, S, d] -> [B, kv, rep, S, d] -> [B, heads, S, d];
                        # the optimizer merged K's final view into SDPA's first Reshape.
                        fx = g.fx("unsqueeze")
                        ku = g.op("Unsqueeze", [k, g.i64([2])], fx, "aten.unsqueeze.default")
                        fx = g.fx("expand")
                        k = g.op("Expand", [ku, g.i64([B, nkv, rep, S, d])], fx,
                                 "aten.expand.default")
                        fx = g.fx("unsqueeze")
                        vu = g.op("Unsqueeze", [v, g.i64([2])], fx, "aten.unsqueeze.default")
                        fx = g.fx("expand")
                        ve = g.op("Expand", [vu, g.i64([B, nkv, rep, S, d])], fx,
                                  "aten.expand.default")
                        fx = g.fx("_unsafe_view")
                        v = g.op("Reshape", [ve, g.i64([B, nh, S, d])], fx,
                                 "aten._unsafe_view.default", allowzero=1)
                    o = sdpa(g, q, k, v, causal_mask(g, B, S), B, nh, S, d)
                    o = merge_heads(g, o, B, S)
                    o = linear(g, w, o, f"{A}.o_proj", H, nh * d)
                fx = g.fx("add")
                x = g.op("Add", [x, o], fx, "aten.add.Tensor")
                h = rms_norm(g, w, x, f"{L}.post_attention_layernorm",
                             f"{hf}.{prefix}RMSNorm", H, eps)
                M = f"{L}.mlp"
                with g.module(M, f"{hf}.{prefix}MLP"):
                    gate = linear(g, w, h, f"{M}.gate_proj", inter, H)
                    with g.module(f"{M}.act_fn", "transformers.activations.SiLUActivation"):
                        fx = g.fx("silu")
                        sg = g.op("Sigmoid", [gate], fx, "aten.silu.default", final=False)
                        act = g.op("Mul", [gate, sg], fx, "aten.silu.default")
                    up = linear(g, w, h, f"{M}.up_proj", inter, H)
                    fx = g.fx("mul")
                    m = g.op("Mul", [act, up], fx, "aten.mul.Tensor")
                    m = linear(g, w, m, f"{M}.down_proj", H, inter)
                fx = g.fx("add")
                x = g.op("Add", [x, m], fx, "aten.add.Tensor")
        x = rms_norm(g, w, x, "model.norm", f"{hf}.{prefix}RMSNorm", H, eps)
    for buf in ("inv_freq", "original_inv_freq"):
        g.declare(g.path(f"model.rotary_emb.{buf}"), "BUFFER")
    if tied:
        with g.module("lm_head", "torch.nn.modules.linear.Linear"):
            fx = g.fx("linear")
            wt = g.op("Transpose", [embed], fx, "aten.linear.default", final=False, perm=[1, 0])
            y = g.op("MatMul", [x, wt], fx, "aten.linear.default")
    else:
        y = linear(g, w, x, "lm_head", V, H)
    g.set_output(y, "output", TensorProto.FLOAT, [B, S, V])
    return g


def build_gpt2(cfg, weights, wrap=False):
    hf = "transformers.models.gpt2.modeling_gpt2"
    B, S, V, H, nh = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["hidden"], cfg["heads"]
    d = H // nh
    inter = cfg.get("intermediate", 4 * H)
    eps = 1e-5
    style = cfg.get("conv1d", "gemm")
    scopes, pre = root_scopes(f"{hf}.GPT2LMHeadModel", wrap)
    g = ExportGraph(scopes, pre)
    w = weights
    ids = g.add_input("input_ids", TensorProto.INT64, [B, S])
    wte = g.param("transformer.wte.weight", w.embedding(g.path("transformer.wte.weight"), V, H))
    # Positions are arange(S) folded to a constant; the table stays a Gather (learned).
    wpe_rows = max(S, cfg.get("positions", 2 * S))
    with g.module("transformer", f"{hf}.GPT2Model"):
        with g.module("transformer.wte", "torch.nn.modules.sparse.Embedding"):
            fx = g.fx("embedding")
            tok = g.op("Gather", [wte, ids], fx, "aten.embedding.default", axis=0)
        pos_ids = g.folded(np.arange(S, dtype=np.int64)[None, :], ["arange", "unsqueeze"])
        with g.module("transformer.wpe", "torch.nn.modules.sparse.Embedding"):
            wpe = g.param("transformer.wpe.weight",
                          w.embedding(g.path("transformer.wpe.weight"), wpe_rows, H))
            fx = g.fx("embedding")
            pos = g.op("Gather", [wpe, pos_ids], fx, "aten.embedding.default", axis=0)
        fx = g.fx("add")
        x = g.op("Add", [tok, pos], fx, "aten.add.Tensor")
        for i in range(cfg["layers"]):
            L = f"transformer.h.{i}"
            with g.module(L, f"{hf}.GPT2Block"):
                h = layer_norm(g, w, x, f"{L}.ln_1", H, eps)
                A = f"{L}.attn"
                with g.module(A, f"{hf}.GPT2Attention"):
                    qkv = conv1d(g, w, h, f"{A}.c_attn", 3 * H, H, (B, S), style)
                    fx = g.fx("split")
                    outs = [g.fx("getitem") for _ in range(3)]
                    q, k, v = g.op("Split", [qkv, g.i64([H, H, H])], fx, "aten.split.Tensor",
                                   outputs=outs, axis=2)
                    q = split_heads(g, q, B, S, d)
                    k = split_heads(g, k, B, S, d)
                    v = split_heads(g, v, B, S, d)
                    o = sdpa(g, q, k, v, causal_mask(g, B, S), B, nh, S, d)
                    o = merge_heads(g, o, B, S)
                    o = conv1d(g, w, o, f"{A}.c_proj", H, H, (B, S), style)
                fx = g.fx("add")
                x = g.op("Add", [o, x], fx, "aten.add.Tensor")
                h = layer_norm(g, w, x, f"{L}.ln_2", H, eps)
                M = f"{L}.mlp"
                with g.module(M, f"{hf}.GPT2MLP"):
                    f = conv1d(g, w, h, f"{M}.c_fc", inter, H, (B, S), style)
                    with g.module(f"{M}.act", "transformers.activations.NewGELUActivation"):
                        f = tanh_gelu(g, f)
                    f = conv1d(g, w, f, f"{M}.c_proj", H, inter, (B, S), style)
                fx = g.fx("add")
                x = g.op("Add", [x, f], fx, "aten.add.Tensor")
        x = layer_norm(g, w, x, "transformer.ln_f", H, eps)
    g.declare(g.path("lm_head.weight"))  # tied: wte's second name
    with g.module("lm_head", "torch.nn.modules.linear.Linear"):
        # Tied: the very initializer the Gather reads, transposed in the graph.
        fx = g.fx("linear")
        wt = g.op("Transpose", [wte], fx, "aten.linear.default", final=False, perm=[1, 0])
        y = g.op("MatMul", [x, wt], fx, "aten.linear.default")
    g.set_output(y, "output", TensorProto.FLOAT, [B, S, V])
    return g


def build_bert(cfg, weights, wrap=False):
    hf = "transformers.models.bert.modeling_bert"
    B, S, V, H, nh = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["hidden"], cfg["heads"]
    d = H // nh
    inter = cfg["intermediate"]
    eps = 1e-12
    gemm = cfg.get("linear", "matmul") == "gemm"
    scopes, pre = root_scopes(f"{hf}.BertModel", wrap)
    g = ExportGraph(scopes, pre)
    w = weights

    def dense(x, rel, out_f, in_f):
        if gemm:
            return linear_gemm(g, w, x, rel, out_f, in_f, (B, S))
        return linear(g, w, x, rel, out_f, in_f, bias=True)

    ids = g.add_input("input_ids", TensorProto.INT64, [B, S])
    am = g.add_input("attention_mask", TensorProto.INT64, [B, S])
    E = "embeddings"
    with g.module(E, f"{hf}.BertEmbeddings"):
        with g.module(f"{E}.word_embeddings", "torch.nn.modules.sparse.Embedding"):
            wt = g.param(f"{E}.word_embeddings.weight",
                         w.embedding(g.path(f"{E}.word_embeddings.weight"), V, H))
            fx = g.fx("embedding")
            x = g.op("Gather", [wt, ids], fx, "aten.embedding.default", axis=0)
        # token_type_ids default to the registered zeros buffer, folded to a constant.
        for buf in ("position_ids", "token_type_ids"):
            g.declare(g.path(f"{E}.{buf}"), "BUFFER")
        tt_ids = g.folded(np.zeros((B, S), np.int64), ["expand", "slice", "token_type_ids"])
        with g.module(f"{E}.token_type_embeddings", "torch.nn.modules.sparse.Embedding"):
            tt = g.param(f"{E}.token_type_embeddings.weight",
                         w.embedding(g.path(f"{E}.token_type_embeddings.weight"), 2, H))
            fx = g.fx("embedding")
            t = g.op("Gather", [tt, tt_ids], fx, "aten.embedding.default", axis=0)
        fx = g.fx("add")
        x = g.op("Add", [x, t], fx, "aten.add.Tensor")
        pos_ids = g.folded(np.arange(S, dtype=np.int64)[None, :], ["position_ids", "slice"])
        with g.module(f"{E}.position_embeddings", "torch.nn.modules.sparse.Embedding"):
            pe = g.param(f"{E}.position_embeddings.weight",
                         w.embedding(g.path(f"{E}.position_embeddings.weight"), 2 * S, H))
            fx = g.fx("embedding")
            p = g.op("Gather", [pe, pos_ids], fx, "aten.embedding.default", axis=0)
        fx = g.fx("add")
        x = g.op("Add", [x, p], fx, "aten.add.Tensor")
        x = layer_norm(g, w, x, f"{E}.LayerNorm", H, eps)

    # Extended padding mask: (1 - mask) * finfo.min, [B, 1, 1, S], added to every layer's scores.
    fx = g.fx("_to_copy")
    mf = g.op("Cast", [am], fx, "aten._to_copy.default", to=TensorProto.FLOAT)
    fx = g.fx("rsub")
    inv = g.op("Sub", [g.f32(1.0), mf], fx, "aten.rsub.Scalar")
    fx = g.fx("mul")
    neg = g.op("Mul", [inv, g.f32(F32_MIN)], fx, "aten.mul.Tensor")
    fx = g.fx("unsqueeze")
    mask = g.op("Unsqueeze", [neg, g.i64([1, 2])], fx, "aten.unsqueeze.default")

    with g.module("encoder", f"{hf}.BertEncoder"):
        for i in range(cfg["layers"]):
            L = f"encoder.layer.{i}"
            with g.module(L, f"{hf}.BertLayer"):
                with g.module(f"{L}.attention", f"{hf}.BertAttention"):
                    A = f"{L}.attention.self"
                    with g.module(A, f"{hf}.BertSelfAttention"):
                        q = split_heads(g, dense(x, f"{A}.query", H, H), B, S, d)
                        k = split_heads(g, dense(x, f"{A}.key", H, H), B, S, d)
                        v = split_heads(g, dense(x, f"{A}.value", H, H), B, S, d)
                        o = sdpa(g, q, k, v, mask, B, nh, S, d)
                        o = merge_heads(g, o, B, S)
                    O = f"{L}.attention.output"
                    with g.module(O, f"{hf}.BertSelfOutput"):
                        o = dense(o, f"{O}.dense", H, H)
                        fx = g.fx("add")
                        o = g.op("Add", [o, x], fx, "aten.add.Tensor")
                        x = layer_norm(g, w, o, f"{O}.LayerNorm", H, eps)
                I = f"{L}.intermediate"
                with g.module(I, f"{hf}.BertIntermediate"):
                    f = dense(x, f"{I}.dense", inter, H)
                    with g.module(f"{I}.intermediate_act_fn",
                                  "transformers.activations.GELUActivation"):
                        f = erf_gelu(g, f)
                O = f"{L}.output"
                with g.module(O, f"{hf}.BertOutput"):
                    f = dense(f, f"{O}.dense", H, inter)
                    fx = g.fx("add")
                    f = g.op("Add", [f, x], fx, "aten.add.Tensor")
                    x = layer_norm(g, w, f, f"{O}.LayerNorm", H, eps)
    g.set_output(x, "output", TensorProto.FLOAT, [B, S, H])
    return g


BUILDERS = {"llama": build_llama, "gpt2": build_gpt2, "bert": build_bert}


def build(name, cfg, override=None, wrap=False):
    """The ExportGraph of one model; weights seeded by the model's name."""
    return BUILDERS[cfg["family"]](cfg, Weights(zlib.crc32(name.encode()), override), wrap=wrap)


# ---------------------------------------------------------------------------------------------
# Writing.
# ---------------------------------------------------------------------------------------------
def save(g, path, external_data):
    """Writes the model; with external_data every tensor above 1 KiB goes to one
    `<name>.onnx.data` file beside it. value_info is filled as the exporter does: parameters
    and folded constants first, with their provenance metadata, then every other value."""
    model = g.model()
    path = os.path.abspath(path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if external_data:
        location = os.path.basename(path) + ".data"
        data_path = os.path.join(os.path.dirname(path), location)
        if os.path.exists(data_path):
            os.remove(data_path)  # onnx.save appends to an existing data file
        # Saving first moves the weights out of the proto (raw_data is cleared), so that shape
        # inference, which serialises the model, stays under protobuf's 2 GiB limit.
        onnx.save(model, path, save_as_external_data=True, all_tensors_to_one_file=True,
                  location=location, size_threshold=1024)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    params = []
    for name, elem_type, dims, meta in g.init_value_info:
        vi = helper.make_tensor_value_info(name, elem_type, dims)
        for k, v in meta:
            e = vi.metadata_props.add()
            e.key, e.value = k, v
        params.append(vi)
    inferred = list(model.graph.value_info)
    del model.graph.value_info[:]
    model.graph.value_info.extend(params + inferred)
    onnx.save(model, path)
    onnx.checker.check_model(path, full_check=True)
    return path


def generate(name, cfg, out_dir, override=None, wrap=False):
    return save(build(name, cfg, override, wrap), os.path.join(out_dir, name + ".onnx"),
                cfg.get("external_data", False))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", help="directory to write <model>.onnx files into")
    ap.add_argument("--family", choices=FAMILIES, help="only this family")
    ap.add_argument("--model", action="append", help="only these models (repeatable)")
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    bench = ap.add_argument_group("custom size (writes one model, e.g. the benchmark's)")
    bench.add_argument("--layers", type=int)
    bench.add_argument("--hidden", type=int)
    bench.add_argument("--heads", type=int)
    bench.add_argument("--kv-heads", type=int)
    bench.add_argument("--intermediate", type=int)
    bench.add_argument("--vocab", type=int)
    bench.add_argument("--batch", type=int)
    bench.add_argument("--seq", type=int)
    bench.add_argument("--external-data", action="store_true")
    bench.add_argument("--name", help="model name for a custom size (default derived)")
    args = ap.parse_args(argv)

    custom = any(v is not None for v in (args.layers, args.hidden, args.heads, args.kv_heads,
                                         args.intermediate, args.vocab, args.batch, args.seq))
    if custom:
        if not args.family:
            ap.error("a custom size needs --family")
        cfg = custom_config(args)
        name = args.name or "{}_{}l_{}h".format(args.family, cfg["layers"], cfg["hidden"])
        models = {name: cfg}
    else:
        models = {n: c for n, c in MODELS.items()
                  if (not args.family or c["family"] == args.family)
                  and (not args.model or n in args.model)}
        if args.model and len(models) != len(set(args.model)):
            ap.error("unknown model(s): " + ", ".join(sorted(set(args.model) - set(models))))
        if args.external_data:
            models = {n: dict(c, external_data=True) for n, c in models.items()}
    if args.list:
        for n in models:
            print(n)
        return 0
    if not args.out:
        ap.error("--out is required unless --list")
    for n, c in models.items():
        path = generate(n, c, args.out)
        print(f"wrote {path}")
    return 0


def custom_config(args):
    """Sizes for a one-off model; defaults follow the Llama-2/TinyLlama shape ratios."""
    fam = args.family
    hidden = args.hidden or 256
    heads = args.heads or max(1, hidden // 64)
    cfg = dict(family=fam, hidden=hidden, heads=heads, layers=args.layers or 2,
               vocab=args.vocab or (32000 if hidden >= 1024 else 512),
               batch=args.batch or 2, seq=args.seq or (128 if hidden >= 1024 else 32),
               external_data=args.external_data)
    if fam == "llama":
        cfg["kv_heads"] = args.kv_heads or max(1, heads // 2)
        # 8/3 * hidden rounded up to a multiple of 256, as Llama sizes its MLP.
        cfg["intermediate"] = args.intermediate or int(math.ceil(8 * hidden / 3 / 256) * 256)
    elif fam == "bert":
        cfg["intermediate"] = args.intermediate or 4 * hidden
    else:
        cfg["intermediate"] = args.intermediate or 4 * hidden
        cfg["conv1d"] = "gemm"
    return cfg


if __name__ == "__main__":
    sys.exit(main())
