#!/usr/bin/env python3
"""Checkpoints of shardc-run (docs/training.md#checkpoints): the commit across ranks, loading onto
another mesh, and `shardc export-weights`, on a shared export trained with check_adamw.py's plan
(AdamW, clipping) from the references' token stream (adamw/tokens as tokens.bin, --data).

1. Straight: 4 steps on --mesh (--ranks ranks), --checkpoint-every 2.
2. Crash: the same 4 steps with --checkpoint-every 1 under shardc-run-testhooks with
   SHARDC_TEST_DIE_IN_SAVE=1:2: rank 1 dies in the save after step 2, its files written, before
   the commit (a thread fails its save; with --nproc, a process _exits under mpirun). The run must
   fail; manifest.json must still name step-00000001, whose rank files are whole; resuming from it
   (--resume) must give steps 2..4 bit for bit as the straight run.
3. Resharded: each --to MESH:RANKS compiles the model for that mesh, resumes from the straight run's
   step-2 checkpoint (saved on --mesh) and runs steps 3 and 4: losses and grad norms within 1e-5
   (relative) of the straight run's.
4. Export: `shardc export-weights` of the straight run's checkpoint (step 4) must equal, exactly,
   every parameter assembled here from the rank files (numpy, by the offsets and sizes of each
   rank's metadata, transposes undone), and its names and shapes must be the Hugging Face
   state_dict's of the model as the references record them (a tied weight once).
A model without references (--vocab V: the e2e generator's GPT-2, whose packed c_attn is split
into parts under tp and whole on one rank) trains on 200 pseudo-random tokens below V, with the
references' optimizer; its export is checked against the rank files only.
    check_checkpoint.py --shardc B --shardc-run R --testhooks T --model M.onnx --name llama_tiny
                        --mesh tp=2 --ranks 2 --workdir W [--to tp=2,dp_shard=2:4 ...] [--nproc]
"""
import json
import os
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np

import harness

ap = harness.arguments(__doc__)
ap.add_argument("--testhooks", required=True, help="shardc-run-testhooks (SHARDC_TEST_DIE_IN_SAVE)")
ap.add_argument("--to", action="append", default=[], metavar="MESH:RANKS",
                help="resume the step-2 checkpoint on this mesh (repeatable)")
ap.add_argument("--nproc", action="store_true", help="ranks as processes under mpirun (--nproc), not threads")
ap.add_argument("--vocab", type=int, help="a model without references: tokens below this vocabulary size")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
ref = np.load(args.references)
meta = json.loads(bytes(ref["meta_json"]).decode())
p = args.name + "/"
plan = wd / "plan.yaml"
plan.write_text(harness.adamw_plan(meta))
if args.vocab:
    np.random.default_rng(11).integers(0, args.vocab, 200).astype("<i4").tofile(wd / "tokens.bin")
else:
    ref[p + "adamw/tokens"].astype("<i4").tofile(wd / "tokens.bin")
label = f"{args.name} mesh {args.mesh}{' (processes)' if args.nproc else ''}"
failures = []


def compile_for(mesh, out):
    harness.run([args.shardc, "compile", args.model, "--plan", plan, "--mesh", mesh, "-o", out, "--quiet"])
    return out


def ranks_opt(n):
    return ["--nproc" if args.nproc else "--threads", str(n)]


def steps(artifact, n, ranks, extra, binary=None, env=None, expect_ok=True):
    """Runs n steps from tokens.bin; returns {'loss': [...], 'grad_norm': [...]} (or the failed run)."""
    out = wd / f"losses.{len(list(wd.glob('losses.*')))}.json"
    cmd = [binary or args.shardc_run, artifact, "--steps", str(n), "--data", wd / "tokens.bin",
           "--losses-out", out] + ranks_opt(ranks) + extra
    if expect_ok:
        harness.run(cmd)
        return json.loads(out.read_text())
    return subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=280, env=env)


def committed(d):
    return json.loads((d / "manifest.json").read_text())["step_dir"]


artifact = compile_for(args.mesh, wd / "train.shardc")
straight = steps(artifact, 4, args.ranks, ["--checkpoint-dir", wd / "straight", "--checkpoint-every", "2"])
print(f"{label}: straight losses {straight['loss']}")

# 2. A rank dies between writing its files and the commit of step 2.
env = dict(os.environ, SHARDC_TEST_DIE_IN_SAVE="1:2")
crash = wd / "crash"
r = steps(artifact, 4, args.ranks, ["--checkpoint-dir", crash, "--checkpoint-every", "1"], binary=args.testhooks,
          env=env, expect_ok=False)
last = ([line for line in r.stderr.splitlines() if "SHARDC_TEST_DIE_IN_SAVE" in line] or [""])[-1]
print(f"{label}: rank 1 killed in the save of step 2: exit {r.returncode}, '{last}'")
if r.returncode == 0:
    failures.append("the run whose rank 1 died in a save succeeded")
