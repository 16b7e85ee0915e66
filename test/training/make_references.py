#!/usr/bin/env python3
"""Training ground truth for issue 11 (losses, gradients, AdamW steps) from PyTorch.

Needs torch + transformers + onnx, which the repository's venv deliberately lacks. Made with:
    python3 -m venv /work/venv-torch
    /work/venv-torch/bin/pip install torch transformers onnx onnxscript numpy
    /work/venv-torch/bin/python test/training/make_references.py \
        --models ../shared/models --out test/training/references.npz
(torch 2.15.0, transformers 5.25.0, onnx 1.23.2 when the committed file was made). The test
command never runs this; test/training/check_references.py (numpy only) checks its output.

For each exported model in ../shared/models (llama_tiny.onnx, qwen2_tiny.onnx, see its
README.md and ../shared/tools/export_hf_models.py) it builds the same Hugging Face model, loads
the ONNX initializers into it (parameters by name; anonymous folds `val_N` through their
value_info metadata `pkg.onnxscript.optimizer.folded_from`, transposed back), checks that the
forward logits equal reference_io.npz, and then records, in fp32 and fp64:
  - the causal-LM loss (Hugging Face convention: labels = input ids shifted inside the model,
    mean over the B*(S-1) predicted tokens), and the same with an unshifted labels input that
    has -100 entries;
  - per-parameter gradients of the first loss: L2 norm, sum, 48 sampled elements (flat index in
    the PyTorch layout and in the ONNX initializer's layout), whole gradients for 1-D
    parameters and for layer 0's k_proj weight;
  - 3 AdamW steps (lr 1e-3, betas (0.9, 0.95), eps 1e-8, weight_decay 0.1, clip_grad_norm_ 1.0)
    on a token stream whose third read wraps around: loss and pre-clip grad norm per step,
    sampled parameter values and norms after each step; the same without clipping (losses and
    grad norms only);
  - for the tied Qwen2 embedding: the ONNX consumers of the one initializer and the gradients
    of the two uses, whose sum is the tied gradient.
Key layout: see docs/training-references.md.
"""
import argparse
import ast
import json
import os
import re

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import transformers

B, S, VOCAB = 2, 64, 512
N_UNIFORM, N_LARGEST = 32, 16          # sampled elements per 2-D parameter
FULL_NUMEL = 512                       # whole gradient stored up to this size
FULL_EXTRA = ("model.layers.0.self_attn.k_proj.weight",)
ADAM = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
MAX_GRAD_NORM = 1.0
STEPS = 3
STREAM_LEN = 5 * B * S // 2            # 320 tokens: step 2 reads 256..319 then 0..63
KIND = "pkg.torch.export.graph_signature.InputSpec.kind"
FOLDED = "pkg.onnxscript.optimizer.folded_from"
SIGNATURE = "pkg.torch.export.ExportedProgram.graph_signature"


def hf_model(name):
    """The configs of ../shared/tools/export_hf_models.py, eager attention."""
    if name == "llama_tiny":
        c = transformers.LlamaConfig(
            vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=256,
            tie_word_embeddings=False, use_cache=False, attn_implementation="eager")
        return transformers.LlamaForCausalLM(c)
    c = transformers.Qwen2Config(
        vocab_size=VOCAB, hidden_size=256, intermediate_size=512, num_hidden_layers=2,
        num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True, use_cache=False, attn_implementation="eager")
    return transformers.Qwen2ForCausalLM(c)


