#!/usr/bin/env python3
"""Ten AdamW steps of PyTorch on the tiny MoE exports, with Hugging Face's load-balancing
auxiliary loss: the ground truth of the moe.train.* tests (test/training/check_pytorch10.py
--aux-coef reads it; the key layout is references_10step.npz's, docs/training-references.md).

Needs torch + transformers (not in the repository's venv). Made with:
    /work/venv-torch/bin/python test/moe/make_train_references.py
(torch 2.15.0, transformers 5.25.0 when the committed file was made; about a minute on 2
cores). The tests never run it.

For mixtral_moe and qwen2_moe (test/moe/*.onnx, exported by export_models.py) it rebuilds the
same Hugging Face model from the same seed, checks its forward against the export-time logits
in references.npz, maps every parameter to the ONNX initializer holding its values (found by
value: as stored, or transposed), and runs 10 steps of torch.optim.AdamW(lr 1e-3, betas (0.9,
0.95), eps 1e-8, weight_decay 0.1) with clip_grad_norm_(1.0), in fp64 and fp32. The loss is
the causal-LM cross-entropy (mean over the shifted labels) plus router_aux_loss_coef (0.02)
times the model's aux_loss (output_router_logits=True: load_balancing_loss_func over all
layers' router logits). Data: a stream of 80 tokens; step k (from 0) reads tokens
[32k, 32k + 32) modulo 80 as input_ids [2, 16] (steps 3, 5, 8 and 10, counted from 1, wrap).
deepseek_v3_moe (sigmoid router with a score bias, groups, no auxiliary loss) trains with
DeepSeek-V3's auxiliary-loss-free balancing instead: after every step each
e_score_correction_bias moves by d - mean(d), d = 1e-3 * sign(mean(c) - c), c the (token,
choice) pairs of each expert in the step (torchtitan's load_balance_coeff); its biases after
step 10 are recorded too.
It records per step the loss, the aux loss and the pre-clip global gradient norm, every
parameter's gradient at step 1 and every parameter after step 10 (float32: whole up to 8192
elements, else the norm and 1088 sampled elements).
STEP_RUNS add per-step figures only (the sharded tests' --steps-only) of the same models on the
same stream, a step reading g*B*S tokens: mixtral_moe_b4 and qwen2_moe_b4 at batch 4 (the _b4
exports, for dp_shard = 4), and mixtral_moe_accum2, two micro-batches of [2, 16] a step
(gradient_accumulation_steps 2; the same 64 tokens a step as mixtral_moe_b4): one forward and
backward per micro-batch, each adding its cross-entropy sum over the step's label count and
router_aux_loss_coef times its own aux loss / g (the step's aux: the micro-batches' mean).
With names of MODELS or STEP_RUNS as arguments it recomputes only those and keeps the file's
other arrays as they are (the _b4 and _accum2 entries were added that way, with torch
2.15.0+cu132 and transformers 5.25.0: a rerun of the others on this machine differed from the
committed ones by up to 6e-6 relative in the final parameters).
"""
import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import torch
import transformers

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import export_models as em  # noqa: E402  (build: the exported models from their seeds)

sys.path.insert(0, os.path.join(HERE, "..", "training"))
import make_references as mr  # noqa: E402  (causal_lm_loss: no fp32 upcast)

B, S = em.B, em.S
STEPS = 10
STREAM_LEN = 80
ADAM = dict(lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1)
MAX_GRAD_NORM = 1.0
AUX_COEF = 0.02
FULL_NUMEL = 8192  # whole tensors up to this size, samples above
MODELS = {"mixtral_moe": 10, "qwen2_moe": 11, "deepseek_v3_moe": 12}  # export_models.py's seeds: 10 + NAMES.index
# Per-step references only (the sharded tests' --steps-only), each of a model above on the same
# stream read g*B*S tokens a step: "batch" the export's B, "micro" g micro-batches of [B, S].
# _b4: batch 4 (the _b4 exports, for dp_shard = 4); _accum2: two micro-batches of [2, 16] on the
# same 64 tokens a step as _b4 (gradient_accumulation_steps 2: the aux loss per micro-batch).
STEP_RUNS = {"mixtral_moe_b4": dict(model="mixtral_moe", onnx="mixtral_moe_b4", batch=4, micro=1),
             "qwen2_moe_b4": dict(model="qwen2_moe", onnx="qwen2_moe_b4", batch=4, micro=1),
             "mixtral_moe_accum2": dict(model="mixtral_moe", onnx="mixtral_moe", batch=2, micro=2)}
