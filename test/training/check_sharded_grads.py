#!/usr/bin/env python3
"""`mode: train` gradients of a sharded program against the same model's unsharded program, for
exports without PyTorch training references (the e2e generator's GPT-2: packed QKV projection,
layer_norm, tanh GELU, learned positions, tied lm_head): compiles the model unsharded and on
--mesh, runs both on the same random token ids, and checks that the loss and every
`grad.<parameter>` agree (relative 1e-5 on the loss, relative L2 1e-5 per gradient: both are
fp32, the sharded one sums in another order).
    check_sharded_grads.py --shardc B --shardc-run R --model M.onnx --name gpt2_s --mesh tp=2
                           --ranks 2 --workdir W
"""
import pathlib

import numpy as np
import onnx

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--vocab", type=int, default=256, help="token ids are drawn from [0, vocab)")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)
plan = wd / "plan.yaml"
plan.write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\nmode: train\n")
one, sharded = wd / "one.shardc", wd / "sharded.shardc"
harness.run([args.shardc, "compile", args.model, "--plan", plan, "--mesh", "dp_replicate=1,dp_shard=1,cp=1,tp=1",
             "-o", one, "--quiet"])
harness.run([args.shardc, "compile", args.model, "--plan", plan, "--mesh", args.mesh, "-o", sharded, "--quiet"])
# Random token ids shaped like the model's input.
graph = onnx.load(args.model, load_external_data=False).graph
shape = [d.dim_value for d in graph.input[0].type.tensor_type.shape.dim]
ids = np.random.default_rng(0).integers(0, args.vocab, shape).astype(np.int64)
np.savez(wd / "in.npz", **{graph.input[0].name: ids})
harness.run([args.shardc_run, one, "--inputs", wd / "in.npz", "--outputs", wd / "one.npz"])
harness.run([args.shardc_run, sharded, "--inputs", wd / "in.npz", "--outputs", wd / "sharded.npz",
             "--threads", str(args.ranks)])
a, b = np.load(wd / "one.npz"), np.load(wd / "sharded.npz")
failures = []
if sorted(a.files) != sorted(b.files):
    failures.append(f"outputs differ: {sorted(set(a.files) ^ set(b.files))}")
grads = [k for k in a.files if k.startswith("grad.") and k in b.files]
worst = 0.0
for k in grads:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    rel = float(np.linalg.norm(x - y) / max(np.linalg.norm(x), 1e-30))
    worst = max(worst, rel)
    if not rel <= 1e-5:
        failures.append(f"{k}: relative L2 {rel:.2e}")
loss_rel = abs(float(a["loss"]) - float(b["loss"])) / abs(float(a["loss"]))
if not loss_rel <= 1e-5:
    failures.append(f"loss {float(b['loss'])} against {float(a['loss'])} unsharded")
label = f"{args.name} mesh {args.mesh}"
print(f"{label}: loss {float(b['loss']):.9g} (unsharded {float(a['loss']):.9g}), {len(grads)} gradients, "
      f"worst relative L2 {worst:.2e} (tolerance 1e-5)")
for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
raise SystemExit(1 if failures else 0)
