"""Writes a tiny Llama-shaped ONNX model for the plan tests: make_plan_model.py <out.onnx> [--tied].

Only the module structure matters to a plan (module paths, the family's module names), so
every projection is an 8x8 MatMul in a chain: embed_tokens, then per layer (3 of them)
self_attn.{q,k,v,o}_proj and mlp.{gate,up,down}_proj, then lm_head. Nodes carry the name
scopes and class hierarchy PyTorch's dynamo exporter writes, as in llama_tiny.onnx, so the
paths read m.model.layers.N.self_attn.q_proj. With --tied, lm_head reads the embedding's
table (transposed), as a model with tied word embeddings exports it."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

LINEAR = "torch.nn.modules.linear.Linear"
EMBEDDING = "torch.nn.modules.sparse.Embedding"


def scoped(node, path, cls, aten):
    parts = path.split(".")
    scopes = [""] + [".".join(parts[:i]) for i in range(1, len(parts) + 1)] + [aten.split(".")[1]]
    classes = ["__main__.Wrap"] + ["transformers.models.llama.modeling_llama.Module"] * (len(parts) - 1) + [cls, aten]
    for key, value in (("pkg.torch.onnx.name_scopes", scopes), ("pkg.torch.onnx.class_hierarchy", classes)):
        entry = node.metadata_props.add()
        entry.key, entry.value = key, repr(value)
    return node


def main(out, tied):
    rng = np.random.default_rng(0)
    inits, nodes = [], []

    def weight(name, shape):
        inits.append(numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name))
        return name

    nodes.append(scoped(helper.make_node("Gather", [weight("m.model.embed_tokens.weight", [16, 8]), "input_ids"], ["h0"],
                                        name="node_embedding"), "m.model.embed_tokens", EMBEDDING, "aten.embedding.default"))
    h = "h0"
    modules = [f"m.model.layers.{i}.{m}" for i in range(3)
               for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                         "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")] + ["m.lm_head"]
    for i, path in enumerate(modules):
        out_name = "logits" if path == "m.lm_head" else f"h{i + 1}"
        if path == "m.lm_head" and tied:
            nodes.append(scoped(helper.make_node("Transpose", ["m.model.embed_tokens.weight"], ["table_t"], name="node_t",
                                                 perm=[1, 0]), path, LINEAR, "aten.t.default"))
            w = "table_t"
        else:
            w = weight(f"val_{i}", [8, 8])
        nodes.append(scoped(helper.make_node("MatMul", [h, w], [out_name], name=f"node_linear_{i}"),
                            path, LINEAR, "aten.linear.default"))
        h = out_name
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [2, 4])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [2, 4, 16 if tied else 8])], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    m.ir_version = 10
    onnx.checker.check_model(m)
    with open(out, "wb") as f:
        f.write(m.SerializeToString())


if __name__ == "__main__":
    main(sys.argv[1], "--tied" in sys.argv[2:])
