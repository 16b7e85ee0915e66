#!/usr/bin/env python3
"""CPU offload (`offload_policy: cpu`, FSDP2's CPUOffloadPolicy) against the same training without it.
llama_tiny's model (test/training/models/llama_tiny_b4.onnx, parameters filled from
../shared/models/llama_tiny.onnx) trains --steps steps of AdamW with clipping (mesh20's plan) from
references_10step.npz's 300-token stream on --mesh, compiled twice: with and without the key.
Checked:

* the losses and grad norms of every step, and every state after the last step (masters, AdamW's
  moments, the step count, each rank's checkpoint arrays), are bit for bit the same: the host
  steps are the same CPU kernels on the same values, in the same order;
* checkpoint/resume with offload: --steps/2 steps saved, then resumed for the rest, gives the
  straight run's later steps and final states bit for bit; and the offload checkpoint resumed by
  the artifact without offload (another artifact: loaded by logical tensor) gives the same steps;
* `shardc report --json`: the host states are exactly the masters and the optimizer state (the
  device's persistent block loses exactly those bytes: device persistent + host persistent = the
  persistent block without offload), the device formula plus the offloaded terms (masters,
  gradients, optimizer state) is the formula without offload, and the device arena is smaller.

    check_offload.py --shardc B --shardc-run R --model llama_tiny_b4.onnx --weights llama_tiny.onnx
                     --name llama_tiny_b4 --workdir W [--mesh M --ranks N] [--steps 6] [--checkpointing full]
"""
import json
import pathlib
import shutil
import subprocess
import sys

import numpy as np

import harness

HERE = pathlib.Path(__file__).parent
ap = harness.arguments(__doc__)
ap.set_defaults(references=str(HERE / "references_10step.npz"))
ap.add_argument("--weights", required=True, help="the export holding the parameters (llama_tiny.onnx)")
ap.add_argument("--steps", type=int, default=6)
ap.add_argument("--checkpointing", default="false", help="activation_checkpointing for both runs")
args = ap.parse_args()

wd = pathlib.Path(args.workdir)
if wd.exists():
    shutil.rmtree(wd)
wd.mkdir(parents=True)
model = wd / "model.onnx"
harness.run([sys.executable, HERE / "fill_weights.py", args.model, args.weights, "-o", model])
meta = json.loads(bytes(np.load(args.references)["meta_json"]).decode())
np.load(args.references)["tokens"].astype("<i4").tofile(wd / "tokens.bin")
base_plan = harness.adamw_plan(meta) + f"activation_checkpointing: {args.checkpointing}\n"
label = f"llama_tiny_b4 offload mesh {args.mesh} checkpointing {args.checkpointing}"
failures = []


def compile_(tag, plan_text):
    plan, art = wd / f"plan.{tag}.yaml", wd / f"train.{tag}.shardc"
    plan.write_text(plan_text)
    harness.run([args.shardc, "compile", model, "--plan", plan, "--mesh", args.mesh, "-o", art, "--quiet"])
    return art


def train(art, tag, n, extra=()):
    out = wd / f"losses.{tag}.json"
    harness.run([args.shardc_run, art, "--steps", n, "--data", wd / "tokens.bin", "--threads", args.ranks,
                 "--losses-out", out, *extra], timeout=600)
    return json.loads(out.read_text())


def states(ckpt):
    """Every rank's saved state arrays of the committed checkpoint, by (rank, name)."""
    ckpt = pathlib.Path(ckpt)
    step = ckpt / json.loads((ckpt / "manifest.json").read_text())["step_dir"]
    out = {}
    for r in range(args.ranks):
        with np.load(step / f"rank{r}.npz") as z:
            out.update({(r, k): z[k] for k in z.files})
    return out


def same_bits(a, b):
    return np.asarray(a, np.float32).tobytes() == np.asarray(b, np.float32).tobytes()


def compare_states(what, got, want):
    if sorted(got) != sorted(want):
        failures.append(f"{what}: state names differ: {sorted(set(got) ^ set(want))[:4]}")
        return
    diff = [k for k in want if got[k].tobytes() != want[k].tobytes() or got[k].dtype != want[k].dtype]
    print(f"{label}: {what}: {len(want) - len(diff)} of {len(want)} state arrays bit-identical")
    if diff:
        worst = max(float(np.abs(got[k].astype(np.float64) - want[k]).max()) for k in diff)
        failures.append(f"{what}: {len(diff)} state arrays differ (first {diff[0]}, max abs {worst:.3e})")


base = compile_("base", base_plan)
off = compile_("offload", base_plan + "offload_policy: cpu\n")
n, half = args.steps, args.steps // 2

