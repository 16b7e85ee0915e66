#!/usr/bin/env python3
"""The kit's check cells (bench/gpu/kit1.sh on the GPU machine; `--backend cpu` here in CI).

For every cell of gpu-bundle/cells.json: the references first, on this machine (onnxruntime on
the model, once per model; the runtime's CPU backend on the artifact), then the artifact on
`--backend` with --check-replay (the second run records the CUDA graph, the third replays it,
both must equal the first bit for bit), compared with both references (fp32: 1e-3 abs; bf16:
5e-2 + 2e-2·|want|, as the CPU matrix). One line per cell; logs under --out/logs; a JSON
summary in --out/cells.json. Exit 1 when any cell fails.

  python3 bench/gpu/cells.py --bundle gpu-bundle --shardc-run build-gpu/bin/shardc-run --backend cuda --out $OUT/kit
"""
import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np


def sh(cmd, log, timeout):
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        text, rc = p.stdout, p.returncode
    except subprocess.TimeoutExpired as e:
        text, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), 124
        text += f"\n[cells.py] timed out after {timeout} s\n"
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n" + text + f"[exit {rc}, {time.time() - t0:.1f} s]\n")
    return rc, text


def last_error(text):
    lines = [l for l in text.splitlines() if "error" in l.lower()] or text.splitlines()[-1:]
    return lines[-1][:200] if lines else ""


def ort_outputs(onnx_path, inputs_path, cache):
    if os.path.exists(cache):
        return dict(np.load(cache))
    import onnx
    import onnxruntime as ort
    m = onnx.load(onnx_path)
    feeds = dict(np.load(inputs_path))
    sess = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    names = [o.name for o in m.graph.output]
    got = dict(zip(names, sess.run(names, feeds)))
    np.savez(cache, **got)
    return got


def max_err(got, want, atol, rtol):
    worst, bad = 0.0, False
    for k in got.files:
        if k not in want:
            continue
        g, w = got[k].astype(np.float64), np.asarray(want[k]).astype(np.float64)
        if g.shape != w.shape:
            return float("inf"), True
        err = np.abs(g - w)
        worst = max(worst, float(err.max()) if err.size else 0.0)
        bad |= bool((err > atol + rtol * np.abs(w)).any()) or not np.isfinite(g).all()
    return worst, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bundle", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--backend", default="cuda")
    ap.add_argument("--out", required=True)
    ap.add_argument("--timeout", type=int, default=120, help="seconds per shardc-run process")
    ap.add_argument("--only", action="append", help="artifacts to run (default: all cells)")
    a = ap.parse_args()
    logs = os.path.join(a.out, "logs")
    os.makedirs(logs, exist_ok=True)
    cells = json.load(open(os.path.join(a.bundle, "cells.json")))
    if a.only:
        cells = [c for c in cells if c["artifact"] in a.only]
    results, failed = [], 0
    for c in cells:
        t0 = time.time()
        tag = c["artifact"].replace("/", "_").replace(".shardc", "")
        log = os.path.join(logs, tag + ".log")
        art, inputs = os.path.join(a.bundle, c["artifact"]), os.path.join(a.bundle, c["inputs"])
        cpu_out, dev_out = os.path.join(a.out, tag + ".cpu.npz"), os.path.join(a.out, tag + f".{a.backend}.npz")
        r = {"artifact": c["artifact"], "ranks": c["ranks"], "precision": c["precision"], "backend": a.backend}
        status, note = "PASS", ""
        rc, text = sh([a.shardc_run, art, "--threads", str(c["ranks"]), "--inputs", inputs, "--outputs", cpu_out],
                      log, a.timeout)
        if rc != 0:
            status, note = "FAIL", f"CPU backend reference: {last_error(text)}"
        if status == "PASS":
            rc, text = sh([a.shardc_run, art, "--backend", a.backend, "--threads", str(c["ranks"]), "--check-replay",
                           "--inputs", inputs, "--outputs", dev_out], log, a.timeout)
            if rc != 0:
                status, note = "FAIL", last_error(text)
            else:
                replay = [l for l in text.splitlines() if l.startswith("replay:")]
                r["replay"] = replay[0] if replay else ""
                graph = "graph replayed" if "replayed the graph" in r["replay"] else "no graph"
                note = f"3 runs bit-identical ({graph})"
        if status == "PASS":
            atol, rtol = (5e-2, 2e-2) if c["precision"] == "bf16" else (1e-3, 0.0)
            got = np.load(dev_out)
            try:
                want_ort = ort_outputs(os.path.join(a.bundle, c["onnx"]), inputs,
                                       os.path.join(a.out, c["model"] + ".ort.npz"))
            except Exception as e:  # noqa: BLE001 (report any onnxruntime failure as the cell's)
                want_ort, note = None, note + f"; onnxruntime failed: {e!r}"[:200]
            e_cpu, bad_cpu = max_err(got, dict(np.load(cpu_out)), atol, rtol)
            r["max_err_vs_cpu"] = e_cpu
            note += f", vs cpu {e_cpu:.2e}"
            bad = bad_cpu
            if want_ort is not None:
                e_ort, bad_ort = max_err(got, want_ort, atol, rtol)
                r["max_err_vs_ort"] = e_ort
                note += f", vs onnxruntime {e_ort:.2e}"
                bad |= bad_ort
            if bad:
                status = "FAIL"
                note += f" (tolerance {atol:g} + {rtol:g}|want|)"
        failed += status != "PASS"
        r["status"], r["note"], r["seconds"] = status, note, round(time.time() - t0, 1)
        results.append(r)
        print(f"{status} {c['artifact']} ranks={c['ranks']} {c['precision']}: {note} ({r['seconds']} s)", flush=True)
    with open(os.path.join(a.out, "cells.json"), "w") as f:
        json.dump(results, f, indent=1)
    print(f"cells: {len(results) - failed} of {len(results)} passed on {a.backend}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
