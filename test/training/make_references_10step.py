#!/usr/bin/env python3
"""Ten AdamW steps of PyTorch on three architectures, the ground truth of check_pytorch10.py.

Needs torch + transformers + onnx + onnxscript (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/training/make_references_10step.py --export \
        --models ../shared/models --out test/training/references_10step.npz
(torch 2.15.0, transformers 5.25.0, onnx 1.23.2, onnxscript 0.7.2 when the committed files
were made; about 2 minutes on 2 cores). The test command never runs this.

--export first writes two small exports under test/training/models/, in the style of
../shared/tools/export_hf_models.py (torch.onnx.export(..., dynamo=True), a wrapper module `m`
returning the logits, random weights with distinct values everywhere):
  - gpt2_tiny.onnx: GPT2LMHeadModel, vocab 512, hidden 64, 2 layers, 4 heads, 64 positions, no
    dropout; Conv1D c_attn (the fused q, k, v projection), learned positions, LayerNorm,
    gelu_new (tanh), wte tied to lm_head. input_ids int64 [2, 64].
  - llama_tiny_b4.onnx: llama_tiny's model and parameters (../shared/models/llama_tiny.onnx
    loaded into it) exported at input_ids int64 [4, 32], for the mesh tests that need a global
    batch of 4 (HSDP 2x2), with its parameters stripped (strip_params: 600 KB instead of 11 MB;
    test/training/fill_weights.py puts llama_tiny's back at test time). No PyTorch references
    (those tests compare meshes with one rank).
  gpt2_tiny.io.npz beside it holds the export-time input_ids and the first 8 positions' logits
  (the check that the ONNX weights were mapped back right).

Then, for llama_tiny and qwen2_tiny (../shared/models) and gpt2_tiny, it builds the same Hugging
Face model, loads the ONNX initializers into it (make_references.py's mapping), checks the
forward against the ONNX file's own export-time logits (gpt2_tiny) or reference_io.npz, and runs
10 steps of torch.optim.AdamW(lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1), with
clip_grad_norm_(1.0) ("clip") and without ("noclip"), in fp64 and fp32, on a stream of 300
tokens read as shardc-run --data reads tokens.bin: step k (from 0) takes tokens
[128k, 128k + 128) modulo 300 as the [2, 64] batch (steps 3, 5, 8 and 10, counted from 1, wrap
around). It records the loss and the pre-clip global gradient norm per step, every parameter's
gradient at step 1 and every parameter after step 10. Key layout: docs/training-references.md.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import transformers

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_references as mr  # noqa: E402  (read_onnx, load_weights, causal_lm_loss, onnx_flat)

B, S, VOCAB = 2, 64, 512
STEPS = 10
STREAM_LEN = 300
ADAM = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
MAX_GRAD_NORM = 1.0
FULL_NUMEL = 4096          # llama_tiny / qwen2_tiny: whole tensors up to this size, samples above
N_UNIFORM, N_LARGEST = 1024, 64
HERE = os.path.dirname(os.path.abspath(__file__))


def hf_model(name, eager=True):
    """PyTorch's model; eager attention for the references, the default (sdpa) for exports, as
    ../shared/tools/export_hf_models.py exports (the ONNX spelling shardc raises to attention)."""
    torch.manual_seed(0)
    attn = {"attn_implementation": "eager"} if eager else {}
    if name in ("llama_tiny", "qwen2_tiny"):
        return mr.hf_model(name)
    if name == "llama_tiny_b4":
        return transformers.LlamaForCausalLM(transformers.LlamaConfig(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=256,
            tie_word_embeddings=False, use_cache=False, **attn))
    assert name == "gpt2_tiny", name
    return transformers.GPT2LMHeadModel(transformers.GPT2Config(
        vocab_size=VOCAB, n_embd=64, n_layer=2, n_head=4, n_positions=64, use_cache=False,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True, **attn))


class Wrap(torch.nn.Module):
    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, input_ids):
        return self.m(input_ids=input_ids).logits


def export(name, shape, out_dir, seed=None, weights_from=None):
    """Exports `name`: random weights with distinct values everywhere (seed), or the parameters of
    another export (weights_from). Returns the path and the logits on fixed ids."""
    m = Wrap(hf_model(name, eager=False).eval())
    if weights_from:
        load_weights(m.m, read_params(weights_from), torch.float32)
    else:
        gen = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for prm in m.parameters():
                prm.add_(0.02 * torch.randn(prm.shape, generator=gen))
    ids = torch.randint(0, VOCAB, shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = m(ids).float().numpy()
    path = os.path.join(out_dir, name + ".onnx")
    prog = torch.onnx.export(m, (ids,), dynamo=True, input_names=["input_ids"], output_names=["logits"],
                             external_data=False)
    prog.save(path)
    print(f"exported {path}: {os.path.getsize(path)} bytes")
    return path, ids.numpy(), ref


def strip_params(path, weights_from):
    """Keeps the graph of `path` and drops the data of its parameters (each equal, bit for bit, to
    the same parameter of `weights_from`): fill_weights.py puts them back at test time."""
    own, other = read_params(path), read_params(weights_from)
    model = onnx.load(path)
    stripped = 0
    for t in model.graph.initializer:
        hit = [k for k, v in own["params"].items() if v[0] == t.name]
        if not hit:
            continue
        assert np.array_equal(own["params"][hit[0]][2], other["params"][hit[0]][2]), hit
        t.ClearField("raw_data")
        t.doc_string = "stripped: fill_weights.py copies " + hit[0] + " from " + os.path.basename(weights_from)
        stripped += 1
    onnx.save(model, path)
    print(f"{path}: {stripped} parameters stripped, {os.path.getsize(path)} bytes")


def read_params(path):
    """make_references.read_onnx, plus shardc's rule for a fold of one PARAMETER with anonymous
    values (classifyTrainable): it trains. GPT-2's learned positions are folded into
    `embedding_1` [1, S, H] = wpe[arange(S)], all of wpe when n_positions = S: transform
    "reshape" (same element order)."""
    info = mr.read_onnx(path)
    arrays = {t.name: t for t in onnx.load(path).graph.initializer}
    for init, f in list(info["frozen"].items()):
        if f["kinds"] == ["PARAMETER"]:
            target = f["folded_from_exporter_inputs"][0]
            info["params"][target[2:]] = (init, "reshape", onnx.numpy_helper.to_array(arrays[init]), {})
            del info["frozen"][init]
    return info


def load_weights(model, info, dtype):
    """make_references.load_weights with "reshape" folds given the parameter's shape."""
    shapes = dict(model.named_parameters(remove_duplicate=False))
    onnx_shapes = {}
    for key, (init, transform, arr, m) in list(info["params"].items()):
        if transform == "reshape":
            onnx_shapes[key] = list(arr.shape)
            info["params"][key] = (init, "none", arr.reshape(shapes[key].shape), m)
    try:
        table = mr.load_weights(model, info, dtype)
    finally:
        for key, shape in onnx_shapes.items():
            init, _, arr, m = info["params"][key]
            info["params"][key] = (init, "reshape", arr.reshape(shape), m)
    for e in table:
        for key, shape in onnx_shapes.items():
            if key in e["aliases"]:
                e["onnx_transform"], e["onnx_shape"] = "reshape", shape
    return table