def read_onnx(path):
    """Trainable initializers of an exported model: {torch name: (onnx name, transform, array)}.

    The export wrapper's attribute `m.` prefixes every target; it is stripped."""
    model = onnx.load(path)
    g = model.graph
    meta = {v.name: {p.key: p.value for p in v.metadata_props} for v in g.value_info}
    sig = {p.key: p.value for p in g.metadata_props}[SIGNATURE]
    spec = {}  # target -> (placeholder, kind)
    for ph, kind, target in re.findall(r"^(\w+): (PARAMETER|BUFFER|CONSTANT_TENSOR)\w* target='([^']+)'",
                                       sig, re.M):
        spec[target] = (ph, kind)
    params, frozen = {}, {}
    for init in g.initializer:
        m = meta.get(init.name, {})
        arr = onnx.numpy_helper.to_array(init)
        if m.get(KIND) == "PARAMETER":
            params[init.name[2:]] = (init.name, "none", arr, m)
            continue
        folded = ast.literal_eval(m[FOLDED]) if FOLDED in m else []
        named = [f for f in folded if f in spec]
        if len(folded) == 1 and named and spec[named[0]][1] == "PARAMETER":
            assert arr.ndim == 2, init.name
            params[folded[0][2:]] = (init.name, "transpose", arr, m)
        elif named:
            frozen[init.name] = {"folded_from_exporter_inputs": named,
                                 "kinds": [spec[n][1] for n in named]}
    consumers = {}
    for n in g.node:
        scopes = {p.key: p.value for p in n.metadata_props}.get("pkg.torch.onnx.name_scopes", "[]")
        for i in n.input:
            consumers.setdefault(i, []).append(
                {"op": n.op_type, "node": n.name, "scope": ast.literal_eval(scopes)[-2:]})
    embed_fx = [{p.key: p.value for p in n.metadata_props}.get("pkg.torch.onnx.fx_node", "")
                for n in g.node if n.op_type == "Gather" and "embedding" in n.name]
    return dict(params=params, frozen=frozen, spec=spec, consumers=consumers, embed_fx=embed_fx)


def load_weights(model, info, dtype):
    """Copies the ONNX values into the HF model; returns the parameter table."""
    named = dict(model.named_parameters())
    aliases = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(n)
    table, used = [], set()
    with torch.no_grad():
        for name, p in named.items():
            hits = [a for a in aliases[id(p)] if a in info["params"]]
            assert len(hits) == 1, (name, aliases[id(p)])
            onnx_name, transform, arr, m = info["params"][hits[0]]
            val = arr.T if transform == "transpose" else arr
            assert tuple(val.shape) == tuple(p.shape), (name, val.shape, p.shape)
            p.copy_(torch.from_numpy(np.array(val)).to(dtype))
            used.add(hits[0])
            table.append(dict(name=name, aliases=aliases[id(p)], onnx_initializer=onnx_name,
                              onnx_transform=transform, torch_shape=list(p.shape),
                              onnx_shape=list(arr.shape),
                              onnx_metadata={k: v for k, v in m.items()
                                             if k in (KIND, FOLDED)}))
    assert used == set(info["params"]), set(info["params"]) - used
    return table


def causal_lm_loss(logits, labels, reduction="mean"):
    """Hugging Face's ForCausalLMLoss without its fp32 upcast (so fp64 stays fp64)."""
    shifted = torch.nn.functional.pad(labels, (0, 1), value=-100)[..., 1:]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                                             shifted.reshape(-1), ignore_index=-100,
                                             reduction=reduction)


def sample_indices(seed, grad64):
    flat = grad64.reshape(-1)
    rng = np.random.default_rng(seed)
    uni = rng.choice(flat.size, N_UNIFORM, replace=False)
    big = np.argsort(-np.abs(flat), kind="stable")
    big = [i for i in big if i not in set(uni)][:N_LARGEST]
    return np.sort(np.concatenate([uni, np.array(big, dtype=np.int64)])).astype(np.int64)


def onnx_flat(idx, entry):
    if entry["onnx_transform"] == "none":
        return idx
    rows, cols = entry["torch_shape"]
    return (idx % cols) * rows + idx // cols


