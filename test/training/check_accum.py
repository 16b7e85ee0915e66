#!/usr/bin/env python3
"""Gradient accumulation: 5 AdamW steps of llama_tiny's model with gradient_accumulation_steps 2
of [2, 32] micro-batches (test/training/models/llama_tiny_b2.onnx) against one micro-batch of
[4, 32] (llama_tiny_b4.onnx) on the same tokens and mesh: the same losses (1e-5 absolute) and
grad norms (3e-5 relative: at tp2 x dp_shard2 the [4, 32] run's own grad norm is 9.2e-6 relative
from one rank's at step 5, fp32's summation order; the accumulated run 1.0e-5 from it). Both are filled with ../shared/models/llama_tiny.onnx's parameters
(fill_weights.py) and fed by shardc-run --data from references_10step.npz's 300-token stream
(128 tokens a step; micro-batch j of a step takes its tokens [64j, 64j + 64)). Plan: AdamW
(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight decay 0.1), max_grad_norm 1.0, fp32.

Also checked, from `shardc report`: under FSDP (dp_shard > 1) the accumulated step runs one
gradient reduce-scatter per parameter, as the one-micro-batch step (defer_fsdp_grad_sync true,
the default), or one per parameter and micro-batch (--no-defer). With --pytorch (one rank): the
losses and grad norms against PyTorch's fp64 run accumulating the same two micro-batches
(test/training/references_accum.npz, make_references_accum.py) within 1e-4, every parameter
after step 5 within relative L2 1e-4 (whole up to 4096 elements, else 1088 samples; PyTorch's own
fp32 run ends 5.3e-5 from fp64). On every mesh, with 1, 2 and 4 micro-batches: each micro-batch
gathers its own FSDP parameters (the all-gathers a step are g times one micro-batch's) and the
live peak does not grow from 2 to 4 micro-batches (nor the arena at dp_shard=2 with
defer_fsdp_grad_sync true; on one rank the
arena is one [2, 32] micro-batch's plus at most the f32 gradients, held across micro-batches).
    check_accum.py --shardc B --shardc-run R --model llama_tiny_b2.onnx --b4 llama_tiny_b4.onnx
                   --weights llama_tiny.onnx --name llama_tiny --workdir W [--mesh M --ranks N]
                   [--no-defer] [--pytorch]
"""
import json
import pathlib
import re
import shutil
import sys

import numpy as np

import harness

HERE = pathlib.Path(__file__).parent
ap = harness.arguments(__doc__)
ap.set_defaults(references=str(HERE / "references_accum.npz"))
ap.add_argument("--b4", required=True, help="the same model exported at [4, 32] (llama_tiny_b4.onnx)")
ap.add_argument("--weights", required=True, help="the export holding the parameters (llama_tiny.onnx)")
ap.add_argument("--no-defer", action="store_true", help="defer_fsdp_grad_sync: false")
ap.add_argument("--pytorch", action="store_true", help="also compare with PyTorch (one rank)")
ap.add_argument("--tol", type=float, default=1e-5, help="against the [4, 32] step: losses (absolute)")
ap.add_argument("--norm-tol", type=float, default=3e-5, help="against the [4, 32] step: grad norms (relative)")
ap.add_argument("--torch-tol", type=float, default=1e-4, help="against PyTorch: losses, grad norms, parameters")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
ref = np.load(args.references)
meta = json.loads(bytes(ref["meta_json"]).decode())
hyper, steps = meta["adamw"], meta["steps"]
ref["tokens"].astype("<i4").tofile(wd / "tokens.bin")
base = ("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\nmode: train\n"
        f"optimizer: {{name: adamw, lr: {hyper['lr']!r}, betas: [{hyper['betas'][0]!r}, {hyper['betas'][1]!r}], "
        f"eps: {hyper['eps']!r}, weight_decay: {hyper['weight_decay']!r}}}\n"
        f"max_grad_norm: {meta['max_grad_norm']!r}\n")
g = meta["micro_batches"]
accum = base + f"gradient_accumulation_steps: {g}\n" + ("defer_fsdp_grad_sync: false\n" if args.no_defer else "")
failures = []


