#!/usr/bin/env python3
"""Trainable parameters the exporter folded with constants (docs/training.md, "Trainable
parameters"): Gemma's RMSNorm computes x·(1 + w), and the exporter folds 1 + w into a constant
(`add_4`, folded_from ['m.model.layers.0.input_layernorm.weight', 'val_3']). Such a parameter
trains as the stored value, and `shardc compile` says so in a remark naming it.

Checks, on test/training/models/gemma_tiny.onnx (export_gemma_tiny.py) under `mode: train`:
* one remark per norm weight (5: two per layer and the final norm), e.g. `trainable parameter
  m.model.layers.0.input_layernorm.weight is stored folded with constants (Gemma's 1 + w?): it
  trains as the stored value ('add_4')`;
* none for --llama (llama_tiny.onnx, whose folds are transposed linear weights alone);
* 10 AdamW steps (weight decay 0: the only term in which training 1 + w differs from training
  w) against PyTorch's fp64 run on the same 300-token stream (gemma_tiny.train10.npz): losses
  within 1e-4 absolute and grad norms within 1e-4 relative.
    check_folded_params.py --shardc B --shardc-run R --model gemma_tiny.onnx --llama llama_tiny.onnx
                           --name gemma_tiny --workdir W
"""
import json
import pathlib
import re
import subprocess
import sys

import numpy as np

import harness

HERE = pathlib.Path(__file__).parent
ap = harness.arguments(__doc__)
ap.set_defaults(references=str(HERE / "models" / "gemma_tiny.train10.npz"))
ap.add_argument("--llama", required=True, help="an export without folds of constants (llama_tiny.onnx)")
ap.add_argument("--tol", type=float, default=1e-4)
args = ap.parse_args()
wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
ref = np.load(args.references)
plan = wd / "plan.yaml"
plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\nmode: train\n"
                f"optimizer: {{name: adamw, lr: {float(ref['lr'])!r}, betas: [{float(ref['betas'][0])!r}, "
                f"{float(ref['betas'][1])!r}], eps: {float(ref['eps'])!r}, weight_decay: {float(ref['weight_decay'])!r}}}\n"
                f"max_grad_norm: {float(ref['max_grad_norm'])!r}\n")
PHRASE = "is stored folded with constants (Gemma's 1 + w?): it trains as the stored value"
failures = []


def compile_remarks(model, name):
    art = wd / f"{name}.shardc"
    r = subprocess.run([args.shardc, "compile", model, "--plan", plan, "--mesh", args.mesh, "-o", art, "--quiet"],
                       capture_output=True, text=True)
    if r.returncode:
        print(f"FAIL: compiling {model}:\n{r.stderr[-3000:]}")
        sys.exit(1)
    return art, sorted(re.findall(r"trainable parameter (\S+) " + re.escape(PHRASE), r.stderr))


art, gemma = compile_remarks(args.model, "gemma")
want = sorted([f"m.model.layers.{i}.{n}.weight" for i in range(2) for n in ("input_layernorm", "post_attention_layernorm")]
              + ["m.model.norm.weight"])
print(f"gemma_tiny: {len(gemma)} remarks: {gemma}")
if gemma != want:
    failures.append(f"gemma_tiny: remarks for {gemma}, expected {want}")
_, llama = compile_remarks(args.llama, "llama")
print(f"llama_tiny: {len(llama)} remarks")
if llama:
    failures.append(f"llama_tiny: remarks for {llama} (its folds are transposes)")

ref["tokens"].astype("<i4").tofile(wd / "tokens.bin")
steps = len(ref["loss_fp64"])
harness.run([args.shardc_run, art, "--steps", steps, "--data", wd / "tokens.bin", "--threads", args.ranks,
             "--losses-out", wd / "losses.json"], timeout=600)
got = json.loads((wd / "losses.json").read_text())
for key in ("loss", "grad_norm"):
    a, b = np.array(got[key], np.float64), ref[f"{key}_fp64"]
    diff = np.abs(a - b) / (1 if key == "loss" else np.abs(b))
    print(f"gemma_tiny {steps} steps: {key} {np.array2string(a, precision=7)}\n    PyTorch fp64 "
          f"{np.array2string(b, precision=7)}\n    max {'absolute' if key == 'loss' else 'relative'} difference "
          f"{diff.max():.2e} (tolerance {args.tol:g})")
    if a.shape != b.shape or not (diff <= args.tol).all():
        failures.append(f"{key} differs from PyTorch by {diff.max():.2e}")
if failures:
    print("FAIL: " + "\n  ".join(failures))
    sys.exit(1)
print("PASS: folded norm weights of gemma_tiny")