BIAS_SPEED = 1e-3  # deepseek_v3_moe: auxiliary-loss-free balancing (router_bias_update_speed)


def model_of(name, dtype):
    m = em.build(name, MODELS[name]).m.to(dtype)
    m.router_aux_loss_coef = AUX_COEF
    return m


def routers(model):
    """DeepSeek-V3's routers (the modules with e_score_correction_bias), in layer order."""
    return [(n, mod) for n, mod in model.named_modules() if hasattr(mod, "e_score_correction_bias")]


def onnx_table(name, model):
    """Every parameter's ONNX initializer (of test/moe/<name>.onnx), found by value (as stored, or
    its last two dims swapped)."""
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(os.path.join(HERE, name + ".onnx")).graph.initializer}
    aliases = {}
    for n, p in model.named_parameters(remove_duplicate=False):
        aliases.setdefault(id(p), []).append(n)
    table = []
    for n, p in model.named_parameters():
        v = p.detach().float().numpy()
        hits = []
        for init, arr in inits.items():
            if arr.shape == v.shape and np.array_equal(arr, v):
                hits.append((init, "none"))
            elif arr.ndim == v.ndim >= 2 and arr.shape == v.swapaxes(-1, -2).shape and \
                    np.array_equal(arr, v.swapaxes(-1, -2)):
                hits.append((init, "transpose"))
        assert len(hits) == 1, (name, n, hits)
        init, transform = hits[0]
        table.append(dict(name=n, aliases=aliases[id(p)], onnx_initializer=init, onnx_transform=transform,
                          torch_shape=list(v.shape), onnx_shape=list(inits[init].shape)))
    return table


def batches(stream, batch=B, micro=1):
    """Step k's tokens: [k*n, (k+1)*n) of the stream modulo its length, n = micro*batch*S, as
    [micro, batch, S] (micro-batch j the step's tokens [j*batch*S, (j+1)*batch*S))."""
    n = micro * batch * S
    return [stream[(k * n + np.arange(n)) % len(stream)].reshape(micro, batch, S).astype(np.int64)
            for k in range(STEPS)]


def train(name, dtype, data, bias_speed=None):
    """data: each step's [g, B, S] tokens, g micro-batches. With g > 1 each micro-batch runs its
    own forward and backward (the gradients add): its loss is its summed cross-entropy over the
    step's label count (NeMo's num_label_tokens) plus coef * aux / g, aux its own
    load-balancing loss (Megatron scales each micro-batch's aux loss by 1/g too); the step's aux
    is the micro-batches' mean. With bias_speed (DeepSeek-V3, no auxiliary loss), torchtitan's load_balance_coeff update
    of every e_score_correction_bias after each step: d = speed * sign(mean(c) - c) centred,
    c the (token, choice) pairs each expert got in the step."""
    model = model_of(name, dtype)
    model.train()  # no dropout in these configs, no router jitter
    params = [p for _, p in model.named_parameters()]
    opt = torch.optim.AdamW(params, foreach=False, **ADAM)
    out = dict(loss=[], aux=[], grad_norm=[], choices=[])
    chosen = {}
    hooks = [mod.register_forward_hook(lambda m_, a, o, n=n: chosen.__setitem__(n, o[2].detach().clone()))
             for n, mod in routers(model)]
    for k in range(STEPS):
        opt.zero_grad()
        g = data[k].shape[0]
        loss, aux = 0.0, 0.0
        for j in range(g):
            x = torch.from_numpy(data[k][j])
            if bias_speed is None:
                r = model(input_ids=x, output_router_logits=True, use_cache=False)
                ce = mr.causal_lm_loss(r.logits, x) / g  # equal label counts: the sum over the step's count
                mb = ce + AUX_COEF * r.aux_loss / g
                aux += r.aux_loss.item() / g
            else:
                r = model(input_ids=x, use_cache=False)
                mb = mr.causal_lm_loss(r.logits, x) / g
            mb.backward()
            loss += mb.item()
        if k == 0:
            out["grads1"] = {n: p.grad.detach().double().numpy().copy() for n, p in model.named_parameters()}
        gn = torch.nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
        opt.step()
        if bias_speed is not None:
            with torch.no_grad():
                for n, mod in routers(model):
                    b = mod.e_score_correction_bias
                    c = torch.bincount(chosen[n].reshape(-1), minlength=b.numel()).to(b.dtype)
                    d = bias_speed * torch.sign(c.mean() - c)
                    b.add_(d - d.mean())
        out["choices"].append({n: chosen[n].numpy().copy() for n in chosen})
        out["loss"].append(loss)
        if bias_speed is None:
            out["aux"].append(aux)
        out["grad_norm"].append(float(gn))
    for h in hooks:
        h.remove()
    out["final"] = {n: p.detach().double().numpy().copy() for n, p in model.named_parameters()}
    out["buffers"] = {n + ".e_score_correction_bias": mod.e_score_correction_bias.detach().double().numpy().copy()
                      for n, mod in routers(model)}
    return out


