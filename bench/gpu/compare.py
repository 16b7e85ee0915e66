#!/usr/bin/env python3
"""On the GPU machine: compares each cell's CUDA outputs with the CPU backend's and with
onnxruntime's (tolerances: fp32 1e-3 abs; bf16 5e-2 + 2e-2|want|, as the CPU matrix), prints
one line per cell, exits non-zero when any cell fails."""
import json
import os
import sys

import numpy as np

bundle = sys.argv[1]
ok = True
for c in json.load(open(os.path.join(bundle, "cells.json"))):
    got_path = os.path.join(bundle, c["artifact"].replace(".shardc", ".cuda.npz"))
    if not os.path.exists(got_path):
        print(f"FAIL {c['artifact']}: no CUDA outputs (see its log)")
        ok = False
        continue
    got = np.load(got_path)
    atol, rtol = (5e-2, 2e-2) if c["precision"] == "bf16" else (1e-3, 0.0)
    for ref in ("cpu", "ort"):
        want = np.load(os.path.join(bundle, c[ref]))
        for k in got.files:
            if k not in want.files:
                continue
            g, w = got[k].astype(np.float64), want[k].astype(np.float64)
            err = np.abs(g - w)
            bad = err > atol + rtol * np.abs(w)
            status = "PASS" if not bad.any() else "FAIL"
            ok &= not bad.any()
            print(f"{status} {c['artifact']} ranks={c['ranks']} {k} vs {ref}: max|err| {err.max():.3e}")
sys.exit(0 if ok else 1)
