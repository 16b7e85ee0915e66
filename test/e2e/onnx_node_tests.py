#!/usr/bin/env python3
# Runs ONNX's own backend node tests (onnx/backend/test/data/node) for the ops shardc supports
# through shardc compile + shardc-run; reports per-op pass/fail, the pass rate, a JSON summary.
"""ONNX backend node tests through shardc.

A test is in scope when every node of its model is a default-domain op in SUPPORTED_OPS:
single-op tests, and the `_expanded` tests of a listed op whose function body uses only
listed ops.
Each in scope is compiled with `shardc compile model.onnx -o t.shardc`, run on every
test_data_set_N with `shardc-run t.shardc --inputs in.npz --outputs out.npz`, and each output
compared with the expected one: floats within rtol/atol (1e-4; 1e-3 for expected f16 and
1e-2 for bf16, their own precision), other types exactly.

Every failure is listed with its reason. The exit status is non-zero only when the pass rate
falls below --min-pass-rate (default 0), so the test guards against regressions without
demanding full coverage; a broken setup (no tools, no test data) also fails.
"""
import argparse
import collections
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx
from onnx import numpy_helper

SUPPORTED_OPS = [
    "MatMul", "Gemm", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Exp",
    "Log", "Tanh", "Sigmoid", "Erf", "Gelu", "Softmax", "LogSoftmax", "LayerNormalization",
    "RMSNormalization", "RotaryEmbedding", "Attention", "ReduceMean", "ReduceSum", "ReduceMax",
    "Reshape", "Transpose", "Slice", "Split", "Concat", "Gather", "GatherElements", "Expand",
    "Unsqueeze", "Squeeze", "Where", "IsNaN", "Equal", "Cast", "Constant", "ConstantOfShape",
    "Shape", "Range", "Trilu", "Cos", "Sin", "Relu", "Abs", "Floor", "Ceil", "Round", "Sign",
    "Min", "Max",
    # comparisons, logic, scans, index ops, padding, contractions
    "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And", "Or", "Not", "Xor", "Clip",
    "LeakyRelu", "Mod", "CastLike", "Dropout", "CumSum", "ArgMax", "ScatterND", "Tile", "Pad",
    "Einsum", "Conv",
    "TopK", "GatherND",
    "Flatten", "ReduceL2", "ScatterElements", "ArgMin",
]

# The op families the summary reports a rate for (an op not listed is "other").
OP_FAMILIES = {
    "elementwise": ["Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Reciprocal", "Neg", "Exp", "Log",
                    "Tanh", "Sigmoid", "Erf", "Gelu", "Cos", "Sin", "Relu", "LeakyRelu", "Abs",
                    "Floor", "Ceil", "Round", "Sign", "Min", "Max", "Clip", "Mod", "IsNaN",
                    "Cast", "CastLike", "Dropout"],
    "comparison and logic": ["Equal", "Less", "LessOrEqual", "Greater", "GreaterOrEqual", "And",
                             "Or", "Not", "Xor", "Where"],
    "reduction and scan": ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2", "ArgMax", "ArgMin", "CumSum"],
    "shape and data movement": ["Reshape", "Transpose", "Slice", "Split", "Concat", "Gather",
                                "GatherElements", "ScatterND", "ScatterElements", "Expand", "Unsqueeze", "Squeeze",
                                "Tile", "Pad", "Trilu", "Constant", "ConstantOfShape", "Shape",
                                "Range", "Flatten"],
    "contraction": ["MatMul", "Gemm", "Einsum", "Conv"],
    "normalization and softmax": ["Softmax", "LogSoftmax", "LayerNormalization",
                                  "RMSNormalization"],
    "attention and rotary": ["Attention", "RotaryEmbedding"],
}
FAMILY_OF = {op: fam for fam, ops in OP_FAMILIES.items() for op in ops}

# The element types the pass rate counts (issue 12): a test whose graph inputs and
# outputs all have one of these is a "core dtype" test; the others are reported apart.
CORE_DTYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16,
               onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64, onnx.TensorProto.INT32,
               onnx.TensorProto.INT8, onnx.TensorProto.UINT8, onnx.TensorProto.BOOL}


def core_dtypes(model):
    return all(vi.type.tensor_type.elem_type in CORE_DTYPES
               for vi in list(model.graph.input) + list(model.graph.output))

# Tolerance floors for expected outputs stored in a narrow float type.
LOW_PRECISION_TOL = {"float16": 1e-3, "bfloat16": 1e-2}


def node_test_dir():
    return os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")