def onnx_flat(idx, e):
    """Flat indices of the PyTorch layout in the ONNX initializer's layout."""
    if e["onnx_transform"] == "none":
        return idx
    shape = e["torch_shape"]
    coords = np.unravel_index(idx, shape)
    swapped = coords[:-2] + (coords[-1], coords[-2])
    return np.ravel_multi_index(swapped, shape[:-2] + [shape[-1], shape[-2]])


def record(npz, key, value, e, seed):
    """Whole (float32) up to FULL_NUMEL elements, else the norm and 1024 sampled elements plus
    the 64 largest (check_pytorch10.py compares either)."""
    npz[key + "norm"] = np.float64(np.linalg.norm(value))
    if value.size <= FULL_NUMEL:
        npz[key + "full"] = value.astype(np.float32)
        return
    flat = value.reshape(-1)
    uni = np.random.default_rng(seed).choice(flat.size, 1024, replace=False)
    taken = set(uni.tolist())
    big = [j for j in np.argsort(-np.abs(flat), kind="stable")[:1024 + 64] if j not in taken][:64]
    idx = np.sort(np.concatenate([uni, np.array(big, np.int64)])).astype(np.int64)
    npz[key + "onnx_index"] = onnx_flat(idx, e).astype(np.int64)
    npz[key + "value"] = flat[idx].astype(np.float32)


