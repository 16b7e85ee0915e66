#!/usr/bin/env python3
"""shardc-run --weights (docs/runtime.md#hugging-face-checkpoints): a real checkpoint bound by
Hugging Face parameter name, on a shared export, against onnxruntime. numpy and onnx only.

From the export's initializers this writes, by hand (8-byte little-endian header length, JSON,
data), a Hugging Face checkpoint of *perturbed* parameters: each parameter under its Hugging Face
name (the module path without the export wrapper's `m.`; a Linear weight the exporter folded into
a transposed `val_N`, found by its `pkg.onnxscript.optimizer.folded_from` metadata, back in
PyTorch's [out, in]; a tied weight under --tied's name) plus an extra `score.weight` the graph
does not use; a bf16 copy; a copy sharded into two files with model.safetensors.index.json (the
tied weight under its other name); and the export with the perturbed initializers (and one with
them rounded to bf16). Then, for every --mesh (compiled with the fp32 plan), shardc-run --weights
on each checkpoint must match onnxruntime on the matching modified export (fp32: 2e-4 absolute on
the logits; the bf16 file against the bf16-rounded export, same tolerance), while the artifact's
own weights differ by far more. On the first mesh: the one-line errors (a missing tensor with its
nearest names, a shape mismatch of a transposed weight, a malformed header) and the notes (the
unused tensor, the bf16 conversion).
With --train: the round trip: 2 AdamW steps of a train artifact started from the f32 checkpoint
(--weights: its step-1 loss must be the checkpoint's loss by onnxruntime), --save-state,
`shardc export-weights`, and the inference artifact run with --weights on the export against
onnxruntime on the export with the exported parameters.
    check_weights.py --shardc B --shardc-run R --model M.onnx --workdir W
                     [--mesh 1:1 --mesh tp=2:2 ...] [--tied lm_head.weight=model.embed_tokens.weight] [--train]
                     [--vocab 128]
"""
import argparse
import ast
import json
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
ap.add_argument("--shardc", required=True)
ap.add_argument("--shardc-run", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--workdir", required=True)
ap.add_argument("--mesh", action="append", default=[], metavar="MESH:RANKS", help="'1:1' is unsharded")
ap.add_argument("--tied", default="", help="HF_NAME=KEPT_NAME: the tied weight as transformers saves it")
ap.add_argument("--train", action="store_true")
ap.add_argument("--nproc", action="store_true", help="run the sharded checkpoint's multi-rank runs as processes (mpirun)")
ap.add_argument("--tol", type=float, default=2e-4)
ap.add_argument("--vocab", type=int, default=256, help="token ids are drawn below this")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
failures = []
FP32_PLAN = "tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n"


def run(cmd, ok=True):
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=280)
    if ok and r.returncode != 0:
        print(f"FAIL: {' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        sys.exit(1)
    return r


# --- the parameters: initializer -> (Hugging Face name, transposed) ---------------------------
model = onnx.load(args.model)
meta = {vi.name: {p.key: p.value for p in vi.metadata_props} for vi in model.graph.value_info}
params = {}  # initializer name -> (hf name, transposed)
for t in model.graph.initializer:
    if "." in t.name and not t.name.startswith(("val_", "onnx::", "/")) and t.data_type == onnx.TensorProto.FLOAT:
        params[t.name] = (t.name[2:] if t.name.startswith("m.") else t.name, False)
        continue
    folded = meta.get(t.name, {}).get("pkg.onnxscript.optimizer.folded_from")
    if folded and len(t.dims) == 2:
        src = ast.literal_eval(folded)
        if len(src) == 1 and src[0].startswith("m."):
            params[t.name] = (src[0][2:], True)  # a Linear weight, [in, out] in the graph
tied = dict([args.tied.split("=")]) if args.tied else {}
rng = np.random.default_rng(7)
graph_values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer if t.name in params}
perturbed = {}
for name, a in graph_values.items():
    scale = 0.25 * (float(a.std()) if a.std() > 0 else 0.1)
    perturbed[name] = (a + scale * rng.standard_normal(a.shape)).astype(np.float32)


def bf16_round(a):
    u = a.astype(np.float32).view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16
    return u.astype(np.uint32).view(np.float32)


def hf_tensors(values, use_tied=True):
    out = {}
    for name, a in values.items():
        hf, transposed = params[name]
        out[tied.get(hf, hf) if use_tied else hf] = np.ascontiguousarray(a.T if transposed else a)
    return out