def onnx_flat(idx, entry):
    return idx if entry["onnx_transform"] == "reshape" else mr.onnx_flat(idx, entry)


def batches(stream):
    return [stream[(k * B * S + np.arange(B * S)) % len(stream)].reshape(B, S).astype(np.int64)
            for k in range(STEPS)]


def train(name, info, dtype, data, clip):
    """10 AdamW steps from the exported weights: losses, pre-clip norms, step-1 grads, final params."""
    model = hf_model(name).to(dtype)
    load_weights(model, info, dtype)
    model.train()  # no dropout in these configs
    params = [p for _, p in model.named_parameters()]
    opt = torch.optim.AdamW(params, foreach=False, **ADAM)
    losses, norms, grads1, peak = [], [], None, {}
    for k in range(STEPS):
        opt.zero_grad()
        x = torch.from_numpy(data[k])
        loss = mr.causal_lm_loss(model(x).logits, x)
        loss.backward()
        if k == 0:
            grads1 = {n: p.grad.detach().double().numpy().copy() for n, p in model.named_parameters()}
        for n, p in model.named_parameters():  # each element's largest |gradient| over the steps
            g = np.abs(p.grad.detach().double().numpy())
            peak[n] = np.maximum(peak[n], g) if n in peak else g
        if clip:
            gn = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        else:
            gn = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params))
        opt.step()
        losses.append(loss.item())
        norms.append(float(gn))
    final = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()}
    return dict(loss=losses, grad_norm=norms, grads1=grads1, final=final, peak=peak)


