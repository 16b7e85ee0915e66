#!/usr/bin/env python3
"""Two streams on a compiled sharded artifact: compiles the model with the plan and mesh,
makes inputs, and runs shardc-stream-schedule-tests on it (every rank's steps on the simulated
two-stream device, kernels and collectives queued and run in adversarial orders, bit for bit
against the one-stream CPU run; without the planned waits the results must change). With
--min-overlap N, some communication step must be able to run beside at least N compute steps
(the FSDP gathers, prefetched a layer early)."""
import argparse
import os
import re
import subprocess
import sys

import numpy as np
import onnx

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "tools"))
from shardc_verify import make_inputs  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--driver", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--mesh", required=True)
    ap.add_argument("--plan", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--min-overlap", type=int, default=0)
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    art, inputs = os.path.join(a.workdir, "m.shardc"), os.path.join(a.workdir, "in.npz")
    subprocess.run([a.shardc, "compile", a.model, "--quiet", "-o", art, f"--mesh={a.mesh}", f"--plan={a.plan}"],
                   check=True)
    np.savez(inputs, **make_inputs(onnx.load(a.model, load_external_data=False), 1234))
    p = subprocess.run([a.driver, "--artifact", art, "--inputs", inputs, "--waits"], capture_output=True, text=True)
    print(p.stdout + p.stderr)
    if p.returncode != 0:
        return 1
    best = max((int(m) for m in re.findall(r"beside (\d+) compute steps", p.stdout)), default=0)
    if best < a.min_overlap:
        print(f"FAIL no communication step runs beside {a.min_overlap} compute steps (best {best})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
