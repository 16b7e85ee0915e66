#!/usr/bin/env python3
"""PyTorch's bf16 mixed-precision run of the 10-step references (check_pytorch10.py --param-dtype bf16).

Needs torch + transformers + onnx (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/training/make_references_bf16.py --models ../shared/models
(torch 2.15.0, transformers 5.25.0 when the committed file was made). The tests never run it.

FSDP2's MixedPrecisionPolicy(param_dtype=bf16, reduce_dtype=fp32) on one rank, spelled out:
fp32 masters; each step copies them to a bf16 model, runs the forward and backward there (every
op in bf16, as FSDP2's unsharded bf16 parameters make it), widens the bf16 gradients to fp32,
clips them (clip_grad_norm_ 1.0, the norm in fp32) and steps torch.optim.AdamW on the fp32
masters with the references' hyperparameters. Same models, weights and token stream as
make_references_10step.py (llama_tiny, qwen2_tiny, gpt2_tiny); the loss is the cross-entropy of
the bf16 logits widened to fp32 (Hugging Face's loss upcasts the logits). Writes
references_bf16.npz: per model `<name>/clip/loss_bf16` and `grad_norm_bf16` [10].
"""
import argparse
import json
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_references as mr  # noqa: E402
import make_references_10step as m10  # noqa: E402


def train_bf16(name, info, data):
    master = m10.hf_model(name).float()
    m10.load_weights(master, info, torch.float32)
    work = m10.hf_model(name).to(torch.bfloat16)
    work.train()
    params = [p for _, p in master.named_parameters()]
    opt = torch.optim.AdamW(params, foreach=False, **m10.ADAM)
    losses, norms = [], []
    for k in range(m10.STEPS):
        with torch.no_grad():
            for (n, w), (_, p) in zip(work.named_parameters(), master.named_parameters()):
                w.copy_(p.to(torch.bfloat16))
        work.zero_grad()
        x = torch.from_numpy(data[k])
        loss = mr.causal_lm_loss(work(x).logits.float(), x)
        loss.backward()
        for (_, w), p in zip(work.named_parameters(), params):
            p.grad = w.grad.float()
        gn = torch.nn.utils.clip_grad_norm_(params, m10.MAX_GRAD_NORM)
        opt.step()
        losses.append(loss.item())
        norms.append(float(gn))
    return losses, norms


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    a = ap.parse_args()
    torch.set_num_threads(2)
    ref = np.load(os.path.join(HERE, "references_10step.npz"))
    data = list(ref["input_ids"])
    npz, meta = {}, {"torch": torch.__version__, "policy": "param_dtype bf16, reduce_dtype fp32, fp32 masters"}
    for name, path in (("llama_tiny", os.path.join(a.models, "llama_tiny.onnx")),
                       ("qwen2_tiny", os.path.join(a.models, "qwen2_tiny.onnx")),
                       ("gpt2_tiny", os.path.join(HERE, "models", "gpt2_tiny.onnx"))):
        losses, norms = train_bf16(name, m10.read_params(path), data)
        npz[f"{name}/clip/loss_bf16"] = np.array(losses, np.float64)
        npz[f"{name}/clip/grad_norm_bf16"] = np.array(norms, np.float64)
        gap = np.abs(np.array(losses) - ref[f"{name}/clip/loss_fp64"]).max()
        ngap = (np.abs(np.array(norms) - ref[f"{name}/clip/grad_norm_fp64"]) / ref[f"{name}/clip/grad_norm_fp64"]).max()
        meta[name] = {"loss_vs_fp64_max_abs": float(gap), "grad_norm_vs_fp64_max_rel": float(ngap)}
        print(f"{name}: bf16 losses {np.round(losses, 5).tolist()}; against fp64: loss {gap:.2e}, norm {ngap:.2e}")
    npz["meta_json"] = np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8)
    out = os.path.join(HERE, "references_bf16.npz")
    np.savez_compressed(out, **npz)
    print(out, os.path.getsize(out), "bytes")


if __name__ == "__main__":
    main()
