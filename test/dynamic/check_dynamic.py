#!/usr/bin/env python3
"""One artifact for several shape sets (`shardc compile --shapes 'batch=2,seq=64;batch=3,seq=48'`)
of a dynamic-shape export (test/dynamic/export_dynamic.py), checked end to end:
  - compile progress names every set ("shapes ... (set i of n)");
  - shardc-run picks the program from the inputs' shapes: each set's outputs match PyTorch's
    reference logits and onnxruntime (the dynamic model itself) within --atol (+ --rtol |want|);
  - inputs of no set fail with one line listing the sets;
  - the weights are not copied per set: every program of the manifest references the same one
    weight file (the .onnx) and the artifact is smaller than the model's initializers.
Reads the committed .onnx and .io.npz with the repository's venv (numpy, onnxruntime)."""
import argparse
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort


def run(cmd, what):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        print(f"FAIL {what}: exit {r.returncode}\n$ {' '.join(cmd)}\n{r.stdout}{r.stderr}")
        sys.exit(1)
    return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True, help="the dynamic .onnx (its .io.npz beside it)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=0.0,
                    help="|got - want| <= atol + rtol |want| elementwise (bf16: the matrix's 5e-2, 2e-2)")
    ap.add_argument("--threads", type=int, default=1, help="ranks (shardc-run --threads)")
    ap.add_argument("--sets", default="", help="BxS,BxS: the reference's sets to compile (default: all)")
    ap.add_argument("--compile-arg", action="append", default=[], help="e.g. --plan=p.yaml, --mesh=tp=2")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    name = os.path.basename(args.model)[:-len(".onnx")]
    ref = np.load(args.model[:-len(".onnx")] + ".io.npz")
    sets = []  # (batch, seq), in the order the exporter wrote them
    for k in ref.files:
        m = re.fullmatch(re.escape(name) + r"_(\d+)x(\d+)__input_ids", k)
        if m:
            sets.append((int(m.group(1)), int(m.group(2))))
    if args.sets:
        chosen = [tuple(int(x) for x in t.split("x")) for t in args.sets.split(",")]
        lacking = [c for c in chosen if c not in sets]
        if lacking:
            print(f"FAIL setup: the reference lacks sets {lacking} (has {sets})")
            return 1
        sets = chosen
    if len(sets) < 2:
        print(f"FAIL setup: {len(sets)} shape sets in the reference (want at least 2)")
        return 1
    spec = ";".join(f"batch={b},seq={s}" for b, s in sets)
    art = os.path.join(args.workdir, name + ".shardc")
    if os.path.exists(art):
        os.remove(art)
    r = run([args.shardc, "compile", args.model, "-o", art, "--shapes", spec] + args.compile_arg, "compile")
    for i, (b, s) in enumerate(sets):
        want = f"shapes batch={b},seq={s} (set {i + 1} of {len(sets)})"
        if want not in r.stderr:
            print(f"FAIL compile progress lacks '{want}':\n{r.stderr}")
            return 1
    # The model's weights: its initializers' bytes.
    model = onnx.load(args.model, load_external_data=False)
    weight_bytes = sum(len(t.raw_data) for t in model.graph.initializer)

    sess = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    failures = 0
    for b, s in sets:
        key = f"{name}_{b}x{s}"
        ids = ref[key + "__input_ids"]
        inp, out = os.path.join(args.workdir, f"in_{b}x{s}.npz"), os.path.join(args.workdir, f"out_{b}x{s}.npz")
        np.savez(inp, input_ids=ids)
        run([args.shardc_run, art, "--inputs", inp, "--outputs", out, "--threads", str(args.threads)], f"run {key}")
        got = np.load(out)["logits"]
        torch_ref = ref[key + "__logits"]
        ort_out = sess.run(["logits"], {"input_ids": ids})[0]
        if got.shape != torch_ref.shape:
            print(f"FAIL {key}: shape {got.shape}, PyTorch {torch_ref.shape}")
            failures += 1
            continue
        e_t, e_o = float(np.abs(got - torch_ref).max()), float(np.abs(got - ort_out).max())
        ok = all(bool(np.all(np.abs(got - want) <= args.atol + args.rtol * np.abs(want)))
                 for want in (torch_ref, ort_out))
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {key} {list(got.shape)}: max|err| vs PyTorch {e_t:.3e}, "
              f"vs onnxruntime {e_o:.3e} (atol {args.atol:g}, rtol {args.rtol:g})")

    # Inputs of no set: one line naming the inputs and listing every set.
    bad = os.path.join(args.workdir, "in_nomatch.npz")
    np.savez(bad, input_ids=np.zeros((1, 5), dtype=np.int64))
    r = subprocess.run([args.shardc_run, art, "--inputs", bad, "--threads", str(args.threads)],
                       capture_output=True, text=True)
    lines = [l for l in (r.stdout + r.stderr).splitlines() if "match none" in l]
    listed = "; ".join(f"batch={b},seq={s} (input_ids {b}x{s})" for b, s in sets)
    want = f"the inputs (input_ids 1x5) match none of the artifact's shape sets: {listed}"
    if r.returncode == 0 or len(lines) != 1 or want not in lines[0]:
        print(f"FAIL no-match: exit {r.returncode}, want one line with '{want}', got:\n{r.stdout}{r.stderr}")
        failures += 1
    else:
        print(f"PASS no-match: {lines[0]}")

    # Weights shared: one weight file, the model, in every program; the file holds no weights.
    dump = run([args.shardc_run, "--dump-manifest", art], "dump-manifest").stdout
    paths = re.findall(r'weight_files: \[ \{\s*path: "([^"]*)"', dump)
    programs = len(re.findall(r"^// programs\[\d+\]", dump, re.M)) + 1
    size = os.path.getsize(art)
    ok = (programs == len(sets) and len(paths) == len(sets) and
          all(os.path.samefile(p, args.model) for p in paths) and 0 < size < weight_bytes and
          len(re.findall(r"^  weight_files: \[ \{\s*path: [^}]*\} \]", dump, re.M)) == len(sets))
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} weights: {programs} programs, weight files {paths}, "
          f"artifact {size} bytes, the model's initializers {weight_bytes} bytes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
