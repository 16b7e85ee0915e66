#!/usr/bin/env python3
"""The gradients of `mode: train` (sc-autodiff) against PyTorch: compiles a shared export with a
train plan in fp32, runs it with shardc-run on CPU ranks (threads), and compares every
`grad.<parameter>` output with test/training/references.npz (PyTorch in fp64, the unmasked
loss): per parameter the L2 norm, the sum, the 48 sampled elements (by their index in the ONNX
initializer's layout, which is the layout shardc returns) and, where recorded, the whole
gradient (1-D parameters and layer 0's k_proj, in PyTorch's layout: transposed back here).
Relative L2 differences must stay within --rtol (3e-5: the issue's tolerance for fp32).
    check_grads.py --shardc B --shardc-run R --model M.onnx --name llama_tiny --mesh tp=2
                   --ranks 2 --workdir W [--references test/training/references.npz]
"""
import json
import pathlib
import sys

import numpy as np

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--rtol", type=float, default=3e-5)
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
ref = np.load(args.references)
meta = json.loads(bytes(ref["meta_json"]).decode())["models"][args.name]
p = args.name + "/"
plan = wd / "plan.yaml"
plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"
                "mode: train\n")
inputs, outputs, artifact = wd / "inputs.npz", wd / "outputs.npz", wd / "train.shardc"
np.savez(inputs, input_ids=ref[p + "input_ids"].astype(np.int64))
for stale in (outputs, artifact):
    if stale.exists():
        stale.unlink()




harness.run([args.shardc, "compile", args.model, "--plan", str(plan), "--mesh", args.mesh, "-o", str(artifact), "--quiet"])
harness.run([args.shardc_run, str(artifact), "--inputs", str(inputs), "--outputs", str(outputs), "--threads", str(args.ranks)])
out = np.load(outputs)
label = f"{args.name} mesh {args.mesh}"
failures = []


def rel_l2(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    return float(np.linalg.norm(got - want) / max(np.linalg.norm(want), 1e-30))


loss_rel = abs(float(out["loss"]) - float(ref[p + "loss_fp64"])) / abs(float(ref[p + "loss_fp64"]))
if not loss_rel <= 1e-5:
    failures.append(f"loss relative difference {loss_rel:.2e}")

# The module path shardc names a parameter by: the export wrapper's `m.` and the PyTorch name;
# a tied parameter is stored once, under one of its aliases.
grads = {k[len("grad."):]: out[k] for k in out.files if k.startswith("grad.")}
worst, total_sq = 0.0, 0.0
for param in meta["params"]:
    names = ["m." + a for a in param["aliases"]]
    found = [n for n in names if n in grads]
    if len(found) != 1:
        failures.append(f"{param['name']}: expected one output among grad.{'/'.join(names)}, found {len(found)}")
        continue
    g = grads[found[0]].astype(np.float64)
    if list(g.shape) != param["onnx_shape"]:
        failures.append(f"{param['name']}: shape {list(g.shape)}, the initializer's is {param['onnx_shape']}")
        continue
    key = p + "grad/" + param["name"] + "/"
    total_sq += float(np.sum(g * g))
    rel = {
        "norm": abs(np.linalg.norm(g) - float(ref[key + "norm_fp64"])) / float(ref[key + "norm_fp64"]),
        "samples": rel_l2(g.reshape(-1)[ref[p + "sample/" + param["name"] + "/onnx_index"]], ref[key + "value_fp64"]),
    }
    if key + "full_fp64" in ref.files:
        full = g.T if param["onnx_transform"] == "transpose" else g
        rel["full"] = rel_l2(full, ref[key + "full_fp64"])
    bad = {k: v for k, v in rel.items() if not v <= args.rtol}
    worst = max(worst, *rel.values())
    if bad:
        failures.append(f"{param['name']}: " + ", ".join(f"{k} relative L2 {v:.2e}" for k, v in bad.items()))
norm_rel = abs(total_sq ** 0.5 - float(ref[p + "grad_total_norm_fp64"])) / float(ref[p + "grad_total_norm_fp64"])
if not norm_rel <= args.rtol:
    failures.append(f"total gradient norm relative difference {norm_rel:.2e}")
extra = set(grads) - {"m." + a for q in meta["params"] for a in q["aliases"]}
if extra:
    failures.append(f"gradients of parameters PyTorch does not train: {sorted(extra)}")
print(f"{label}: {len(grads)} gradients, loss relative difference {loss_rel:.2e}, total norm {total_sq ** 0.5:.9f} "
      f"(PyTorch fp64 {float(ref[p + 'grad_total_norm_fp64']):.9f}), worst per-parameter relative L2 {worst:.2e} "
      f"(tolerance {args.rtol:g})")
for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
sys.exit(1 if failures else 0)
