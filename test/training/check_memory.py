#!/usr/bin/env python3
"""`shardc report`'s memory per rank for a training step (tools/ReportMemory.cpp) against FSDP's
formula: masters, gradients and AdamW's moments divided by their shard counts, plus the largest
gathered layer and what the forward keeps for the backward. On llama_tiny with AdamW at
tp2 x dp_shard2 (activation checkpointing none, full, selective) and HSDP 2x2 it checks that

* the persistent block is exactly the masters and the optimizer state (two moments per master
  and the step count), and the gradients are as many f32 elements as the masters;
* the masters are the trainable parameters divided by their shard counts (norm weights stay
  whole over tp, so a little more than global/(tp*dp_shard));
* checkpointing lowers the saved activations (full below selective below none);
* the arena's live peak is at most the arena;
* every data-parallel collective of a gradient is one reduce-scatter per trainable parameter (plus
  HSDP's all-reduce of the shard over dp_replicate); other data-parallel all-reduces carry scalars
  (loss, token count, sums of squares), so no gradient crosses the data-parallel ranks twice;
* the collective bytes equal the analytic minimum of FSDP + TP: forward all-gathers and gradient
  reduce-scatters (dp-1) x the masters each on the wire, and two tp all-reduces of one activation
  per layer in forward and two in backward (none, selective).

    check_memory.py --shardc B --model llama_tiny.onnx --model-b4 llama_tiny_b4.onnx --workdir W
"""
import argparse
import json
import pathlib
import subprocess
import sys

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("--shardc", required=True)
ap.add_argument("--model", required=True)
ap.add_argument("--model-b4", required=True, help="the same model exported with batch 4 (HSDP 2x2 splits the batch 4 ways)")
ap.add_argument("--workdir", required=True)
HERE = pathlib.Path(__file__).resolve().parent
args = ap.parse_args()
wd = pathlib.Path(args.workdir)
wd.mkdir(parents=True, exist_ok=True)

PLAN = ("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\nmode: train\n"
        "optimizer: {name: adamw, lr: 1.0e-3}\nmax_grad_norm: 1.0\n")
DP = {"dp_shard", "dp_replicate"}
failures = []


def report(tag, mesh, extra="", model=args.model):
    plan, art = wd / f"plan.{tag}.yaml", wd / f"train.{tag}.shardc"
    plan.write_text(PLAN + extra)
    subprocess.run([args.shardc, "compile", model, "--plan", str(plan), "--mesh", mesh, "-o", str(art)],
                   check=True, capture_output=True, text=True)
    text = subprocess.run([args.shardc, "report", str(art)], check=True, capture_output=True, text=True).stdout
    print(f"--- {tag} ({mesh})\n" + "\n".join(l for l in text.splitlines() if l.startswith(("memory", "fsdp", "  largest"))))
    return json.loads(subprocess.run([args.shardc, "report", "--json", str(art)], check=True, capture_output=True,
                                     text=True).stdout)


def check(tag, r, shards):
    mem, f = r["memory"], r["memory"]["fsdp_formula"]
    expect = lambda ok, what: ok or failures.append(f"{tag}: {what}")
    states = 3 * f["trainable_parameters"] + 1  # master and two moments each, the step count
    expect(0 <= mem["persistent_bytes"] - (f["masters"] + f["optimizer_state"]) < 64 * states,
           f"persistent {mem['persistent_bytes']} is not masters {f['masters']} + optimizer state {f['optimizer_state']}"
           f" (+ at most 63 bytes of alignment per state)")
    expect(f["optimizer_state"] == 2 * f["masters"] + 4, f"optimizer state {f['optimizer_state']} is not 2 x masters + 4")
    expect(f["gradients"] == f["masters"] and f["reduce_dtype"] == "f32", f"gradients {f['gradients']} ({f['reduce_dtype']})")
    glob = r["global_parameter_bytes"]
    expect(glob / shards <= f["masters"] <= 1.15 * glob / shards,
           f"masters {f['masters']} not within [1, 1.15] x global {glob} / {shards}")
    expect(mem["live_peak_bytes"] <= mem["arena_bytes"], "live peak above the arena")
    expect(f["total"] == sum(f[k] for k in ("masters", "gradients", "optimizer_state", "largest_gathered_group",
                                           "saved_gathered_parameters", "saved_activations")), "total is not the sum")
    grads = [c for c in r["collectives"] if c["phase"] == "backward" and set(c["axes"].split(",")) & DP]
    scatters = [c for c in grads if c["kind"] == "reduce_scatter"]
    expect(len(scatters) == f["trainable_parameters"],
           f"{len(scatters)} data-parallel reduce-scatters for {f['trainable_parameters']} parameters")
    big = [c for c in grads if c["kind"] == "all_reduce" and c["bytes"] > 8 and c["axes"] != "dp_replicate"]
    expect(not big, f"{len(big)} data-parallel all-reduces of more than a scalar, first {big[:1]}")
    print(f"{tag}: planned {f['planned']} bytes, formula {f['total']} ({f['planned'] / f['total']:.2f}x)")
    return grads


