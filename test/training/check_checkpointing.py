#!/usr/bin/env python3
"""Activation checkpointing (plan `activation_checkpointing: full | selective`,
sc-checkpoint-activations) changes memory and collectives, not numbers: the same model and
mesh compiled without it, with `full` and with `selective`, run on the references' input ids,
give the same loss and gradients bit for bit; the arena shrinks; `selective` runs exactly the
collectives of the unchecked program, `full` runs some again (a layer's recomputed TP
collectives) and never fewer.
    check_checkpointing.py --shardc B --shardc-run R --model M.onnx --name llama_tiny --mesh tp=2
                           --ranks 2 --workdir W [--sequence-parallel]
"""
import collections
import json
import pathlib
import re
import subprocess
import sys

import numpy as np

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--sequence-parallel", action="store_true")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
ref = np.load(args.references)
inputs = wd / "inputs.npz"
np.savez(inputs, input_ids=ref[args.name + "/input_ids"].astype(np.int64))

runs = {}
for mode in ("false", "full", "selective"):
    plan, art, out = wd / f"plan.{mode}.yaml", wd / f"train.{mode}.shardc", wd / f"out.{mode}.npz"
    plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"
                    f"mode: train\nactivation_checkpointing: {mode}\n"
                    + ("sequence_parallel: true\n" if args.sequence_parallel else ""))
    r = subprocess.run([args.shardc, "compile", args.model, "--plan", str(plan), "--mesh", args.mesh, "-o", str(art)],
                       capture_output=True, text=True, check=True)
    arena = int(re.search(r"arena (\d+) bytes", r.stdout + r.stderr)[1])
    remark = re.search(r"remark: .*?(activation checkpointing .*)", r.stderr)
    report = json.loads(harness.run([args.shardc, "report", "--json", art]))
    # Which consumer names a shared reshard may change; kind, axes and size may not.
    collectives = collections.Counter((c["kind"], c["axes"], c["bytes"]) for c in report["collectives"])
    harness.run([args.shardc_run, art, "--inputs", inputs, "--outputs", out, "--threads", str(args.ranks)])
    runs[mode] = {"arena": arena, "collectives": collectives, "out": np.load(out),
                  "remark": remark[1] if remark else ""}
    print(f"{mode:9s}: arena {arena} bytes, {sum(collectives.values())} collectives "
          f"({sum(c[2] * n for c, n in collectives.items())} bytes); {runs[mode]['remark']}")

failures = []
base = runs["false"]
loss_rel = abs(float(base["out"]["loss"]) - float(ref[args.name + "/loss_fp64"])) / abs(float(ref[args.name + "/loss_fp64"]))
if not loss_rel <= 1e-5:
    failures.append(f"the unchecked loss is {loss_rel:.2e} from PyTorch's")
for mode in ("full", "selective"):
    got = runs[mode]
    if not got["remark"]:
        failures.append(f"{mode}: no remark saying what was recomputed")
    if sorted(got["out"].files) != sorted(base["out"].files):
        failures.append(f"{mode}: other outputs")
    diff = [k for k in base["out"].files if not np.array_equal(base["out"][k], got["out"][k])]
    if diff:
        failures.append(f"{mode}: {len(diff)} outputs differ from the unchecked run's (first {diff[0]})")
    if not got["arena"] < base["arena"]:
        failures.append(f"{mode}: arena {got['arena']} not below the unchecked {base['arena']}")
if runs["selective"]["collectives"] != base["collectives"]:
    failures.append("selective runs other collectives than the unchecked program")
if base["collectives"] - runs["full"]["collectives"]:
    failures.append(f"full checkpointing dropped collectives of the unchecked program: "
                    f"{dict(base['collectives'] - runs['full']['collectives'])}")
for f in failures:
    print("FAIL", f)
print(f"{args.name} mesh {args.mesh}: {'FAIL' if failures else 'PASS'}")
sys.exit(1 if failures else 0)
