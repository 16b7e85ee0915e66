#!/usr/bin/env python3
"""Builds the GPU check bundle here (where LLVM is): for each cell, the artifact compiled
with --relative-weights next to a copy of its model, deterministic inputs, and the outputs of
the CPU backend and of onnxruntime. bench/gpu/run.sh runs the same artifacts on the GPU
machine with --backend cuda and compares.

  .venv/bin/python bench/gpu/prepare.py --build build --out gpu-bundle
"""
import argparse
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from shardc_verify import make_inputs  # noqa: E402

PLANS = os.path.join(ROOT, "test", "e2e", "plans")
# model, where it lives, plan, mesh, ranks (in-process ranks share the GPU): the unsharded
# programs first, then every cell of the sharding matrix (test/e2e/matrix.txt).
UNSHARDED = [
    ("llama_tiny", "shared", "fp32", "tp=1", 1), ("llama_tiny", "shared", "bf16", "tp=1", 1),
    ("llama_tiny", "shared", "bf16", "dp_shard=2", 2), ("qwen2_tiny", "shared", "bf16", "tp=1", 1),
    ("gpt2_s", "generated", "fp32", "tp=1", 1), ("bert_m", "generated", "fp32", "tp=1", 1),
]


def matrix_cells():
    cells = []
    with open(os.path.join(ROOT, "test", "e2e", "matrix.txt")) as f:
        for line in f:
            if not line.strip() or line.startswith("#"):
                continue
            model, mesh, ranks, plan = line.split()
            cells.append((model, "shared" if model.endswith("_tiny") else "generated", plan, mesh, int(ranks)))
    return cells


CELLS = UNSHARDED + [c for c in matrix_cells() if c not in UNSHARDED]


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        sys.exit("$ " + " ".join(cmd) + "\n" + p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "gpu-bundle"))
    args = ap.parse_args()
    shardc, shardc_run = os.path.join(args.build, "bin", "shardc"), os.path.join(args.build, "bin", "shardc-run")
    shutil.rmtree(args.out, ignore_errors=True)
    cells = []
    for model, where, plan, mesh, ranks in CELLS:
        src = (os.path.join(ROOT, "..", "shared", "models", model + ".onnx") if where == "shared"
               else os.path.join(args.build, "test", "e2e", "models", model + ".onnx"))
        mdir = os.path.join(args.out, model)
        os.makedirs(mdir, exist_ok=True)
        onnx_path = os.path.join(mdir, "model.onnx")
        if not os.path.exists(onnx_path):
            shutil.copy(src, onnx_path)
            m = onnx.load(onnx_path)
            feeds = make_inputs(onnx.load(onnx_path, load_external_data=False), 1234)
            np.savez(os.path.join(mdir, "inputs.npz"), **feeds)
            sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
            names = [o.name for o in m.graph.output]
            np.savez(os.path.join(mdir, "ort.npz"), **dict(zip(names, sess.run(names, feeds))))
        name = f"{plan}.{mesh.replace('=', '').replace(',', '_')}"
        art = os.path.join(mdir, name + ".shardc")
        run([shardc, "compile", onnx_path, "-o", art, "--quiet", "--relative-weights",
             f"--plan={os.path.join(PLANS, plan + '.yaml')}", f"--mesh={mesh}"])
        run([shardc_run, art, "--inputs", os.path.join(mdir, "inputs.npz"), "--outputs",
             os.path.join(mdir, name + ".cpu.npz"), "--threads", str(ranks)])
        cells.append({"model": model, "artifact": f"{model}/{name}.shardc", "inputs": f"{model}/inputs.npz",
                      "cpu": f"{model}/{name}.cpu.npz", "ort": f"{model}/ort.npz", "precision": plan,
                      "ranks": ranks})
    with open(os.path.join(args.out, "cells.json"), "w") as f:
        json.dump(cells, f, indent=1)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    print(f"wrote {len(cells)} cells to {args.out} ({size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
