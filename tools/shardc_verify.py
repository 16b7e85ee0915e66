#!/usr/bin/env python3
# One end-to-end check: deterministic inputs -> onnxruntime and shardc compile + shardc-run ->
# every output compared (and against a PyTorch reference npz when given); non-zero past tolerance.
"""Compile an ONNX model with shardc, run it with shardc-run, compare with onnxruntime.

  shardc_verify.py --shardc BIN --shardc-run BIN --model M.onnx --workdir DIR [--atol 1e-4]
             [--reference REF.npz --ref-prefix NAME]

Inputs are deterministic: token ids drawn within the vocabulary of the Gather table that
reads them, masks with some right padding, floats standard normal. With --reference, inputs
`<NAME>__<input>` come from the npz and every output is also compared with
`<NAME>__<output>` (for /work/shared/models/reference_io.npz: `llama_tiny__input_ids`,
`llama_tiny__output`). onnxruntime is required: without it the check fails, it never skips.

Exit status: 0 all outputs within tolerance, 1 a mismatch or a shardc failure, 2 a problem
with the test itself (missing onnxruntime, bad arguments, a reference lacking a key).
"""
import argparse
import os
import shlex
import subprocess
import sys
import time

import numpy as np
import onnx

SETUP_ERROR = 2


def fail_setup(msg):
    print(f"FAIL (setup): {msg}", flush=True)
    sys.exit(SETUP_ERROR)


try:
    import onnxruntime as ort
except ImportError as e:  # the oracle is required: never turn its absence into a pass
    fail_setup(f"onnxruntime cannot be imported ({e}); install it in this Python")

NP_OF_ONNX = {
    onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64,
    onnx.TensorProto.FLOAT16: np.float16, onnx.TensorProto.INT64: np.int64,
    onnx.TensorProto.INT32: np.int32, onnx.TensorProto.INT8: np.int8,
    onnx.TensorProto.UINT8: np.uint8, onnx.TensorProto.BOOL: np.bool_,
}


# Symbolic dims bound as shardc binds them: --input-shape name=2x64 per input, then --shapes
# batch=2,seq=64 by dim name (set by main()).
INPUT_SHAPES, DIM_BINDINGS = {}, {}


def static_shape(vi, given=None):
    """The input's shape: --input-shape, else its dims with symbolic ones bound by --shapes, else
    taken from `given` (the shape of the array --inputs or --reference supplies for it)."""
    if vi.name in INPUT_SHAPES:
        return INPUT_SHAPES[vi.name]
    dims = []
    tdims = vi.type.tensor_type.shape.dim
    for i, d in enumerate(tdims):
        if d.HasField("dim_value"):
            dims.append(d.dim_value)
        elif d.dim_param in DIM_BINDINGS:
            dims.append(DIM_BINDINGS[d.dim_param])
        elif given is not None and len(given) == len(tdims):
            dims.append(int(given[i]))
        else:
            fail_setup(f"input {vi.name!r} has a symbolic dim {d.dim_param!r}; bind it with --shapes or "
                       "--input-shape, or give the input in --inputs or --reference")
    return dims


def gather_tables(model):
    """For each graph input used as Gather indices, the row count of the table it indexes."""
    inits = {t.name: t for t in model.graph.initializer}
    rows = {}
    for n in model.graph.node:
        if n.op_type == "Gather" and len(n.input) >= 2 and n.input[0] in inits:
            axis = next((a.i for a in n.attribute if a.name == "axis"), 0)
            dims = list(inits[n.input[0]].dims)
            r = dims[axis]
            rows[n.input[1]] = min(rows.get(n.input[1], r), r)
    return rows


