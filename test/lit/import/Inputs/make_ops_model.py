"""Writes one tiny ONNX model exercising the comparison, logic, scan, index, padding and
contraction converters: make_ops_model.py <kind> <out.onnx>."""
import sys

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from make_model import model, tensor

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def const(name, values, dtype=np.int64):
    return numpy_helper.from_array(np.array(values, dtype=dtype), name)


def node(op, ins, outs, **attrs):
    return helper.make_node(op, ins, outs, name="node_" + outs[0], **attrs)


def compare_logic():
    nodes = [node("Less", ["x", "y"], ["lt"]), node("Greater", ["x", "y"], ["gt"]),
             node("LessOrEqual", ["x", "y"], ["le"]), node("GreaterOrEqual", ["x", "y"], ["ge"]),
             node("And", ["lt", "le"], ["both"]), node("Not", ["both"], ["nb"]),
             node("Or", ["gt", "nb"], ["any"]), node("Xor", ["any", "ge"], ["out"])]
    return model(nodes, [tensor("x", [2, 3]), tensor("y", [2, 3])], [tensor("out", [2, 3], B)], [], opset=18)


def compare_folds():
    nodes = [node("Less", ["a", "b"], ["out"])]
    return model(nodes, [], [tensor("out", [3], B)],
                 [const("a", [1, 5, 3]), const("b", [2, 2, 3])], opset=18)


def clip_leaky_mod():
    nodes = [node("Clip", ["x", "lo", "hi"], ["c"]), node("LeakyRelu", ["c"], ["l"], alpha=0.25),
             node("Mod", ["l", "x"], ["m"], fmod=1), node("Mod", ["i", "j"], ["im"]),
             node("CastLike", ["im", "x"], ["f"]), node("Add", ["m", "f"], ["s"]),
             node("Dropout", ["s"], ["out", "mask"])]
    return model(nodes, [tensor("x", [2, 3]), tensor("i", [2, 3], I64), tensor("j", [2, 3], I64)],
                 [tensor("out", [2, 3]), tensor("mask", [2, 3], B)],
                 [const("lo", -1.0, np.float32), const("hi", 2.0, np.float32)], opset=18)


def mod_float_without_fmod():
    return model([node("Mod", ["x", "x"], ["out"])], [tensor("x", [2])], [tensor("out", [2])], [], opset=18)


def dropout_training():
    return model([node("Dropout", ["x", "ratio", "train"], ["out"])], [tensor("x", [2])], [tensor("out", [2])],
                 [const("ratio", 0.5, np.float32), const("train", True, np.bool_)], opset=18)


def scan_index():
    nodes = [node("CumSum", ["x", "axis"], ["cs"], exclusive=1),
             node("ArgMax", ["cs"], ["am"], axis=1, keepdims=0),
             node("ScatterND", ["x", "idx", "upd"], ["sc"], reduction="add")]
    return model(nodes, [tensor("x", [2, 3]), tensor("upd", [1, 3])], [tensor("am", [2], I64), tensor("sc", [2, 3])],
                 [const("axis", 1), const("idx", [[1]])], opset=18)


def tile_pad():
    nodes = [node("Tile", ["x", "reps"], ["t"]),
             node("Pad", ["t", "pads"], ["out"], mode="reflect")]
    return model(nodes, [tensor("x", [2, 3])], [tensor("out", [4, 10])],
                 [const("reps", [1, 2]), const("pads", [1, 2, 1, 2])], opset=18)


def einsum_attention():
    nodes = [node("Einsum", ["q", "k"], ["s"], equation="bhqd,bhkd->bhqk"),
             node("Einsum", ["a", "b"], ["o"], equation="i,j->ij")]
    return model(nodes, [tensor("q", [1, 2, 4, 8]), tensor("k", [1, 2, 5, 8]), tensor("a", [3]), tensor("b", [2])],
                 [tensor("s", [1, 2, 4, 5]), tensor("o", [3, 2])], [], opset=18)


def einsum_diagonal():
    return model([node("Einsum", ["x"], ["out"], equation="ii->i")], [tensor("x", [3, 3])], [tensor("out", [3])], [],
                 opset=18)


def conv_patches():
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal([4, 3, 4, 4]).astype(np.float32), "w")
    return model([node("Conv", ["x", "w", "bias"], ["out"], kernel_shape=[4, 4], strides=[4, 4])],
                 [tensor("x", [1, 3, 8, 8])], [tensor("out", [1, 4, 2, 2])],
                 [w, const("bias", [0.5, 0, 0, 0], np.float32)], opset=18)


def conv_padded():
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal([2, 1, 3, 3]).astype(np.float32), "w")
    return model([node("Conv", ["x", "w"], ["out"], pads=[1, 1, 1, 1], group=2)],
                 [tensor("x", [1, 2, 4, 4])], [tensor("out", [1, 2, 4, 4])], [w], opset=18)


def flatten_reduce_l2():
    nodes = [node("Flatten", ["x"], ["f"], axis=2), node("ReduceL2", ["f", "axes"], ["n"], keepdims=0)]
    return model(nodes, [tensor("x", [2, 3, 4, 5])], [tensor("n", [6])], [const("axes", [1])], opset=18)


def reduce_l2_attribute():
    return model([node("ReduceL2", ["x"], ["n"], axes=[-1])], [tensor("x", [2, 3])], [tensor("n", [2, 1])], [],
                 opset=17)


KINDS = {f.__name__: f for f in (flatten_reduce_l2, reduce_l2_attribute, compare_logic, compare_folds, clip_leaky_mod, mod_float_without_fmod,
                                  dropout_training, scan_index, tile_pad, einsum_attention, einsum_diagonal,
                                  conv_patches, conv_padded)}

if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f:
        f.write(KINDS[kind]().SerializeToString())
