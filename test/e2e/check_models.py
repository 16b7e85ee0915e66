#!/usr/bin/env python3
# Checks that gen_models.py writes what PyTorch's exporter writes: every generated model passes
# onnx.checker and runs in onnxruntime, and the Llama/Qwen2 generators rebuild the shared exports.
"""Self-test of the e2e model generator (needs no shardc).

1. Every model in --models (or freshly generated) passes onnx.checker (full check), gives
   finite outputs in onnxruntime, and its graph signature declares every parameter a
   PARAMETER: the named float initializers and the sources of the folded Linear weights.
2. Faithfulness against the real exports in --shared: the generator, configured like
   llama_tiny / qwen2_tiny and fed their weights, must produce the same node sequence (op
   types, attributes, module paths and classes in metadata), the same per-layer op counts, the
   same named parameters, the same graph-signature lines (order aside), and onnxruntime
   outputs equal to PyTorch's reference_io.npz.
"""
import argparse
import collections
import ast
import os
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tools"))
import gen_models  # noqa: E402
import shardc_verify  # noqa: E402  (its input maker: ids within the vocabulary, padded masks)

try:
    import onnxruntime as ort
except ImportError as e:  # the reference is required: a missing one is a failure, not a skip
    print(f"FAIL: onnxruntime cannot be imported ({e})")
    sys.exit(2)

# The shared exports' configurations (see /work/shared/tools/export_hf_models.py).
SHARED = {
    "llama_tiny": dict(family="llama", vocab=512, hidden=256, layers=4, heads=8, kv_heads=4,
                       intermediate=512, batch=2, seq=64),
    "qwen2_tiny": dict(family="llama", variant="qwen2", vocab=512, hidden=256, layers=2,
                       heads=8, kv_heads=2, intermediate=512, batch=2, seq=64, rope_theta=1e4),
}


def session(path):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def check_runs(path):
    """onnx.checker plus a run with in-range inputs; returns a list of problems."""
    problems = []
    try:
        onnx.checker.check_model(path, full_check=True)
    except Exception as e:  # noqa: BLE001 - any checker complaint is a problem to report
        return [f"checker: {e}"]
    m = onnx.load(path, load_external_data=False)
    if m.ir_version != gen_models.IR_VERSION or m.opset_import[0].version != gen_models.OPSET:
        problems.append(f"ir {m.ir_version} opset {m.opset_import[0].version}")
    keys = {"namespace", "pkg.torch.onnx.name_scopes", "pkg.torch.onnx.class_hierarchy"}
    missing = [n.name for n in m.graph.node if not keys <= {p.key for p in n.metadata_props}]
    if missing:
        problems.append(f"{len(missing)} nodes lack module metadata, e.g. {missing[0]}")
    problems += check_signature(m)
    sess = session(path)
    feeds = shardc_verify.make_inputs(m, seed=0)
    for o, meta in zip(sess.run(None, feeds), sess.get_outputs()):
        if not np.isfinite(o).all():
            problems.append(f"output {meta.name} not finite")
        elif float(np.std(o)) < 1e-3:
            problems.append(f"output {meta.name} nearly constant (std {np.std(o):.2e})")
    return problems


SIGNATURE = "pkg.torch.export.ExportedProgram.graph_signature"


def signature_lines(model):
    """The graph signature's lines (`p_x: PARAMETER target='x'`, ...), or None."""
    for p in model.graph.metadata_props:
        if p.key == SIGNATURE:
            return [line for line in p.value.splitlines() if line and not line.startswith("#")]
    return None


def check_signature(model):
    """Every parameter the model holds is declared a PARAMETER in the graph signature (the
    importer trains exactly those): named float initializers, and the one source of a fold
    from a single `...weight` (a transposed Linear weight)."""
    lines = signature_lines(model)
    if lines is None:
        return [f"no graph metadata {SIGNATURE}"]
    declared = {line.split("target='", 1)[1].split("'", 1)[0]
                for line in lines if ": PARAMETER target='" in line}
    want = {t.name for t in model.graph.initializer
            if t.data_type == onnx.TensorProto.FLOAT and not t.name.startswith(("val_", "unsqueeze"))}
    for vi in model.graph.value_info:
        for p in vi.metadata_props:
            if p.key == "pkg.onnxscript.optimizer.folded_from":
                src = ast.literal_eval(p.value)
                if len(src) == 1 and src[0].endswith(".weight"):
                    want.add(src[0])
    missing = sorted(want - declared)
    if missing:
        return [f"{len(missing)} parameters not declared PARAMETER in the graph signature, "
                f"e.g. {missing[0]}"]
    return []


def node_signature(n):
    """What must agree between an export and its imitation: op, attributes, module stack.
    FX value names are left out (their numbering depends on torch's tracing order)."""
    md = {p.key: p.value for p in n.metadata_props}
    scopes = ast.literal_eval(md.get("pkg.torch.onnx.name_scopes", "[]"))
    classes = ast.literal_eval(md.get("pkg.torch.onnx.class_hierarchy", "[]"))
    attrs = tuple(sorted((a.name, str(onnx.helper.get_attribute_value(a))) for a in n.attribute))
    return (n.op_type, attrs, tuple(scopes[:-1]), tuple(classes))


