#!/usr/bin/env python3
# The graph builder behind gen_models.py: naming, module metadata and the graph signature the way
# PyTorch 2.11's dynamo exporter writes them, and the building blocks (Linear, Conv1D, norms,
# attention, rotary, GELUs) the model families are made of.
"""Exporter-style ONNX graph building for shardc's e2e model generator (gen_models.py)."""
import contextlib
import math

import numpy as np
from onnx import helper, numpy_helper

OPSET = 20
IR_VERSION = 10
F32_MIN = float(np.finfo(np.float32).min)
INT64_MAX = 9223372036854775807


# ---------------------------------------------------------------------------------------------
# Graph builder: naming and metadata as the exporter does them.
# ---------------------------------------------------------------------------------------------
class ExportGraph:
    """Accumulates nodes and initializers, naming them the exporter's way.

    A node either produces the value of an FX node (named `node_<fx>`, output `<fx>`) or is an
    intermediate of that FX node's decomposition (`node_<Op>_<n>`, output `val_<n>`); both carry
    the module stack in their metadata."""

    def __init__(self, root_scopes, param_prefix):
        self.nodes = []
        self.initializers = []
        self.init_value_info = []  # (name, elem type, dims, [(key, value)]) for value_info
        self.inputs = []
        self.outputs = []
        self.scopes = list(root_scopes)  # [(module path, class qualname)], outermost first
        self.param_prefix = param_prefix
        self._val = 0
        self._fx_count = {}
        self._small_consts = {}
        self.signature = []  # the export's graph signature, one InputSpec/OutputSpec a line

    # -- naming --------------------------------------------------------------------------------
    def _next_val(self):
        self._val += 1
        return self._val

    def fx(self, base):
        """A fresh FX node name, numbered the way torch.fx numbers them (mul, mul_1, ...)."""
        n = self._fx_count.get(base, 0)
        self._fx_count[base] = n + 1
        return base if n == 0 else f"{base}_{n}"

    def path(self, rel):
        """Module path of a submodule given relative to the model root."""
        root = self.param_prefix
        return f"{root}.{rel}" if root else rel

    @contextlib.contextmanager
    def module(self, rel, cls):
        self.scopes.append((self.path(rel), cls))
        try:
            yield
        finally:
            self.scopes.pop()

    # -- values --------------------------------------------------------------------------------
    def declare(self, name, kind="PARAMETER"):
        """A line of the graph signature for a parameter or buffer given by its full name
        (`p_model_norm_weight: PARAMETER target='model.norm.weight'`); returns its FX name.
        A parameter whose value the graph holds only folded (a transposed Linear weight) or
        under another name (the other name of a tied weight) is known only from this line."""
        fx_name = ("p_" if kind == "PARAMETER" else "b_") + name.replace(".", "_")
        extra = " persistent=False" if kind == "BUFFER" else ""
        self.signature.append(f"{fx_name}: {kind} target='{name}'{extra}")
        return fx_name

    def param(self, rel_name, array):
        """A parameter kept under its state-dict name (norm weights, biases, embeddings)."""
        name = self.path(rel_name)
        t = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(t)
        fx_name = self.declare(name)
        self.init_value_info.append((name, t.data_type, list(t.dims), [
            ("pkg.torch.export.graph_signature.InputSpec.kind", "PARAMETER"),
            ("pkg.torch.export.graph_signature.InputSpec.persistent", "None"),
            ("pkg.torch.onnx.original_node_name", fx_name)]))
        return name

    def folded(self, array, folded_from, name=None):
        """A constant the exporter's optimizer folded (a transposed Linear weight, the rotary
        tables, a mask): anonymous unless a name is given, provenance in value_info metadata."""
        name = name or f"val_{self._next_val()}"
        t = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.initializers.append(t)
        self.init_value_info.append((name, t.data_type, list(t.dims), [
            ("pkg.onnxscript.optimizer.folded_from", repr(sorted(folded_from)))]))
        return name

    def const(self, value, dtype):
        """A small constant (shape, axis, scalar), shared by every user as the exporter does."""
        arr = np.array(value, dtype=dtype)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._small_consts:
            name = f"val_{self._next_val()}"
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._small_consts[key] = name
        return self._small_consts[key]

    def i64(self, value):
        return self.const(value, np.int64)

    def f32(self, value):
        return self.const(value, np.float32)

    # -- nodes ---------------------------------------------------------------------------------
    def op(self, op_type, inputs, fx, aten, final=True, outputs=None, **attrs):
        """Adds one node. `fx` is the FX node it implements; `final` marks the node whose output
        is that FX node's value (the others are its decomposition)."""
        if outputs is None:
            if final:
                outputs, name = [fx], f"node_{fx}"
            else:
                n = self._next_val()
                outputs, name = [f"val_{n}"], f"node_{op_type}_{n}"
        else:
            name = f"node_{fx}"
        node = helper.make_node(op_type, list(inputs), list(outputs), name=name, **attrs)
        stack = self.scopes + [(fx, aten)]
        # fx_node is informational (num_users is not tracked); the module path lives in the
        # other three keys, the ones the importer reads.
        args = ", ".join("%" + i for i in inputs if i)
        for key, value in (
                ("namespace", "/".join(f"{p}: {c}" for p, c in stack)),
                ("pkg.torch.onnx.class_hierarchy", repr([c for _, c in stack])),
                ("pkg.torch.onnx.fx_node",
                 f"%{fx} : [num_users=1] = call_function[target=torch.ops.{aten}]"
                 f"(args = ({args}), kwargs = {{}})"),
                ("pkg.torch.onnx.name_scopes", repr([p for p, _ in stack]))):
            entry = node.metadata_props.add()
            entry.key, entry.value = key, value
        self.nodes.append(node)
        return outputs[0] if len(outputs) == 1 else outputs

    def add_input(self, name, elem_type, shape):
        self.signature.append(f"{name}: USER_INPUT")
        vi = helper.make_tensor_value_info(name, elem_type, shape)
        for k, v in (("pkg.torch.export.graph_signature.InputSpec.kind", "USER_INPUT"),
                     ("pkg.torch.export.graph_signature.InputSpec.persistent", "None"),
                     ("pkg.torch.onnx.original_node_name", name)):
            e = vi.metadata_props.add()
            e.key, e.value = k, v
        self.inputs.append(vi)
        return name

    def set_output(self, value, new_name, elem_type, shape):
        """Renames the last node's output to the user-facing name (the exporter's output_names)."""
        producer = next(n for n in reversed(self.nodes) if value in n.output)
        producer.output[list(producer.output).index(value)] = new_name
        self.signature.append(f"# outputs\n{value}: USER_OUTPUT")
        vi = helper.make_tensor_value_info(new_name, elem_type, shape)
        for k, v in (("pkg.torch.export.graph_signature.OutputSpec.kind", "USER_OUTPUT"),
                     ("pkg.torch.onnx.original_node_name", value)):
            e = vi.metadata_props.add()
            e.key, e.value = k, v
        self.outputs.append(vi)

    def signature_text(self):
        """The graph signature as the exporter prints it: parameters, buffers and user
        inputs under `# inputs` (in that order, as torch.export lists them), then `# outputs`."""
        rank = {"PARAMETER": 0, "BUFFER": 1, "USER_INPUT": 2}
        inputs = [s for s in self.signature if not s.startswith("# outputs")]
        inputs.sort(key=lambda s: rank[s.split(": ", 1)[1].split(" ")[0]])  # stable
        outputs = [s for s in self.signature if s.startswith("# outputs")]
        return "\n# inputs\n" + "\n".join(inputs) + "\n\n" + "\n".join(outputs) + "\n"

    def model(self):
        """The ModelProto. Hands the initializers over (protobuf copies them into the graph),
        so that a large model is not held twice; call once."""
        inits, self.initializers = self.initializers, None
        graph = helper.make_graph(self.nodes, "main_graph", self.inputs, self.outputs,
                                  initializer=inits)
        del inits
        for key, value in (("pkg.torch.export.ExportedProgram.graph_signature",
                            self.signature_text()),
                           ("pkg.torch.export.ExportedProgram.range_constraints", "{}")):
            entry = graph.metadata_props.add()
            entry.key, entry.value = key, value
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="pytorch", producer_version="2.11.0")
        m.ir_version = IR_VERSION
        m.doc_string = ("synthetic: shardc test/e2e/gen_models.py, imitating "
                        "torch.onnx.export(dynamo=True)")
        return m


