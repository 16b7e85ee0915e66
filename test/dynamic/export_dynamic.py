#!/usr/bin/env python3
"""Tiny exports with dynamic batch and sequence (torch.export Dim) for `--shapes`
(docs/cli.md): the run-time causal / sliding-window mask and the RoPE positions are computed
from the inputs' shapes in the graph, and fold to constants once the dims are bound.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/dynamic/export_dynamic.py --out test/dynamic/models
(torch 2.15.0, transformers 5.25.0 when the committed files were made). The test command
never runs this; the ctest entries read the committed files with the repo's venv.

Each model: hidden 64, 2 layers, 4 heads (2 kv heads), vocab 128, random weights (seed 0, then
0.02·N(0,1) added everywhere), exported with torch.onnx.export(..., dynamo=True,
dynamic_shapes={"input_ids": {0: Dim("batch"), 1: Dim("seq")}}) through a wrapper `m` that
returns the logits. <name>.io.npz holds, per shape set BxS in SHAPES, the inputs and
PyTorch's logits (fp32) as <name>_<B>x<S>__input_ids and <name>_<B>x<S>__logits.
  - llama_dyn:   LlamaForCausalLM (causal mask, RoPE positions from the sequence length).
  - qwen2_dyn:   Qwen2ForCausalLM (q/k/v biases).
  - mistral_dyn: MistralForCausalLM with sliding_window 16 < seq (a banded causal mask).
"""
import argparse
import os
import sys

import numpy as np
import torch
import transformers

VOCAB = 128
SHAPES = [(2, 64), (3, 48), (4, 32)]


def config(name):
    common = dict(vocab_size=VOCAB, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                  num_key_value_heads=2, intermediate_size=128, use_cache=False,
                  tie_word_embeddings=False, max_position_embeddings=128)
    if name == "llama_dyn":
        return transformers.LlamaForCausalLM, transformers.LlamaConfig(**common)
    if name == "qwen2_dyn":
        return transformers.Qwen2ForCausalLM, transformers.Qwen2Config(**common)
    if name == "mistral_dyn":
        return transformers.MistralForCausalLM, transformers.MistralConfig(sliding_window=16, **common)
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
    if name == "mistral_dyn":
        cfg._attn_implementation = "sdpa"
    m = Wrap(cls(cfg)).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    io = {}
    for i, (b, s) in enumerate(SHAPES):
        ids = torch.randint(0, VOCAB, (b, s), generator=torch.Generator().manual_seed(1 + i))
        with torch.no_grad():
            ref = m(ids).float().numpy()
        key = f"{name}_{b}x{s}"
        io[key + "__input_ids"] = ids.numpy()
        io[key + "__logits"] = ref
    ids = torch.from_numpy(io[f"{name}_{SHAPES[0][0]}x{SHAPES[0][1]}__input_ids"])
    dyn = {"input_ids": {0: torch.export.Dim("batch", min=1, max=64), 1: torch.export.Dim("seq", min=2, max=128)}}
    path = os.path.join(out, name + ".onnx")
    prog = torch.onnx.export(m, (ids,), dynamo=True, input_names=["input_ids"], output_names=["logits"],
                             dynamic_shapes=dyn, external_data=False)
    prog.save(path)
    np.savez(os.path.join(out, name + ".io.npz"), **io)
    print(f"exported {path}: {os.path.getsize(path)} bytes")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--model", action="append", help="default: all")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    failed = []
    for name in args.model or ["llama_dyn", "qwen2_dyn", "mistral_dyn"]:
        try:
            export(name, args.out)
        except Exception as e:  # noqa: BLE001  (report every model, then fail)
            print(f"{name}: export failed: {type(e).__name__}: {e}", file=sys.stderr)
            failed.append(name)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
