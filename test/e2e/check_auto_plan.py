#!/usr/bin/env python3
# The derived `tp_plan: auto` (compiler/lib/Plan/PlanDerive.cpp) against the plan an expert
# writes by hand (Hugging Face's base_model_tp_plan, test/e2e/plans/hf-*.yaml): for one model
# at one mesh, with and without sequence parallelism, both plans are compiled and
# `shardc report --json` read (as check_report.py reads it). The modules each plan shards, every
# collective (kind, axes, phase, layer, dtype, bytes) and the total collective bytes must be equal.
import argparse
import collections
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def resolved(shardc, model, plan, mesh):
    """The `# resolved:` lines of `shardc plan --print`: module -> style."""
    out = subprocess.run([shardc, "plan", model, f"--plan={plan}", f"--mesh={mesh}", "--print"], check=True,
                         capture_output=True, text=True).stdout
    lines = out.split("# resolved:", 1)[1].splitlines()[1:]
    return dict(l.lstrip("# ").split(": ", 1) for l in lines if l.startswith("#   "))


def report(shardc, model, plan, mesh, art):
    subprocess.run([shardc, "compile", model, "-o", art, "--quiet", f"--plan={plan}", f"--mesh={mesh}"], check=True)
    return json.loads(subprocess.run([shardc, "report", art, "--json"], check=True, capture_output=True,
                                     text=True).stdout)


def collectives(rep):
    keys = ("kind", "axes", "phase", "layer", "dtype", "bytes")
    return collections.Counter(tuple(str(c.get(k)) for k in keys) for c in rep["collectives"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--hf-plan", required=True, help="hf-<family>: plans/<name>.yaml and plans/<name>-sp.yaml")
    ap.add_argument("--mesh", default="tp=2")
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    name = os.path.splitext(os.path.basename(args.model))[0]
    problems = []
    for sp in (False, True):
        suffix = "-sp" if sp else ""
        auto = os.path.join(HERE, "plans", f"fp32{suffix}.yaml")
        hand = os.path.join(HERE, "plans", f"{args.hf_plan}{suffix}.yaml")
        label = f"{name} {args.mesh}{' sp' if sp else ''}"
        ra, rh = resolved(args.shardc, args.model, auto, args.mesh), resolved(args.shardc, args.model, hand, args.mesh)
        if ra != rh:
            diff = sorted(set(ra.items()) ^ set(rh.items()))
            problems.append(f"{label}: the plans shard different modules: {diff[:6]}")
        tag = f"{name}.{args.mesh.replace(',', '_').replace('=', '')}{suffix}"
        rep_a = report(args.shardc, args.model, auto, args.mesh, os.path.join(args.workdir, f"auto.{tag}.shardc"))
        rep_h = report(args.shardc, args.model, hand, args.mesh, os.path.join(args.workdir, f"hf.{tag}.shardc"))
        ca, ch = collectives(rep_a), collectives(rep_h)
        if ca != ch:
            problems.append(f"{label}: collectives differ: derived only {dict(ca - ch)}, hand-written only {dict(ch - ca)}")
        if rep_a["collective_bytes"] != rep_h["collective_bytes"]:
            problems.append(f"{label}: collective bytes {rep_a['collective_bytes']} (derived) != "
                            f"{rep_h['collective_bytes']} (hand-written)")
        print(f"{label}: {len(ra)} modules sharded; {sum(ca.values())} collectives, {rep_a['collective_bytes']} bytes "
              f"(derived) vs {sum(ch.values())}, {rep_h['collective_bytes']} bytes (hand-written)")
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