# ---------------------------------------------------------------------------------------------
# Building blocks shared by the families.
# ---------------------------------------------------------------------------------------------
class Weights:
    """Deterministic weights in PyTorch's canonical layouts ([out, in] for Linear), drawn
    like torch's default init (uniform +-1/sqrt(fan_in)) so that attention is far from uniform
    and a wrong mask or scale shows in the outputs. `override(name, shape)` may supply real
    weights instead (check_models.py loads the shared exports' weights through it)."""

    def __init__(self, seed, override=None):
        self.rng = np.random.default_rng(seed)
        self.override = override

    def _get(self, name, shape, draw):
        if self.override is not None:
            w = self.override(name, shape)
            if w is not None:
                assert tuple(w.shape) == tuple(shape), (name, w.shape, shape)
                return w.astype(np.float32)
        return draw().astype(np.float32)

    def linear(self, name, out_f, in_f):
        b = 1.0 / math.sqrt(in_f)
        return self._get(name, (out_f, in_f), lambda: self.rng.uniform(-b, b, (out_f, in_f)))

    def bias(self, name, n, fan_in):
        b = 1.0 / math.sqrt(fan_in)
        return self._get(name, (n,), lambda: self.rng.uniform(-b, b, (n,)))

    def embedding(self, name, rows, dim):
        # std 1/sqrt(dim) keeps tied logits O(1), so an absolute tolerance stays meaningful.
        return self._get(name, (rows, dim),
                         lambda: self.rng.standard_normal((rows, dim)) / math.sqrt(dim))

    def norm_weight(self, name, n):
        return self._get(name, (n,), lambda: 1.0 + 0.1 * self.rng.standard_normal((n,)))

    def norm_bias(self, name, n):
        return self._get(name, (n,), lambda: 0.1 * self.rng.standard_normal((n,)))


