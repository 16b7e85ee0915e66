#!/usr/bin/env python3
"""Twenty training steps of llama_tiny's shape on a mesh against one rank: the same losses and the
same final parameters. The model is test/training/models/llama_tiny_b4.onnx (llama_tiny's graph
at a global batch of 4 x 32, so that HSDP 2x2 has a row per data-parallel rank), its parameters
filled from ../shared/models/llama_tiny.onnx by fill_weights.py. Plan: AdamW (lr 1e-3, betas
(0.9, 0.95), eps 1e-8, weight decay 0.1), max_grad_norm 1.0, fp32; `--sp` adds
sequence_parallel; `--lm-head colwise_rep` writes the auto plan out with lm_head colwise_rep (under
tp the vocabulary-parallel loss then runs on logits split over tp). Data: references_10step.npz's 300-token stream as tokens.bin, read by
shardc-run --steps 20 --data (128 tokens a step, so reads wrap around).

With --reference-only it runs one rank and keeps what the mesh runs compare with in --reference
(a directory: losses.json and the final parameters, params.npz). Otherwise it runs --mesh on
--ranks threads, consolidates every rank's saved parameter chunks (--save-state: the committed
checkpoint's rank<R>.npz, placed in their logical tensors by rank<R>.json), checks that
replicas agree, and compares: per-step losses (absolute difference within --tol, 1e-5),
grad norms (relative, --grad-norm-tol, 1e-4) and every parameter (max absolute difference, and relative L2
within --param-tol, 1e-4). Why 1e-4 and not 3e-5: AdamW moves an element by about lr times the
sign of its gradient while its moments are young, so an element whose gradient is at fp32's
rounding level (a cancellation: embed_tokens[308, 19] at step 2 is 7.9e-8 in PyTorch fp64,
3.2e-7 in fp32) moves differently on another mesh; cp2 ends 4.5e-5 from one rank in
embed_tokens that way, every other parameter and mesh within 1.6e-5 (docs/training.md).
    check_mesh20.py --shardc B --shardc-run R --model llama_tiny_b4.onnx --weights llama_tiny.onnx
                    --name llama_tiny_b4 --workdir W --reference REF (--reference-only | --mesh M --ranks N [--sp])
"""
import json
import pathlib
import shutil
import sys

import numpy as np

import harness

HERE = pathlib.Path(__file__).parent
ap = harness.arguments(__doc__)
ap.set_defaults(references=str(HERE / "references_10step.npz"))
ap.add_argument("--weights", required=True, help="the export holding the parameters (llama_tiny.onnx)")
ap.add_argument("--reference", required=True, help="directory of the one-rank run's results")
ap.add_argument("--reference-only", action="store_true")
ap.add_argument("--sp", action="store_true", help="sequence_parallel: true")
ap.add_argument("--lm-head", choices=["colwise_rep"], help="the auto plan's styles written out, with lm_head in this "
                "style (the vocabulary-parallel loss: loss_parallel is on under tp)")
ap.add_argument("--embed", choices=["embedding_rowwise"], help="the auto plan's styles written out, with embed_tokens "
                "in this style (the table split over tp on the vocabulary rows; its gradient computed as the "
                "local rows only)")
ap.add_argument("--steps", type=int, default=20)
ap.add_argument("--tol", type=float, default=1e-5, help="losses (absolute)")
ap.add_argument("--grad-norm-tol", type=float, default=1e-4, help="grad norms (relative)")
ap.add_argument("--param-tol", type=float, default=1e-4, help="relative L2 of every parameter")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
model = wd / "model.onnx"
harness.run([sys.executable, HERE / "fill_weights.py", args.model, args.weights, "-o", model])
meta = json.loads(bytes(np.load(args.references)["meta_json"]).decode())
hyper = meta["adamw"]
np.load(args.references)["tokens"].astype("<i4").tofile(wd / "tokens.bin")
plan = wd / "plan.yaml"
LLAMA_STYLES = {"self_attn.q_proj": "colwise", "self_attn.k_proj": "colwise", "self_attn.v_proj": "colwise",
                "self_attn.o_proj": "rowwise", "mlp.gate_proj": "colwise", "mlp.up_proj": "colwise",
                "mlp.down_proj": "rowwise"}
tp_plan = "tp_plan: auto\n"
if args.lm_head or args.embed:
    tp_plan = "tp_plan:\n" + "".join(f'  "layers.*.{m}": {s}\n' for m, s in LLAMA_STYLES.items()) + \
        (f'  "lm_head": {args.lm_head}\n' if args.lm_head else "") + \
        (f'  "embed_tokens": {args.embed}\n' if args.embed else "")
