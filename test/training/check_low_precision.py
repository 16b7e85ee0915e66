#!/usr/bin/env python3
"""Low precision in training: mp_policy.reduce_dtype bf16, or (--master) master_dtype bf16.

reduce_dtype bf16: 5 AdamW steps of llama_tiny's model at [4, 32]
(llama_tiny_b4.onnx, parameters from ../shared/models/llama_tiny.onnx) under FSDP with
reduce_dtype bf16 against the same plan with fp32, fp32 compute: every gradient reduce-scatter in
`shardc report` moves bf16 (one per parameter), and the losses and grad norms stay within bf16's
tolerances of the fp32 run: losses 1e-3 absolute, grad norms 1e-2 relative (--tol, --norm-tol;
measured at dp_shard2: 2.1e-4 and 9.9e-4; with --accum 3.3e-4 and 4.1e-4). With --accum MODEL2 the bf16 run is instead
gradient_accumulation_steps 2 of [2, 32] (llama_tiny_b2.onnx) with defer_fsdp_grad_sync false:
a bf16 reduce-scatter per parameter and micro-batch.

--master: param_dtype bf16 with master_dtype bf16 (masters and AdamW moments in bf16) against
the all-fp32 run, losses within --tol and grad norms within --norm-tol (ctest passes 1e-2 and
1e-2; measured on one rank: 2.5e-3 and 3.2e-3), and 3 steps + save + resume + 2 steps equal to
the 5 steps bit for bit (the bf16 states are checkpointed and loaded), and `shardc
export-weights` writes all 39 parameters from that checkpoint.
    check_low_precision.py --shardc B --shardc-run R --model llama_tiny_b4.onnx --weights llama_tiny.onnx
                          --name llama_tiny --workdir W --mesh dp_shard=2 --ranks 2 [--accum llama_tiny_b2.onnx]
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
ap.add_argument("--weights", required=True)
ap.add_argument("--accum", help="the [2, 32] export: the bf16 run accumulates 2 micro-batches, defer false")
ap.add_argument("--master", action="store_true", help="param_dtype and master_dtype bf16 instead")
ap.add_argument("--tol", type=float, default=1e-3)
ap.add_argument("--norm-tol", type=float, default=1e-2)
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
ref = np.load(args.references)
meta = json.loads(bytes(ref["meta_json"]).decode())
hyper, steps = meta["adamw"], meta["steps"]
ref["tokens"].astype("<i4").tofile(wd / "tokens.bin")


def plan(reduce, extra="", param="fp32", master="fp32"):
    return (f"tp_plan: auto\nmp_policy: {{param_dtype: {param}, reduce_dtype: {reduce}, output_dtype: fp32, "
            f"master_dtype: {master}}}\n"
            "mode: train\n"
            f"optimizer: {{name: adamw, lr: {hyper['lr']!r}, betas: [{hyper['betas'][0]!r}, {hyper['betas'][1]!r}], "
            f"eps: {hyper['eps']!r}, weight_decay: {hyper['weight_decay']!r}}}\n"
            f"max_grad_norm: {meta['max_grad_norm']!r}\n" + extra)


def run(name, onnx, text, n=steps, extra=()):
    model, p, artifact = wd / f"{name}.onnx", wd / f"{name}.yaml", wd / f"{name}.shardc"
    if not artifact.exists():
        harness.run([sys.executable, HERE / "fill_weights.py", onnx, args.weights, "-o", model])
        p.write_text(text)
        harness.run([args.shardc, "compile", model, "--plan", p, "--mesh", args.mesh, "-o", artifact, "--quiet"])
    report = harness.run([args.shardc, "report", artifact])
    harness.run([args.shardc_run, artifact, "--steps", n, "--data", wd / "tokens.bin", "--threads", args.ranks,
                 "--losses-out", wd / f"{name}.json", *extra], timeout=600)
    return report, json.loads((wd / f"{name}.json").read_text())


failures = []
_, want = run("fp32", args.model, plan("fp32"))
if args.master:
    report, got = run("bf16", args.model, plan("fp32", param="bf16", master="bf16"))
elif args.accum:
    report, got = run("bf16", args.accum, plan("bf16", "gradient_accumulation_steps: 2\ndefer_fsdp_grad_sync: false\n"))
else:
    report, got = run("bf16", args.model, plan("bf16"))
if args.master:
    label = f"param_dtype and master_dtype bf16 mesh {args.mesh}"
    # The bf16 states through a checkpoint: 3 steps, save, resume for the last 2.
    run("bf16", args.model, None, n=3, extra=("--save-state", wd / "ckpt"))
    _, rest = run("bf16", args.model, None, n=steps - 3, extra=("--load-state", wd / "ckpt"))
    same = np.array(rest["loss"], np.float32).tobytes() == np.array(got["loss"][3:], np.float32).tobytes()
    print(f"{label}: 3 steps + save + resume + {steps - 3} steps {rest['loss']}, "
          f"{'bit for bit' if same else 'DIFFER from'} {got['loss'][3:]}")
    if not same:
        failures.append("the resumed steps differ from the uninterrupted run")
    # The bf16 masters are located in their logical tensors: export-weights finds every one.
    out = harness.run([args.shardc, "export-weights", wd / "ckpt", "-o", wd / "model.safetensors"])
    print(f"{label}: {out.strip()}")
    if f"wrote {wd / 'model.safetensors'}: {len(meta['params'])} tensors" not in out:
        failures.append(f"export-weights did not write the {len(meta['params'])} parameters")
else:
    label = f"reduce_dtype bf16{' g=2 defer false' if args.accum else ''} mesh {args.mesh}"
    scatters = [ln for ln in report.splitlines() if re.search(r"\breduce_scatter\b", ln) and "(backward)" in ln]
    dtypes = sorted({re.search(r"\s(f32|bf16|f16)\s", ln).group(1) for ln in scatters})
    expect = len(meta["params"]) * (2 if args.accum else 1)
    print(f"{label}: {len(scatters)} gradient reduce-scatters, dtypes {dtypes} (expected {expect}, bf16)")
    if dtypes != ["bf16"] or len(scatters) != expect:
        failures.append(f"reduce-scatters: {len(scatters)} of dtypes {dtypes}")
for key, tol in (("loss", args.tol), ("grad_norm", args.norm_tol)):
    a, b = np.array(got[key], np.float64), np.array(want[key], np.float64)
    diff = np.abs(a - b) / (1 if key == "loss" else np.abs(b))
    print(f"{label}: {key} {np.array2string(a, precision=7)}\n    reduce_dtype fp32: {np.array2string(b, precision=7)}"
          f"\n    max {'absolute' if key == 'loss' else 'relative'} difference {diff.max():.2e} (tolerance {tol:g})")
    if not (diff <= tol).all():
        failures.append(f"{key} differs from the fp32 reduction by {diff.max():.2e}")
if failures:
    print("FAIL: " + "\n  ".join(failures))
    sys.exit(1)
print(f"PASS: {label}")