def linear(g, w, x, rel, out_f, in_f, bias=False):
    """nn.Linear as the dynamo exporter writes it: MatMul with the folded transposed weight,
    then Add of the named bias (the Add then carries the `linear` FX name)."""
    weight_name = g.path(rel + ".weight")
    g.declare(weight_name)
    wt = g.folded(w.linear(weight_name, out_f, in_f).T, [weight_name])
    with g.module(rel, "torch.nn.modules.linear.Linear"):
        fx = g.fx("linear")
        if not bias:
            return g.op("MatMul", [x, wt], fx, "aten.linear.default")
        b = g.param(rel + ".bias", w.bias(g.path(rel + ".bias"), out_f, in_f))
        mm = g.op("MatMul", [x, wt], fx, "aten.linear.default", final=False)
        return g.op("Add", [mm, b], fx, "aten.linear.default")


def linear_gemm(g, w, x, rel, out_f, in_f, lead):
    """nn.Linear the TorchScript way: flatten to 2-D, Gemm(transB=1) on the named [out, in]
    weight with the bias as C, restore the leading dims."""
    with g.module(rel, "torch.nn.modules.linear.Linear"):
        wn = g.param(rel + ".weight", w.linear(g.path(rel + ".weight"), out_f, in_f))
        bn = g.param(rel + ".bias", w.bias(g.path(rel + ".bias"), out_f, in_f))
        fx = g.fx("view")
        x2 = g.op("Reshape", [x, g.i64([-1, in_f])], fx, "aten.view.default", allowzero=1)
        fx = g.fx("addmm")
        y = g.op("Gemm", [x2, wn, bn], fx, "aten.addmm.default", alpha=1.0, beta=1.0, transB=1)
        fx = g.fx("view")
        return g.op("Reshape", [y, g.i64(list(lead) + [out_f])], fx, "aten.view.default",
                    allowzero=1)


def conv1d(g, w, x, rel, out_f, in_f, lead, style):
    """HF GPT-2's Conv1D: weight stored [in, out] (used as is, no transpose), bias [out];
    forward is addmm(bias, x.view(-1, in), weight).view(..., out)."""
    with g.module(rel, "transformers.pytorch_utils.Conv1D"):
        # Conv1D keeps the transposed layout; draw as [out, in] and store [in, out].
        wn = g.param(rel + ".weight", w.linear(g.path(rel + ".weight"), out_f, in_f).T)
        bn = g.param(rel + ".bias", w.bias(g.path(rel + ".bias"), out_f, in_f))
        if style == "gemm":
            fx = g.fx("view")
            x2 = g.op("Reshape", [x, g.i64([-1, in_f])], fx, "aten.view.default", allowzero=1)
            fx = g.fx("addmm")
            y = g.op("Gemm", [x2, wn, bn], fx, "aten.addmm.default", alpha=1.0, beta=1.0)
            fx = g.fx("view")
            return g.op("Reshape", [y, g.i64(list(lead) + [out_f])], fx, "aten.view.default",
                        allowzero=1)
        # The optimizer folds view/addmm/view on 3-D inputs into MatMul + Add.
        fx = g.fx("addmm")
        mm = g.op("MatMul", [x, wn], fx, "aten.addmm.default", final=False)
        return g.op("Add", [mm, bn], fx, "aten.addmm.default")