if "SHARDC_TEST_DIE_IN_SAVE" not in r.stderr:
    failures.append(f"the test hook did not fire: {r.stderr[-2000:]}")
if committed(crash) != "step-00000001":
    failures.append(f"after the crash manifest.json names {committed(crash)}, not step-00000001")
if not (crash / "step-00000002" / "rank1.npz").exists():
    failures.append("rank 1's files of step 2 are not there (the hook fires after they are written)")
for k in range(args.ranks):
    with np.load(crash / "step-00000001" / f"rank{k}.npz") as z:
        if not z.files or any(z[f].size == 0 and z[f].ndim for f in z.files):
            failures.append(f"step-00000001/rank{k}.npz is not whole")
resumed = steps(artifact, 3, args.ranks, ["--resume", crash])
same = all(np.asarray(resumed[k], np.float32).tobytes() == np.asarray(straight[k][1:], np.float32).tobytes()
           for k in ("loss", "grad_norm"))
print(f"{label}: resumed from step 1 after the crash: steps 2..4 {'bit-identical' if same else 'DIFFERENT'}")
if not same:
    failures.append(f"resumed after the crash {resumed}, straight {straight}")

# 3. The step-2 checkpoint onto other meshes.
two = wd / "two"
steps(artifact, 2, args.ranks, ["--checkpoint-dir", two])
for target in args.to:
    mesh, n = target.rsplit(":", 1)
    other = compile_for(mesh, wd / f"train.{n}.{mesh.replace(',', '_').replace('=', '')}.shardc")
    got = steps(other, 2, int(n), ["--resume", two])
    worst = 0.0
    for k in ("loss", "grad_norm"):
        want = np.asarray(straight[k][2:], np.float64)
        worst = max(worst, float(np.max(np.abs(np.asarray(got[k]) - want) / np.abs(want))))
    print(f"{label}: step-2 checkpoint resumed on {mesh} ({n} ranks): steps 3, 4 losses {got['loss']}, "
          f"worst relative difference {worst:.2e}")
    if not worst <= 1e-5:
        failures.append(f"resumed on {mesh}: relative difference {worst:.2e} (tolerance 1e-5)")

# 4. export-weights against the rank files, and the Hugging Face names.
out = wd / "model.safetensors"
harness.run([args.shardc, "export-weights", wd / "straight", "-o", out] + (["--strip-prefix", ""] if args.vocab else []))
raw = out.read_bytes()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
header.pop("__metadata__", None)
exported = {k: np.frombuffer(raw[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]], "<f4").reshape(v["shape"])
            for k, v in header.items() if v["dtype"] == "F32"}
step = wd / "straight" / committed(wd / "straight")
whole = {}  # global name -> (array, transform)
for k in range(args.ranks):
    rank_meta = json.loads((step / f"rank{k}.json").read_text())
    with np.load(step / f"rank{k}.npz") as z:
        for s in rank_meta["states"]:
            if s["kind"] != "param":
                continue
            a = whole.setdefault(s["global"], (np.full(s["global_shape"], np.nan, np.float32), s["transform"]))[0]
            box = tuple(slice(o, o + z_) for o, z_ in zip(s["offsets"], s["sizes"]))
            a[box] = z[s["name"]][tuple(slice(0, z_) for z_ in s["sizes"])]
mismatched = []
by_onnx = {}
for name, (a, transform) in whole.items():
    a = a.T if transform == "transpose" else a
    by_onnx[name] = a
if any(np.isnan(a).any() for a in by_onnx.values()):
    failures.append("the rank files do not cover every parameter")
if args.vocab:  # no references: the rank files' parameters under their own names
    params = [{"name": g, "aliases": [g], "torch_shape": list(a.shape)} for g, a in by_onnx.items()]
    by_onnx = {"m." + g: a for g, a in by_onnx.items()}
else:
    params = meta["models"][args.name]["params"]
want_names = {q["name"]: q for q in params}
if set(exported) != set(want_names):
    failures.append(f"exported names {sorted(set(exported) - set(want_names))} not in the model's state_dict, "
                    f"{sorted(set(want_names) - set(exported))} missing")
for q in params:
    got = exported.get(q["name"])
    if got is None:
        continue
    src = [by_onnx[g] for g in ("m." + alias for alias in q["aliases"]) if g in by_onnx]
    if list(got.shape) != q["torch_shape"]:
        mismatched.append(f"{q['name']} shape {list(got.shape)}, PyTorch's {q['torch_shape']}")
    elif len(src) != 1 or src[0].tobytes() != got.tobytes():
        mismatched.append(f"{q['name']}: differs from the rank files' values")
failures += mismatched
print(f"{label}: export-weights after 4 steps: {len(exported)} tensors under the Hugging Face names, "
      f"{'equal to the rank files bit for bit' if not mismatched else f'{len(mismatched)} MISMATCHED'}")

for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
sys.exit(1 if failures else 0)
