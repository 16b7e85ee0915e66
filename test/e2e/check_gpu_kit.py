#!/usr/bin/env python3
"""bench.gpu.kit: the GPU kit (bench/gpu/) dry-run on the CPU, so that its first call on a lent
GPU does not fail on something that could be checked here.

1. bench/gpu/prepare.py --bench ci builds the bundle (12 cells, the tiny bench shape); it
   fails by itself over 20 MiB. The tree that travels with it to the device (tracked and
   untracked files git does not ignore, plus the bundle) must stay within 56 MiB (a device call
   carries 64 MiB; the rest is headroom for the 1b shape's artifacts and the tree's growth).
2. bench/gpu/cells.py with the CPU backend standing in for CUDA: every cell passes (three runs
   bit-identical, against the CPU reference and onnxruntime).
3. The bench path: the tiny bf16 artifact timed with --repeat over random weights, and
   bench/gpu/bench_report.py prints its figures with bf16 GEMMs.
4. The training path: the tiny training-step artifact (every parameter trains, bf16 GEMMs
   forward and backward) has a CUDA kernel for every step (--check-backend cuda), and
   bench/gpu/train_steps.sh runs it with the CPU backend standing in for CUDA (12 steps over
   random weights from the bundle's token file, a finite loss near ln V); bench_report.py,
   given two PyTorch train_step lines written here (bench_torch.py has no ci shape), prints
   tokens/s equal to the timed steps' and the ratios to both modes.
5. kit1.sh, kit2.sh, nccl_checks.sh and train_steps.sh parse (bash -n).
"""
import math
import re
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAVEL_LIMIT = 56 * 2**20


def tree_bytes():
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    return sum(os.path.getsize(os.path.join(ROOT, f)) for f in files if f and os.path.isfile(os.path.join(ROOT, f)))


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


