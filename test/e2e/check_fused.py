#!/usr/bin/env python3
"""Generated fused kernels, checked on a model: the artifact compiled with fusion must give
bit-identical outputs to the same program with every op as a library kernel (--no-fuse), on
the same inputs; and, when shardc-nvrtc is given, its kernel source must compile for the GPU
with NVRTC (what the CUDA backend does at load).

  check_fused.py --shardc BIN --shardc-run BIN [--shardc-nvrtc BIN] --model M.onnx
                 --workdir DIR [--compile-arg=ARG ...] [--run-arg=ARG ...] [--min-kernels N]
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


def run(cmd):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if p.returncode != 0:
        print("$ " + " ".join(cmd) + "\n" + p.stdout)
        sys.exit(1)
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--shardc-nvrtc")
    ap.add_argument("--model", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--compile-arg", action="append", default=[])
    ap.add_argument("--run-arg", action="append", default=[])
    ap.add_argument("--min-kernels", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    wd = lambda name: os.path.join(args.workdir, name)

    feeds = make_inputs(onnx.load(args.model, load_external_data=False), 1234)
    np.savez(wd("inputs.npz"), **feeds)
    base = [args.shardc, "compile", args.model, "--quiet"] + args.compile_arg
    run(base + ["-o", wd("fused.shardc"), "--kernel-source", wd("kernels.cu")])
    run(base + ["-o", wd("library.shardc"), "--no-fuse"])
    for name in ("fused", "library"):
        run([args.shardc_run, wd(name + ".shardc"), "--inputs", wd("inputs.npz"),
             "--outputs", wd(name + ".npz")] + args.run_arg)
    fused, library = np.load(wd("fused.npz")), np.load(wd("library.npz"))
    ok = True
    for k in library.files:
        a, b = fused[k], library[k]
        same = a.shape == b.shape and np.array_equal(a.view(np.uint8), b.view(np.uint8))
        err = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.shape == b.shape else float("inf")
        print(f"{'PASS' if same else 'FAIL'} output {k} {list(a.shape)}: fused kernels vs library kernels "
              f"{'bit-identical' if same else f'differ, max|err| {err:.3e}'}")
        ok &= same

    source = open(wd("kernels.cu")).read()
    count = source.count("\nSC_KERNEL ")
    print(f"{count} generated kernels")
    if count < args.min_kernels:
        print(f"FAIL expected at least {args.min_kernels} generated kernels")
        ok = False
    if args.shardc_nvrtc:
        # The cubin is cached under a directory that does not exist yet (as ~/.cache/shardc/kernels
        # on a fresh GPU machine): every missing folder must be made.
        cache = wd(os.path.join("nvrtc-cache", "fresh", "kernels"))
        shutil.rmtree(wd("nvrtc-cache"), ignore_errors=True)
        print(run([args.shardc_nvrtc, wd("fused.shardc"), "--arch", "sm_90a", "--cache", cache]).splitlines()[0])
        if not os.path.isdir(cache) or not any(f.endswith(".cubin") for f in os.listdir(cache)):
            print(f"FAIL shardc-nvrtc wrote no cached cubin under {cache}")
            ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