def main():
    torch.set_num_threads(2)
    refs = np.load(os.path.join(HERE, "references.npz"))
    stream = np.random.default_rng(4321).integers(0, em.VOCAB, STREAM_LEN).astype(np.int32)
    data = batches(stream)
    npz = {"tokens": stream, "input_ids": np.stack(data)[:, 0]}
    meta = {"torch": torch.__version__, "transformers": transformers.__version__,
            "adamw": dict(ADAM, betas=list(ADAM["betas"])), "max_grad_norm": MAX_GRAD_NORM,
            "router_aux_loss_coef": AUX_COEF, "steps": STEPS, "batch": [B, S], "stream_len": STREAM_LEN,
            "models": {}}
    out = os.path.join(HERE, "train_references.npz")
    only = sys.argv[1:]  # names of MODELS or STEP_RUNS: recompute these, keep the file's others
    if only:
        assert all(n in MODELS or n in STEP_RUNS for n in only), only
        kept = np.load(out)
        meta = json.loads(bytes(kept["meta_json"]).decode())
        npz = {k: kept[k] for k in kept.files if k != "meta_json" and k.split("/")[0] not in only}
        meta["models"] = {n: v for n, v in meta["models"].items() if n not in only}
        meta.setdefault("added_with", {})[",".join(only)] = {"torch": torch.__version__,
                                                             "transformers": transformers.__version__}
    for name in MODELS:
        if only and name not in only:
            continue
        m32 = model_of(name, torch.float32).eval()
        with torch.no_grad():
            got = m32(input_ids=torch.from_numpy(refs[name + ".input_ids"]), use_cache=False).logits.numpy()
        fwd = float(np.abs(got - refs[name + ".logits"]).max())
        assert fwd < 1e-6, (name, fwd, "the rebuilt model is not the exported one")
        table = onnx_table(name, m32)
        speed = BIAS_SPEED if name == "deepseek_v3_moe" else None
        r64, r32 = train(name, torch.float64, data, speed), train(name, torch.float32, data, speed)
        p = name + "/"
        for tag, r in (("fp64", r64), ("fp32", r32)):
            for key in ("loss", "aux", "grad_norm") if speed is None else ("loss", "grad_norm"):
                npz[f"{p}clip/{key}_{tag}"] = np.array(r[key], np.float64)
        buffers = []
        if speed is not None:
            # The biases after 10 steps, and how many choices they changed (against a run without
            # the update) in the last step: the update must matter for the test to mean anything.
            still = train(name, torch.float64, data, 0.0)
            changed = sum(int((np.sort(r64["choices"][-1][n], -1) != np.sort(still["choices"][-1][n], -1)).any(-1).sum())
                          for n in r64["choices"][-1])
            for n, v in r64["buffers"].items():
                npz[f"{p}clip/final_buffer/{n}"] = v.astype(np.float32)
                buffers.append({"name": n, "state": "router_bias.m." + n})
            meta["router_bias_update_speed"] = speed
            print(f"{name}: the bias update changed the choices of {changed} tokens in step 10")
        gaps = {"forward_fp32": fwd,
                "loss_abs": float(np.abs(np.subtract(r32["loss"], r64["loss"])).max()),
                "grad_norm_rel": float(np.max(np.abs(np.subtract(r32["grad_norm"], r64["grad_norm"]))
                                              / np.array(r64["grad_norm"]))),
                "final_rel_l2_max": max(float(np.linalg.norm(r32["final"][n] - r64["final"][n]) /
                                              np.linalg.norm(r64["final"][n])) for n in r64["final"])}
        for i, e in enumerate(table):
            n = e["name"]
            for key, value in ((f"{p}grad1/{n}/", r64["grads1"][n]), (f"{p}clip/final/{n}/", r64["final"][n])):
                record(npz, key, value, e, 1000 * len(npz) + i)
        meta["models"][name] = {"params": table, "fp32_vs_fp64": gaps, "onnx": name + ".onnx", "buffers": buffers}
        print(f"{name}: {len(table)} parameters; fp64 losses {np.round(r64['loss'], 6).tolist()}")
        print(f"{name}: fp64 aux {np.round(r64['aux'], 6).tolist()}")
        print(f"{name}: fp64 grad norms {np.round(r64['grad_norm'], 6).tolist()}")
        print(f"{name}: fp32 vs fp64 {json.dumps(gaps)}")
    for run, spec in STEP_RUNS.items():
        if only and run not in only:
            continue
        name, shape = spec["model"], [spec["micro"], spec["batch"], S]
        m32 = model_of(name, torch.float32).eval()
        with torch.no_grad():
            got = m32(input_ids=torch.from_numpy(refs[spec["onnx"] + ".input_ids"]), use_cache=False).logits.numpy()
        fwd = float(np.abs(got - refs[spec["onnx"] + ".logits"]).max())
        assert fwd < 1e-6, (run, fwd, "the rebuilt model is not the exported one")
        run_data = batches(stream, spec["batch"], spec["micro"])
        r64, r32 = train(name, torch.float64, run_data), train(name, torch.float32, run_data)
        for tag, r in (("fp64", r64), ("fp32", r32)):
            for key in ("loss", "aux", "grad_norm"):
                npz[f"{run}/clip/{key}_{tag}"] = np.array(r[key], np.float64)
        gaps = {"forward_fp32": fwd,
                "loss_abs": float(np.abs(np.subtract(r32["loss"], r64["loss"])).max()),
                "grad_norm_rel": float(np.max(np.abs(np.subtract(r32["grad_norm"], r64["grad_norm"]))
                                              / np.array(r64["grad_norm"])))}
        meta["models"][run] = {"params": onnx_table(spec["onnx"], m32), "fp32_vs_fp64": gaps,
                               "onnx": spec["onnx"] + ".onnx", "buffers": [], "steps_only": True,
                               "micro_batches": shape}
        print(f"{run}: [g, B, S] {shape}; fp64 losses {np.round(r64['loss'], 6).tolist()}")
        print(f"{run}: fp64 aux {np.round(r64['aux'], 6).tolist()}")
        print(f"{run}: fp64 grad norms {np.round(r64['grad_norm'], 6).tolist()}")
        print(f"{run}: fp32 vs fp64 {json.dumps(gaps)}")
    npz["meta_json"] = np.frombuffer(json.dumps(meta, indent=1).encode(), dtype=np.uint8)
    np.savez_compressed(out, **npz)
    print(out, os.path.getsize(out), "bytes,", len(npz), "arrays")


if __name__ == "__main__":
    main()
