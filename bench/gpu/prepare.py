#!/usr/bin/env python3
"""Builds the GPU kit's bundle here, where LLVM is (the GPU machine has none): the artifacts
the two device calls run, and what they need that ../shared cannot give them there.

  .venv/bin/python bench/gpu/prepare.py                 # gpu-bundle/: 12 cells + the small bench shape
  .venv/bin/python bench/gpu/prepare.py --bench small,1b  # also the Llama-1B shape (writes 7.1 GB here)
  (--train SHAPES: the training-step shapes, by default those of --bench)

gpu-bundle/ (carried to the device with `carry: ["gpu-bundle"]`, under 20 MiB):
  cells.json                the check cells: model, artifact, ranks, precision
  <model>/model.onnx        the model (artifacts are compiled with --relative-weights)
  <model>/inputs.npz        deterministic inputs
  <model>/<plan>.<mesh>.shardc
  bench/<shape>.shardc      bench artifacts, bf16 policy (bench-plan.yaml); weights bound at
                            random on the device (shardc-run --random-weights), so not carried
  bench/<shape>.json        tokens, FLOPs per step and GEMM dtypes of each bench artifact
  train/<shape>.shardc      training-step artifacts (train-plan.yaml: bf16 compute, fp32 masters,
                            AdamW), random weights bound at load as above
  train/<shape>.tokens.bin  8 batches of random token ids (raw int32, shardc-run --data)
  train/<shape>.json        parameters, tokens per step, the FLOPs formula's terms, compile time
  bench_torch.py            PyTorch's side of the benchmark (../shared/tools does not travel)
  manifest.json             sizes, the shardc commit, when it was made

References are not carried: the kit computes them on the device machine, with the CPU backend
of the runtime it builds there and with onnxruntime (bench/gpu/cells.py).
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np
import onnx

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
from shardc_verify import make_inputs  # noqa: E402

PLANS = os.path.join(ROOT, "test", "e2e", "plans")
SHARED = os.path.join(ROOT, "..", "shared")

# At most 12 cells, each of which says something the others do not: the real exports
# unsharded in fp32 and bf16, the tensor, sequence, context and data parallel paths, HSDP, a
# vocabulary-parallel head, GELU/LayerNorm/fused QKV (GPT-2), an encoder (BERT: gather_elements,
# expand), sliding-window attention (Mistral), a mixture of experts (Mixtral: the router and the
# experts' loop of cuBLASLt GEMMs, run uncaptured). Ranks are threads sharing the one GPU.
# (model, plan, mesh, ranks)
KIT_CELLS = [
    ("llama_tiny", "fp32", "tp=1", 1),
    ("llama_tiny", "bf16", "tp=1", 1),
    ("llama_tiny", "fp32", "tp=2", 2),
    ("llama_tiny", "fp32-sp", "tp=2", 2),
    ("llama_tiny", "bf16", "tp=2,dp_shard=2", 4),
    ("llama_tiny", "fp32", "cp=2,tp=2", 4),
    ("qwen2_s", "fp32-vocab", "tp=2", 2),
    ("mixtral_moe", "fp32", "tp=1", 1),
    ("gpt2_s", "fp32", "tp=2", 2),
    ("bert_m", "fp32", "tp=1", 1),
    ("mistral_s", "fp32", "cp=2,tp=2", 4),
    ("llama_s_b4", "fp32", "dp_replicate=2,dp_shard=2", 4),
]



def matrix_cells():
    """Every configuration the CPU matrix runs (test/e2e/matrix.txt), the unsharded programs and
    the kit's cells, as (model, where, plan, mesh, ranks): what e2e.check_backend_cuda checks
    for CUDA kernels, although the kit runs only KIT_CELLS on a GPU."""
    cells = [("llama_tiny", "fp32", "tp=1", 1), ("llama_tiny", "bf16", "tp=1", 1), ("qwen2_tiny", "bf16", "tp=1", 1),
             ("gpt2_s", "fp32", "tp=1", 1), ("bert_m", "fp32", "tp=1", 1)] + KIT_CELLS
    with open(os.path.join(ROOT, "test", "e2e", "matrix.txt")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                model, mesh, ranks, plan = line.split()
                cells.append((model, plan, mesh, int(ranks)))
    out = []
    for model, plan, mesh, ranks in cells:
        where = "shared" if model.endswith("_tiny") else "moe" if model.endswith("_moe") else "generated"
        cell = (model, where, plan, mesh, ranks)
        if cell not in out:
            out.append(cell)
    return out


CELLS = matrix_cells()

# Bench shapes (test/e2e/gen_models.py arguments). small: the small shape; 1b: the
# Llama-1B shape of the training anchors; ci: a tiny shape that only exercises this path.
BENCH_SHAPES = {
    "small": "--vocab 32000 --hidden 512 --layers 8 --heads 8 --kv-heads 8 --intermediate 1536 --batch 8 --seq 512",
    "1b": "--vocab 128256 --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --intermediate 8192 --batch 4 --seq 2048",
    "ci": "--vocab 512 --hidden 64 --layers 2 --heads 4 --kv-heads 2 --intermediate 128 --batch 2 --seq 32",
}

BUNDLE_LIMIT = 20 * 2**20
TRAIN_PLAN = os.path.join(ROOT, "bench", "gpu", "train-plan.yaml")
TRAIN_BATCHES = 8  # distinct batches in <shape>.tokens.bin; later steps wrap around


def llama_params(d):
    """The generated Llama's parameters (untied embedding and lm_head, no biases)."""
    h, kv = d["--hidden"], d["--hidden"] // d["--heads"] * d["--kv-heads"]
    layer = 2 * h * h + 2 * h * kv + 3 * h * d["--intermediate"] + 2 * h
    return d["--layers"] * layer + 2 * d["--vocab"] * h + h


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        sys.exit("$ " + " ".join(cmd) + "\n" + p.stdout)
    return p.stdout


