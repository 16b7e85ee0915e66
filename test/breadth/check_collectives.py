#!/usr/bin/env python3
"""The collectives of a compiled model, per layer: `shardc compile` then `shardc report --json`,
each forward collective counted by kind per layer ("-" outside the layers), against the
expectation. A parallel residual block (GPT-NeoX, Falcon: x + attn(ln1(x)) + mlp(ln2(x)))
sums its two rowwise outputs before reducing them, so one tp all-reduce per layer (with
sequence parallelism one reduce-scatter) instead of two.

  check_collectives.py --shardc BIN --model M.onnx --plan P.yaml --mesh tp=2 --workdir DIR
                       --per-layer all_reduce=1 --layers 2 [--outside all_gather=1]
"""
import argparse
import json
import os
import subprocess
import sys


def counts(spec):
    return {k: int(v) for k, v in (kv.split("=") for kv in spec.split(","))} if spec else {}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--mesh", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--per-layer", required=True, help="kind=N,...: each layer's forward collectives")
    ap.add_argument("--outside", default="", help="kind=N,...: the forward collectives outside the layers")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    tag = os.path.basename(args.model).rsplit(".", 1)[0] + "." + os.path.basename(args.plan).rsplit(".", 1)[0] + \
        "." + args.mesh.replace(",", "_").replace("=", "")
    art = os.path.join(args.workdir, tag + ".shardc")
    subprocess.run([args.shardc, "compile", args.model, "-o", art, "--quiet", f"--plan={args.plan}",
                    f"--mesh={args.mesh}"], check=True)
    report = json.loads(subprocess.run([args.shardc, "report", art, "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    per_layer = {}
    for c in report["collectives"]:
        if c["phase"] != "forward":
            continue
        d = per_layer.setdefault(c["layer"], {})
        d[c["kind"]] = d.get(c["kind"], 0) + 1
    problems = []
    want = counts(args.per_layer)
    for layer in range(args.layers):
        if per_layer.get(layer, {}) != want:
            problems.append(f"layer {layer}: {per_layer.get(layer, {})}, expected {want}")
    if per_layer.get(-1, {}) != counts(args.outside):
        problems.append(f"outside the layers: {per_layer.get(-1, {})}, expected {counts(args.outside)}")
    print(f"{tag}: {len(report['collectives'])} collectives, {report['collective_bytes']} bytes; per layer "
          + ", ".join(f"{k}: {v}" for k, v in sorted(per_layer.items(), key=lambda kv: str(kv[0]))))
    if problems:
        print("FAIL: " + "; ".join(problems))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
