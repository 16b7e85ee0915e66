#!/usr/bin/env python3
"""shardc-run --backend cuda on one model. Without a usable GPU (as on the CI machines) it
must refuse with one "no CUDA device" error line and a non-zero status, before running
anything; with one, its outputs must match the CPU backend's (fp32 1e-3; bf16 5e-2 +
2e-2|want|).

  check_cuda_backend.py --shardc BIN --shardc-run BIN --model M.onnx --workdir DIR
                        [--compile-arg=ARG ...] [--threads N] [--bf16]
"""
import argparse
import os
import shutil
import subprocess
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from shardc_verify import make_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--compile-arg", action="append", default=[])
    ap.add_argument("--threads", default="1")
    ap.add_argument("--bf16", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    wd = lambda n: os.path.join(a.workdir, n)
    np.savez(wd("inputs.npz"), **make_inputs(onnx.load(a.model, load_external_data=False), 1234))
    subprocess.run([a.shardc, "compile", a.model, "-o", wd("m.shardc"), "--quiet"] + a.compile_arg, check=True)
    run = [a.shardc_run, wd("m.shardc"), "--inputs", wd("inputs.npz"), "--threads", a.threads]
    subprocess.run(run + ["--outputs", wd("cpu.npz")], check=True)
    p = subprocess.run(run + ["--outputs", wd("cuda.npz"), "--backend", "cuda"], capture_output=True, text=True)
    has_gpu = shutil.which("nvidia-smi") is not None and subprocess.run(
        ["nvidia-smi", "-L"], capture_output=True).returncode == 0
    if not has_gpu:
        errors = [l for l in p.stderr.splitlines() if "error:" in l]
        ok = p.returncode != 0 and len(errors) == 1 and "no CUDA device" in errors[0]
        print(("PASS" if ok else "FAIL") + f" without a GPU: exit {p.returncode}, {errors!r}")
        sys.exit(0 if ok else 1)
    if p.returncode != 0:
        print("FAIL on the GPU:\n" + p.stderr)
        sys.exit(1)
    cpu, cuda = np.load(wd("cpu.npz")), np.load(wd("cuda.npz"))
    atol, rtol = (5e-2, 2e-2) if a.bf16 else (1e-3, 0.0)
    ok = True
    for k in cpu.files:
        err = np.abs(cuda[k].astype(np.float64) - cpu[k].astype(np.float64))
        good = bool((err <= atol + rtol * np.abs(cpu[k].astype(np.float64))).all())
        ok &= good
        print(f"{'PASS' if good else 'FAIL'} {k}: CUDA vs CPU max|err| {err.max():.3e}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
