#!/usr/bin/env python3
"""bench.gpu.kit: the GPU kit (bench/gpu/) dry-run on the CPU, so that its first call on a lent
GPU does not fail on something that could be checked here.

1. bench/gpu/prepare.py --bench ci builds the bundle (12 cells, the tiny bench shape); it
   fails by itself over 20 MiB. The tree that travels with it to the device (tracked and
   untracked files git does not ignore, plus the bundle) must stay within 48 MiB.
2. bench/gpu/cells.py with the CPU backend standing in for CUDA: every cell passes (three runs
   bit-identical, against the CPU reference and onnxruntime).
3. The bench path: the tiny bf16 artifact timed with --repeat over random weights, and
   bench/gpu/bench_report.py prints its figures with bf16 GEMMs.
4. kit1.sh, kit2.sh and nccl_checks.sh parse (bash -n).
"""
import argparse
import json
import os
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAVEL_LIMIT = 48 * 2**20


def tree_bytes():
    files = subprocess.run(["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
                           capture_output=True, text=True, check=True).stdout.split("\0")
    return sum(os.path.getsize(os.path.join(ROOT, f)) for f in files if f and os.path.isfile(os.path.join(ROOT, f)))


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(p, f)) for p, _, fs in os.walk(d) for f in fs)


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
        problems.append(f"the tree that travels is {(tree + size) / 2**20:.1f} MiB, over 48 MiB")

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

    for script in ("kit1.sh", "kit2.sh", "nccl_checks.sh"):
        if subprocess.run(["bash", "-n", os.path.join(ROOT, "bench/gpu", script)]).returncode != 0:
            problems.append(f"bench/gpu/{script} does not parse")
    for pr in problems:
        print("FAIL", pr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
