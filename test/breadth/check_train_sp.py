#!/usr/bin/env python3
"""Training a parallel-residual model under sequence parallelism (GPT-NeoX: the attention and the
MLP each behind their own norm, both reading the residual): `mode: train` at tp=2 with
sequence_parallel against one rank, five AdamW steps on the same tokens (shardc-run --data): the
losses within 1e-5 and the grad norms within 1e-4 relative; and the forward's collectives per
layer, where sc-apply-plan gathers the residual once for both norms: one all-gather and one
reduce-scatter over tp.

  check_train_sp.py --shardc B --shardc-run R --model gptneox_tiny.onnx --vocab 128 --workdir W
"""
import argparse
import json
import pathlib
import re
import subprocess
import sys

import numpy as np


def run(cmd):
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=280)
    if r.returncode != 0:
        print(f"FAIL: {' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        sys.exit(1)
    return r.stdout + r.stderr


def steps(log):
    return [(float(m.group(1)), float(m.group(2)))
            for m in re.finditer(r"^step \d+ loss (\S+) grad_norm (\S+)", log, re.M)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--vocab", type=int, required=True)
    ap.add_argument("--workdir", required=True)
    args = ap.parse_args()
    wd = pathlib.Path(args.workdir)
    wd.mkdir(parents=True, exist_ok=True)
    np.random.default_rng(0).integers(0, args.vocab, size=1000).astype("<i4").tofile(wd / "tokens.bin")
    plan = ("mode: train\ntp_plan: auto\nsequence_parallel: {sp}\n"
            "mp_policy: {{param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}}\n"
            "optimizer: {{name: adamw, lr: 1.0e-3}}\nmax_grad_norm: 1.0\n")
    (wd / "sp.yaml").write_text(plan.format(sp="true"))
    (wd / "one.yaml").write_text(plan.format(sp="false"))
    run([args.shardc, "compile", args.model, "--quiet", "--plan", wd / "one.yaml", "-o", wd / "one.shardc"])
    run([args.shardc, "compile", args.model, "--quiet", "--plan", wd / "sp.yaml", "--mesh", "tp=2",
         "-o", wd / "sp.shardc"])
    want = steps(run([args.shardc_run, wd / "one.shardc", "--steps", 5, "--data", wd / "tokens.bin"]))
    got = steps(run([args.shardc_run, wd / "sp.shardc", "--threads", 2, "--steps", 5, "--data", wd / "tokens.bin"]))
    ok = len(want) == len(got) == 5
    for k, ((wl, wg), (gl, gg)) in enumerate(zip(want, got), 1):
        good = abs(gl - wl) <= 1e-5 and abs(gg - wg) <= 1e-4 * wg
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} step {k}: loss {gl:.8f} (one rank {wl:.8f}), "
              f"grad norm {gg:.8f} (one rank {wg:.8f})")
    report = json.loads(run([args.shardc, "report", wd / "sp.shardc", "--json"]))
    per_layer = {}
    for c in report["collectives"]:
        if c["phase"] == "forward" and c["layer"] != -1:
            d = per_layer.setdefault(c["layer"], {})
            d[c["kind"]] = d.get(c["kind"], 0) + 1
    for layer, kinds in sorted(per_layer.items()):
        good = kinds == {"all_gather": 1, "reduce_scatter": 1}
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} layer {layer} forward collectives: {kinds}")
    print(f"{len(report['collectives'])} collectives in the step, {report['collective_bytes']} bytes")
    return 0 if ok and per_layer else 1


if __name__ == "__main__":
    sys.exit(main())
