#!/usr/bin/env python3
"""Grouped experts against the exported GatherND form on the CPU (prints figures; not a test).

Builds one MoE experts block in the form PyTorch's exporter writes for transformers' batched_mm
experts (every (token, choice) row gathers its expert's [2I, H] and [H, I] weights with
GatherND and runs a batched matrix-vector product; docs/moe.md), with the router's choice and
weights as inputs, checks it against onnxruntime, compiles it raised (sc.moe_experts: sort by
expert, one sgemm pair per expert) and not (SHARDC_NO_RAISE_MOE=1), and times both with
shardc-run --repeat. Prints each median and the ratio.

  .venv/bin/python bench/moe_experts.py [--tokens 128 --hidden 256 --inter 512 --experts 8 --k 2]
"""
import argparse
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def block(T, H, I, E, k, seed=0):
    rng = np.random.default_rng(seed)
    gu = (0.05 * rng.standard_normal((E, 2 * I, H))).astype(np.float32)
    dn = (0.05 * rng.standard_normal((E, H, I))).astype(np.float32)
    c = lambda name, vals: numpy_helper.from_array(np.array(vals, np.int64), name)
    inits = [numpy_helper.from_array(gu, "experts.gate_up_proj"), numpy_helper.from_array(dn, "experts.down_proj"),
             c("ax1", [1]), c("ax2", [2]), c("tkh", [T, k, H]), c("rh", [T * k, H]), c("r1", [T * k, 1]),
             c("tkh2", [T, k, H]), c("halves", [I, I])]
    n = helper.make_node
    nodes = [
        n("Unsqueeze", ["x", "ax1"], ["xu"]), n("Expand", ["xu", "tkh"], ["xe"]), n("Reshape", ["xe", "rh"], ["xr"]),
        n("Unsqueeze", ["xr", "ax2"], ["xc"]), n("Reshape", ["ids", "r1"], ["idx"]),
        n("GatherND", ["experts.gate_up_proj", "idx"], ["g1"]), n("MatMul", ["g1", "xc"], ["m1"]),
        n("Squeeze", ["m1", "ax2"], ["s1"]), n("Split", ["s1", "halves"], ["gate", "up"], axis=1),
        n("Sigmoid", ["gate"], ["sg"]), n("Mul", ["gate", "sg"], ["silu"]), n("Mul", ["silu", "up"], ["act"]),
        n("GatherND", ["experts.down_proj", "idx"], ["g2"]), n("Unsqueeze", ["act", "ax2"], ["ac"]),
        n("MatMul", ["g2", "ac"], ["m2"]), n("Squeeze", ["m2", "ax2"], ["s2"]), n("Reshape", ["w", "r1"], ["wc"]),
        n("Mul", ["s2", "wc"], ["sc"]), n("Reshape", ["sc", "tkh2"], ["r"]),
        n("ReduceSum", ["r", "ax1"], ["y"], keepdims=0)]
    graph = helper.make_graph(nodes, "moe_experts", [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, [T, H]),
        helper.make_tensor_value_info("ids", TensorProto.INT64, [T, k]),
        helper.make_tensor_value_info("w", TensorProto.FLOAT, [T, k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [T, H])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 9
    onnx.checker.check_model(model)
    ids = np.stack([rng.choice(E, k, replace=False) for _ in range(T)]).astype(np.int64)
    w = rng.random((T, k)).astype(np.float32)
    x = rng.standard_normal((T, H)).astype(np.float32)
    return model, {"x": x, "ids": ids, "w": w}


def median_ms(cmd, env):
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if out.returncode != 0:
        sys.exit(out.stdout)
    m = re.search(r"median ([0-9.]+) ms", out.stdout)
    return float(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--hidden", type=int, default=256)
    ap.add_argument("--inter", type=int, default=512)
    ap.add_argument("--experts", type=int, default=8)
    ap.add_argument("--k", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=20)
    ap.add_argument("--bin", default=os.path.join(ROOT, "build", "bin"))
    ap.add_argument("--workdir", default=os.path.join(ROOT, "build", "bench", "moe"))
    a = ap.parse_args()
    os.makedirs(a.workdir, exist_ok=True)
    wd = lambda name: os.path.join(a.workdir, name)
    model, feeds = block(a.tokens, a.hidden, a.inter, a.experts, a.k)
    onnx.save(model, wd("experts.onnx"))
    np.savez(wd("in.npz"), **feeds)
    want = ort.InferenceSession(wd("experts.onnx"), providers=["CPUExecutionProvider"]).run(["y"], feeds)[0]
    env = dict(os.environ, OPENBLAS_NUM_THREADS=os.environ.get("OPENBLAS_NUM_THREADS", "1"))
    times = {}
    for form, extra in (("grouped", {}), ("gathernd", {"SHARDC_NO_RAISE_MOE": "1"})):
        e = dict(env, **extra)
        subprocess.run([os.path.join(a.bin, "shardc"), "compile", wd("experts.onnx"), "--quiet", "-o", wd(form + ".shardc")],
                       env=e, check=True)
        subprocess.run([os.path.join(a.bin, "shardc-run"), wd(form + ".shardc"), "--inputs", wd("in.npz"),
                        "--outputs", wd(form + ".npz")], env=e, check=True, stdout=subprocess.DEVNULL)
        got = np.load(wd(form + ".npz"))["y"]
        err = float(np.max(np.abs(got - want)))
        times[form] = median_ms([os.path.join(a.bin, "shardc-run"), wd(form + ".shardc"), "--inputs", wd("in.npz"),
                                 "--repeat", str(a.repeat)], e)
        print(f"{form:9s} T={a.tokens} H={a.hidden} I={a.inter} E={a.experts} k={a.k}: median {times[form]:.3f} ms, "
              f"max|y - onnxruntime| {err:.2e}")
    print(f"ratio gathernd / grouped: {times['gathernd'] / times['grouped']:.1f}x "
          f"(OPENBLAS_NUM_THREADS={env['OPENBLAS_NUM_THREADS']})")


if __name__ == "__main__":
    main()
