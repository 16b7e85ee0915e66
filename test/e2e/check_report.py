#!/usr/bin/env python3
# Reads `shardc report --json` of Hugging Face's Llama plan and checks the collectives an
# expert would write by hand: exactly two tp all-reduces per decoder layer in the forward
# pass and nothing else, with bytes equal to the analytic count 2 * L * B * S * H * sizeof.
import argparse
import json
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--mesh", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--layers", type=int, required=True)
    ap.add_argument("--activation", required=True, help="B,S,H of one decoder layer's output")
    ap.add_argument("--dtype-bytes", type=int, default=4)
    args = ap.parse_args()
    art = f"{args.workdir}/report.shardc"
    subprocess.run([args.shardc, "compile", args.model, "-o", art, "--quiet", f"--plan={args.plan}",
                    f"--mesh={args.mesh}"], check=True)
    report = json.loads(subprocess.run([args.shardc, "report", art, "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    colls = report["collectives"]
    problems = []
    per_layer = {}
    for c in colls:
        if c["kind"] != "all_reduce" or c["axes"] != "tp" or c["phase"] != "forward":
            problems.append(f"unexpected collective {c}")
        per_layer[c["layer"]] = per_layer.get(c["layer"], 0) + 1
    for layer in range(args.layers):
        if per_layer.get(layer, 0) != 2:
            problems.append(f"layer {layer}: {per_layer.get(layer, 0)} all-reduces, expected 2")
    extra = sorted(set(per_layer) - set(range(args.layers)))
    if extra:
        problems.append(f"collectives outside the decoder layers: {extra}")
    b, s, h = (int(x) for x in args.activation.split(","))
    analytic = 2 * args.layers * b * s * h * args.dtype_bytes
    if report["collective_bytes"] != analytic:
        problems.append(f"collective bytes {report['collective_bytes']} != analytic {analytic}")
    print(f"{len(colls)} collectives, {report['collective_bytes']} bytes (analytic minimum {analytic}), "
          f"ring wire {report['ring_wire_bytes']} bytes per rank")
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