def build(name, onnx, plan_text, mesh):
    """Fills `onnx` with the parameters, compiles it; returns the artifact and its report."""
    model, plan, artifact = wd / f"{name}.onnx", wd / f"{name}.yaml", wd / f"{name}.shardc"
    if not model.exists():
        harness.run([sys.executable, HERE / "fill_weights.py", onnx, args.weights, "-o", model])
    plan.write_text(plan_text)
    harness.run([args.shardc, "compile", model, "--plan", plan, "--mesh", mesh, "-o", artifact, "--quiet"])
    return artifact, harness.run([args.shardc, "report", artifact])


def train(name, artifact):
    harness.run([args.shardc_run, artifact, "--steps", steps, "--data", wd / "tokens.bin", "--threads", args.ranks,
                 "--save-state", wd / f"{name}.state", "--losses-out", wd / f"{name}.losses.json"], timeout=600)
    return json.loads((wd / f"{name}.losses.json").read_text())


def count(report, kind):
    line = next((ln for ln in report.splitlines() if ln.startswith("collectives:")), "")
    m = re.search(rf"(\d+) {kind}", line)
    return int(m.group(1)) if m else 0


def arena(report):
    return int(re.search(r"arena (\d+) bytes", report).group(1))


label = f"llama_tiny g={g} x [2, 32]{' defer_fsdp_grad_sync false' if args.no_defer else ''} mesh {args.mesh}"
acc_art, acc_report = build("accum", args.model, accum, args.mesh)
one_art, one_report = build("b4", args.b4, base, args.mesh)
got, want = train("accum", acc_art), train("b4", one_art)
for key in ("loss", "grad_norm"):
    a, b = np.array(got[key], np.float64), np.array(want[key], np.float64)
    diff = np.abs(a - b) / (1 if key == "loss" else np.abs(b))
    tol = args.tol if key == "loss" else args.norm_tol
    print(f"{label}: {key} {np.array2string(a, precision=7)}\n    one [4, 32] micro-batch: "
          f"{np.array2string(b, precision=7)}\n    max {'absolute' if key == 'loss' else 'relative'} "
          f"difference {diff.max():.2e} (tolerance {tol:g})")
    if a.shape != b.shape or not (diff <= tol).all():
        failures.append(f"{key} differs from the [4, 32] step by {diff.max():.2e}")

rs_acc, rs_one = count(acc_report, "reduce_scatter"), count(one_report, "reduce_scatter")
expect = rs_one * (g if args.no_defer else 1)
print(f"{label}: {rs_acc} reduce-scatters a step (one [4, 32] micro-batch: {rs_one}; expected {expect})")
if rs_acc != expect:
    failures.append(f"{rs_acc} reduce-scatters, expected {expect}")
if "dp_shard=1" not in args.mesh.replace(" ", "") and rs_one == 0:
    failures.append("no gradient reduce-scatter under FSDP")

if args.pytorch:
    for key in ("loss", "grad_norm"):
        a, b = np.array(got[key], np.float64), ref[f"accum/{key}_fp64"]
        diff = np.abs(a - b) / (1 if key == "loss" else np.abs(b))
        print(f"{label}: {key} against PyTorch fp64 {np.array2string(b, precision=7)}: max "
              f"{'absolute' if key == 'loss' else 'relative'} difference {diff.max():.2e} (tolerance {args.torch_tol:g})")
        if not (diff <= args.torch_tol).all():
            failures.append(f"{key} differs from PyTorch by {diff.max():.2e}")
    top = json.loads((wd / "accum.state" / "manifest.json").read_text())
    state = dict(np.load(wd / "accum.state" / top["step_dir"] / "rank0.npz"))
    worst = 0.0
    for param in meta["params"]:
        names = sorted({n for n in ["m." + a for a in param["aliases"]] + [param["onnx_initializer"]] if n in state})
        if len(names) != 1:
            failures.append(f"{param['name']}: not in the saved state ({names})")
            continue
        w = state[names[0]].astype(np.float64)
        q = f"accum/final/{param['name']}/"
        if q + "full" in ref.files:
            t = (w.T if param["onnx_transform"] == "transpose" else w).reshape(-1)
            rel = np.linalg.norm(t - ref[q + "full"].reshape(-1)) / np.linalg.norm(ref[q + "full"])
        else:
            s = w.reshape(-1)[ref[q + "onnx_index"]]
            rel = np.linalg.norm(s - ref[q + "value"]) / np.linalg.norm(ref[q + "value"])
        worst = max(worst, float(rel))
        if not rel <= args.torch_tol:
            failures.append(f"{param['name']} after {steps} steps: relative L2 {rel:.2e}")
    print(f"{label}: {len(meta['params'])} parameters after {steps} steps against PyTorch fp64, worst relative L2 "
          f"{worst:.2e} (tolerance {args.torch_tol:g})")

