#!/usr/bin/env python3
"""Tiny mixture-of-experts exports for shardc's MoE tests, and PyTorch's logits for them.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/moe/export_models.py
(torch 2.15.0, transformers 5.25.0 when the committed files were made; add model names to
redo only those). The tests never run it.

Each model is exported with torch.onnx.export(..., dynamo=True) from a wrapper returning the
logits, with random weights (0.02 * randn added to every parameter, distinct values everywhere),
the experts in transformers' "batched_mm" implementation (the default grouped_mm does not export):
every token gathers its k experts' stacked weights with GatherND and runs a batched MatMul.
  - mixtral_moe.onnx: MixtralForCausalLM, softmax router, top-2 of 4 experts, renormalised.
  - qwen2_moe.onnx: Qwen2MoeForCausalLM, softmax top-2 of 8 experts (not renormalised), a
    shared expert gated by sigmoid(linear).
  - deepseek_v3_moe.onnx: transformers' DeepSeek-V3 MoE block (DeepseekV3MoE: DeepseekV3TopkRouter
    with sigmoid routing, e_score_correction_bias used only to choose, 2 groups of 4 experts with
    the top-1 group, renormalised (+1e-20), routed_scaling_factor 2.5; one shared expert) in layer
    1, layer 0 dense (first_k_dense_replace 1), inside a Mixtral decoder (GQA attention): DeepSeek's
    own MLA attention exports slice_scatter as ScatterND, which shardc does not import yet.
  - mixtral_moe_skew.onnx: mixtral_moe with a constant channel 0 in every token embedding and
    router row 0 reading it, so every token picks expert 0 (and one other).
  - mixtral_moe_geglu.onnx: mixtral_moe with GeGLU experts (hidden_act "gelu_pytorch_tanh":
    gelu_tanh(gate) * up), which transformers' experts honour.
  - mixtral_moe_b4.onnx, qwen2_moe_b4.onnx: mixtral_moe and qwen2_moe (the same weights) with a
    batch of 4, for expert parallelism over dp_shard = 4 (the batch splits over the data-parallel
    ranks).
All: hidden 64, 2 layers, vocab 128, k = 2, input_ids int64 [2, 16] ([4, 16] for the _b4 ones).
references.npz holds, per model, `<name>.input_ids` and `<name>.logits` (PyTorch, fp32).
"""
import collections
import os
import sys

import numpy as np
import onnx
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
B, S, VOCAB, HIDDEN = 2, 16, 128, 64


def base_name(name):
    return name[:-3] if name.endswith("_b4") else name


def config(name):
    name = base_name(name)
    common = dict(vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=64, use_cache=False,
                  tie_word_embeddings=False, num_experts_per_tok=2)
    if name == "mixtral_moe_geglu":
        return transformers.MixtralForCausalLM, transformers.MixtralConfig(
            intermediate_size=96, num_local_experts=4, hidden_act="gelu_pytorch_tanh", **common)
    if name.startswith("mixtral"):
        return transformers.MixtralForCausalLM, transformers.MixtralConfig(
            intermediate_size=96, num_local_experts=4, **common)
    if name == "qwen2_moe":
        return transformers.Qwen2MoeForCausalLM, transformers.Qwen2MoeConfig(
            intermediate_size=96, moe_intermediate_size=48, shared_expert_intermediate_size=80,
            num_experts=8, norm_topk_prob=False, decoder_sparse_step=1, mlp_only_layers=[], **common)
    assert name == "deepseek_v3_moe", name
    return transformers.MixtralForCausalLM, transformers.MixtralConfig(
        intermediate_size=96, num_local_experts=4, **common)


def deepseek_v3_config():
    return transformers.DeepseekV3Config(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=96, moe_intermediate_size=32, n_routed_experts=8, n_shared_experts=1,
        n_group=2, topk_group=1, num_experts_per_tok=2, norm_topk_prob=True,
        routed_scaling_factor=2.5, first_k_dense_replace=1, use_cache=False)


class Wrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids, use_cache=False).logits


def build(name, seed):
    cls, cfg = config(name)
    cfg.experts_implementation = "batched_mm"
    torch.manual_seed(seed)
    m = cls(cfg).eval()
    if name == "deepseek_v3_moe":
        from transformers.models.deepseek_v3 import modeling_deepseek_v3 as ds
        dcfg = deepseek_v3_config()
        dcfg._experts_implementation = "batched_mm"
        m.model.layers[0].mlp = ds.DeepseekV3MLP(dcfg)
        m.model.layers[1].mlp = ds.DeepseekV3MoE(dcfg)
        # The modules made here skip transformers' weight init: their expert stacks are
        # torch.empty (uninitialised memory, NaN at times). Initialise them as _init_weights would.
        init_gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for layer in m.model.layers:
                for prm in layer.mlp.parameters():
                    prm.copy_(0.02 * torch.randn(prm.shape, generator=init_gen))
        m.eval()
    m.set_experts_implementation("batched_mm")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for prm in m.parameters():
            prm.add_(0.02 * torch.randn(prm.shape, generator=gen))
        for mod in m.modules():
            # DeepSeek's score bias is a buffer (zero at init): make it matter for the choice.
            if hasattr(mod, "e_score_correction_bias"):
                mod.e_score_correction_bias.copy_(0.05 * torch.randn(mod.e_score_correction_bias.shape,
                                                                     generator=gen))
        if name.endswith("_skew"):
            # Every token chooses expert 0: channel 0 of every embedding is 1 (the others are
            # ~0.03), so after each RMSNorm it dominates, and router row 0 reads it.
            m.model.embed_tokens.weight[:, 0] = 1.0
            for layer in m.model.layers:
                layer.mlp.gate.weight[0, 0] = 1.0
    return Wrap(m)


NAMES = ["mixtral_moe", "qwen2_moe", "deepseek_v3_moe", "mixtral_moe_skew", "mixtral_moe_geglu", "mixtral_moe_b4",
         "qwen2_moe_b4"]


def main():
    only = sys.argv[1:] or NAMES
    refs = {}
    refs_path = os.path.join(HERE, "references.npz")
    if os.path.exists(refs_path):
        refs = dict(np.load(refs_path))
    for i, name in enumerate(NAMES):
        if name not in only:
            continue
        ids_gen = torch.Generator().manual_seed(1 + i)
        base = base_name(name)
        w = build(base, seed=10 + (NAMES.index(base) if not base.endswith("_skew") else 0))
        ids = torch.randint(0, VOCAB, (4 if name.endswith("_b4") else B, S), generator=ids_gen)
        with torch.no_grad():
            logits = w(ids).float().numpy()
        path = os.path.join(HERE, name + ".onnx")
        prog = torch.onnx.export(w, (ids,), dynamo=True, input_names=["input_ids"],
                                 output_names=["logits"], external_data=False)
        prog.save(path)
        g = onnx.load(path).graph
        print(f"{path}: {os.path.getsize(path)} bytes", dict(collections.Counter(n.op_type for n in g.node)))
        refs[name + ".input_ids"] = ids.numpy()
        refs[name + ".logits"] = logits
        if name.endswith("_skew"):
            # Which experts the layers' routers pick, for the record.
            counts = []
            with torch.no_grad():
                hs = []
                hooks = [l.mlp.gate.register_forward_hook(lambda mod, a, o: hs.append(o[2]))
                         for l in w.m.model.layers]
                w(ids)
                for h in hooks:
                    h.remove()
            for idx in hs:
                counts.append(np.bincount(idx.flatten().numpy(), minlength=4))
            refs[name + ".expert_counts"] = np.stack(counts)
            print("skew: tokens per expert per layer", np.stack(counts).tolist())
    np.savez(refs_path, **refs)


if __name__ == "__main__":
    main()
