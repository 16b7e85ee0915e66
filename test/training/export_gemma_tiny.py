#!/usr/bin/env python3
"""A tiny Gemma export for the trainable-parameter classification of folded norm weights.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/training/export_gemma_tiny.py --out test/training/models
(torch 2.15.0, transformers 5.25.0 when the committed file was made). The test command never
runs this; the tests read the committed file with the repository's venv.

GemmaForCausalLM: hidden 64, 2 layers, 4 heads, 1 kv head, head_dim 16, intermediate 128, vocab
256, tied embeddings, random weights (seed 0, then 0.02·N(0,1) added everywhere so no value is a
default), exported with torch.onnx.export(..., dynamo=True) at input_ids int64 [2, 16], a wrapper
module `m` returning the logits. gemma_tiny.io.npz beside it holds input_ids and PyTorch's logits
(fp32) as gemma_tiny__input_ids, gemma_tiny__logits; gemma_tiny.train10.npz PyTorch's fp64 losses
and grad norms over 10 AdamW steps (train_references).

What the export holds (printed by --show): Gemma's RMSNorm computes x·(1 + w); the exporter's
optimizer folds 1 + w into a constant `val_N` whose `pkg.onnxscript.optimizer.folded_from` names
the norm weight (m.model.layers.0.input_layernorm.weight, ...), of the weight's own shape, with
no op in the graph that says how it was folded; the embedding's scale sqrt(hidden) is a BUFFER.
"""
import argparse
import os
import sys

import numpy as np
import torch
import transformers

VOCAB, B, S = 256, 2, 16


class Wrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids).logits


def show(path):
    import onnx
    model = onnx.load(path)
    g = model.graph
    meta = {vi.name: {p.key: p.value for p in vi.metadata_props} for vi in g.value_info}
    for t in g.initializer:
        props = meta.get(t.name, {})
        kind = props.get("pkg.torch.export.graph_signature.InputSpec.kind", "")
        folded = props.get("pkg.onnxscript.optimizer.folded_from", "")
        print(f"  {t.name:60s} {list(t.dims)!s:14s} {kind:10s} {folded}")


STREAM_LEN, STEPS = 300, 10
ADAM = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.0)
MAX_GRAD_NORM = 1.0


def train_references(m, path):
    """10 AdamW steps of the exported model in fp64 on a 300-token stream read as shardc-run
    --data reads tokens.bin (step k takes tokens [32k, 32k + 32) modulo 300 as the [2, 16]
    batch), with clip_grad_norm_(1.0); the loss is Hugging Face's causal-LM loss. Weight decay
    0: shardc trains the stored 1 + w of Gemma's norms, PyTorch w, and only the decay tells them
    apart (d/d(1 + w) = d/dw, so Adam's steps agree)."""
    m = m.double().train()
    tokens = torch.randint(0, VOCAB, (STREAM_LEN,), generator=torch.Generator().manual_seed(2))
    opt = torch.optim.AdamW(m.parameters(), **ADAM)
    losses, norms = [], []
    for k in range(STEPS):
        idx = (torch.arange(B * S) + k * B * S) % STREAM_LEN
        ids = tokens[idx].reshape(B, S)
        logits = m(ids)
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
        opt.zero_grad()
        loss.backward()
        norms.append(float(torch.nn.utils.clip_grad_norm_(m.parameters(), MAX_GRAD_NORM)))
        losses.append(float(loss))
        opt.step()
    np.savez(path, tokens=tokens.numpy().astype(np.int32), loss_fp64=np.array(losses), grad_norm_fp64=np.array(norms),
             lr=ADAM["lr"], betas=np.array(ADAM["betas"]), eps=ADAM["eps"], weight_decay=ADAM["weight_decay"],
             max_grad_norm=MAX_GRAD_NORM)
    print(f"wrote {path}: losses {np.array(losses)}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "models"))
    ap.add_argument("--show", action="store_true", help="list the initializers and their metadata")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    cfg = transformers.GemmaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                   num_attention_heads=4, num_key_value_heads=1, head_dim=16,
                                   max_position_embeddings=64, use_cache=False, tie_word_embeddings=True)
    m = Wrap(transformers.GemmaForCausalLM(cfg)).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.02 * torch.randn(p.shape, generator=gen))
    ids = torch.randint(0, VOCAB, (B, S), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(ids).float().numpy()
    path = os.path.join(args.out, "gemma_tiny.onnx")
    prog = torch.onnx.export(m, (ids,), dynamo=True, input_names=["input_ids"], output_names=["logits"],
                             external_data=False)
    prog.save(path)
    np.savez(os.path.join(args.out, "gemma_tiny.io.npz"), gemma_tiny__input_ids=ids.numpy(), gemma_tiny__logits=ref)
    print(f"exported {path}: {os.path.getsize(path)} bytes")
    if args.show:
        show(path)
    train_references(m, os.path.join(args.out, "gemma_tiny.train10.npz"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
