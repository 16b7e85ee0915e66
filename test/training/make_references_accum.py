#!/usr/bin/env python3
"""Gradient accumulation in PyTorch, the ground truth of check_accum.py.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/training/make_references_accum.py --export \
        --models ../shared/models --out test/training/references_accum.npz
(torch 2.15.0, transformers 5.25.0 when the committed files were made; under a minute on 2
cores). The test command never runs this.

--export first writes test/training/models/llama_tiny_b2.onnx: llama_tiny's model and
parameters (../shared/models/llama_tiny.onnx) exported at input_ids int64 [2, 32] (one
micro-batch), parameters stripped as llama_tiny_b4.onnx's are (fill_weights.py puts them back).

Then it trains llama_tiny for 5 steps of 2 accumulated micro-batches of [2, 32], from the
300-token stream of references_10step.npz read as shardc-run --data reads it with
gradient_accumulation_steps 2: step k (from 0) takes tokens [128k, 128k + 128) modulo 300,
micro-batch j the tokens [64j, 64j + 64) of those as [2, 32]. Each micro-batch's loss is its
summed cross-entropy over shifted labels divided by the step's count of label tokens
(2 x 2 x 31 = 124: NeMo's num_label_tokens, Hugging Face's num_items_in_batch), so the
accumulated .grad is the gradient of the step's mean. Then clip_grad_norm_(1.0) and
torch.optim.AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1), in fp64 and fp32.
Recorded: losses and pre-clip grad norms per step, and after step 5 every parameter's norm,
sum and 1088 sampled elements (make_references_10step.record) under "accum/final/<name>/".
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_references_10step as r10  # noqa: E402
import make_references as mr  # noqa: E402

G, B, S = 2, 2, 32
STEPS = 5
HERE = os.path.dirname(os.path.abspath(__file__))


def batches(stream):
    n = G * B * S
    return [stream[(k * n + np.arange(n)) % len(stream)].reshape(G, B, S).astype(np.int64) for k in range(STEPS)]


def train(info, dtype, data):
    model = r10.hf_model("llama_tiny_b4").to(dtype)  # llama_tiny's config, eager attention
    r10.load_weights(model, info, dtype)
    model.train()
    params = [p for _, p in model.named_parameters()]
    opt = torch.optim.AdamW(params, foreach=False, **r10.ADAM)
    losses, norms = [], []
    for k in range(STEPS):
        opt.zero_grad()
        count = G * B * (S - 1)  # the step's label tokens: no label is -100 here
        total = 0.0
        for j in range(G):
            x = torch.from_numpy(data[k][j])
            summed = mr.causal_lm_loss(model(x).logits, x, reduction="sum")
            loss = summed / count
            loss.backward()  # .grad accumulates over the micro-batches
            total += loss.item()
        gn = torch.nn.utils.clip_grad_norm_(params, r10.MAX_GRAD_NORM)
        opt.step()
        losses.append(total)
        norms.append(float(gn))
    final = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()}
    return dict(loss=losses, grad_norm=norms, final=final)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--export", action="store_true", help="(re)write test/training/models/llama_tiny_b2.onnx")
    ap.add_argument("--out", default=os.path.join(HERE, "references_accum.npz"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    shared_llama = os.path.join(a.models, "llama_tiny.onnx")
    if a.export:
        tmp = tempfile.mkdtemp()
        path, _, _ = r10.export("llama_tiny_b4", (B, S), tmp, weights_from=shared_llama)
        r10.strip_params(path, shared_llama)
        shutil.copy(path, os.path.join(HERE, "models", "llama_tiny_b2.onnx"))
        shutil.rmtree(tmp)
    stream = np.load(os.path.join(HERE, "references_10step.npz"))["tokens"]
    data = batches(stream)
    info = r10.read_params(shared_llama)
    table = r10.load_weights(r10.hf_model("llama_tiny_b4"), info, torch.float32)
    runs = {tag: train(info, dt, data) for tag, dt in (("fp64", torch.float64), ("fp32", torch.float32))}
    npz = {"tokens": stream, "input_ids": np.stack(data)}
    for tag, r in runs.items():
        npz[f"accum/loss_{tag}"] = np.array(r["loss"], np.float64)
        npz[f"accum/grad_norm_{tag}"] = np.array(r["grad_norm"], np.float64)
    init = {}
    for e in table:
        key = [x for x in e["aliases"] if x in info["params"]][0]
        init[e["name"]] = (e["onnx_transform"], info["params"][key][2].reshape(e["onnx_shape"]))
    for i, e in enumerate(table):
        n = e["name"]
        transform, arr = init[n]
        w0 = (arr.T if transform == "transpose" else arr).astype(np.float64)
        fin = runs["fp64"]["final"][n]
        r10.record(npz, f"accum/final/{n}/", fin, e, fin.size <= r10.FULL_NUMEL, 3000 + i, fin - w0)
    r64, r32 = runs["fp64"], runs["fp32"]
    gaps = {"loss_abs": float(np.abs(np.subtract(r32["loss"], r64["loss"])).max()),
            "grad_norm_rel": float(np.max(np.abs(np.subtract(r32["grad_norm"], r64["grad_norm"]))
                                          / np.array(r64["grad_norm"]))),
            "final_rel_l2_max": max(r10.rel_l2(r32["final"][n], r64["final"][n]) for n in r64["final"])}
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "adamw": dict(r10.ADAM, betas=list(r10.ADAM["betas"])), "max_grad_norm": r10.MAX_GRAD_NORM,
            "steps": STEPS, "micro_batches": G, "batch": [B, S], "params": table, "fp32_vs_fp64": gaps}
    npz["meta_json"] = np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8)
    np.savez_compressed(a.out, **npz)
    print("fp64 losses", np.round(r64["loss"], 7).tolist())
    print("fp64 grad norms", np.round(r64["grad_norm"], 7).tolist())
    print("fp32 vs fp64", json.dumps(gaps))
    print(a.out, os.path.getsize(a.out), "bytes,", len(npz), "arrays")


if __name__ == "__main__":
    main()