def rms_norm(g, w, x, rel, cls, hidden, eps):
    """HF RMSNorm: x * rsqrt(mean(x^2) + eps) * weight, rsqrt spelled Sqrt + Reciprocal."""
    with g.module(rel, cls):
        weight = g.param(rel + ".weight", w.norm_weight(g.path(rel + ".weight"), hidden))
        fx = g.fx("pow")
        p = g.op("Pow", [x, g.f32(2.0)], fx, "aten.pow.Tensor_Scalar")
        fx = g.fx("mean")
        m = g.op("ReduceMean", [p, g.i64([-1])], fx, "aten.mean.dim", keepdims=1,
                 noop_with_empty_axes=0)
        fx = g.fx("add")
        a = g.op("Add", [m, g.f32(eps)], fx, "aten.add.Tensor")
        fx = g.fx("rsqrt")
        s = g.op("Sqrt", [a], fx, "aten.rsqrt.default", final=False)
        r = g.op("Reciprocal", [s], fx, "aten.rsqrt.default")
        fx = g.fx("mul")
        y = g.op("Mul", [x, r], fx, "aten.mul.Tensor")
        fx = g.fx("mul")
        return g.op("Mul", [weight, y], fx, "aten.mul.Tensor")


def layer_norm(g, w, x, rel, hidden, eps):
    with g.module(rel, "torch.nn.modules.normalization.LayerNorm"):
        weight = g.param(rel + ".weight", w.norm_weight(g.path(rel + ".weight"), hidden))
        bias = g.param(rel + ".bias", w.norm_bias(g.path(rel + ".bias"), hidden))
        fx = g.fx("layer_norm")
        return g.op("LayerNormalization", [x, weight, bias], fx, "aten.layer_norm.default",
                    axis=-1, epsilon=float(eps))


def split_heads(g, x, batch, seq, head_dim):
    """x.view(B, S, -1, d).transpose(1, 2)."""
    fx = g.fx("view")
    v = g.op("Reshape", [x, g.i64([batch, seq, -1, head_dim])], fx, "aten.view.default",
             allowzero=1)
    fx = g.fx("transpose")
    return g.op("Transpose", [v], fx, "aten.transpose.int", perm=[0, 2, 1, 3])


def merge_heads(g, x, batch, seq):
    """o.transpose(1, 2).reshape(B, S, -1)."""
    fx = g.fx("transpose")
    t = g.op("Transpose", [x], fx, "aten.transpose.int", perm=[0, 2, 1, 3])
    fx = g.fx("view")
    return g.op("Reshape", [t, g.i64([batch, seq, -1])], fx, "aten.view.default", allowzero=1)


def sdpa(g, q, k, v, mask, batch, heads, seq, head_dim, kv_seq=None):
    """onnxscript's decomposition of aten.scaled_dot_product_attention after constant folding:
    sqrt(scale) applied to Q and to K^T separately (for fp16 range), K^T through a 3-D
    Transpose, additive mask, Softmax, NaN guard (rows masked entirely), MatMul with V.
    `k` is either [B, H, T, d] or the GQA-expanded [B, Hkv, rep, T, d]."""
    kv_seq = kv_seq or seq
    fx = g.fx("scaled_dot_product_attention")
    aten = "aten.scaled_dot_product_attention.default"
    k3 = g.op("Reshape", [k, g.i64([batch * heads, kv_seq, head_dim])], fx, aten, final=False)
    kt3 = g.op("Transpose", [k3], fx, aten, final=False, perm=[0, 2, 1])
    kt = g.op("Reshape", [kt3, g.i64([batch, heads, head_dim, kv_seq])], fx, aten, final=False,
              allowzero=0)
    scale = g.f32(float(np.float32(head_dim ** -0.5)) ** 0.5)
    qs = g.op("Mul", [q, scale], fx, aten, final=False)
    ks = g.op("Mul", [kt, scale], fx, aten, final=False)
    s = g.op("MatMul", [qs, ks], fx, aten, final=False)
    if mask is not None:
        s = g.op("Add", [s, mask], fx, aten, final=False)
    p = g.op("Softmax", [s], fx, aten, final=False, axis=-1)
    nan = g.op("IsNaN", [p], fx, aten, final=False)
    p = g.op("Where", [nan, g.f32(0.0), p], fx, aten, final=False)
    return g.op("MatMul", [p, v], fx, aten)


