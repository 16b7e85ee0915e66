#!/usr/bin/env python3
"""Tiny exports of architectures whose attention/MLP projections are fused or laid out
differently, for the structural `tp_plan: auto` (docs/plan.md).

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/breadth/export_models.py --out test/breadth/models
(torch 2.15.0, transformers 5.25.0, onnxscript 0.7.2 when the committed files were made). The
test command never runs this; the e2e.breadth.* tests (test/e2e/breadth.cmake: unsharded,
tp2 fp32 / fp32-sp / bf16, tp2_dp_shard2 fp32 / bf16) read the committed files with the repo's venv.
Gemma, the seventh decoder of those tests, is test/training/export_gemma_tiny.py's export.

Each model: hidden 64, 2 layers, 4 heads, vocab 128, random weights (seed 0, then 0.02·N(0,1)
added everywhere so no value is a default), exported with torch.onnx.export(..., dynamo=True)
at input_ids int64 [2, 16], a wrapper module `m` returning the logits. <name>.io.npz beside it
holds input_ids and PyTorch's logits (fp32) as <name>__input_ids, <name>__logits.
  - phi3_tiny:    Phi3ForCausalLM: fused qkv_proj (sliced into q, k, v), fused gate_up_proj
                  (chunked into gate and up), GQA (4 heads, 2 kv heads), RMSNorm, RoPE.
  - gptneox_tiny: GPTNeoXForCausalLM: parallel residual, fused query_key_value with q, k, v
                  interleaved per head, partial rotary (rotary_pct 0.25), LayerNorm, GELU MLP.
  - falcon_tiny:  FalconForCausalLM (new_decoder_architecture false, multi_query): one kv head
                  fused after the query heads, parallel attention, LayerNorm, GELU MLP.
  - qwen3_tiny:   Qwen3ForCausalLM: q_norm and k_norm per head (RMSNorm over head_dim), GQA.
  - olmo2_tiny:   Olmo2ForCausalLM: q_norm and k_norm over the whole projection (RMSNorm over
                  heads·head_dim), norms after attention and MLP (post-norm residual).
  - opt_tiny:     OPTForCausalLM: separate q/k/v/out_proj with biases, ReLU MLP (fc1, fc2,
                  ffn_dim 128), learned positions (OPT's offset of 2 on a cumsum of the
                  all-ones mask: the exporter folds the lookup into a constant [2, 16, 64]
                  `embedding_1` added to the token embeddings, sliced by batch under
                  dp_shard), pre-LayerNorm (do_layer_norm_before), a final LayerNorm,
                  tied lm_head (the token Gather reads m.lm_head.weight).
"""
import argparse
import os
import sys

import numpy as np
import torch
import transformers

VOCAB, B, S = 128, 2, 16
MODELS = ["phi3_tiny", "gptneox_tiny", "falcon_tiny", "qwen3_tiny", "olmo2_tiny", "opt_tiny"]


def config(name):
    common = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  use_cache=False, tie_word_embeddings=False, max_position_embeddings=64)
    if name == "phi3_tiny":
        return transformers.Phi3ForCausalLM, transformers.Phi3Config(
            intermediate_size=128, num_key_value_heads=2, pad_token_id=0, bos_token_id=1,
            eos_token_id=2, **common)
    if name == "gptneox_tiny":
        return transformers.GPTNeoXForCausalLM, transformers.GPTNeoXConfig(
            intermediate_size=128, rotary_pct=0.25, use_parallel_residual=True, **common)
    if name == "falcon_tiny":
        c = dict(common)
        c["num_hidden_layers"] = 2
        return transformers.FalconForCausalLM, transformers.FalconConfig(
            new_decoder_architecture=False, multi_query=True, parallel_attn=True, bias=False,
            alibi=False, **c)
    if name == "qwen3_tiny":
        return transformers.Qwen3ForCausalLM, transformers.Qwen3Config(
            intermediate_size=128, num_key_value_heads=2, head_dim=16, **common)
    if name == "olmo2_tiny":
        return transformers.Olmo2ForCausalLM, transformers.Olmo2Config(
            intermediate_size=128, num_key_value_heads=4, pad_token_id=0, bos_token_id=1, eos_token_id=2,
            **common)
    if name == "opt_tiny":
        c = dict(common, tie_word_embeddings=True)
        return transformers.OPTForCausalLM, transformers.OPTConfig(
            ffn_dim=128, word_embed_proj_dim=64, do_layer_norm_before=True, activation_function="relu",
            enable_bias=True, dropout=0.0, attention_dropout=0.0, pad_token_id=1, bos_token_id=2,
            eos_token_id=2, **c)
    raise SystemExit(f"unknown model {name}")


class Wrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids).logits


def export(name, out):
    torch.manual_seed(0)
    cls, cfg = config(name)
    m = Wrap(cls(cfg)).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    ids = torch.randint(0, VOCAB, (B, S), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(ids).float().numpy()
    path = os.path.join(out, name + ".onnx")
    prog = torch.onnx.export(m, (ids,), dynamo=True, input_names=["input_ids"], output_names=["logits"],
                             external_data=False)
    prog.save(path)
    # The keys tools/shardc_verify.py --reference reads: <model>__<input>, <model>__<output>.
    np.savez(os.path.join(out, name + ".io.npz"), **{name + "__input_ids": ids.numpy(), name + "__logits": ref})
    print(f"exported {path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--model", action="append", help="default: all")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in args.model or MODELS:
        try:
            export(name, args.out)
        except Exception as e:  # noqa: BLE001  (report every model, then fail)
            print(f"{name}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