def make_inputs(model, seed, given_shapes=None):
    """Deterministic inputs by role: ids within their table, masks with right padding (row b
    loses b*S/(2B) trailing positions, so rows differ and none is fully masked).
    `given_shapes` (name -> shape) sizes the symbolic dims of inputs supplied elsewhere."""
    rng = np.random.default_rng(seed)
    tables = gather_tables(model)
    init_names = {t.name for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in init_names:
            continue
        et = vi.type.tensor_type.elem_type
        if et not in NP_OF_ONNX:
            fail_setup(f"input {vi.name!r} has element type "
                       f"{onnx.TensorProto.DataType.Name(et)} this harness cannot make")
        dtype = NP_OF_ONNX[et]
        shape = static_shape(vi, (given_shapes or {}).get(vi.name))
        lname = vi.name.lower()
        if "mask" in lname:
            a = np.ones(shape, dtype=dtype)
            if len(shape) >= 2:
                B, S = shape[0], shape[-1]
                for b in range(B):
                    pad = (b * S) // (2 * B)
                    if pad:
                        a[b, ..., S - pad:] = 0
        elif "position" in lname and np.issubdtype(dtype, np.integer):
            a = np.broadcast_to(np.arange(shape[-1], dtype=dtype), shape).copy()
        elif np.issubdtype(dtype, np.integer):
            high = tables.get(vi.name)
            if high is None:
                print(f"note: input {vi.name!r} indexes no Gather table; drawing from [0, 2)")
                high = 2
            a = rng.integers(0, high, size=shape, dtype=dtype)
        elif dtype == np.bool_:
            a = rng.random(shape) < 0.5
        else:
            a = rng.standard_normal(shape).astype(dtype)
        feeds[vi.name] = a
    return feeds


def run_cmd(cmd, log_path, timeout):
    """Runs a tool, keeps its output in a log, returns (ok, tail of output)."""
    t0 = time.time()
    try:
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        out, rc = p.stdout.decode(errors="replace"), p.returncode
    except subprocess.TimeoutExpired as e:
        out, rc = (e.stdout or b"").decode(errors="replace") + f"\n[timed out after {timeout}s]", -1
    except OSError as e:
        out, rc = f"[cannot run: {e}]", -1
    with open(log_path, "w") as f:
        f.write("$ " + " ".join(shlex.quote(c) for c in cmd) + "\n" + out)
    tail = "\n".join(out.strip().splitlines()[-25:])
    return rc == 0, tail, time.time() - t0


def compare(got, want, atol, rtol):
    """Max abs error, its index, and whether every element is within atol + rtol*|want|.
    NaN/inf must match exactly; a NaN against a number counts as an infinite error. Integer
    and boolean outputs must be equal (no tolerance)."""
    if all(np.issubdtype(np.asarray(x).dtype, np.integer) or np.asarray(x).dtype == np.bool_
           for x in (got, want)):
        atol, rtol = 0.0, 0.0
    g = np.asarray(got, dtype=np.float64)
    w = np.asarray(want, dtype=np.float64)
    if g.shape != w.shape:
        return None
    if g.size == 0:
        return 0.0, (), True
    same_special = (np.isnan(g) & np.isnan(w)) | (np.isinf(g) & (g == w))
    err = np.where(same_special, 0.0, np.abs(g - w))
    err = np.where(np.isnan(err), np.inf, err)
    idx = np.unravel_index(int(np.argmax(err)), err.shape)
    ok = bool(np.all(err <= atol + rtol * np.abs(np.where(np.isfinite(w), w, 0.0))))
    return float(err[idx]), tuple(int(i) for i in idx), ok


def describe(name_a, a, name_b, b, res):
    err, idx, _ = res
    if not idx and np.ndim(a) != 0:
        return f"max|err| {err:.3e}"
    return (f"max|err| {err:.3e} at {idx} ({name_a} {float(np.asarray(a)[idx]):.7g}, "
            f"{name_b} {float(np.asarray(b)[idx]):.7g})")


def module_outputs(model):
    """(module path, output tensor) per module in program order: the output of the module's
    last node, with module paths from the exporter's pkg.torch.onnx.name_scopes."""
    import ast
    last = {}
    for i, node in enumerate(model.graph.node):
        for p in node.metadata_props:
            if p.key == "pkg.torch.onnx.name_scopes":
                try:
                    scopes = ast.literal_eval(p.value)
                except (ValueError, SyntaxError):
                    continue
                if len(scopes) >= 2 and scopes[-2] and node.output:
                    last[scopes[-2]] = (i, node.output[0])
    return [(path, out) for path, (i, out) in sorted(last.items(), key=lambda kv: kv[1][0])]


def bisect(args, model_path, feeds, wd):
    """Finds the first module (in program order) whose output differs between the sharded and
    the unsharded program: each probe cuts the model at a module's output
    (onnx.utils.Extractor), compiles and runs both, and compares."""
    import onnx.utils
    full = onnx.load(model_path)
    cands = module_outputs(full)
    if not cands:
        print("bisect: the model has no module paths (pkg.torch.onnx.name_scopes)")
        return
    extractor = onnx.utils.Extractor(full)
    input_names = [i.name for i in full.graph.input if i.name in feeds]
    cache = {}

    def diverges(k):
        if k in cache:
            return cache[k]
        path, out = cands[k]
        pdir = os.path.join(wd, f"bisect_{k}")
        os.makedirs(pdir, exist_ok=True)
        sub = extractor.extract_model(input_names, [out])
        sub_path = os.path.join(pdir, "sub.onnx")
        onnx.save(sub, sub_path)
        sub_inputs = {i.name for i in sub.graph.input}
        npz = os.path.join(pdir, "inputs.npz")
        np.savez(npz, **{n: v for n, v in feeds.items() if n in sub_inputs})
        results = {}
        for tag, cargs, rargs in (("sharded", args.compile_arg, args.run_arg),
                                  ("unsharded", args.unsharded_compile_arg, [])):
            art, outp = os.path.join(pdir, f"{tag}.shardc"), os.path.join(pdir, f"{tag}.npz")
            ok, tail, _ = run_cmd([args.shardc, "compile", sub_path, "-o", art, "--quiet"] + cargs,
                                  os.path.join(pdir, f"{tag}_compile.log"), args.timeout)
            if ok:
                ok, tail, _ = run_cmd([args.shardc_run, art, "--inputs", npz, "--outputs", outp] + rargs,
                                      os.path.join(pdir, f"{tag}_run.log"), args.timeout)
            if not ok:
                print(f"bisect: {path}: the {tag} program failed ({pdir}):\n{tail}")
                cache[k] = None
                return None
            results[tag] = np.load(outp)[out]
        res = compare(results["sharded"], results["unsharded"], args.atol, args.rtol)
        cache[k] = res is None or not res[2]
        err = "shape mismatch" if res is None else f"max|err| {res[0]:.3e}"
        print(f"bisect: {path} ({out}): {'DIVERGES' if cache[k] else 'matches'} ({err})")
        return cache[k]

    lo, hi = 0, len(cands) - 1
    if not diverges(hi):
        print("bisect: the last module's output matches; the divergence is after it")
        return
    while lo < hi:
        mid = (lo + hi) // 2
        d = diverges(mid)
        if d is None:
            return
        if d:
            hi = mid
        else:
            lo = mid + 1
    print(f"bisect: first diverging module: {cands[lo][0]} (output {cands[lo][1]})")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shardc", required=True, help="the shardc compiler binary")
    ap.add_argument("--shardc-run", required=True, help="the shardc-run runtime binary")
    ap.add_argument("--model", required=True, help="the .onnx model")
    ap.add_argument("--workdir", required=True, help="where inputs, artifact, outputs, logs go")
    ap.add_argument("--atol", type=float, default=1e-4)
    ap.add_argument("--rtol", type=float, default=0.0)
    ap.add_argument("--reference", help="npz with <prefix>__<input> and <prefix>__<output>")
    ap.add_argument("--ref-prefix", help="key prefix in --reference (e.g. llama_tiny)")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--inputs", help="npz with the graph's inputs (default: random, token ids in range)")
    ap.add_argument("--compile-arg", action="append", default=[],
                    help="extra argument for `shardc compile` (repeatable, e.g. --plan=p.yaml)")
    ap.add_argument("--run-arg", action="append", default=[],
                    help="extra argument for shardc-run (repeatable, e.g. --nproc=2)")
    ap.add_argument("--launcher", default="",
                    help="command prefix for shardc-run, e.g. 'mpirun -np 2'")
    ap.add_argument("--timeout", type=float, default=600, help="seconds per tool invocation")
    ap.add_argument("--against-unsharded", action="store_true",
                    help="also compile and run the model unsharded (no --compile-arg, one rank) "
                         "and compare the sharded outputs with it")
    ap.add_argument("--bisect", action="store_true",
                    help="when sharded and unsharded differ, find the first diverging module")
    ap.add_argument("--unsharded-compile-arg", action="append", default=[],
                    help="extra argument for the unsharded compile (e.g. the same plan at mesh 1)")
    ap.add_argument("--shapes", default="",
                    help="one set of symbolic-dim bindings, batch=2,seq=64 (also passed to both compiles)")
    ap.add_argument("--input-shape", action="append", default=[],
                    help="name=2x64: an input's shape (repeatable; also passed to both compiles)")
    args = ap.parse_args()
    for item in filter(None, args.shapes.split(",")):
        k, _, v = item.partition("=")
        DIM_BINDINGS[k.strip()] = int(v)
    for spec in args.input_shape:
        k, _, v = spec.partition("=")
        INPUT_SHAPES[k] = [int(x) for x in v.split("x")]
    binds = ([f"--shapes={args.shapes}"] if args.shapes else []) + [f"--input-shape={s}" for s in args.input_shape]
    args.compile_arg += binds
    args.unsharded_compile_arg += binds

    if bool(args.reference) != bool(args.ref_prefix):
        fail_setup("--reference and --ref-prefix go together")
    for tool in (args.shardc, args.shardc_run):
        if not (os.path.isfile(tool) and os.access(tool, os.X_OK)):
            fail_setup(f"{tool} is not an executable file")
    if not os.path.isfile(args.model):
        fail_setup(f"no model at {args.model}")
    os.makedirs(args.workdir, exist_ok=True)
    wd = os.path.abspath(args.workdir)
    label = os.path.basename(args.model)

    model = onnx.load(args.model, load_external_data=False)
    given_shapes = {}
    if args.inputs:
        with np.load(args.inputs) as z:
            given_shapes.update({k: z[k].shape for k in z.files})
    if args.reference:
        with np.load(args.reference) as z:
            prefix = f"{args.ref_prefix}__"
            given_shapes.update({k[len(prefix):]: z[k].shape for k in z.files if k.startswith(prefix)})
    feeds = make_inputs(model, args.seed, given_shapes)
    if args.inputs:
        given = np.load(args.inputs)
        for name in feeds:
            if name not in given.files:
                fail_setup(f"{args.inputs} lacks input {name!r} (has {given.files})")
            feeds[name] = given[name].astype(feeds[name].dtype)
    ref = None
    if args.reference:
        ref = np.load(args.reference)
        for name in feeds:
            key = f"{args.ref_prefix}__{name}"
            if key in ref.files:
                want = feeds[name]
                if ref[key].shape != want.shape:
                    fail_setup(f"reference {key} has shape {ref[key].shape}, "
                               f"the model's input is {want.shape}")
                feeds[name] = ref[key].astype(want.dtype)
        out_keys = [f"{args.ref_prefix}__{o.name}" for o in model.graph.output]
        lacking = [k for k in out_keys if k not in ref.files]
        if lacking:
            fail_setup(f"reference lacks {lacking} (has {ref.files})")
    in_npz = os.path.join(wd, "inputs.npz")
    np.savez(in_npz, **feeds)

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(args.model, opts, providers=["CPUExecutionProvider"])
    out_names = [o.name for o in sess.get_outputs()]
    ort_outs = dict(zip(out_names, sess.run(None, feeds)))
    np.savez(os.path.join(wd, "ort_outputs.npz"), **ort_outs)

    artifact = os.path.join(wd, "model.shardc")
    out_npz = os.path.join(wd, "shardc_outputs.npz")
    for stale in (artifact, out_npz):
        if os.path.exists(stale):
            os.remove(stale)  # a previous run's files must not pass for this run's
    ok, tail, secs = run_cmd([args.shardc, "compile", os.path.abspath(args.model), "-o", artifact]
                             + args.compile_arg, os.path.join(wd, "compile.log"), args.timeout)
    if not ok:
        print(f"FAIL {label}: shardc compile failed ({secs:.1f}s), log {wd}/compile.log:\n{tail}")
        return 1
    print(f"compiled {label} in {secs:.1f}s")
    ok, tail, secs = run_cmd(shlex.split(args.launcher) +
                             [args.shardc_run, artifact, "--inputs", in_npz, "--outputs", out_npz]
                             + args.run_arg, os.path.join(wd, "run.log"), args.timeout)
    if not ok:
        print(f"FAIL {label}: shardc-run failed ({secs:.1f}s), log {wd}/run.log:\n{tail}")
        return 1
    if not os.path.exists(out_npz):
        print(f"FAIL {label}: shardc-run succeeded but wrote no {out_npz}")
        return 1
    print(f"ran {label} in {secs:.1f}s")
    got = np.load(out_npz)

    unsharded = None
    if args.against_unsharded:
        base_art = os.path.join(wd, "unsharded.shardc")
        base_npz = os.path.join(wd, "unsharded_outputs.npz")
        for stale in (base_art, base_npz):
            if os.path.exists(stale):
                os.remove(stale)
        ok, tail, _ = run_cmd([args.shardc, "compile", os.path.abspath(args.model), "-o", base_art, "--quiet"]
                              + args.unsharded_compile_arg,
                              os.path.join(wd, "unsharded_compile.log"), args.timeout)
        if ok:
            ok, tail, _ = run_cmd([args.shardc_run, base_art, "--inputs", in_npz, "--outputs", base_npz],
                                  os.path.join(wd, "unsharded_run.log"), args.timeout)
        if not ok or not os.path.exists(base_npz):
            print(f"FAIL {label}: the unsharded program failed:\n{tail}")
            return 1
        unsharded = np.load(base_npz)

    failures = 0
    for name in out_names:
        want = ort_outs[name]
        parts, ok = [], True
        if name not in got.files:
            print(f"FAIL {name}: missing from shardc-run's outputs (it wrote {got.files})")
            failures += 1
            continue
        g = got[name]
        # The sharded output against onnxruntime and, when run, the unsharded program.
        against = [("onnxruntime", "shardc", want)]
        if unsharded is not None:
            against.append(("unsharded", "sharded", unsharded[name]))
        shape_mismatch = False
        for other, mine, b in against:
            res = compare(g, b, args.atol, args.rtol)
            if res is None:
                print(f"FAIL {name}: {mine} shape {list(g.shape)}, {other} {list(b.shape)}")
                shape_mismatch = True
                break
            ok &= res[2]
            parts.append(f"{mine} vs {other} " + describe(mine, g, other, b, res))
        if shape_mismatch:
            failures += 1
            continue
        if ref is not None:
            key = f"{args.ref_prefix}__{name}"
            r = ref[key]
            res = compare(g, r, args.atol, args.rtol)
            res_ort = compare(want, r, args.atol, args.rtol)
            if res is None or res_ort is None:
                fail_setup(f"reference {key} has shape {list(r.shape)}, output {list(want.shape)}")
            ok &= res[2] and res_ort[2]
            parts.append("shardc vs reference " + describe("shardc", g, "reference", r, res))
            # If onnxruntime itself disagrees with the reference the harness or model is wrong.
            parts.append(f"onnxruntime vs reference max|err| {res_ort[0]:.3e}")
        failures += not ok
        print(f"{'PASS' if ok else 'FAIL'} {name} {list(want.shape)}: " + "; ".join(parts) +
              f" (atol {args.atol:g}" + (f", rtol {args.rtol:g})" if args.rtol else ")"))
    if failures and args.bisect and args.against_unsharded:
        bisect(args, os.path.abspath(args.model), feeds, wd)
    extra = sorted(set(got.files) - set(out_names))
    if extra:
        print(f"note: shardc-run also wrote {extra}, which the model does not output")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
