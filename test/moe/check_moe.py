#!/usr/bin/env python3
"""The exported MoE models of test/moe (export_models.py) compiled by shardc and run by
shardc-run on one rank, against onnxruntime and PyTorch's logits (references.npz).

  check_moe.py --shardc BIN --shardc-run BIN --model NAME --workdir DIR [--tol 1e-4]
               [--compile-arg=ARG ...] [--run-arg=ARG ...] [--against-unsharded] [--unraised-tol TOL]
               [--expect-kind KIND ...] [--reject-kind KIND ...] [--expect-output TEXT ...]
               [--tp-mode none|token_split|expert_tp --rows-fraction N]

Passes when the logits match onnxruntime's and PyTorch's within `tol` (max abs difference
relative to 1 + max|reference|), and the artifact's manifest has (or lacks) the step kinds named.
With --unraised-tol, the model is also compiled as exported (SHARDC_NO_RAISE_MOE=1) and both
artifacts' logits must agree within TOL (the raising changes only fp32 rounding).
Sharded runs (expert parallelism: --compile-arg=--mesh=dp_shard=2,ep=2 --run-arg=--threads
--run-arg=2) also compare with the unsharded program (--against-unsharded) and may require
text in shardc-run's output (--expect-output). With --tp-mode, `shardc report --json` must name
that tp mode for the sharded artifact, and with --rows-fraction N (needs --against-unsharded) the
(token, choice) rows each rank routes per layer must be the unsharded program's divided by N
(the 1/tp token split halves them at tp = 2; expert TP does not).
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("$ " + " ".join(cmd) + "\n" + p.stdout)
        sys.exit(1)
    return p.stdout


def gap(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf")
    return float(np.max(np.abs(a - b)) / (1.0 + np.max(np.abs(b))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    ap.add_argument("--compile-arg", action="append", default=[])
    ap.add_argument("--run-arg", action="append", default=[])
    ap.add_argument("--against-unsharded", action="store_true")
    ap.add_argument("--expect-output", action="append", default=[])
    ap.add_argument("--expect-kind", action="append", default=[])
    ap.add_argument("--reject-kind", action="append", default=[])
    ap.add_argument("--unraised-tol", type=float)
    ap.add_argument("--tp-mode", choices=["none", "token_split", "expert_tp"])
    ap.add_argument("--rows-fraction", type=int)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    wd = lambda name: os.path.join(args.workdir, name)
    model = os.path.join(HERE, args.model + ".onnx")
    refs = np.load(os.path.join(HERE, "references.npz"))
    ids = refs[args.model + ".input_ids"]
    torch_logits = refs[args.model + ".logits"]
    np.savez(wd("inputs.npz"), input_ids=ids)

    run([args.shardc, "compile", model, "--quiet", "-o", wd("m.shardc")] + args.compile_arg)
    log = run([args.shardc_run, wd("m.shardc"), "--inputs", wd("inputs.npz"), "--outputs", wd("out.npz")] +
              args.run_arg)
    got = np.load(wd("out.npz"))["logits"]
    refs_to_check = []
    if args.against_unsharded:
        run([args.shardc, "compile", model, "--quiet", "-o", wd("u.shardc")])
        run([args.shardc_run, wd("u.shardc"), "--inputs", wd("inputs.npz"), "--outputs", wd("u.npz")])
        refs_to_check.append(("the unsharded program", np.load(wd("u.npz"))["logits"]))
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"]).run(["logits"], {"input_ids": ids})[0]

    ok = True
    for what, ref in refs_to_check + [("onnxruntime", want), ("PyTorch", torch_logits)]:
        g = gap(got, ref)
        good = g <= args.tol
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} {args.model}: shardc vs {what}: {g:.2e} (tol {args.tol:.0e})")
    print(f"     onnxruntime vs PyTorch: {gap(want, torch_logits):.2e}")

    if args.unraised_tol is not None:
        env = dict(os.environ, SHARDC_NO_RAISE_MOE="1")
        for cmd in ([args.shardc, "compile", model, "--quiet", "-o", wd("unraised.shardc")] + args.compile_arg,
                    [args.shardc_run, wd("unraised.shardc"), "--inputs", wd("inputs.npz"), "--outputs",
                     wd("unraised.npz")]):
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
            if p.returncode != 0:
                print("$ SHARDC_NO_RAISE_MOE=1 " + " ".join(cmd) + "\n" + p.stdout)
                return 1
        g = gap(got, np.load(wd("unraised.npz"))["logits"])
        good = g <= args.unraised_tol
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} {args.model}: raised vs exported form: {g:.2e} (tol {args.unraised_tol:.0e})")
    for text in args.expect_output:
        has = text in log
        ok &= has
        print(f"{'PASS' if has else 'FAIL'} shardc-run printed '{text}'")
    for line in log.splitlines():
        if "moe" in line:
            print("     " + line)

    if args.tp_mode or args.rows_fraction:
        report = lambda a: json.loads(run([args.shardc, "report", wd(a), "--json"]))["moe"]
        got_moe = report("m.shardc")
        if args.tp_mode:
            good = got_moe["tp_mode"] == args.tp_mode
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} report: tp mode {got_moe['tp_mode']} (want {args.tp_mode})")
        if args.rows_fraction:
            whole = report("u.shardc")["rows_routed"]
            good = got_moe["rows_routed"] * args.rows_fraction == whole
            ok &= good
            print(f"{'PASS' if good else 'FAIL'} report: {got_moe['rows_routed']} rows routed per rank per layer, "
                  f"the unsharded program's {whole} / {args.rows_fraction}")

    if args.expect_kind or args.reject_kind:
        dump = run([args.shardc_run, wd("m.shardc"), "--dump-manifest"])
        for kind in args.expect_kind:
            has = f'"{kind}"' in dump or f"kind: {kind}" in dump or f" {kind} " in dump
            ok &= has
            print(f"{'PASS' if has else 'FAIL'} step kind {kind} is in the artifact")
        for kind in args.reject_kind:
            has = f'"{kind}"' in dump or f"kind: {kind}" in dump or f" {kind} " in dump
            ok &= not has
            print(f"{'PASS' if not has else 'FAIL'} step kind {kind} is not in the artifact")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