def check_train(a, bundle, kit2, shardc_run, py):
    problems, train = [], os.path.join(bundle, "train")
    info = json.load(open(os.path.join(train, "ci.json")))
    if set(info["gemm_dtypes"]) != {"bf16"} or info["params"] != 139584:
        problems.append(f"the training artifact: GEMMs {info['gemm_dtypes']}, {info['params']} parameters "
                        f"(want bf16 only, all 139584 of the ci shape)")
    c = subprocess.run([shardc_run, "--check-backend", "cuda", os.path.join(train, "ci.shardc")],
                       capture_output=True, text=True)
    print(c.stdout + c.stderr)
    if c.returncode != 0:
        problems.append("the training artifact has steps without a CUDA kernel")
    t = subprocess.run(["bash", os.path.join(ROOT, "bench/gpu/train_steps.sh"), shardc_run, bundle, kit2, "cpu"],
                       capture_output=True, text=True)
    print(t.stdout + t.stderr)
    log = open(os.path.join(kit2, "train-ci.txt")).read()
    losses = [float(x) for x in re.findall(r"^step \d+ loss (\S+)", log, re.M)]
    m = re.search(r"^timed steps: 10 \(runs 3 to 12\), mean ([0-9.]+) ms.*: ([0-9.]+) tokens/s$", log, re.M)
    if t.returncode != 0 or len(losses) != 12 or not m:
        return problems + [f"train_steps.sh: 12 steps and a timed-steps line expected, got:\n{log}"]
    if not all(abs(x - math.log(info["vocab"])) < 0.1 for x in losses):
        problems.append(f"losses {losses} are not near ln {info['vocab']} (random weights)")
    with open(os.path.join(kit2, "torch-ci.jsonl"), "w") as f:
        for mode, tok_s in (("eager", 1000.0), ("compile", 2000.0)):
            f.write(json.dumps({"what": "llama_ci_train_step", "mode": mode, "tok_s": tok_s, "mfu_vs_989": 0.1}) + "\n")
    r = subprocess.run([py, os.path.join(ROOT, "bench/gpu/bench_report.py"), os.path.join(bundle, "bench"), kit2, train],
                       capture_output=True, text=True)
    print(r.stdout + r.stderr)
    tok_s = info["tokens"] / (float(m[1]) / 1e3)
    got = re.search(r"^shardc ci train step: .*?; ([0-9,]+) tok/s; .*MFU", r.stdout, re.M)
    ratio = re.search(r"^shardc ci train step / torch.compile: ([0-9.]+) \(target 1.0: (met|not met)\)", r.stdout, re.M)
    eager = re.search(r"pytorch eager .* shardc / pytorch eager: ([0-9.]+)", r.stdout)
    if not (got and ratio and eager) or abs(float(got[1].replace(",", "")) - tok_s) > 1 or \
            abs(float(ratio[1]) - tok_s / 2000) > 1e-3 or abs(float(eager[1]) - tok_s / 1000) > 1e-3:
        problems.append(f"bench_report.py's training figures do not follow from the timed steps ({tok_s:.1f} tok/s)")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    py, problems = sys.executable, []
    bundle, kit = os.path.join(a.out, "gpu-bundle"), os.path.join(a.out, "kit")
    subprocess.run([py, os.path.join(ROOT, "bench/gpu/prepare.py"), "--build", a.build, "--out", bundle,
                    "--bench", "ci"], check=True)
    cells = json.load(open(os.path.join(bundle, "cells.json")))
    if not 0 < len(cells) <= 12:
        problems.append(f"{len(cells)} cells; the kit runs at most 12")
    tree, size = tree_bytes(), dir_bytes(bundle)
    print(f"travels: tree {tree / 2**20:.1f} MiB + bundle {size / 2**20:.1f} MiB = {(tree + size) / 2**20:.1f} MiB "
          f"(limit {TRAVEL_LIMIT / 2**20:.0f} MiB)")
    if tree + size > TRAVEL_LIMIT:
        problems.append(f"the tree that travels is {(tree + size) / 2**20:.1f} MiB, over {TRAVEL_LIMIT / 2**20:.0f} MiB")

    shardc_run = os.path.join(a.build, "bin", "shardc-run")
    p = subprocess.run([py, os.path.join(ROOT, "bench/gpu/cells.py"), "--bundle", bundle, "--shardc-run", shardc_run,
                        "--backend", "cpu", "--out", kit], capture_output=True, text=True)
    print(p.stdout + p.stderr)
    results = json.load(open(os.path.join(kit, "cells.json"))) if os.path.exists(os.path.join(kit, "cells.json")) else []
    if p.returncode != 0 or len(results) != len(cells) or any(r["status"] != "PASS" for r in results):
        problems.append("not every cell passed on the CPU backend")
    if any("3 runs bit-identical" not in r["note"] or "vs onnxruntime" not in r["note"] for r in results):
        problems.append("a cell lacks its replay check or its onnxruntime comparison")

    kit2 = os.path.join(a.out, "kit2")
    os.makedirs(kit2, exist_ok=True)
    b = os.path.join(bundle, "bench")
    t = subprocess.run([shardc_run, os.path.join(b, "ci.shardc"), "--random-weights", "--inputs",
                        os.path.join(b, "ci.inputs.npz"), "--repeat", "3"], capture_output=True, text=True)
    open(os.path.join(kit2, "shardc-ci.txt"), "w").write(t.stdout + t.stderr)
    r = subprocess.run([py, os.path.join(ROOT, "bench/gpu/bench_report.py"), b, kit2], capture_output=True, text=True)
    print(r.stdout + r.stderr)
    if r.returncode != 0 or "shardc ci forward: median" not in r.stdout or "GEMMs: " not in r.stdout:
        problems.append("bench_report.py printed no figures for the ci shape")
    info = json.load(open(os.path.join(b, "ci.json")))
    if set(info["gemm_dtypes"]) != {"bf16"}:
        problems.append(f"the bench artifact's GEMMs are {info['gemm_dtypes']}, not bf16 (bench-plan.yaml)")
    if not os.path.exists(os.path.join(bundle, "bench_torch.py")):
        problems.append("bench_torch.py is not in the bundle")

    problems += check_train(a, bundle, kit2, shardc_run, py)

    for script in ("kit1.sh", "kit2.sh", "nccl_checks.sh", "train_steps.sh"):
        if subprocess.run(["bash", "-n", os.path.join(ROOT, "bench/gpu", script)]).returncode != 0:
            problems.append(f"bench/gpu/{script} does not parse")
    for pr in problems:
        print("FAIL", pr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
