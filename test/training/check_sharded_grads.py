#!/usr/bin/env python3
"""`mode: train` gradients of a sharded program against the same model's unsharded program, for
exports without PyTorch training references (the e2e generator's GPT-2: packed QKV projection,
layer_norm, tanh GELU, learned positions, tied lm_head): compiles the model unsharded and on
--mesh, runs both on the same random token ids, and checks that the loss and every
`grad.<parameter>` agree (relative 1e-5 on the loss, relative L2 1e-5 per gradient: both are
fp32, the sharded one sums in another order), and that there are --grads of them (every
parameter the export declares trains: a model that lost its graph signature fails here).
With --adamw-steps N it then trains N AdamW steps (lr 1e-3, weight decay 0.1, max_grad_norm
1.0) on both programs from one random token stream and checks the losses (1e-5 absolute) and
the grad norms (1e-5 relative) step by step: the optimizer's view of sharded gradients (kv
heads repeated over tp, padded uneven shards) must not change the training.
    check_sharded_grads.py --shardc B --shardc-run R --model M.onnx --name gpt2_s --mesh tp=2
                           --ranks 2 --grads 28 --workdir W
"""
import json
import pathlib

import numpy as np
import onnx

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--vocab", type=int, help="token ids are drawn from [0, vocab) (default: the "
                                           "logits' last dimension)")
ap.add_argument("--grads", type=int, required=True, help="the number of gradients expected")
ap.add_argument("--adamw-steps", type=int, default=0, help="then train this many AdamW steps on both")
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
vocab = args.vocab or graph.output[0].type.tensor_type.shape.dim[-1].dim_value
ids = np.random.default_rng(0).integers(0, vocab, shape).astype(np.int64)
np.savez(wd / "in.npz", **{graph.input[0].name: ids})
harness.run([args.shardc_run, one, "--inputs", wd / "in.npz", "--outputs", wd / "one.npz"])
harness.run([args.shardc_run, sharded, "--inputs", wd / "in.npz", "--outputs", wd / "sharded.npz",
             "--threads", str(args.ranks)])
a, b = np.load(wd / "one.npz"), np.load(wd / "sharded.npz")
failures = []
if sorted(a.files) != sorted(b.files):
    failures.append(f"outputs differ: {sorted(set(a.files) ^ set(b.files))}")
grads = [k for k in a.files if k.startswith("grad.") and k in b.files]
if len(grads) != args.grads:
    failures.append(f"{len(grads)} gradients, expected {args.grads}")
worst = 0.0
for k in grads:
    x, y = a[k].astype(np.float64), b[k].astype(np.float64)
    if x.shape != y.shape:
        failures.append(f"{k}: shape {list(y.shape)}, unsharded {list(x.shape)}")
        continue
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

if args.adamw_steps:
    plan.write_text(plan.read_text() + "optimizer: {name: adamw, lr: 1.0e-3, betas: [0.9, 0.95], eps: 1.0e-8, "
                    "weight_decay: 0.1}\nmax_grad_norm: 1.0\n")
    np.random.default_rng(1).integers(0, vocab, 64 * int(np.prod(shape))).astype("<i4").tofile(wd / "tokens.bin")
    curves = []
    for tag, mesh, ranks in (("one", "dp_replicate=1,dp_shard=1,cp=1,tp=1", 1), ("sharded", args.mesh, args.ranks)):
        art = wd / f"{tag}.adamw.shardc"
        harness.run([args.shardc, "compile", args.model, "--plan", plan, "--mesh", mesh, "-o", art, "--quiet"])
        harness.run([args.shardc_run, art, "--steps", str(args.adamw_steps), "--data", wd / "tokens.bin",
                     "--threads", str(ranks), "--losses-out", wd / f"{tag}.losses.json"])
        curves.append(json.loads((wd / f"{tag}.losses.json").read_text()))
    (la, na), (lb, nb) = [(np.array(c["loss"], np.float64), np.array(c["grad_norm"], np.float64)) for c in curves]
    dl, dn = float(np.abs(la - lb).max()), float((np.abs(na - nb) / na).max())
    print(f"{label}: {args.adamw_steps} AdamW steps: losses {la[0]:.6f} .. {la[-1]:.6f}, worst loss difference "
          f"{dl:.2e} (tolerance 1e-5), worst grad norm difference {dn:.2e} relative (tolerance 1e-5)")
    if len(lb) != args.adamw_steps or not dl <= 1e-5 or not dn <= 1e-5:
        failures.append(f"AdamW steps: sharded losses {lb.tolist()} grad norms {nb.tolist()} against "
                        f"{la.tolist()} {na.tolist()} unsharded")
for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
raise SystemExit(1 if failures else 0)