def causal_mask(g, batch, seq):
    """The folded result of HF's create_causal_mask: 0 on and below the diagonal, the float32
    minimum above, [B, 1, S, S]. The exporter writes one copy per layer."""
    m = np.triu(np.full((seq, seq), F32_MIN, np.float32), k=1)
    m = np.broadcast_to(m, (batch, 1, seq, seq)).copy()
    return g.folded(m, ["arange", "cat", "expand", "new_ones", "sub", "unsqueeze", "val_0"])


def rotary_tables(head_dim, seq, theta):
    """HF default RoPE in float32: inv_freq = 1/theta^(2i/d), emb = cat(freqs, freqs)."""
    exponents = np.arange(0, head_dim, 2, dtype=np.int64).astype(np.float32) / np.float32(head_dim)
    inv_freq = (np.float32(1.0) / np.power(np.float32(theta), exponents)).astype(np.float32)
    freqs = np.arange(seq, dtype=np.float32)[:, None] * inv_freq[None, :]
    emb = np.concatenate([freqs, freqs], axis=-1).astype(np.float32)
    return (np.cos(emb).astype(np.float32)[None, None],
            np.sin(emb).astype(np.float32)[None, None])


def apply_rotary(g, x, cos, sin, head_dim):
    """x*cos + rotate_half(x)*sin, rotate_half = cat(-x[..., d/2:], x[..., :d/2])."""
    half = head_dim // 2
    fx = g.fx("mul")
    xc = g.op("Mul", [x, cos], fx, "aten.mul.Tensor")
    fx = g.fx("slice")
    lo = g.op("Slice", [x, g.i64([0]), g.i64([half]), g.i64([3]), g.i64([1])], fx,
              "aten.slice.Tensor")
    fx = g.fx("slice")
    hi = g.op("Slice", [x, g.i64([half]), g.i64([INT64_MAX]), g.i64([3]), g.i64([1])], fx,
              "aten.slice.Tensor")
    fx = g.fx("neg")
    n = g.op("Neg", [hi], fx, "aten.neg.default")
    fx = g.fx("cat")
    c = g.op("Concat", [n, lo], fx, "aten.cat.default", axis=-1)
    fx = g.fx("mul")
    cs = g.op("Mul", [c, sin], fx, "aten.mul.Tensor")
    fx = g.fx("add")
    return g.op("Add", [xc, cs], fx, "aten.add.Tensor")


def root_scopes(cls, wrap):
    """The module stack above the model. `wrap` reproduces the shared exports, which wrapped
    the HF model in `__main__.Wrap` as attribute `m` (module paths then start with `m.`)."""
    if wrap:
        return [("", "__main__.Wrap"), ("m", cls)], "m"
    return [("", cls)], ""


def tanh_gelu(g, x):
    """NewGELUActivation: 0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x^3))), one FX op each."""
    fx = g.fx("mul")
    half = g.op("Mul", [g.f32(0.5), x], fx, "aten.mul.Tensor")
    fx = g.fx("pow")
    cube = g.op("Pow", [x, g.f32(3.0)], fx, "aten.pow.Tensor_Scalar")
    fx = g.fx("mul")
    c = g.op("Mul", [g.f32(0.044715), cube], fx, "aten.mul.Tensor")
    fx = g.fx("add")
    inner = g.op("Add", [x, c], fx, "aten.add.Tensor")
    fx = g.fx("mul")
    inner = g.op("Mul", [g.f32(math.sqrt(2.0 / math.pi)), inner], fx, "aten.mul.Tensor")
    fx = g.fx("tanh")
    t = g.op("Tanh", [inner], fx, "aten.tanh.default")
    fx = g.fx("add")
    one_plus = g.op("Add", [t, g.f32(1.0)], fx, "aten.add.Tensor")
    fx = g.fx("mul")
    return g.op("Mul", [half, one_plus], fx, "aten.mul.Tensor")


def erf_gelu(g, x):
    """GELUActivation (exact): x * 0.5 * (1 + erf(x / sqrt(2)))."""
    fx = g.fx("mul")
    half = g.op("Mul", [x, g.f32(0.5)], fx, "aten.mul.Tensor")
    fx = g.fx("div")
    s = g.op("Div", [x, g.f32(math.sqrt(2.0))], fx, "aten.div.Tensor")
    fx = g.fx("erf")
    e = g.op("Erf", [s], fx, "aten.erf.default")
    fx = g.fx("add")
    a = g.op("Add", [e, g.f32(1.0)], fx, "aten.add.Tensor")
    fx = g.fx("mul")
    return g.op("Mul", [half, a], fx, "aten.mul.Tensor")
