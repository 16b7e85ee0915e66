"""Writes one tiny ONNX model for the importer's lit tests: make_model.py <kind> <out.onnx>.

Nodes carry the metadata PyTorch's dynamo exporter writes (name scopes and class
hierarchy), so module paths and Linear/Embedding attribution are exercised."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def scoped(node, scopes, classes):
    for key, value in (("pkg.torch.onnx.name_scopes", scopes), ("pkg.torch.onnx.class_hierarchy", classes)):
        entry = node.metadata_props.add()
        entry.key, entry.value = key, repr(scopes if value is scopes else classes)
    return node


def model(nodes, inputs, outputs, inits, opset=20, ir=10):
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = ir
    return m


def tensor(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def weight(name, shape, seed=0):
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


LIN = ["__main__.M", "torch.nn.modules.linear.Linear", "aten.linear.default"]
EMB = ["__main__.M", "torch.nn.modules.sparse.Embedding", "aten.embedding.default"]


def linear_and_shapes():
    # An anonymous [K, N] weight consumed by a Linear's MatMul (named after the module),
    # then Reshape/Unsqueeze/Slice whose shape operands are constants (folded to attrs).
    shape = numpy_helper.from_array(np.array([2, 4, 2, 8], np.int64), "shape")
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    starts = numpy_helper.from_array(np.array([0, 4], np.int64), "starts")
    ends = numpy_helper.from_array(np.array([2, 8], np.int64), "ends")
    sl_axes = numpy_helper.from_array(np.array([2, 4], np.int64), "sl_axes")
    nodes = [
        scoped(helper.make_node("MatMul", ["x", "val_7"], ["h"], name="node_linear"), ["", "proj", "linear"], LIN),
        scoped(helper.make_node("Reshape", ["h", "shape"], ["r"], name="node_view"), ["", "view"], ["__main__.M", "aten.view"]),
        helper.make_node("Unsqueeze", ["r", "axes"], ["u"], name="node_unsqueeze"),
        helper.make_node("Slice", ["u", "starts", "ends", "sl_axes"], ["y"], name="node_slice"),
    ]
    return model(nodes, [tensor("x", [2, 4, 8])], [tensor("y", [1, 2, 2, 2, 4])],
                 [weight("val_7", [8, 16]), shape, axes, starts, ends, sl_axes])


def embedding_tied():
    # Gather from a parameter table -> sc.embedding; the same table as lm_head's weight
    # through a Transpose (tied embeddings).
    nodes = [
        scoped(helper.make_node("Gather", ["embed.weight", "ids"], ["e"], name="node_embedding"), ["", "embed", "embedding"], EMB),
        scoped(helper.make_node("Transpose", ["embed.weight"], ["t"], name="node_t", perm=[1, 0]), ["", "lm_head", "t"], LIN),
        scoped(helper.make_node("MatMul", ["e", "t"], ["logits"], name="node_head"), ["", "lm_head", "linear"], LIN),
    ]
    return model(nodes, [tensor("ids", [2, 3], TensorProto.INT64)], [tensor("logits", [2, 3, 32])],
                 [weight("embed.weight", [32, 8])])


def unsupported_op():
    nodes = [scoped(helper.make_node("Hardmax", ["x"], ["y"], name="node_hardmax"), ["", "head", "hardmax"], ["__main__.M", "__main__.Head", "aten.x"])]
    return model(nodes, [tensor("x", [2, 4])], [tensor("y", [2, 4])], [])


def old_opset():
    return model([helper.make_node("Sigmoid", ["x"], ["y"], name="n")], [tensor("x", [2])], [tensor("y", [2])], [], opset=9)


def missing_external_data():
    w = weight("fc.weight", [4, 4])
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", "missing_weights.bin"), ("offset", "0"), ("length", "64")):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    nodes = [helper.make_node("MatMul", ["x", "fc.weight"], ["y"], name="n")]
    return model(nodes, [tensor("x", [2, 4])], [tensor("y", [2, 4])], [w])


def symbolic_dim():
    return model([helper.make_node("Sigmoid", ["x"], ["y"], name="n")], [tensor("x", ["batch", 4])], [tensor("y", ["batch", 4])], [])


def op_too_new():
    # Gelu exists from opset 20; at opset 18 it must be refused by name, not converted.
    nodes = [scoped(helper.make_node("Gelu", ["x"], ["y"], name="node_gelu"), ["", "mlp", "gelu"], ["__main__.M", "__main__.Mlp", "aten.gelu"])]
    return model(nodes, [tensor("x", [2, 4])], [tensor("y", [2, 4])], [], opset=18)


def reduce_mean_attr_axes(opset):
    # ReduceMean's axes are an attribute until opset 17 and an input from 18: the same node
    # with an attribute imports at 17 and is refused at 18.
    def make():
        nodes = [helper.make_node("ReduceMean", ["x"], ["y"], name="node_mean", axes=[1], keepdims=0)]
        return model(nodes, [tensor("x", [2, 4])], [tensor("y", [2])], [], opset=opset)
    make.__name__ = f"reduce_mean_attr_axes_{opset}"
    return make


def reduce_mean_input_axes():
    axes = numpy_helper.from_array(np.array([1], np.int64), "axes")
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["y"], name="node_mean", keepdims=0)]
    return model(nodes, [tensor("x", [2, 4])], [tensor("y", [2])], [axes], opset=18)


def min_three_inputs():
    nodes = [helper.make_node("Min", ["a", "b", "c"], ["y"], name="node_min")]
    return model(nodes, [tensor(n, [2]) for n in "abc"], [tensor("y", [2])], [])


def abs_int64():
    nodes = [helper.make_node("Abs", ["x"], ["y"], name="node_abs")]
    return model(nodes, [tensor("x", [2], TensorProto.INT64)], [tensor("y", [2], TensorProto.INT64)], [])


def floor_int64():
    nodes = [helper.make_node("Floor", ["x"], ["y"], name="node_floor")]
    return model(nodes, [tensor("x", [2], TensorProto.INT64)], [tensor("y", [2], TensorProto.INT64)], [])


def embedding_padding_idx():
    # nn.Embedding(32, 8, padding_idx=0): the exporter records the aten.embedding call with its
    # third argument in the Gather's fx_node metadata; without one, no padding index.
    def fx(node, call):
        entry = node.metadata_props.add()
        entry.key, entry.value = "pkg.torch.onnx.fx_node", call
        return node
    nodes = [
        fx(scoped(helper.make_node("Gather", ["embed.weight", "ids"], ["e"], name="node_embedding"),
                  ["", "embed", "embedding"], EMB),
           "%embedding : [num_users=1] = call_function[target=torch.ops.aten.embedding.default]"
           "(args = (%p_embed_weight, %ids, 0), kwargs = {})"),
        fx(scoped(helper.make_node("Gather", ["pos.weight", "ids"], ["p"], name="node_embedding_1"),
                  ["", "pos", "embedding"], EMB),
           "%embedding_1 : [num_users=1] = call_function[target=torch.ops.aten.embedding.default]"
           "(args = (%p_pos_weight, %ids), kwargs = {})"),
        helper.make_node("Add", ["e", "p"], ["y"], name="node_add"),
    ]
    return model(nodes, [tensor("ids", [2, 3], TensorProto.INT64)], [tensor("y", [2, 3, 8])],
                 [weight("embed.weight", [32, 8]), weight("pos.weight", [32, 8], seed=1)])


KINDS = {f.__name__: f for f in (linear_and_shapes, embedding_tied, embedding_padding_idx, unsupported_op, old_opset,
                                  missing_external_data, symbolic_dim, op_too_new,
                                  reduce_mean_attr_axes(17), reduce_mean_attr_axes(18),
                                  reduce_mean_input_axes, min_three_inputs, abs_int64,
                                  floor_int64)}

if __name__ == "__main__":
    kind, out = sys.argv[1], sys.argv[2]
    with open(out, "wb") as f:
        f.write(KINDS[kind]().SerializeToString())
