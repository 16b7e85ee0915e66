#!/usr/bin/env python3
"""Writes a complete ONNX file from a committed skeleton whose parameters were stripped
(make_references_10step.py's strip_params: test/training/models/llama_tiny_b4.onnx, llama_tiny's
graph at batch 4 x 32) and the export that holds their values (../shared/models/llama_tiny.onnx).
A parameter is matched by what the exporter records about it, not by the initializer's name
(the anonymous folds `val_N` are numbered differently in each export): its own name when its
value_info says InputSpec.kind = PARAMETER, else the one name in its folded_from list. Shapes and
dtypes must agree. numpy + onnx only.
    fill_weights.py SKELETON.onnx WEIGHTS.onnx -o OUT.onnx
"""
import argparse
import ast
import sys

import onnx

KIND = "pkg.torch.export.graph_signature.InputSpec.kind"
FOLDED = "pkg.onnxscript.optimizer.folded_from"


def identities(model):
    """{parameter name: initializer} for the initializers that hold one parameter each."""
    meta = {v.name: {p.key: p.value for p in v.metadata_props} for v in model.graph.value_info}
    out = {}
    for t in model.graph.initializer:
        m = meta.get(t.name, {})
        if m.get(KIND) == "PARAMETER":
            out[t.name] = t
        elif FOLDED in m:
            folded = ast.literal_eval(m[FOLDED])
            if len(folded) == 1 and folded[0].startswith("m."):
                out[folded[0]] = t
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("skeleton")
    ap.add_argument("weights")
    ap.add_argument("-o", "--out", required=True)
    a = ap.parse_args()
    skel, full = onnx.load(a.skeleton), onnx.load(a.weights)
    have = identities(full)
    filled = 0
    for name, t in identities(skel).items():
        if not t.doc_string.startswith("stripped"):
            continue
        src = have.get(name)
        if src is None or list(src.dims) != list(t.dims) or src.data_type != t.data_type:
            sys.exit(f"fill_weights: {a.weights} has no {name} shaped {list(t.dims)} (type {t.data_type})")
        t.raw_data = src.raw_data
        t.doc_string = ""
        filled += 1
    left = [t.name for t in skel.graph.initializer if t.doc_string.startswith("stripped")]
    if left or not filled:
        sys.exit(f"fill_weights: {len(left)} parameters not filled ({left[:3]}), {filled} filled")
    onnx.save(skel, a.out)
    print(f"{a.out}: {filled} parameters from {a.weights}")


if __name__ == "__main__":
    main()
