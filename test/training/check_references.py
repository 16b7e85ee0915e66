#!/usr/bin/env python3
"""Checks test/training/references.npz (ctest training.references; numpy only): every model has
its losses, per-parameter gradient entries and AdamW steps, in fp32 and fp64, within the
documented fp32-vs-fp64 gaps; sampled values agree with the whole gradients stored beside them;
the Qwen2 tie's two gradient parts add up to the tied gradient. Layout: docs/training-references.md.
    .venv/bin/python test/training/check_references.py [test/training/references.npz]
"""
import json
import pathlib
import sys

import numpy as np

path = sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).with_name("references.npz")
d = np.load(path)
meta = json.loads(bytes(d["meta_json"]))
fails = []


def need(ok, what):
    if not ok:
        fails.append(what)


need(set(meta["models"]) == {"llama_tiny", "qwen2_tiny"}, "models")
for name, m in meta["models"].items():
    p = name + "/"
    for k in ("loss", "loss_masked", "loss_masked_sum", "grad_total_norm", "grad_norm_masked"):
        need(abs(d[p + k + "_fp32"] - d[p + k + "_fp64"]) <= 1e-5 * max(1, abs(d[p + k + "_fp64"])),
             f"{p}{k} fp32 vs fp64")
    need(abs(d[p + "loss_masked_sum_fp64"] / d[p + "n_tokens_masked"] - d[p + "loss_masked_fp64"]) < 1e-12,
         f"{p} masked sum / count")
    need(int((d[p + "labels_masked"][:, 1:] != -100).sum()) == d[p + "n_tokens_masked"], f"{p} count")
    need(len(m["params"]) == {"llama_tiny": 39, "qwen2_tiny": 26}[name], f"{p} parameter count")
    for e in m["params"]:
        g, idx = p + "grad/" + e["name"] + "/", d[e["sample_index"]]
        need(e["onnx_transform"] in ("none", "transpose") and e["onnx_initializer"], f"{g} onnx")
        need(abs(d[g + "norm_fp32"] - d[g + "norm_fp64"]) <= 2e-5 * d[g + "norm_fp64"], g + " norm")
        need(np.allclose(d[g + "value_fp32"], d[g + "value_fp64"], rtol=1e-3, atol=2e-5 * d[g + "norm_fp64"]),
             g + " values")
        if g + "full_fp64" in d:
            full = d[g + "full_fp64"]
            need(np.array_equal(full.reshape(-1)[idx], d[g + "value_fp64"]), g + " samples vs full")
            need(abs(np.linalg.norm(full) - d[g + "norm_fp64"]) < 1e-12, g + " full norm")
            if e["onnx_transform"] == "transpose":  # the ONNX index reads the same element of full.T
                need(np.array_equal(full.T.reshape(-1)[d[p + "sample/" + e["name"] + "/onnx_index"]],
                                    d[g + "value_fp64"]), g + " onnx_index")
        for s in ("value", "norm"):
            a = p + "adamw_clip/param/" + e["name"] + "/" + s
            need(d[a + "_fp64"].shape[0] == m["adamw_steps"] and np.allclose(
                d[a + "_fp32"], d[a + "_fp64"], rtol=1e-3, atol=1e-5), a)
    for run in ("adamw_clip", "adamw_noclip"):
        for k in ("loss", "grad_norm"):
            a, b = d[f"{p}{run}/{k}_fp32"], d[f"{p}{run}/{k}_fp64"]
            need(a.shape == (m["adamw_steps"],) and np.allclose(a, b, rtol=1e-5, atol=0), f"{p}{run}/{k}")
    need(d[p + "adamw/tokens"].dtype == np.int32 and d[p + "adamw/tokens"].size == m["stream_len"], p + "tokens")
if "tie" in meta["models"].get("qwen2_tiny", {}):
    q = "qwen2_tiny/"
    s = d[q + "tie/embedding/value_fp64"] + d[q + "tie/lm_head/value_fp64"]
    need(np.allclose(s, d[q + "grad/model.embed_tokens.weight/value_fp64"], rtol=1e-12, atol=1e-15), "tie sum")
else:
    fails.append("qwen2_tiny tie")
print(f"{len(d.files)} arrays; " + ("FAILED: " + "; ".join(fails) if fails else "references OK"))
sys.exit(1 if fails else 0)
