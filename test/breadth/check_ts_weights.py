#!/usr/bin/env python3
"""shardc-run --weights on a TorchScript export (test/breadth/models/st_minilm_ts.onnx): its
nn.Linear weights are initializers named `onnx::MatMul_<n>` that carry no Hugging Face name; the
importer names each after the module path in its MatMul node's name
(`/bert/encoder/layer.0/attention/self/query/MatMul` -> bert.encoder.layer.0.attention.self.query
.weight, stored transposed), less the leading scopes that the other parameters' names lack (a
published sentence-transformers file, test/breadth/published/: node `/model/model.0/auto_model/
...`, bias `model.0.auto_model....bias`, so the weight is `model.0.auto_model....weight`). Without
--reference the inputs are made from the --input-shape bindings as tools/shardc_verify.py makes
them. This writes a safetensors checkpoint of *perturbed* parameters under
those names (PyTorch's [out, in] for the MatMul weights), runs shardc-run --weights unsharded and
at tp=2, and compares every float output with onnxruntime on the export with the same perturbed
initializers (2e-4), while the artifact's own weights must differ by far more. numpy and onnx only.

  check_ts_weights.py --shardc B --shardc-run R --model M.onnx [--reference M.io.npz --ref-prefix P]
                      --workdir W [--input-shape name=4x16 ...]
"""
import argparse
import json
import pathlib
import shutil
import struct
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "tools"))
import shardc_verify  # noqa: E402  (make_inputs: the harness's inputs by role)


def scope_drop(model, named):
    """How many leading scopes of the MatMul node names the parameter names lack (the importer's
    torchScriptScopeDrop): the count that makes the most node paths own a named parameter."""
    owners = {".".join(n.split(".")[:k]) for n in named for k in range(1, n.count(".") + 1)}
    best, best_count = 0, 0
    for drop in range(4):
        count = 0
        for node in model.graph.node:
            parts = node.name[1:].split("/") if node.name.startswith("/") and not node.metadata_props else []
            if len(parts) >= drop + 2:
                count += ".".join(parts[drop:-1]) in owners
        if count > best_count:
            best, best_count = drop, count
    return best