def run_dtype(name, info, dtype, ids, labels_masked, stream_batches):
    torch.manual_seed(0)
    model = hf_model(name).to(dtype)
    table = load_weights(model, info, dtype)
    model.train()  # no dropout in these configs; train() only for clarity
    params = [p for _, p in model.named_parameters()]
    out = {"table": table}
    x = torch.from_numpy(ids)
    logits = model(x).logits
    out["logits"] = logits.detach().double().numpy()
    if dtype == torch.float32:  # our loss equals transformers' own
        hf = model(x, labels=x).loss.item()
        out["hf_loss"] = hf
    loss = causal_lm_loss(logits, x)
    model.zero_grad()
    loss.backward()
    out["loss"] = loss.item()
    out["grads"] = {n: p.grad.detach().double().numpy().copy() for n, p in model.named_parameters()}
    lm = torch.from_numpy(labels_masked)
    model.zero_grad()
    lmasked = causal_lm_loss(model(x).logits, lm)
    lmasked.backward()
    out["loss_masked"] = lmasked.item()
    with torch.no_grad():
        out["loss_masked_sum"] = causal_lm_loss(model(x).logits, lm, "sum").item()
    out["grad_norm_masked"] = float(torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params)))
    if dtype == torch.float32:
        out["hf_loss_masked"] = model(x, labels=lm).loss.item()
    if name == "qwen2_tiny":  # untie a copy: gradient of each use
        head = model.lm_head.weight
        emb = torch.nn.Parameter(head.detach().clone())
        model.model.embed_tokens.weight = emb
        model.zero_grad()
        causal_lm_loss(model(x).logits, x).backward()
        out["tie_parts"] = {"embedding": emb.grad.double().numpy().copy(),
                            "lm_head": head.grad.double().numpy().copy()}
    # AdamW, with and without clipping, from the exported weights.
    for clip in (True, False):
        torch.manual_seed(0)
        model = hf_model(name).to(dtype)
        load_weights(model, info, dtype)
        params = [p for _, p in model.named_parameters()]
        opt = torch.optim.AdamW(params, foreach=False, **ADAM)
        losses, norms, snaps = [], [], []
        for k in range(STEPS):
            opt.zero_grad()
            l = causal_lm_loss(model(torch.from_numpy(stream_batches[k])).logits,
                               torch.from_numpy(stream_batches[k]))
            l.backward()
            if clip:
                gn = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
            else:
                gn = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in params))
            opt.step()
            losses.append(l.item())
            norms.append(float(gn))
            snaps.append({n: p.detach().double().numpy().copy() for n, p in model.named_parameters()})
        out["adamw_clip" if clip else "adamw_noclip"] = dict(loss=losses, grad_norm=norms, params=snaps)
    return out