def forward_gap(name, info, ids, want, positions=None):
    model = hf_model(name).float()
    load_weights(model, info, torch.float32)
    with torch.no_grad():
        got = model(torch.from_numpy(ids.astype(np.int64))).logits.double().numpy()
    if positions:
        got = got[:, :positions]
    return float(np.abs(got - want).max())


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def record(npz, key, value, entry, full, seed, largest_of):
    """A tensor in the PyTorch layout: whole (float32) or norm, sum and sampled elements."""
    npz[key + "norm"] = np.float64(np.linalg.norm(value))
    npz[key + "sum"] = np.float64(value.sum())
    if full:
        npz[key + "full"] = value.astype(np.float32)
        return
    flat = value.reshape(-1)
    uni = np.random.default_rng(seed).choice(flat.size, N_UNIFORM, replace=False)
    taken = set(uni.tolist())
    big = [i for i in np.argsort(-np.abs(largest_of.reshape(-1)), kind="stable")[:N_UNIFORM + N_LARGEST]
           if i not in taken][:N_LARGEST]
    idx = np.sort(np.concatenate([uni, np.array(big, np.int64)])).astype(np.int64)
    npz[key + "onnx_index"] = onnx_flat(idx, entry).astype(np.int64)
    npz[key + "value"] = flat[idx].astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--export", action="store_true", help="(re)write test/training/models/*.onnx first")
    ap.add_argument("--out", default=os.path.join(HERE, "references_10step.npz"))
    a = ap.parse_args()
    torch.set_num_threads(2)
    own = os.path.join(HERE, "models")
    if a.export:
        os.makedirs(own, exist_ok=True)
        _, ids, logits = export("gpt2_tiny", (B, S), own, seed=7)
        np.savez_compressed(os.path.join(own, "gpt2_tiny.io.npz"), input_ids=ids, output_head=logits[:, :8])
        shared_llama = os.path.join(a.models, "llama_tiny.onnx")
        path, _, _ = export("llama_tiny_b4", (4, 32), own, weights_from=shared_llama)
        strip_params(path, shared_llama)
    shared_io = np.load(os.path.join(a.models, "reference_io.npz"))
    stream = np.random.default_rng(1234).integers(0, VOCAB, STREAM_LEN).astype(np.int32)
    data = batches(stream)
    npz = {"tokens": stream, "input_ids": np.stack(data)}
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "adamw": dict(ADAM, betas=list(ADAM["betas"])), "max_grad_norm": MAX_GRAD_NORM,
            "steps": STEPS, "batch": [B, S], "stream_len": STREAM_LEN, "models": {}}
    for name, path in (("llama_tiny", os.path.join(a.models, "llama_tiny.onnx")),
                       ("qwen2_tiny", os.path.join(a.models, "qwen2_tiny.onnx")),
                       ("gpt2_tiny", os.path.join(own, "gpt2_tiny.onnx"))):
        info = read_params(path)
        if name == "gpt2_tiny":
            io = np.load(os.path.join(own, "gpt2_tiny.io.npz"))
            fwd = forward_gap(name, info, io["input_ids"], io["output_head"], positions=8)
        else:
            fwd = forward_gap(name, info, shared_io[name + "__input_ids"], shared_io[name + "__output"])
        assert fwd < 2e-5, (name, fwd, "the ONNX weights were not mapped right")
        table = load_weights(hf_model(name), info, torch.float32)
        runs = {(tag, clip): train(name, info, dt, data, clip)
                for tag, dt in (("fp64", torch.float64), ("fp32", torch.float32)) for clip in (True, False)}
        p = name + "/"
        gaps = {"forward_fp32": fwd}
        for clip in (True, False):
            c = "clip" if clip else "noclip"
            r64, r32 = runs[("fp64", clip)], runs[("fp32", clip)]
            for tag, r in (("fp64", r64), ("fp32", r32)):
                npz[f"{p}{c}/loss_{tag}"] = np.array(r["loss"], np.float64)
                npz[f"{p}{c}/grad_norm_{tag}"] = np.array(r["grad_norm"], np.float64)
            gaps[c + "_loss_abs"] = float(np.abs(np.subtract(r32["loss"], r64["loss"])).max())
            gaps[c + "_grad_norm_rel"] = float(np.max(np.abs(np.subtract(r32["grad_norm"], r64["grad_norm"]))
                                                      / np.array(r64["grad_norm"])))
            gaps[c + "_final_rel_l2_max"] = max(rel_l2(r32["final"][n], r64["final"][n]) for n in r64["final"])
        g64, g32 = runs[("fp64", True)]["grads1"], runs[("fp32", True)]["grads1"]
        gaps["grad1_rel_l2_max"] = max(rel_l2(g32[n], g64[n]) for n in g64)
        init = {}  # torch name -> (transform, the initializer's array)
        for e in table:
            key = [x for x in e["aliases"] if x in info["params"]][0]
            init[e["name"]] = (e["onnx_transform"], info["params"][key][2].reshape(
                e["onnx_shape"] if e["onnx_transform"] != "reshape" else e["torch_shape"]))
        noise = {}
        for i, e in enumerate(table):
            n = e["name"]
            # Elements whose gradient is zero in exact arithmetic but not in fp32 (GPT-2's key
            # bias: softmax ignores a per-query constant): fp64 sees ~1e-19, fp32 rounding noise,
            # which Adam scales up to steps of ~lr. No fp32 run can match fp64 there; the check
            # holds them to a bound instead (docs/training-references.md).
            p64, p32 = runs[("fp64", True)]["peak"][n], runs[("fp32", True)]["peak"][n]
            null = (p64 <= 1e-12 * p64.max()) & (p32 > 0)
            if null.any():
                idx = np.flatnonzero(null.reshape(-1))
                npz[f"{p}null/{n}/onnx_index"] = onnx_flat(idx, e).astype(np.int64)
                npz[f"{p}null/{n}/index"] = idx.astype(np.int64)
                noise[n] = {"elements": int(idx.size), "fp64_peak_grad": float(p64.reshape(-1)[idx].max()),
                            "fp32_peak_grad": float(p32.reshape(-1)[idx].max()), "fp32_vs_fp64_final_max_abs": {
                                c: float(np.abs(runs[("fp32", cl)]["final"][n] - runs[("fp64", cl)]["final"][n])
                                         .reshape(-1)[idx].max()) for c, cl in (("clip", True), ("noclip", False))}}
            transform, arr = init[n]
            w0 = (arr.T if transform == "transpose" else arr).astype(np.float64)
            full = name == "gpt2_tiny" or g64[n].size <= FULL_NUMEL
            record(npz, f"{p}grad1/{n}/", g64[n], e, full, 2000 + i, g64[n])
            for clip in (True, False):
                c = "clip" if clip else "noclip"
                fin = runs[("fp64", clip)]["final"][n]
                record(npz, f"{p}{c}/final/{n}/", fin, e, full, 3000 + i, fin - w0)
        for clip in (True, False):  # fp32 against fp64 without the null elements
            c, worst = "clip" if clip else "noclip", 0.0
            for n, want in runs[("fp64", clip)]["final"].items():
                got, keep = runs[("fp32", clip)]["final"][n].reshape(-1), np.ones(want.size, bool)
                if f"{p}null/{n}/index" in npz:
                    keep[npz[f"{p}null/{n}/index"]] = False
                worst = max(worst, rel_l2(got[keep], want.reshape(-1)[keep]))
            gaps[c + "_final_rel_l2_max_without_null"] = worst
        meta["models"][name] = {"params": table, "fp32_vs_fp64": gaps, "onnx": os.path.basename(path),
                                "null_gradient_elements": noise}
        r = runs[("fp64", True)]
        print(f"{name}: {len(table)} parameters; clip fp64 losses {np.round(r['loss'], 6).tolist()}")
        print(f"{name}: clip fp64 grad norms {np.round(r['grad_norm'], 6).tolist()}")
        print(f"{name}: noclip fp64 losses {np.round(runs[('fp64', False)]['loss'], 6).tolist()}")
        print(f"{name}: fp32 vs fp64 {json.dumps(gaps)}")
    npz["meta_json"] = np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8)
    np.savez_compressed(a.out, **npz)
    print(a.out, os.path.getsize(a.out), "bytes,", len(npz), "arrays")


if __name__ == "__main__":
    main()
