#!/usr/bin/env python3
"""A BERT-style classification head alone, for the cost decision of `tp_plan: auto` on MLPs
outside the layers (docs/plan.md): pooled [batch, hidden] -> pooler.dense -> tanh ->
classifier -> [batch, labels], spelled as the TorchScript exporter writes it (node names
/pooler/dense/MatMul, weights onnx::MatMul_<n>), random weights. The test command makes it
at two sizes in the build tree (nothing committed): tiny, where the head stays replicated,
and large, where tp's saved GEMM time exceeds the all-reduce and it is sharded.

  make_head.py --out head.onnx --batch 4 --hidden 64 [--labels 2] [--mkdir]
"""
import argparse
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--batch", type=int, required=True)
    ap.add_argument("--hidden", type=int, required=True)
    ap.add_argument("--labels", type=int, default=2)
    ap.add_argument("--mkdir", action="store_true", help="create the output's directory")
    a = ap.parse_args()
    if a.mkdir:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    rng = np.random.default_rng(0)
    w = lambda *shape: numpy_helper.from_array((0.02 * rng.standard_normal(shape)).astype(np.float32))  # noqa: E731
    inits = [w(a.hidden, a.hidden), w(a.hidden), w(a.hidden, a.labels), w(a.labels)]
    for t, name in zip(inits, ["onnx::MatMul_10", "pooler.dense.bias", "onnx::MatMul_11", "classifier.bias"]):
        t.name = name
    nodes = [
        helper.make_node("MatMul", ["pooled", "onnx::MatMul_10"], ["h0"], name="/pooler/dense/MatMul"),
        helper.make_node("Add", ["h0", "pooler.dense.bias"], ["h1"], name="/pooler/dense/Add"),
        helper.make_node("Tanh", ["h1"], ["h2"], name="/pooler/activation/Tanh"),
        helper.make_node("MatMul", ["h2", "onnx::MatMul_11"], ["l0"], name="/classifier/MatMul"),
        helper.make_node("Add", ["l0", "classifier.bias"], ["logits"], name="/classifier/Add"),
    ]
    graph = helper.make_graph(nodes, "head", [helper.make_tensor_value_info("pooled", TensorProto.FLOAT,
                                                                            [a.batch, a.hidden])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [a.batch, a.labels])],
                              initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    onnx.save(model, a.out)


if __name__ == "__main__":
    main()
