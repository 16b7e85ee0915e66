#!/usr/bin/env python3
"""shardc-run --profile on llama_tiny at tp=2 (CPU ranks): the table lists the ten most
expensive kernels sorted by time, their shares add up to at most 100%, GEMMs and attention carry
a rate, and the expected kernel kinds are there (linear, causal attention, the tp all-reduce,
generated kernels). Then the timing and replay options on the same artifact: --repeat prints
median, best and mean over exactly N runs and leaves the outputs equal to a plain run's;
--check-replay passes on a deterministic run and fails, naming the output, when the third run
differs (shardc-run-testhooks' SHARDC_TEST_PERTURB_RUN)."""
import argparse
import os
import re
import subprocess
import sys

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--shardc-run-testhooks", required=True)
    a = ap.parse_args()
    art, inputs = f"{a.workdir}/profile.shardc", f"{a.workdir}/profile.inputs.npz"
    subprocess.run([a.shardc, "compile", a.model, "--mesh", "tp=2", "--quiet", "-o", art], check=True)
    np.savez(inputs, input_ids=np.random.default_rng(0).integers(0, 512, (2, 64), dtype=np.int64))
    out = subprocess.run([a.shardc_run, art, "--threads", "2", "--profile", "--repeat", "2", "--inputs", inputs],
                         check=True, capture_output=True, text=True).stdout
    print(out)
    lines = out.splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("profile: 2 run(s) after the first"))
    assert re.match(r"\s+share\s+ms/run\s+calls\s+TFLOP/s\s+kernel", lines[start + 1]), lines[start + 1]
    rows = []
    for l in lines[start + 2:]:
        m = re.match(r"\s+([0-9.]+)%\s+([0-9.]+)\s+(\d+)\s+(\S+)\s+(.*)", l)
        if not m:
            break
        rows.append((float(m[1]), float(m[2]), int(m[3]), m[4], m[5]))
    problems = []
    if len(rows) != 10:
        problems.append(f"{len(rows)} rows, expected the top 10")
    if [r[1] for r in rows] != sorted((r[1] for r in rows), reverse=True):
        problems.append("rows are not sorted by time")
    if not 0 < sum(r[0] for r in rows) <= 100.05:
        problems.append(f"shares add up to {sum(r[0] for r in rows)}%")
    for r in rows:
        counted = r[4].startswith(("linear", "attention", "matmul"))
        if counted != (r[3] != "-"):
            problems.append(f"rate column wrong for {r[4]!r}: {r[3]}")
    kinds = " ".join(r[4] for r in rows)
    for want in ("linear bf16", "attention bf16", "causal", "all_reduce bf16 [tp]", "fused sc_fused_"):
        if want not in kinds:
            problems.append(f"no {want!r} among the top kernels")
    if not re.search(r"\d+ kernels, [0-9.]+ ms per run in steps", out):
        problems.append("no summary line")
    problems += check_timing_and_replay(a, art, inputs)
    for p in problems:
        print("FAIL", p)
    return 1 if problems else 0


def check_timing_and_replay(a, art, inputs):
    problems = []
    plain, timed = f"{a.workdir}/profile.plain.npz", f"{a.workdir}/profile.timed.npz"
    subprocess.run([a.shardc_run, art, "--threads", "2", "--inputs", inputs, "--outputs", plain],
                   check=True, capture_output=True)
    out = subprocess.run([a.shardc_run, art, "--threads", "2", "--repeat", "3", "--inputs", inputs, "--outputs", timed],
                         check=True, capture_output=True, text=True).stdout
    m = re.search(r"timing: (\d+) runs timed alone \(.*\), median ([0-9.]+) ms, best ([0-9.]+) ms, mean ([0-9.]+) ms", out)
    if not m or int(m[1]) != 3 or not float(m[3]) <= float(m[2]):
        problems.append(f"--repeat 3 timing line: {out!r}")
    got, want = np.load(timed), np.load(plain)
    if any(not np.array_equal(got[k], want[k]) for k in want.files):
        problems.append("--repeat's outputs differ from a plain run's")
    ok = subprocess.run([a.shardc_run, art, "--threads", "2", "--check-replay", "--inputs", inputs],
                        capture_output=True, text=True)
    if ok.returncode != 0 or "replay: the second and third runs equal the first bit for bit" not in ok.stdout:
        problems.append(f"--check-replay on a deterministic run: exit {ok.returncode}: {ok.stdout + ok.stderr!r}")
    bad = subprocess.run([a.shardc_run_testhooks, art, "--threads", "2", "--check-replay", "--inputs", inputs],
                         capture_output=True, text=True, env={**os.environ, "SHARDC_TEST_PERTURB_RUN": "3"})
    if bad.returncode == 0 or "the third run's output 'output' differs" not in bad.stderr:
        problems.append(f"--check-replay with the third run perturbed: exit {bad.returncode}: {bad.stderr!r}")
    print(out, ok.stdout, bad.stderr, sep="\n")
    return problems


if __name__ == "__main__":
    sys.exit(main())