def rel_l2(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--models", default="../shared/models")
    ap.add_argument("--out", default="test/training/references.npz")
    a = ap.parse_args()
    torch.set_num_threads(2)
    ref = np.load(os.path.join(a.models, "reference_io.npz"))
    npz, meta = {}, {"torch": torch.__version__, "transformers": transformers.__version__,
                     "adamw": dict(ADAM, betas=list(ADAM["betas"])), "max_grad_norm": MAX_GRAD_NORM,
                     "batch": [B, S], "models": {}}
    for name in ("llama_tiny", "qwen2_tiny"):
        info = read_onnx(os.path.join(a.models, name + ".onnx"))
        ids = ref[name + "__input_ids"].astype(np.int64)
        labels = ids.copy()
        labels[0, :16] = -100                 # a masked prompt
        labels[1, [5, 20, 40, 63]] = -100     # scattered, including the last target
        stream = np.random.default_rng(42).integers(0, VOCAB, STREAM_LEN).astype(np.int32)
        batches = [stream[(k * B * S + np.arange(B * S)) % STREAM_LEN].reshape(B, S).astype(np.int64)
                   for k in range(STEPS)]
        r32 = run_dtype(name, info, torch.float32, ids, labels, batches)
        r64 = run_dtype(name, info, torch.float64, ids, labels, batches)
        fwd32 = float(np.abs(r32["logits"] - ref[name + "__output"]).max())
        fwd64 = float(np.abs(r64["logits"] - ref[name + "__output"]).max())
        print(f"{name}: forward max|logits - reference_io| fp32 {fwd32:.3g} fp64 {fwd64:.3g}")
        assert fwd32 < 2e-5 and fwd64 < 2e-5, "the ONNX weights were not mapped right"
        assert abs(r32["hf_loss"] - r32["loss"]) < 1e-6, (r32["hf_loss"], r32["loss"])
        assert abs(r32["hf_loss_masked"] - r32["loss_masked"]) < 1e-6
        p = name + "/"
        n_masked = int((labels[:, 1:] != -100).sum())
        npz.update({p + "input_ids": ids, p + "labels_masked": labels,
                    p + "n_tokens": np.int64(B * (S - 1)), p + "n_tokens_masked": np.int64(n_masked)})
        for tag, r in (("fp32", r32), ("fp64", r64)):
            npz[p + "loss_" + tag] = np.float64(r["loss"])
            npz[p + "loss_masked_" + tag] = np.float64(r["loss_masked"])
            npz[p + "loss_masked_sum_" + tag] = np.float64(r["loss_masked_sum"])
            npz[p + "grad_norm_masked_" + tag] = np.float64(r["grad_norm_masked"])
            npz[p + "grad_total_norm_" + tag] = np.float64(
                np.sqrt(sum((g ** 2).sum() for g in r["grads"].values())))
        gaps = {"forward_fp32": fwd32, "forward_fp64": fwd64,
                "loss": abs(r32["loss"] - r64["loss"]),
                "loss_masked": abs(r32["loss_masked"] - r64["loss_masked"])}
        grad_gap = 0.0
        for i, e in enumerate(r32["table"]):
            n, g32, g64 = e["name"], r32["grads"][e["name"]], r64["grads"][e["name"]]
            grad_gap = max(grad_gap, rel_l2(g32, g64))
            q = f"{p}grad/{n}/"
            idx = sample_indices(1000 + i, g64)
            e["sample_index"] = f"{p}sample/{n}/index"
            npz[f"{p}sample/{n}/index"] = idx
            npz[f"{p}sample/{n}/onnx_index"] = onnx_flat(idx, e).astype(np.int64)
            npz[q + "norm_fp32"] = np.float64(np.linalg.norm(g32))
            npz[q + "norm_fp64"] = np.float64(np.linalg.norm(g64))
            npz[q + "sum_fp32"] = np.float64(g32.sum())
            npz[q + "sum_fp64"] = np.float64(g64.sum())
            npz[q + "value_fp32"] = g32.reshape(-1)[idx].astype(np.float32)
            npz[q + "value_fp64"] = g64.reshape(-1)[idx]
            if g32.size <= FULL_NUMEL or n in FULL_EXTRA:  # torch layout
                npz[q + "full_fp32"] = g32.astype(np.float32)
                npz[q + "full_fp64"] = g64
        gaps["grad_rel_l2_max"] = grad_gap
        for run in ("adamw_clip", "adamw_noclip"):
            q = f"{p}{run}/"
            for tag, r in (("fp32", r32), ("fp64", r64)):
                npz[q + "loss_" + tag] = np.array(r[run]["loss"], np.float64)
                npz[q + "grad_norm_" + tag] = np.array(r[run]["grad_norm"], np.float64)
            gaps[run + "_loss"] = float(np.abs(np.subtract(r32[run]["loss"], r64[run]["loss"])).max())
            gaps[run + "_grad_norm_rel"] = float(np.max(np.abs(
                np.subtract(r32[run]["grad_norm"], r64[run]["grad_norm"]) / r64[run]["grad_norm"])))
        pgap = 0.0
        for e in r32["table"]:
            n = e["name"]
            idx = npz[f"{p}sample/{n}/index"]
            q = f"{p}adamw_clip/param/{n}/"
            for tag, r in (("fp32", r32), ("fp64", r64)):
                snaps = r["adamw_clip"]["params"]
                npz[q + "value_" + tag] = np.stack([s[n].reshape(-1)[idx] for s in snaps]).astype(
                    np.float32 if tag == "fp32" else np.float64)
                npz[q + "norm_" + tag] = np.array([np.linalg.norm(s[n]) for s in snaps], np.float64)
            pgap = max(pgap, max(rel_l2(a32[n], a64[n]) for a32, a64 in
                                 zip(r32["adamw_clip"]["params"], r64["adamw_clip"]["params"])))
        gaps["adamw_clip_param_rel_l2_max"] = pgap
        # How much clipping changes things: Adam is nearly invariant to a constant gradient scale.
        last_c, last_n = r64["adamw_clip"]["params"][-1], r64["adamw_noclip"]["params"][-1]
        gaps["fp64_clip_vs_noclip_loss_max"] = float(np.abs(np.subtract(
            r64["adamw_clip"]["loss"], r64["adamw_noclip"]["loss"])).max())
        gaps["fp64_clip_vs_noclip_param_rel_l2_max"] = max(rel_l2(last_c[n], last_n[n]) for n in last_c)
        npz[p + "adamw/tokens"] = stream
        npz[p + "adamw/input_ids"] = np.stack(batches)
        m = {"params": r32["table"], "frozen": info["frozen"], "padding_idx": None,
             "embedding_fx_node": info["embed_fx"], "fp32_vs_fp64": gaps,
             "adamw_steps": STEPS, "stream_len": STREAM_LEN}
        emb = hf_model(name).model.embed_tokens
        fx_args = [re.search(r"args = \(([^)]*)\)", f).group(1).split(",") for f in info["embed_fx"]]
        assert emb.padding_idx is None and fx_args and all(len(x) == 2 for x in fx_args), fx_args
        if name == "qwen2_tiny":
            t = "m.lm_head.weight"
            uses = info["consumers"][t]
            m["tie"] = {"initializer": t, "consumers": uses,
                        "signature_placeholders": {k: info["spec"][k] for k in
                                                   ("m.model.embed_tokens.weight", "m.lm_head.weight")}}
            assert sorted(u["op"] for u in uses) == ["Gather", "Transpose"], uses
            assert "model.embed_tokens.weight" not in info["params"]  # stored once
            for tag, r in (("fp32", r32), ("fp64", r64)):
                parts, tied = r["tie_parts"], r["grads"]["model.embed_tokens.weight"]
                gap = rel_l2(parts["embedding"] + parts["lm_head"], tied)
                m["tie"]["sum_rel_l2_" + tag] = gap
                assert gap < (1e-5 if tag == "fp32" else 1e-12), gap
                idx = npz[f"{p}sample/model.embed_tokens.weight/index"]
                for part, g in parts.items():
                    npz[f"{p}tie/{part}/norm_{tag}"] = np.float64(np.linalg.norm(g))
                    npz[f"{p}tie/{part}/value_{tag}"] = g.reshape(-1)[idx].astype(
                        np.float32 if tag == "fp32" else np.float64)
        meta["models"][name] = m
        print(f"{name}: loss fp32 {r32['loss']:.9f} fp64 {r64['loss']:.12f}; masked fp32 "
              f"{r32['loss_masked']:.9f} fp64 {r64['loss_masked']:.12f} ({n_masked} tokens)")
        print(f"{name}: adamw_clip losses fp64 {r64['adamw_clip']['loss']} grad norms "
              f"{r64['adamw_clip']['grad_norm']}")
        print(f"{name}: adamw_noclip losses fp64 {r64['adamw_noclip']['loss']} grad norms "
              f"{r64['adamw_noclip']['grad_norm']}")
        print(f"{name}: fp32 vs fp64 {json.dumps(gaps)}")
        if "tie" in m:
            print(f"{name}: tie {json.dumps({k: v for k, v in m['tie'].items() if k != 'consumers'})}")
    npz["meta_json"] = np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8)
    np.savez_compressed(a.out, **npz)
    print(a.out, os.path.getsize(a.out), "bytes,", len(npz), "arrays")


if __name__ == "__main__":
    main()