# Memory, from `shardc report --json` of the same plan with 1, g and 4 micro-batches. The
# micro-batches reuse activation memory and, under FSDP, each gathers its own parameters (FSDP2's
# all-gathers in each micro-batch's forward and backward; the copies die within the micro-batch):
# the all-gathers a step are the micro-batch count times one micro-batch's, and the live peak
# does not grow from g to 4 micro-batches (at most 2%); at dp_shard=2 (no tp, defer_fsdp_grad_sync
# true) nor does the arena (at most 5%: the plan packs the longer program a little differently;
# 6.2% with defer false, 12% at tp2 x dp_shard2, with the same live peak). Without FSDP, the
# accumulated f32 gradients (as large as the parameters) are held across the micro-batches: the
# arena is one [2, 32] micro-batch's plus at most those gradients.
def memory(report_text, artifact):
    r = json.loads(harness.run([args.shardc, "report", "--json", artifact]))
    return r["memory"], count(report_text, "all_gather")


extra = "defer_fsdp_grad_sync: false\n" if args.no_defer else ""
_, b2_report = build("b2", args.model, base, args.mesh)
g4_art, g4_report = build("g4", args.model, base + "gradient_accumulation_steps: 4\n" + extra, args.mesh)
(m1, ag1), (m2, ag2), (m4, ag4) = (memory(b2_report, wd / "b2.shardc"), memory(acc_report, acc_art),
                                   memory(g4_report, g4_art))
a1, a2, a4 = m1["arena_bytes"], m2["arena_bytes"], m4["arena_bytes"]
p1, p2, p4 = m1["live_peak_bytes"], m2["live_peak_bytes"], m4["live_peak_bytes"]
print(f"{label}: arena {a1} bytes with one [2, 32] micro-batch, {a2} with {g}, {a4} with 4; live peak {p1}, {p2}, "
      f"{p4}; all-gathers a step {ag1}, {ag2}, {ag4}")
if [ag2, ag4] != [g * ag1, 4 * ag1]:
    failures.append(f"{ag2} and {ag4} all-gathers with {g} and 4 micro-batches, expected {g} and 4 x {ag1}")
if not p4 <= 1.02 * p2:
    failures.append(f"the live peak grows from {p2} to {p4} bytes from {g} to 4 micro-batches")
fsdp = any(f"{axis}=" in args.mesh and f"{axis}=1" not in args.mesh for axis in ("dp_shard", "cp"))
if fsdp and "tp=" not in args.mesh and not args.no_defer and not a4 <= 1.05 * a2:
    failures.append(f"the arena grows from {a2} to {a4} bytes from {g} to 4 micro-batches under FSDP")
if not fsdp:
    grads = 4 * sum(int(np.prod(p["torch_shape"])) for p in meta["params"])
    print(f"{label}: gradients {grads} bytes; the arena at most {a1} + 1.05 x gradients with {g}, 1.02 x that with 4")
    if not a2 <= a1 + 1.05 * grads:
        failures.append(f"the arena grows by {a2 - a1} bytes with {g} micro-batches, more than the gradients")
    if not a4 <= 1.02 * a2:
        failures.append(f"the arena grows from {a2} to {a4} bytes from 2 to 4 micro-batches")

if failures:
    print("FAIL: " + "\n  ".join(failures))
    sys.exit(1)
print(f"PASS: {label}")