# 1. The same training with and without offload.
want = train(base, "base", n, ["--save-state", wd / "base"])
got = train(off, "offload", n, ["--save-state", wd / "offload"])
for key in ("loss", "grad_norm"):
    ok = same_bits(got[key], want[key])
    print(f"{label}: {n} steps, {key} {'bit-identical' if ok else 'DIFFERENT'} with and without offload "
          f"({np.array2string(np.asarray(got[key]), precision=7)})")
    if not ok:
        failures.append(f"{key}: offload {got[key]}, without {want[key]}")
compare_states(f"after {n} steps", states(wd / "offload"), states(wd / "base"))

# 2. Checkpoint and resume with offload (and into the artifact without offload).
train(off, "first", half, ["--checkpoint-dir", wd / "ckpt"])
shutil.copytree(wd / "ckpt", wd / "ckpt_for_base")
rest = train(off, "resumed", n - half, ["--resume", wd / "ckpt", "--checkpoint-dir", wd / "ckpt"])
ok = all(same_bits(rest[k], got[k][half:]) for k in ("loss", "grad_norm"))
print(f"{label}: {half} steps + save + resume + {n - half} steps: {'bit-identical' if ok else 'DIFFERENT'} to {n} straight")
if not ok:
    failures.append(f"resumed {rest}, straight {got}")
compare_states("resumed, final states", states(wd / "ckpt"), states(wd / "offload"))
cross = train(base, "cross", n - half, ["--resume", wd / "ckpt_for_base"])
ok = all(same_bits(cross[k], want[k][half:]) for k in ("loss", "grad_norm"))
print(f"{label}: the offload checkpoint resumed without offload: {'bit-identical' if ok else 'DIFFERENT'}")
if not ok:
    failures.append(f"offload checkpoint resumed without offload {cross}, straight {want}")


# 3. Memory per rank: device and host.
def report(art):
    r = subprocess.run([args.shardc, "report", "--json", str(art)], check=True, capture_output=True, text=True)
    text = subprocess.run([args.shardc, "report", str(art)], check=True, capture_output=True, text=True).stdout
    print("\n".join(l for l in text.splitlines() if l.startswith(("memory", "host", "fsdp", "  offloaded"))))
    return json.loads(r.stdout)["memory"]


print(f"--- without offload ({args.mesh})")
mb = report(base)
print(f"--- offload_policy: cpu ({args.mesh})")
mo = report(off)
fb, fo, host = mb["fsdp_formula"], mo["fsdp_formula"], mo.get("host")
expect = lambda ok, what: ok or failures.append(what)
if not host:
    failures.append("the offload report has no host memory")
else:
    offloaded = fb["masters"] + fb["gradients"] + fb["optimizer_state"]
    expect(mo["persistent_bytes"] + host["persistent_bytes"] == mb["persistent_bytes"],
           f"device persistent {mo['persistent_bytes']} + host persistent {host['persistent_bytes']} != "
           f"{mb['persistent_bytes']} without offload")
    states_n = 3 * fb["trainable_parameters"] + 1
    expect(0 <= host["persistent_bytes"] - (fb["masters"] + fb["optimizer_state"]) < 64 * states_n,
           f"host persistent {host['persistent_bytes']} is not the masters and optimizer state (+ alignment)")
    expect(host["offloaded_formula_terms"] == offloaded, f"offloaded terms {host['offloaded_formula_terms']} != {offloaded}")
    expect(fo["total"] + host["offloaded_formula_terms"] == fb["total"],
           f"device formula {fo['total']} + offloaded {host['offloaded_formula_terms']} != formula {fb['total']}")
    expect(host["arena_bytes"] >= max(fb["masters"] // fb["trainable_parameters"], 1),
           f"host arena {host['arena_bytes']} holds no gradient shard")
    expect(mo["arena_bytes"] < mb["arena_bytes"], f"device arena {mo['arena_bytes']} not below {mb['arena_bytes']}")
    dev_o, dev_b = mo["persistent_bytes"] + mo["arena_bytes"], mb["persistent_bytes"] + mb["arena_bytes"]
    print(f"{label}: device planned {dev_o} bytes with offload, {dev_b} without ({dev_b - dev_o} fewer); "
          f"host {host['persistent_bytes'] + host['arena_bytes']} (persistent {host['persistent_bytes']}, "
          f"arena {host['arena_bytes']}); device formula {fo['total']} + offloaded {offloaded} = {fb['total']}")

for f in failures:
    print("  " + f)
print(("FAIL: " if failures else "PASS: ") + label)
sys.exit(1 if failures else 0)
