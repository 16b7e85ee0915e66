#!/usr/bin/env python3
# Reads `shardc report --json` of Hugging Face's Llama plan and checks the collectives an
# expert would write by hand: exactly two tp all-reduces per decoder layer in the forward
# pass and nothing else, with bytes equal to the analytic count 2 * L * B * S * H * sizeof;
# with --sequence-parallel two all-gathers and two reduce-scatters per layer and one all-gather
# before lm_head (the local slice after the embedding is a dynamic_slice, no collective).
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
    ap.add_argument("--sequence-parallel", action="store_true")
    ap.add_argument("--llama-config", help="vocab,heads,kv_heads,intermediate: also check the "
                    "report's FLOPs per rank against the analytic count")
    args = ap.parse_args()
    # One file per configuration: the report tests run in parallel in one directory.
    tag = args.mesh.replace(",", "_").replace("=", "") + ("_sp" if args.sequence_parallel else "")
    art = f"{args.workdir}/report.{tag}.shardc"
    subprocess.run([args.shardc, "compile", args.model, "-o", art, "--quiet", f"--plan={args.plan}",
                    f"--mesh={args.mesh}"], check=True)
    report = json.loads(subprocess.run([args.shardc, "report", art, "--json"], check=True,
                                       capture_output=True, text=True).stdout)
    colls = report["collectives"]
    problems = []
    want = ({"all_gather": 2, "reduce_scatter": 2} if args.sequence_parallel else {"all_reduce": 2})
    per_layer = {}
    for c in colls:
        if c["axes"] != "tp" or c["phase"] != "forward":
            problems.append(f"unexpected collective {c}")
        per_layer.setdefault(c["layer"], {}).setdefault(c["kind"], 0)
        per_layer[c["layer"]][c["kind"]] += 1
    for layer in range(args.layers):
        if per_layer.get(layer, {}) != want:
            problems.append(f"layer {layer}: {per_layer.get(layer, {})}, expected {want}")
    outside = per_layer.get(-1, {})
    want_outside = {"all_gather": 1} if args.sequence_parallel else {}
    if outside != want_outside:
        problems.append(f"outside the layers: {outside}, expected {want_outside}")
    b, s, h = (int(x) for x in args.activation.split(","))
    act = b * s * h * args.dtype_bytes
    # Payload per rank: all-reduces move the whole activation; with SP each all-gather's
    # output and each reduce-scatter's input is the whole activation, plus the gather before
    # lm_head.
    analytic = 2 * args.layers * act if not args.sequence_parallel else (4 * args.layers + 1) * act
    if report["collective_bytes"] != analytic:
        problems.append(f"collective bytes {report['collective_bytes']} != analytic {analytic}")
    if args.llama_config:
        # Per rank: every decoder projection and the heads are split by tp (Hugging Face's plan);
        # lm_head may be split or whole. Attention is causal: S (S + 1) / 2 pairs, 2 (D + D) each.
        vocab, heads, kv_heads, inter = (int(x) for x in args.llama_config.split(","))
        tp = int(dict(kv.split("=") for kv in args.mesh.split(",")).get("tp", 1))
        d = h // heads
        tokens = b * s
        layer = 2 * tokens * (2 * h * h + 2 * h * kv_heads * d + 3 * h * inter)
        lm_head = 2 * tokens * h * vocab
        attention = args.layers * 2 * b * heads * (s * (s + 1) // 2) * 2 * d
        flops = report["flops"]
        gemm_options = {args.layers * layer // tp + lm_head // f for f in (1, tp)}
        if flops["gemm"] not in gemm_options:
            problems.append(f"GEMM flops {flops['gemm']} not in the analytic {sorted(gemm_options)}")
        if flops["attention"] != attention // tp:
            problems.append(f"attention flops {flops['attention']} != analytic {attention // tp}")
        print(f"flops per rank: {flops['gemm']} in GEMMs, {flops['attention']} in attention (analytic)")
    print(f"{len(colls)} collectives, {report['collective_bytes']} bytes (analytic minimum {analytic}), "
          f"ring wire {report['ring_wire_bytes']} bytes per rank")
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
