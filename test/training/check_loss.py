#!/usr/bin/env python3
"""The causal-LM loss of `mode: train` (sc-add-loss, sc.token_loss) against PyTorch: compiles a
shared export with a train plan in fp32, runs it with shardc-run on CPU ranks (threads), and
compares the `loss` output with test/training/references.npz (Hugging Face's ForCausalLMLoss in
fp64): the shifted input ids, and with `loss: {labels: input}` the -100-masked labels.
    check_loss.py --shardc B --shardc-run R --model M.onnx --name llama_tiny --mesh tp=2 --ranks 2
                  [--labels input] --workdir W [--references test/training/references.npz]
"""
import pathlib
import sys

import numpy as np

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--labels", choices=["input_ids", "input"], default="input_ids")
ap.add_argument("--rtol", type=float, default=1e-5)
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
ref = np.load(args.references)
p = args.name + "/"
plan = wd / "plan.yaml"
plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"
                f"mode: train\nloss: {{labels: {args.labels}}}\n")
feeds = {"input_ids": ref[p + "input_ids"].astype(np.int64)}
if args.labels == "input":
    feeds["labels"] = ref[p + "labels_masked"].astype(np.int64)
    want = float(ref[p + "loss_masked_fp64"])
else:
    want = float(ref[p + "loss_fp64"])
inputs, outputs, artifact = wd / "inputs.npz", wd / "outputs.npz", wd / "train.shardc"
np.savez(inputs, **feeds)
for stale in (outputs, artifact):
    if stale.exists():
        stale.unlink()




harness.run([args.shardc, "compile", args.model, "--plan", str(plan), "--mesh", args.mesh, "-o", str(artifact), "--quiet"])
harness.run([args.shardc_run, str(artifact), "--inputs", str(inputs), "--outputs", str(outputs), "--threads", str(args.ranks)])
out = np.load(outputs)
if "loss" not in out.files:
    print(f"FAIL: no loss output (outputs: {out.files})")
    sys.exit(1)
got = out["loss"]
if got.shape != () or got.dtype != np.float32:
    print(f"FAIL: loss should be an f32 scalar, got {got.dtype} {got.shape}")
    sys.exit(1)
rel = abs(float(got) - want) / abs(want)
label = f"{args.name} mesh {args.mesh} labels {args.labels}"
print(f"{label}: loss {float(got):.9f}, PyTorch fp64 {want:.9f}, relative difference {rel:.2e} (tolerance {args.rtol:g})")
logits = [k for k in out.files if k != "loss"]
if not logits:
    print("FAIL: the logits output is gone")
    sys.exit(1)
if not rel <= args.rtol:
    print(f"FAIL: {label}")
    sys.exit(1)
print(f"PASS: {label}")