def has_subgraph(node):
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
               for a in node.attribute)


def classify(test_dir, ops):
    """(in_scope, op group or out-of-scope reason) for one test directory."""
    try:
        model = onnx.load(os.path.join(test_dir, "model.onnx"))
    except Exception as e:  # noqa: BLE001 - an unreadable test is reported, not fatal
        return False, f"unreadable model ({e})"
    nodes = list(model.graph.node)
    if not nodes:
        return False, "empty graph"
    for n in nodes:
        if n.domain not in ("", "ai.onnx"):
            return False, f"domain {n.domain}"
        if n.op_type not in ops:
            return False, f"op {n.op_type}"
        if has_subgraph(n):
            return False, "subgraph attribute"
    for vi in list(model.graph.input) + list(model.graph.output):
        if not vi.type.HasField("tensor_type"):
            return False, "non-tensor input/output"
    if len(nodes) == 1:
        return True, nodes[0].op_type
    # An expanded test (the op's function body inlined) counts for the op it expands, and
    # only when that op is itself in the list: the suite measures the listed ops.
    name = os.path.basename(test_dir)
    base = re.sub(r"_expanded(_ver\d+)?$", "", name)
    try:
        sib = onnx.load(os.path.join(os.path.dirname(test_dir), base, "model.onnx"))
    except Exception:  # noqa: BLE001 - no single-op sibling to attribute the test to
        return False, "multi-op test"
    if base == name or len(sib.graph.node) != 1:
        return False, "multi-op test"
    op = sib.graph.node[0].op_type
    if op not in ops:
        return False, f"expands {op}"
    return True, op + " (expanded)"