def model_source(model, build):
    if model.endswith("_tiny"):
        return os.path.join(SHARED, "models", model + ".onnx")
    if model.endswith("_moe"):
        return os.path.join(ROOT, "test", "moe", model + ".onnx")
    return os.path.join(build, "test", "e2e", "models", model + ".onnx")


def gemm_dtypes(shardc_run, art):
    """{dtype: count} of the linear and matmul steps, read from the artifact's manifest."""
    text = run([shardc_run, art, "--dump-manifest"])
    buffers = re.findall(r"\{\s*name: \"[^\"]*\",\s*dtype: (\w+),", text.split("buffers: [", 1)[1])
    counts = {}
    for kind, first in re.findall(r"kind: (linear|matmul),\s*in: \[ (\d+)", text):
        dt = buffers[int(first)].lower()
        counts[dt] = counts.get(dt, 0) + 1
    return counts


def trained_params(shardc_run, art):
    """Elements of the parameters the artifact trains: its AdamW first moments (one rank)."""
    text = run([shardc_run, art, "--dump-manifest"])
    total = 0
    for shape in re.findall(r'name: "adamw\.exp_avg\.[^"]*",\s*dtype: \w+,\s*shape: \[([^\]]*)\]', text):
        total += int(np.prod([int(x) for x in shape.replace(",", " ").split()], dtype=np.int64))
    return total


def prepare_cells(args, shardc):
    cells = []
    for model, plan, mesh, ranks in KIT_CELLS:
        mdir = os.path.join(args.out, model)
        os.makedirs(mdir, exist_ok=True)
        onnx_path = os.path.join(mdir, "model.onnx")
        if not os.path.exists(onnx_path):
            shutil.copy(model_source(model, args.build), onnx_path)
            feeds = make_inputs(onnx.load(onnx_path, load_external_data=False), 1234)
            np.savez(os.path.join(mdir, "inputs.npz"), **feeds)
        name = f"{plan}.{mesh.replace('=', '').replace(',', '_')}"
        art = os.path.join(mdir, name + ".shardc")
        run([shardc, "compile", onnx_path, "-o", art, "--quiet", "--relative-weights",
             f"--plan={os.path.join(PLANS, plan + '.yaml')}", f"--mesh={mesh}"])
        cells.append({"model": model, "artifact": f"{model}/{name}.shardc", "inputs": f"{model}/inputs.npz",
                      "onnx": f"{model}/model.onnx", "precision": "bf16" if plan.startswith("bf16") else "fp32",
                      "ranks": ranks})
    with open(os.path.join(args.out, "cells.json"), "w") as f:
        json.dump(cells, f, indent=1)
    return cells


def shapes(arg, flag):
    names = [s for s in arg.split(",") if s]
    for name in names:
        if name not in BENCH_SHAPES:
            sys.exit(f"{flag}: unknown shape '{name}' (known: {', '.join(BENCH_SHAPES)})")
    return names


def bench_model(args, name, py):
    """The shape's generated model (build/bench-gpu/<name>.onnx, weights in external data that
    are never carried), made once and shared by the forward and training artifacts."""
    work = os.path.join(args.build, "bench-gpu")
    os.makedirs(work, exist_ok=True)
    onnx_path = os.path.join(work, name + ".onnx")
    generator = [os.path.join(ROOT, "test", "e2e", f) for f in ("gen_models.py", "export_graph.py")]
    stale = os.path.exists(onnx_path) and max(map(os.path.getmtime, generator)) > os.path.getmtime(onnx_path)
    if not os.path.exists(onnx_path) or stale:
        print(f"[prepare] generating the {name} bench shape (weights in external data, not carried)"
              + (": the generator changed since the last one" if stale else ""), flush=True)
        run([py, os.path.join(ROOT, "test", "e2e", "gen_models.py"), "--out", work, "--family", "llama",
             "--name", name, "--external-data"] + BENCH_SHAPES[name].split())
    return onnx_path


