#!/usr/bin/env python3
"""A batch-shaped constant under data parallelism: PyTorch's exporter folds OPT's learned-position
lookup into `embedding_1`, a [B, S, H] constant whose batch rows are equal in the committed export
(every row holds the same positions). So that a rank that took the wrong batch row would show,
this check makes a copy of the model whose rows past the first get noise of scale 0.5 (the
rows then differ; a uniform shift would vanish in the first LayerNorm), then runs it through
tools/shardc_verify.py (the arguments after `--`, e.g. a dp_shard mesh) against onnxruntime and
the unsharded program.

  check_batch_constant.py --model opt_tiny.onnx --constant embedding_1 --workdir W -- <verify args>
"""
import argparse
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--constant", required=True)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("verify", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)
    m = onnx.load(args.model)
    found = False
    for i, t in enumerate(m.graph.initializer):
        if t.name != args.constant:
            continue
        a = numpy_helper.to_array(t).copy()
        if a.ndim < 2 or a.shape[0] < 2:
            print(f"FAIL: {t.name} {list(a.shape)} has no batch dim to tell apart")
            return 1
        rng = np.random.default_rng(0)  # a pattern along the features: a norm would cancel a uniform shift
        for b in range(1, a.shape[0]):
            a[b] += (0.5 * rng.standard_normal(a.shape[1:])).astype(a.dtype)
        m.graph.initializer[i].CopyFrom(numpy_helper.from_array(a, t.name))
        found = True
    if not found:
        print(f"FAIL: no initializer {args.constant!r} in {args.model}")
        return 1
    out = os.path.join(args.workdir, "rows_differ.onnx")
    onnx.save(m, out)
    verify = [a for a in args.verify if a != "--"]
    return subprocess.run(verify + ["--model", out, "--workdir", os.path.join(args.workdir, "verify")]).returncode


if __name__ == "__main__":
    sys.exit(main())