def main():
    ap = argparse.ArgumentParser()
    for a in ("--shardc", "--shardc-run", "--model", "--workdir"):
        ap.add_argument(a, required=True)
    ap.add_argument("--reference")
    ap.add_argument("--ref-prefix", default="")
    ap.add_argument("--input-shape", action="append", default=[])
    ap.add_argument("--tol", type=float, default=2e-4)
    args = ap.parse_args()
    wd = pathlib.Path(args.workdir)
    shutil.rmtree(wd, ignore_errors=True)
    wd.mkdir(parents=True)

    model = onnx.load(args.model)
    # initializer -> (Hugging Face name, transposed): named parameters as they are, the
    # TorchScript exporter's onnx::MatMul_<n> after the module path of the MatMul reading it.
    params = {}
    readers = {}
    for node in model.graph.node:
        for i in node.input:
            readers.setdefault(i, []).append(node)
    named = [t.name for t in model.graph.initializer if "." in t.name and not t.name.startswith(("onnx::", "/"))]
    drop = scope_drop(model, named)
    for t in model.graph.initializer:
        if t.data_type != onnx.TensorProto.FLOAT:
            continue
        if t.name in named:
            params[t.name] = (t.name, False)
        elif t.name.startswith("onnx::MatMul_") and len(t.dims) == 2:
            users = readers.get(t.name, [])
            if len(users) == 1 and users[0].op_type == "MatMul" and users[0].name.startswith("/"):
                path = ".".join(users[0].name[1:].split("/")[drop:-1])
                params[t.name] = (path + ".weight", True)
    matmuls = sum(1 for n in params if n.startswith("onnx::"))
    if matmuls == 0:
        print("FAIL: no onnx::MatMul_<n> weight found: not a TorchScript export")
        return 1
    rng = np.random.default_rng(7)
    perturbed = {}
    for t in model.graph.initializer:
        if t.name in params:
            a = numpy_helper.to_array(t)
            perturbed[t.name] = (a + 0.25 * (float(a.std()) or 0.1) * rng.standard_normal(a.shape)).astype(np.float32)

    # The checkpoint (8-byte little-endian header length, JSON, data), PyTorch's layouts.
    header, blobs, at = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(perturbed, key=lambda n: params[n][0]):
        hf, transposed = params[name]
        raw = np.ascontiguousarray(perturbed[name].T if transposed else perturbed[name]).astype("<f4")
        header[hf] = {"dtype": "F32", "shape": list(raw.shape), "data_offsets": [at, at + raw.nbytes]}
        blobs.append(raw.tobytes())
        at += raw.nbytes
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    (wd / "model.safetensors").write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))
    for t in model.graph.initializer:
        if t.name in perturbed:
            t.CopyFrom(numpy_helper.from_array(perturbed[t.name], t.name))
    onnx.save(model, str(wd / "perturbed.onnx"))

    if args.reference:
        ref = np.load(args.reference)
        pre = args.ref_prefix + "__"
        inputs = [i.name for i in model.graph.input if i.name not in params and pre + i.name in ref]
        feeds = {n: ref[pre + n] for n in inputs}
    else:
        given = {k: [int(d) for d in v.split("x")] for k, v in (s.split("=", 1) for s in args.input_shape)}
        feeds = shardc_verify.make_inputs(model, 1234, given)
    np.savez(wd / "in.npz", **feeds)
    sess = ort.InferenceSession(str(wd / "perturbed.onnx"), providers=["CPUExecutionProvider"])
    want = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    own = ort.InferenceSession(args.model, providers=["CPUExecutionProvider"])
    base = dict(zip([o.name for o in own.get_outputs()], own.run(None, feeds)))
    floats = [k for k, v in want.items() if v.dtype == np.float32]
    gap = max(float(np.max(np.abs(want[k] - base[k]))) for k in floats)
    print(f"{len(params)} parameters ({matmuls} onnx::MatMul_<n> named by their MatMul's module path); "
          f"the perturbation moves the outputs by {gap:.3f}")
    failures = []
    if not gap > 100 * args.tol:
        failures.append(f"the perturbation moves the outputs by only {gap:.2e}: the check could not fail")
    (wd / "plan.yaml").write_text("tp_plan: auto\nmp_policy: {param_dtype: fp32, reduce_dtype: fp32, output_dtype: fp32}\n")
    shapes = [f"--input-shape={s}" for s in args.input_shape]
    for mesh, ranks in (("1", 1), ("tp=2", 2)):
        art = wd / f"m.{mesh.replace('=', '')}.shardc"
        cmd = [args.shardc, "compile", args.model, "--plan", str(wd / "plan.yaml"), "--quiet", "-o", str(art)] + shapes
        r = subprocess.run(cmd + (["--mesh", mesh] if mesh != "1" else []), capture_output=True, text=True, timeout=280)
        if r.returncode != 0:
            print(f"FAIL: {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            return 1
        out = wd / "out.npz"
        cmd = [args.shardc_run, str(art), "--inputs", str(wd / "in.npz"), "--outputs", str(out),
               "--weights", str(wd / "model.safetensors")] + (["--threads", str(ranks)] if ranks > 1 else [])
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
        if r.returncode != 0:
            print(f"FAIL: {' '.join(cmd)}\n{r.stdout[-2000:]}{r.stderr[-2000:]}")
            return 1
        got = np.load(out)
        for k in floats:
            err = float(np.max(np.abs(got[k] - want[k])))
            print(f"mesh {mesh}: {k}: max |shardc --weights - onnxruntime (perturbed)| {err:.2e}")
            if not err <= args.tol:
                failures.append(f"mesh {mesh} {k}: {err:.2e} > {args.tol:g}")
    if failures:
        print("FAIL: " + "; ".join(failures))
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