def check_minimum(tag, r, dp, layers, act_bytes):
    """The collective bytes of the step against the analytic minimum of FSDP + TP: the forward
    gathers every parameter once ((dp-1) x its shard on the wire), the backward reduce-scatters
    every gradient once (the same), and TP all-reduces one activation after each row-parallel
    projection in forward and one input gradient per column-parallel group in backward (2 per
    layer each way)."""
    f = r["memory"]["fsdp_formula"]
    col = r["collectives"]
    wire = lambda cs: sum(c["ring_wire_bytes"] for c in cs)
    fwd_gather = [c for c in col if c["phase"] == "forward" and c["kind"] == "all_gather" and c["axes"] == "dp_shard"
                  and c["loc"]]  # the loc-less one gathers the logits output
    scatter = [c for c in col if c["kind"] == "reduce_scatter" and c["axes"] == "dp_shard"]
    minimum = (dp - 1) * f["masters"]
    for what, cs in (("forward all-gathers", fwd_gather), ("reduce-scatters", scatter)):
        got = wire(cs)
        print(f"{tag}: {what} {got} wire bytes, analytic minimum {minimum} ({got / minimum:.3f}x)")
        if got != minimum:
            failures.append(f"{tag}: {what} put {got} bytes on the wire, the minimum is {minimum}")
    for phase in ("forward", "backward"):
        tp = [c for c in col if c["phase"] == phase and c["axes"] == "tp" and c["kind"] == "all_reduce"]
        print(f"{tag}: {phase} tp all-reduces {len(tp)} of {sorted({c['bytes'] for c in tp})} bytes "
              f"(minimum {2 * layers} of {act_bytes})")
        if len(tp) != 2 * layers or any(c["bytes"] != act_bytes for c in tp):
            failures.append(f"{tag}: {len(tp)} {phase} tp all-reduces, wanted {2 * layers} of {act_bytes} bytes")


runs = {}
for ac in ("none", "full", "selective"):
    extra = "" if ac == "none" else f"activation_checkpointing: {ac}\n"
    runs[ac] = report(ac, "tp=2,dp_shard=2", extra)
    check(ac, runs[ac], 4)
    if ac != "full":  # full recomputes each layer's forward, its tp all-reduces included
        check_minimum(ac, runs[ac], dp=2, layers=4, act_bytes=1 * 64 * 256 * 4)  # local batch 1 x 64 x 256, f32
saved = {k: v["memory"]["fsdp_formula"]["saved_activations"] for k, v in runs.items()}
if not saved["full"] < saved["selective"] < saved["none"]:
    failures.append(f"saved activations do not fall with checkpointing: {saved}")
# The batch-4 export carries no weights: llama_tiny's are filled in (fill_weights.py).
b4 = wd / "llama_tiny_b4.onnx"
subprocess.run([sys.executable, HERE / "fill_weights.py", args.model_b4, args.model, "-o", b4], check=True)
hsdp = report("hsdp", "dp_replicate=2,dp_shard=2", model=b4)
check("hsdp", hsdp, 2)
if not any(c["kind"] == "all_reduce" and c["axes"] == "dp_replicate" and c["bytes"] > 8 for c in hsdp["collectives"]):
    failures.append("hsdp: no all-reduce of gradient shards over dp_replicate")

for f in failures:
    print("FAIL:", f)
sys.exit(1 if failures else 0)