def load_tensor(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def is_float(a):
    return a.dtype.kind == "f" or a.dtype.name in ("bfloat16",) or a.dtype.name.startswith("float8")


def compare(got, want, rtol, atol):
    """None when equal enough, else a short description of the first problem."""
    if tuple(got.shape) != tuple(want.shape):
        return f"shape {list(got.shape)}, expected {list(want.shape)}"
    if want.size == 0:
        return None
    g = got.astype(np.float64)
    w = want.astype(np.float64)
    if is_float(want):
        # Expected values rounded to a narrow float are compared at that float's precision: a
        # correct f32 result differs from the f16-rounded one by up to half an ulp (~5e-4).
        floor = LOW_PRECISION_TOL.get(want.dtype.name, 0.0)
        bad = ~np.isclose(g, w, rtol=max(rtol, floor), atol=max(atol, floor), equal_nan=True)
    else:
        bad = g != w
    if not bad.any():
        return None
    err = np.where(bad, np.abs(g - w), 0.0)
    err = np.where(np.isnan(err), np.inf, err)
    idx = np.unravel_index(int(np.argmax(err)), err.shape)
    return (f"{int(bad.sum())}/{bad.size} elements off, max|err| {float(err[idx]):.3e} at "
            f"{tuple(int(i) for i in idx)} (got {g[idx]:.7g}, expected {w[idx]:.7g})")


def run(cmd, log, timeout):
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace"), "timeout"
    except OSError as e:
        out, rc = str(e), -1
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n" + out + "\n")
    lines = [l for l in out.strip().splitlines() if l.strip()]
    return rc, (lines[-1][:300] if lines else "")


# Operand positions that are shapes, axes or bounds. shardc compiles static programs and folds
# these to attributes at import; node tests feed some of them as graph inputs, so the runner
# specialises such inputs into initializers from each data set before compiling, as a user
# exporting with static shapes would have them.
SHAPE_OPERANDS = {
    "Reshape": [1], "Expand": [1], "Slice": [1, 2, 3, 4], "Unsqueeze": [1], "Squeeze": [1],
    "Split": [1], "ReduceMean": [1], "ReduceSum": [1], "ReduceMax": [1], "Trilu": [1],
    "ConstantOfShape": [0], "Range": [0, 1, 2], "Tile": [1], "CumSum": [1], "Pad": [1, 3],
    "Dropout": [1, 2], "TopK": [1],
}


def shape_only_inputs(model):
    """Graph inputs consumed only at shape-operand positions."""
    uses = {}
    for node in model.graph.node:
        for pos, name in enumerate(node.input):
            uses.setdefault(name, []).append(pos in SHAPE_OPERANDS.get(node.op_type, []))
    inits = {t.name for t in model.graph.initializer}
    return [vi.name for vi in model.graph.input
            if vi.name not in inits and uses.get(vi.name) and all(uses[vi.name])]


def specialise(model, values, path):
    """Writes `model` with the named inputs turned into initializers holding `values`."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    keep = [vi for vi in m.graph.input if vi.name not in values]
    del m.graph.input[:]
    m.graph.input.extend(keep)
    for name, value in values.items():
        m.graph.initializer.append(onnx.numpy_helper.from_array(value, name))
    onnx.save(m, path)


def run_test(test_dir, group, args):
    """Compile once, run every data set; returns a result dict."""
    name = os.path.basename(test_dir)
    wd = os.path.join(args.workdir, name)
    shutil.rmtree(wd, ignore_errors=True)
    os.makedirs(wd)
    log = os.path.join(wd, "log.txt")
    model = onnx.load(os.path.join(test_dir, "model.onnx"))
    res = {"name": name, "op": group, "status": "pass", "detail": "", "core_dtypes": core_dtypes(model)}
    init_names = {t.name for t in model.graph.initializer}
    in_names = [vi.name for vi in model.graph.input if vi.name not in init_names]
    out_names = [vi.name for vi in model.graph.output]
    sets = sorted(d for d in os.listdir(test_dir) if d.startswith("test_data_set_"))
    if not sets:
        res.update(status="bad_test", detail="no test_data_set_*")
        return res

    frozen = shape_only_inputs(model)
    artifact = os.path.join(wd, "t.shardc")

    def compile_model(model_path):
        rc, tail = run([args.shardc, "compile", model_path, "-o", artifact], log, args.timeout)
        if rc != 0 or not os.path.exists(artifact):
            res.update(status="timeout" if rc == "timeout" else "compile_error",
                       detail=tail or f"exit {rc}")
            return False
        return True

    if not frozen and not compile_model(os.path.join(test_dir, "model.onnx")):
        return res

    for ds in sets:
        d = os.path.join(test_dir, ds)
        n_in = len([f for f in os.listdir(d) if f.startswith("input_")])
        n_out = len([f for f in os.listdir(d) if f.startswith("output_")])
        if n_in != len(in_names) or n_out != len(out_names):
            res.update(status="bad_test", detail=f"{ds}: {n_in} inputs/{n_out} outputs for a "
                       f"graph of {len(in_names)}/{len(out_names)}")
            return res
        try:
            feeds = {n: load_tensor(os.path.join(d, f"input_{i}.pb"))
                     for i, n in enumerate(in_names)}
            expected = {n: load_tensor(os.path.join(d, f"output_{i}.pb"))
                        for i, n in enumerate(out_names)}
        except Exception as e:  # noqa: BLE001
            res.update(status="bad_test", detail=f"{ds}: cannot read tensors ({e})")
            return res
        if frozen:
            special = os.path.join(wd, f"{ds}.model.onnx")
            specialise(model, {n: feeds.pop(n) for n in frozen}, special)
            if os.path.exists(artifact):
                os.remove(artifact)
            if not compile_model(special):
                return res
        in_npz, out_npz = os.path.join(wd, f"{ds}.in.npz"), os.path.join(wd, f"{ds}.out.npz")
        np.savez(in_npz, **feeds)
        rc, tail = run([args.shardc_run, artifact, "--inputs", in_npz, "--outputs", out_npz],
                       log, args.timeout)
        if rc != 0 or not os.path.exists(out_npz):
            res.update(status="timeout" if rc == "timeout" else "run_error",
                       detail=f"{ds}: " + (tail or f"exit {rc}, no outputs"))
            return res
        got = np.load(out_npz)
        for n in out_names:
            if n not in got.files:
                res.update(status="mismatch", detail=f"{ds}: output {n!r} missing")
                return res
            problem = compare(got[n], expected[n], args.rtol, args.atol)
            if problem:
                res.update(status="mismatch", detail=f"{ds}: output {n!r}: {problem}")
                return res
    if not args.keep:
        shutil.rmtree(wd, ignore_errors=True)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shardc", help="the shardc compiler binary")
    ap.add_argument("--shardc-run", help="the shardc-run runtime binary")
    ap.add_argument("--workdir", default="onnx_node_tests.work")
    ap.add_argument("--json", help="write the summary here")
    ap.add_argument("--min-pass-rate", type=float, default=0.0,
                    help="fail when passed/in-scope is below this fraction (0..1)")
    ap.add_argument("--rtol", type=float, default=1e-4)
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--timeout", type=float, default=60, help="seconds per tool invocation")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("-k", "--filter", help="only tests whose name matches this regex")
    ap.add_argument("--op", action="append", help="only these ops (repeatable)")
    ap.add_argument("--data-dir", default=node_test_dir())
    ap.add_argument("--list", action="store_true", help="list the tests in scope and exit")
    ap.add_argument("--keep", action="store_true", help="keep work files of passing tests too")
    ap.add_argument("-v", "--verbose", action="store_true", help="print passing tests too")
    args = ap.parse_args()

    ops = set(args.op or SUPPORTED_OPS)
    unknown = ops - set(SUPPORTED_OPS)
    if unknown:
        ap.error(f"not in the supported list: {sorted(unknown)}")
    if not os.path.isdir(args.data_dir):
        print(f"FAIL (setup): no ONNX node test data at {args.data_dir}")
        return 2
    scope, skipped = [], collections.Counter()
    for name in sorted(os.listdir(args.data_dir)):
        if not name.startswith("test_") or (args.filter and not re.search(args.filter, name)):
            continue
        ok, group = classify(os.path.join(args.data_dir, name), ops)
        if ok:
            scope.append((os.path.join(args.data_dir, name), group))
        else:
            skipped[group.split(" (")[0]] += 1
    if args.list:
        for d, g in scope:
            print(f"{os.path.basename(d)}  [{g}]")
        print(f"{len(scope)} tests in scope, {sum(skipped.values())} out of scope")
        return 0
    if not scope:
        print("FAIL (setup): no test in scope")
        return 2
    for tool, flag in ((args.shardc, "--shardc"), (args.shardc_run, "--shardc-run")):
        if not tool or not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            print(f"FAIL (setup): {flag} {tool!r} is not an executable file")
            return 2
    os.makedirs(args.workdir, exist_ok=True)
    args.workdir = os.path.abspath(args.workdir)

    t0 = time.time()
    results = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_test, d, g, args) for d, g in scope]
        for f in futures:
            r = f.result()
            results.append(r)
            if r["status"] != "pass" or args.verbose:
                print(f"{r['status'].upper():13} {r['name']} [{r['op']}] {r['detail']}", flush=True)

    per_op = collections.OrderedDict()
    for r in sorted(results, key=lambda r: r["op"]):
        e = per_op.setdefault(r["op"], {"passed": 0, "total": 0, "failed": []})
        e["total"] += 1
        if r["status"] == "pass":
            e["passed"] += 1
        else:
            e["failed"].append(r["name"])
    print("\nper op (passed/total):")
    for op, e in per_op.items():
        mark = "ok  " if e["passed"] == e["total"] else ("FAIL" if e["passed"] == 0 else "part")
        print(f"  {mark} {op:32} {e['passed']:4}/{e['total']}")
    families = collections.OrderedDict((f, [0, 0]) for f in list(OP_FAMILIES) + ["other"])
    for r in results:
        e = families[FAMILY_OF.get(r["op"].split(" (")[0], "other")]
        e[0] += r["status"] == "pass"
        e[1] += 1
    print("\nper op family (passed/total):")
    for fam, (p, t) in families.items():
        if t:
            print(f"  {fam:32} {p:4}/{t} ({100 * p / t:.1f}%)")
    passed = sum(r["status"] == "pass" for r in results)
    rate = passed / len(results)
    core = [r for r in results if r["core_dtypes"]]
    core_passed = sum(r["status"] == "pass" for r in core)
    core_rate = core_passed / len(core) if core else 0.0
    by_status = collections.Counter(r["status"] for r in results)
    print(f"\nONNX node tests: {passed}/{len(results)} passed ({100 * rate:.1f}%), "
          f"{dict(by_status)}; {sum(skipped.values())} tests out of scope; "
          f"{time.time() - t0:.0f}s")
    print(f"with f32 f16 bf16 f64 i64 i32 i8 u8 bool inputs and outputs: {core_passed}/{len(core)} "
          f"passed ({100 * core_rate:.1f}%); other dtypes: {passed - core_passed}/"
          f"{len(results) - len(core)}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"passed": passed, "total": len(results), "pass_rate": rate,
                       "core_dtypes": {"passed": core_passed, "total": len(core), "pass_rate": core_rate},
                       "per_family": {f: {"passed": p, "total": t} for f, (p, t) in families.items() if t},
                       "min_pass_rate": args.min_pass_rate, "by_status": dict(by_status),
                       "per_op": per_op, "tests": results,
                       "out_of_scope": dict(skipped.most_common())}, f, indent=1)
    if rate < args.min_pass_rate:
        print(f"FAIL: pass rate {rate:.3f} is below --min-pass-rate {args.min_pass_rate:.3f}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