def prepare_bench(args, shardc, shardc_run, py):
    out = os.path.join(args.out, "bench")
    os.makedirs(out, exist_ok=True)
    plan = os.path.join(ROOT, "bench", "gpu", "bench-plan.yaml")
    for name in shapes(args.bench, "--bench"):
        onnx_path = bench_model(args, name, py)
        art = os.path.join(out, name + ".shardc")
        run([shardc, "compile", onnx_path, "-o", art, "--quiet", f"--plan={plan}"])
        m = onnx.load(onnx_path, load_external_data=False)
        feeds = make_inputs(m, 1234)
        np.savez(os.path.join(out, name + ".inputs.npz"), **feeds)
        report = json.loads(run([shardc, "report", "--json", art]))
        info = {"shape": name, "args": BENCH_SHAPES[name], "tokens": int(np.prod(next(iter(feeds.values())).shape)),
                "flops": report["flops"]["total"], "gemm_dtypes": gemm_dtypes(shardc_run, art)}
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(info, f, indent=1)
        print(f"[prepare] bench {name}: {info['tokens']} tokens per step, {info['flops'] / 1e9:.1f} GFLOP, "
              f"GEMM dtypes {info['gemm_dtypes']}", flush=True)


def prepare_train(args, shardc, shardc_run, py):
    """The training-step artifacts (train-plan.yaml on the shape's model, every parameter
    trainable), a token file of TRAIN_BATCHES batches, and <shape>.json: what the kit's
    figures need (parameters, the FLOPs formula's terms)."""
    out = os.path.join(args.out, "train")
    os.makedirs(out, exist_ok=True)
    for name in shapes(args.train, "--train"):
        onnx_path = bench_model(args, name, py)
        art = os.path.join(out, name + ".shardc")
        t0 = time.time()
        run([shardc, "compile", onnx_path, "-o", art, "--quiet", f"--plan={TRAIN_PLAN}"])
        seconds = time.time() - t0
        dims = dict(zip(BENCH_SHAPES[name].split()[0::2], map(int, BENCH_SHAPES[name].split()[1::2])))
        batch, seq = dims["--batch"], dims["--seq"]
        rng = np.random.default_rng(1234)
        rng.integers(0, dims["--vocab"], TRAIN_BATCHES * batch * seq, dtype=np.int64).astype("<i4").tofile(
            os.path.join(out, name + ".tokens.bin"))
        params = trained_params(shardc_run, art)
        report = json.loads(run([shardc, "report", "--json", art]))
        info = {"shape": name, "args": BENCH_SHAPES[name], "tokens": batch * seq, "batch": batch, "seq": seq,
                "layers": dims["--layers"], "hidden": dims["--hidden"], "vocab": dims["--vocab"],
                "params": params, "embedding_params": dims["--vocab"] * dims["--hidden"],
                "flops_counted": report["flops"]["total"], "gemm_dtypes": gemm_dtypes(shardc_run, art),
                "compile_seconds": round(seconds, 1), "artifact_bytes": os.path.getsize(art)}
        if params != llama_params(dims):
            sys.exit(f"{art}: {params} parameters train, the Llama formula gives {llama_params(dims)} "
                     f"(the generated model's graph signature must declare every parameter)")
        with open(os.path.join(out, name + ".json"), "w") as f:
            json.dump(info, f, indent=1)
        print(f"[prepare] train {name}: {params / 1e6:.1f} M parameters, {info['tokens']} tokens per step, "
              f"compiled in {seconds:.0f} s, {info['artifact_bytes'] / 2**20:.1f} MiB, "
              f"GEMM dtypes {info['gemm_dtypes']}", flush=True)


def copy_torch_bench(args):
    shutil.copy(os.path.join(SHARED, "tools", "bench_torch.py"), os.path.join(args.out, "bench_torch.py"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--out", default=os.path.join(ROOT, "gpu-bundle"))
    ap.add_argument("--bench", default="small", help="bench shapes, comma-separated: small, 1b, ci ('' for none)")
    ap.add_argument("--train", help="training-step shapes, the same names (default: those of --bench)")
    args = ap.parse_args()
    if args.train is None:
        args.train = args.bench
    t0 = time.time()
    shardc, shardc_run = os.path.join(args.build, "bin", "shardc"), os.path.join(args.build, "bin", "shardc-run")
    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    cells = prepare_cells(args, shardc)
    prepare_bench(args, shardc, shardc_run, sys.executable)
    prepare_train(args, shardc, shardc_run, sys.executable)
    copy_torch_bench(args)
    size = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(args.out) for f in fs)
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump({"commit": commit, "made": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                   "cells": len(cells), "bench": args.bench, "train": args.train, "bytes": size}, f, indent=1)
    print(f"wrote {len(cells)} cells, bench '{args.bench}' and train '{args.train}' to {args.out}: {size / 2**20:.1f} MiB "
          f"(limit {BUNDLE_LIMIT / 2**20:.0f} MiB) in {time.time() - t0:.0f} s")
    if size > BUNDLE_LIMIT:
        sys.exit(f"the bundle is {size / 2**20:.1f} MiB, over the kit's {BUNDLE_LIMIT / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
