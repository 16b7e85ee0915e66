#!/usr/bin/env python3
"""FSDP2's reshard_after_forward in a training step (sc-insert-reshards): the same model and mesh
compiled with `false` (the backward reads the forward's gathered parameters), `true` (every
layer's parameters gathered again for its backward) and `auto` (every layer but the last), with
and without AdamW, give the same outputs bit for bit; `false` gathers nothing in backward,
`true` gathers every layer's parameters once more (the bytes of all layers' forward gathers
but the root group's), `auto` all but the last layer's, and the arenas are printed (the
plan's peak may sit elsewhere, e.g. in AdamW's update, so they are not compared).
    check_reshard.py --shardc B --shardc-run R --model M.onnx --name llama_tiny --mesh dp_shard=2
                     --ranks 2 --workdir W
"""
import json
import pathlib
import subprocess
import sys

import numpy as np

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--layers", type=int, default=4, help="the model's decoder layers (all alike)")
args = ap.parse_args()
wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
ref = np.load(args.references)
ids = ref[args.name + "/input_ids"].astype(np.int64)
inputs = wd / "inputs.npz"
np.savez(inputs, input_ids=np.stack([ids, ids[::-1]]))  # two steps' batches

failures = []
for optimizer in ("", "optimizer: {name: adamw, lr: 1.0e-3}\n"):
    runs = {}
    for mode in ("false", "true", "auto"):
        tag = f"{mode}{'.adamw' if optimizer else ''}"
        plan, art, out = wd / f"plan.{tag}.yaml", wd / f"train.{tag}.shardc", wd / f"out.{tag}.npz"
        plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"
                        f"mode: train\nreshard_after_forward: {mode}\n{optimizer}")
        r = subprocess.run([args.shardc, "compile", args.model, "--plan", str(plan), "--mesh", args.mesh, "-o", str(art)],
                           capture_output=True, text=True, check=True)
        report = json.loads(harness.run([args.shardc, "report", "--json", art]))
        gathers = {phase: sum(c["bytes"] for c in report["collectives"] if c["kind"] == "all_gather" and c["phase"] == phase)
                   for phase in ("forward", "backward")}
        harness.run([args.shardc_run, art, "--inputs", inputs, "--outputs", out, "--threads", str(args.ranks),
                     "--steps", "2"])
        runs[mode] = {"arena": report["per_rank"]["arena_bytes"], "gathers": gathers, "out": np.load(out)}
        print(f"{tag:12s}: arena {runs[mode]['arena']}, all-gather bytes forward {gathers['forward']}, "
              f"backward {gathers['backward']}")
    base = runs["false"]
    for mode in ("true", "auto"):
        diff = [k for k in base["out"].files if not np.array_equal(base["out"][k], runs[mode]["out"][k])]
        if diff:
            failures.append(f"{mode}{optimizer and ' (adamw)'}: {len(diff)} outputs differ from false's (first {diff[0]})")
    if base["gathers"]["backward"]:
        failures.append("false gathers in backward")
    again, auto = runs["true"]["gathers"]["backward"], runs["auto"]["gathers"]["backward"]
    if not 0 < again < base["gathers"]["forward"]:
        failures.append(f"true's backward gathers {again} bytes (forward {base['gathers']['forward']})")
    # Identical layers: auto skips exactly one layer's share.
    layers = args.layers
    if auto * layers != again * (layers - 1):
        failures.append(f"auto's backward gathers ({auto} bytes) are not {layers - 1}/{layers} of true's ({again})")
for f in failures:
    print("FAIL", f)
print(f"{args.name} mesh {args.mesh}: {'FAIL' if failures else 'PASS'}")
sys.exit(1 if failures else 0)