def write_safetensors(path, tensors, dtype="F32"):
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name], np.float32)
        raw = (bf16_round(a).view(np.uint32) >> 16).astype("<u2").tobytes() if dtype == "BF16" else a.astype("<f4").tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    pathlib.Path(path).write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def modified_onnx(path, values):
    m = onnx.load(args.model)
    for t in m.graph.initializer:
        if t.name in values:
            t.CopyFrom(numpy_helper.from_array(values[t.name], t.name))
    onnx.save(m, str(path))


def ort_logits(path, ids):
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: ids})[0]


shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
ids = np.random.default_rng(3).integers(0, args.vocab, shape).astype(np.int64)
np.savez(wd / "in.npz", input_ids=ids)
tensors = hf_tensors(perturbed)
extra = {"score.weight": np.ones((3, 4), np.float32)}
write_safetensors(wd / "model.safetensors", {**tensors, **extra})
write_safetensors(wd / "model.bf16.safetensors", tensors, "BF16")
shards = wd / "sharded"
shards.mkdir()
untied = hf_tensors(perturbed, use_tied=False)
names = sorted(untied)
weight_map = {}
for k, part in enumerate((names[: len(names) // 2], names[len(names) // 2:])):
    fname = f"model-{k + 1:05d}-of-00002.safetensors"
    write_safetensors(shards / fname, {n: untied[n] for n in part})
    weight_map.update({n: fname for n in part})
(shards / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
modified_onnx(wd / "perturbed.onnx", perturbed)
modified_onnx(wd / "perturbed_bf16.onnx", {k: bf16_round(v) for k, v in perturbed.items()})
want = ort_logits(wd / "perturbed.onnx", ids)
want_bf16 = ort_logits(wd / "perturbed_bf16.onnx", ids)
own = ort_logits(args.model, ids)
gap = float(np.max(np.abs(own - want)))
print(f"{len(params)} parameters bound by name; the perturbation moves the logits by {gap:.3f} (tolerance {args.tol:g})")
if not gap > 100 * args.tol:
    failures.append(f"the perturbation moves the logits by only {gap:.2e}: the check could not fail")
(wd / "plan.yaml").write_text(FP32_PLAN)


def run_weights(artifact, ranks, weights, ok=True, processes=False):
    out = wd / "out.npz"
    if out.exists():
        out.unlink()
    cmd = [args.shardc_run, artifact, "--inputs", wd / "in.npz", "--outputs", out, "--weights", weights]
    r = run(cmd + ([("--nproc" if processes else "--threads"), str(ranks)] if ranks > 1 else []), ok)
    return r, (np.load(out)[model.graph.output[0].name] if r.returncode == 0 else None)


for cell in args.mesh or ["1:1"]:
    mesh, ranks = cell.rsplit(":", 1)
    ranks = int(ranks)
    artifact = wd / f"m.{mesh.replace(',', '_').replace('=', '')}.shardc"
    run([args.shardc, "compile", args.model, "--plan", wd / "plan.yaml", "--quiet", "-o", artifact]
        + (["--mesh", mesh] if mesh != "1" else []))
    for label, weights, ref in (("f32", wd / "model.safetensors", want), ("bf16", wd / "model.bf16.safetensors", want_bf16),
                                ("sharded", shards, want)):
        processes = args.nproc and label == "sharded" and ranks > 1
        r, got = run_weights(artifact, ranks, weights, processes=processes)
        err = float(np.max(np.abs(got - ref)))
        print(f"mesh {mesh} ({ranks} {'processes' if processes else 'ranks'}), {label} checkpoint: "
              f"max |shardc - onnxruntime| {err:.2e}")
        if not err <= args.tol:
            failures.append(f"mesh {mesh} {label}: {err:.2e} > {args.tol:g}")
        notes = [line for line in r.stderr.splitlines() if "weights:" in line]
        if label == "f32" and not any("1 tensor of model.safetensors not used by the graph: score.weight" in n
                                      for n in notes):
            failures.append(f"mesh {mesh}: no note on the unused score.weight: {r.stderr[-800:]}")
        if label == "bf16" and notes.count("shardc-run: weights: converting bf16 -> f32") != 1:
            failures.append(f"mesh {mesh}: the bf16 conversion note is not there once: {r.stderr[-800:]}")
    if cell != (args.mesh or ["1:1"])[0] or "model.layers.0.mlp.up_proj.weight" not in tensors:
        continue  # the errors once, on a Llama-style model
    # The errors, one line each, naming both sides.
    cases = []
    missing = {k: v for k, v in tensors.items() if not k.endswith("mlp.up_proj.weight")}
    cases.append(("missing", missing, "weight 'model.layers.0.mlp.up_proj.weight' (module path "
                  "m.model.layers.0.mlp.up_proj.weight) is not in missing.safetensors; nearest: '"))
    k_proj = "model.layers.0.self_attn.k_proj.weight"
    wrong = dict(tensors, **{k_proj: np.ascontiguousarray(tensors[k_proj].T)})
    o, i = tensors[k_proj].shape
    cases.append(("shape", wrong, f"weight '{k_proj}' (module path m.{k_proj}) has shape [{i}, {o}] in "
                  f"shape.safetensors, the graph wants [{o}, {i}] (stored transposed)"))
    for case, ts, expect in cases:
        write_safetensors(wd / f"{case}.safetensors", ts)
        r, _ = run_weights(artifact, ranks, wd / f"{case}.safetensors", ok=False)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        print(f"{case}: exit {r.returncode}: {lines[-1] if lines else ''}")
        if r.returncode == 0 or len(lines) != 1 or expect not in lines[0]:
            failures.append(f"{case}: expected one error line with '{expect}', got exit {r.returncode}: {r.stderr[-800:]}")
    raw = bytearray((wd / "model.safetensors").read_bytes())
    raw[0:8] = struct.pack("<Q", len(raw))
    (wd / "malformed.safetensors").write_bytes(bytes(raw))
    r, _ = run_weights(artifact, ranks, wd / "malformed.safetensors", ok=False)
    print(f"malformed: exit {r.returncode}: {r.stderr.strip()}")
    if r.returncode == 0 or "not a safetensors file (header length" not in r.stderr:
        failures.append(f"malformed header: {r.stderr[-800:]}")

if args.train:
    # The round trip: train from the checkpoint, export, run the export.
    train_plan = wd / "train.yaml"
    train_plan.write_text(FP32_PLAN + "mode: train\noptimizer: {name: adamw, lr: 0.001}\n")
    run([args.shardc, "compile", args.model, "--plan", train_plan, "--quiet", "-o", wd / "train.shardc"])
    ids.astype("<i4").tofile(wd / "tokens.bin")
    r = run([args.shardc_run, wd / "train.shardc", "--steps", "2", "--data", wd / "tokens.bin", "--weights",
             wd / "model.safetensors", "--losses-out", wd / "losses.json", "--save-state", wd / "state"])
    loss = json.loads((wd / "losses.json").read_text())["loss"]
    z = want[:, :-1].astype(np.float64)
    z = z - z.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce = -np.take_along_axis(logp, ids[:, 1:, None], -1).mean()
    rel = abs(loss[0] - ce) / ce
    print(f"train from the checkpoint: step-1 loss {loss[0]:.7f}, onnxruntime's on the checkpoint {ce:.7f} "
          f"(relative {rel:.1e}); step 2 {loss[1]:.7f}")
    if not rel <= 1e-5:
        failures.append(f"the first training step's loss {loss[0]} is not the checkpoint's {ce}")
    run([args.shardc, "export-weights", wd / "state", "-o", wd / "export.safetensors"])
    raw = (wd / "export.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    header.pop("__metadata__", None)
    exported = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"])
                for k, v in header.items()}
    inverse = {tied.get(hf, hf): (name, tr) for name, (hf, tr) in params.items()}
    trained = {inverse[k][0]: (a.T if inverse[k][1] else a) for k, a in exported.items()}
    modified_onnx(wd / "trained.onnx", trained)
    want_trained = ort_logits(wd / "trained.onnx", ids)
    _, got = run_weights(wd / "m.1.shardc" if (wd / "m.1.shardc").exists() else next(wd.glob("m.*.shardc")),
                         int((args.mesh or ["1:1"])[0].rsplit(":", 1)[1]), wd / "export.safetensors")
    err = float(np.max(np.abs(got - want_trained)))
    moved = float(np.max(np.abs(want_trained - want)))
    print(f"round trip: the export of 2 steps ({len(exported)} tensors, logits moved {moved:.3f}) run with --weights: "
          f"max |shardc - onnxruntime| {err:.2e}")
    if not err <= args.tol or not moved > 100 * args.tol:
        failures.append(f"round trip: error {err:.2e}, training moved the logits by {moved:.2e}")

for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + f"{pathlib.Path(args.model).name} --weights")
sys.exit(1 if failures else 0)