plan.write_text(tp_plan + "mp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"
                f"sequence_parallel: {'true' if args.sp else 'false'}\nmode: train\n"
                f"optimizer: {{name: adamw, lr: {hyper['lr']!r}, betas: [{hyper['betas'][0]!r}, "
                f"{hyper['betas'][1]!r}], eps: {hyper['eps']!r}, weight_decay: {hyper['weight_decay']!r}}}\n"
                f"max_grad_norm: {meta['max_grad_norm']!r}\n")
mesh, ranks = ("dp_replicate=1,dp_shard=1,cp=1,tp=1", 1) if args.reference_only else (args.mesh, args.ranks)
artifact = wd / "train.shardc"
harness.run([args.shardc, "compile", model, "--plan", plan, "--mesh", mesh, "-o", artifact, "--quiet"] +
            (["--emit-mlir", wd / "train.mlir"] if args.embed else []))
if args.embed and "tp=" in mesh:
    # The vocabulary-parallel embedding's gradient: each rank computes its [V/tp, H] rows only
    # (sc.embedding_grad with rows_from, a [V/tp, H] result), no tp collective carries it, and
    # under FSDP its reduce-scatter moves the tp shard (V/tp x H f32), not the whole table.
    import re
    import subprocess
    axes = dict((k, int(v)) for k, v in (a.split("=") for a in mesh.split(",")))
    import onnx
    V, H = next(list(t.dims) for t in onnx.load(str(model), load_external_data=False).graph.initializer
                if t.name.endswith("embed_tokens.weight"))
    grads = re.findall(r"sc\.embedding_grad [^\n]*-> tensor<(\d+)x(\d+)x?\w*>", (wd / "train.mlir").read_text())
    rows_from = "rows_from" in "".join(l for l in (wd / "train.mlir").read_text().splitlines() if "sc.embedding_grad" in l)
    report = json.loads(subprocess.run([args.shardc, "report", "--json", str(artifact)], check=True,
                                       capture_output=True, text=True).stdout)
    embed = [c for c in report["collectives"] if c["phase"] == "backward" and "embed_tokens" in c["loc"]]
    shard_bytes = V // axes["tp"] * H * 4
    print(f"embedding gradient: {len(grads)} sc.embedding_grad of {[f'{a}x{b}' for a, b in grads]} "
          f"(rows_from: {rows_from}); backward collectives of embed_tokens: "
          f"{[(c['kind'], c['axes'], c['bytes']) for c in embed]}")
    bad = [c for c in embed if "tp" in c["axes"].split(",") or c["bytes"] != shard_bytes]
    if not grads or any((int(a), int(b)) != (V // axes["tp"], H) for a, b in grads) or not rows_from or bad:
        print(f"FAIL: the embedding gradient is not the local [{V // axes['tp']}, {H}] rows: {grads} {bad}")
        sys.exit(1)
if args.lm_head and "tp=" in mesh:
    # The vocabulary-parallel loss: nothing gathered over tp in the forward (the logits stay
    # split), the row max and the two row sums all-reduced over tp instead.
    import subprocess
    report = json.loads(subprocess.run([args.shardc, "report", "--json", str(artifact)], check=True,
                                       capture_output=True, text=True).stdout)
    fwd_tp = [c for c in report["collectives"] if c["phase"] == "forward" and c["axes"] == "tp"]
    gathers = [c for c in fwd_tp if c["kind"] == "all_gather"]
    axes = dict((k, int(v)) for k, v in (a.split("=") for a in mesh.split(",")))
    row_bytes = 4 // (axes.get("dp_shard", 1) * axes.get("dp_replicate", 1)) * 32 * 4  # local [B, S] f32
    rows = [c for c in fwd_tp if c["kind"] == "all_reduce" and c["bytes"] == row_bytes]
    print(f"forward over tp: {len(gathers)} all-gathers, {len(rows)} all-reduces of one row statistic")
    if gathers or len(rows) != 3:
        print(f"FAIL: the loss is not vocabulary-parallel: {gathers[:1]} {len(rows)} row all-reduces")
        sys.exit(1)
harness.run([args.shardc_run, artifact, "--steps", args.steps, "--data", wd / "tokens.bin", "--threads", ranks,
             "--save-state", wd / "state", "--losses-out", wd / "losses.json"], timeout=600)


def consolidate(state_dir):
    """Whole parameters from the ranks' chunks of the committed checkpoint: each rank's
    rank<R>.json places each of its buffers in its logical tensor (global name, global_shape,
    offsets, sizes); every element's replicas must agree exactly."""
    state_dir = pathlib.Path(state_dir)
    top = json.loads((state_dir / "manifest.json").read_text())
    step = state_dir / top["step_dir"]
    whole = {}
    for r in range(top["world_size"]):
        chunks = np.load(step / f"rank{r}.npz")
        for entry in json.loads((step / f"rank{r}.json").read_text())["states"]:
            if entry["kind"] != "param":
                continue  # moments, the step count
            full = whole.setdefault(entry["global"], np.full(entry["global_shape"], np.nan, np.float64))
            index = tuple(slice(o, o + n) for o, n in zip(entry["offsets"], entry["sizes"]))
            part, have = chunks[entry["name"]].astype(np.float64).reshape(entry["sizes"]), full[index]
            seen = ~np.isnan(have)
            if (seen & (have != part)).any():
                raise SystemExit(f"FAIL: {entry['global']}: rank {r}'s chunk disagrees with another replica")
            full[index] = part
    missing = [n for n, t in whole.items() if np.isnan(t).any()]
    if missing:
        raise SystemExit(f"FAIL: no rank holds part of {missing}")
    return whole


out = wd / "result"
out.mkdir()
shutil.copy(wd / "losses.json", out / "losses.json")
params = consolidate(wd / "state")
np.savez(out / "params.npz", **params)
losses = json.loads((wd / "losses.json").read_text())
label = (f"llama_tiny_b4 {args.steps} steps mesh {mesh}{' sequence_parallel' if args.sp else ''}"
         f"{' lm_head ' + args.lm_head if args.lm_head else ''}{' embed_tokens ' + args.embed if args.embed else ''}")
if args.reference_only:
    ref_dir = pathlib.Path(args.reference)
    if ref_dir.exists():
        shutil.rmtree(ref_dir)
    shutil.copytree(out, ref_dir)
    print(f"{label}: losses {np.array2string(np.array(losses['loss']), precision=7)}; "
          f"{len(params)} parameters kept in {ref_dir}\nPASS: {label}")
    sys.exit(0)

ref_dir = pathlib.Path(args.reference)
want_losses = json.loads((ref_dir / "losses.json").read_text())
want = dict(np.load(ref_dir / "params.npz"))
failures = []
for key in ("loss", "grad_norm"):
    got, exp = np.array(losses[key], np.float64), np.array(want_losses[key], np.float64)
    diff = np.abs(got - exp) if got.shape == exp.shape else np.array([np.inf])
    rel = diff / np.abs(exp)
    print(f"{label}: {key} max absolute difference from one rank {diff.max():.2e}, relative {rel.max():.2e} "
          f"over {len(exp)} steps")
    # The loss within --tol absolute (the 1e-5); the grad norm (2 to 9 here) relative.
    tol = args.tol if key == "loss" else args.grad_norm_tol
    if not ((diff if key == "loss" else rel) <= tol).all():
        failures.append(f"{key}: differences {diff} exceed {tol:g}")
# A packed projection's parts are parameters of their own on a mesh: joined back along the
# dim where they add up to the one-rank parameter.
for base in sorted({n.rsplit(".part", 1)[0] for n in params if ".part" in n}):
    parts = sorted((n for n in params if n.startswith(base + ".part")), key=lambda n: int(n.rsplit("part", 1)[1]))
    dims = [d for d in range(params[parts[0]].ndim) if params[parts[0]].shape[d] != want[base].shape[d]]
    params[base] = np.concatenate([params.pop(n) for n in parts], axis=dims[0] if dims else 0)
if sorted(params) != sorted(want):
    failures.append(f"parameters differ: {sorted(set(params) ^ set(want))}")
max_abs, worst_rel, worst_name = 0.0, 0.0, ""
for name in sorted(set(params) & set(want)):
    got, exp = params[name], want[name]
    if got.shape != exp.shape:
        failures.append(f"{name}: shape {got.shape}, one rank's {exp.shape}")
        continue
    rel = float(np.linalg.norm(got - exp) / np.linalg.norm(exp))
    max_abs = max(max_abs, float(np.abs(got - exp).max()))
    if rel > worst_rel:
        worst_rel, worst_name = rel, name
    if not rel <= args.param_tol:
        failures.append(f"{name}: relative L2 {rel:.2e} from one rank")
print(f"{label}: {len(want)} parameters after {args.steps} steps: max absolute difference {max_abs:.2e}, "
      f"worst relative L2 {worst_rel:.2e} ({worst_name}; tolerance {args.param_tol:g})")
for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
sys.exit(1 if failures else 0)