def layer_of(n):
    md = {p.key: p.value for p in n.metadata_props}
    for s in ast.literal_eval(md.get("pkg.torch.onnx.name_scopes", "[]")):
        parts = s.split(".")
        if "layers" in parts:
            i = parts.index("layers")
            if i + 1 < len(parts):
                return int(parts[i + 1])
    return None


def per_layer_counts(model):
    counts = collections.defaultdict(collections.Counter)
    for n in model.graph.node:
        counts[layer_of(n)][n.op_type] += 1
    return counts


def weights_of(model):
    """Canonical (PyTorch-layout) weights of an export: named initializers as they are, folded
    anonymous ones transposed back to [out, in] via their folded_from provenance."""
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    table = dict(inits)
    for vi in model.graph.value_info:
        for p in vi.metadata_props:
            if p.key == "pkg.onnxscript.optimizer.folded_from":
                src = ast.literal_eval(p.value)
                if len(src) == 1 and src[0].endswith(".weight") and vi.name in inits:
                    table[src[0]] = inits[vi.name].T
    return lambda name, shape: table.get(name)


def check_faithful(name, shared_dir, workdir):
    problems = []
    path = os.path.join(shared_dir, "models", name + ".onnx")
    real = onnx.load(path)
    cfg = SHARED[name]
    mine_path = gen_models.generate(name + "_imitation", cfg, workdir,
                                    override=weights_of(real), wrap=True)
    mine = onnx.load(mine_path)

    rs, ms = [node_signature(n) for n in real.graph.node], [node_signature(n) for n in mine.graph.node]
    if len(rs) != len(ms):
        problems.append(f"{len(ms)} nodes, export has {len(rs)}")
    for i, (a, b) in enumerate(zip(rs, ms)):
        if a != b:
            problems.append(f"node {i} differs:\n   export {a}\n   mine   {b}")
            break

    rc, mc = per_layer_counts(real), per_layer_counts(mine)
    for layer in sorted(set(rc) | set(mc), key=lambda x: -1 if x is None else x):
        tag = "outside layers" if layer is None else f"layer {layer}"
        same = "same" if rc[layer] == mc[layer] else "DIFFERENT"
        print(f"  {name} {tag}: {sum(mc[layer].values())} nodes ({same}) "
              f"{dict(sorted(mc[layer].items()))}")
        if rc[layer] != mc[layer]:
            problems.append(f"{tag} op counts: export {dict(rc[layer])} mine {dict(mc[layer])}")

    def named(m):
        # Folded constants (val_N, the rotary tables named after their FX node) are anonymous.
        return {t.name: tuple(t.dims) for t in m.graph.initializer
                if not t.name.startswith(("val_", "unsqueeze"))}
    if named(real) != named(mine):
        problems.append(f"named parameters differ: only export {set(named(real)) - set(named(mine))}, "
                        f"only mine {set(named(mine)) - set(named(real))}")

    rl, ml = signature_lines(real), signature_lines(mine) or []
    if sorted(rl) != sorted(ml):
        problems.append(f"graph signatures differ: only export {sorted(set(rl) - set(ml))[:3]}, "
                        f"only mine {sorted(set(ml) - set(rl))[:3]}")
    else:
        print(f"  {name}: graph signature: the export's {len(rl)} lines")

    ref = np.load(os.path.join(shared_dir, "models", "reference_io.npz"))
    ids, want = ref[name + "__input_ids"], ref[name + "__output"]
    got = session(mine_path).run(None, {"input_ids": ids})[0]
    err = float(np.abs(got - want).max())
    print(f"  {name}: imitation with the export's weights vs PyTorch reference: max abs err {err:.2e}")
    if not err < 1e-4:
        problems.append(f"outputs differ from PyTorch's by {err:.2e}")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", help="directory of generated models (default: generate afresh)")
    ap.add_argument("--shared", default=os.path.join(os.path.dirname(__file__), "..", "..", "..",
                                                     "shared"),
                    help="the shared directory holding models/llama_tiny.onnx (default ../shared)")
    args = ap.parse_args()

    failures = 0
    with tempfile.TemporaryDirectory() as tmp:
        models = args.models
        if not models:
            models = os.path.join(tmp, "models")
            for n, c in gen_models.MODELS.items():
                gen_models.generate(n, c, models)
        for n in gen_models.MODELS:
            path = os.path.join(models, n + ".onnx")
            problems = check_runs(path) if os.path.exists(path) else ["not generated"]
            print(("PASS " if not problems else "FAIL ") + n + "".join("\n  " + p for p in problems))
            failures += bool(problems)
        for name in SHARED:
            if not os.path.exists(os.path.join(args.shared, "models", name + ".onnx")):
                print(f"FAIL {name}: not found under {args.shared}/models")
                failures += 1
                continue
            problems = check_faithful(name, args.shared, tmp)
            print(("PASS " if not problems else "FAIL ") + f"{name} imitation" +
                  "".join("\n  " + p for p in problems))
            failures += bool(problems)
    print(f"{failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
