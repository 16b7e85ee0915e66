#!/usr/bin/env python3
"""shardc-run --check-backend cuda over every artifact the e2e tests and the GPU bundle run:
every configuration of the CPU matrix and the GPU kit (bench/gpu/prepare.py's CELLS: the
unsharded programs, every cell of test/e2e/matrix.txt and the kit's 12 cells, shared exports
and generated families), every generated model unsharded
with the default plan (e2e.gen.*), the training programs of test/training (mode: train,
fp32 and bf16 parameters), and e2e.fused.*'s programs with --no-fuse (every elementwise op, norm,
rotary and softmax a step of its own) and its ONNX node tests both ways. Each artifact is compiled here and checked without a GPU; the run
fails when any step lacks a CUDA kernel, and prints the union of the missing step kinds.

  check_backend_cuda.py --shardc build/bin/shardc --shardc-run build/bin/shardc-run \
      --models build/test/e2e/models --shared ../shared --workdir /tmp/w [--jobs 2]
"""
import argparse
import collections
import concurrent.futures
import os
import re
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "bench", "gpu"))
from prepare import CELLS, PLANS  # noqa: E402  (the matrix's and the kit's cells: one list for both)

TRAIN_PLAN = ("tp_plan: auto\nmp_policy: {{param_dtype: {dtype}, reduce_dtype: fp32, output_dtype: fp32}}\n"
              "mode: train\noptimizer: {{name: adamw, lr: 0.001}}\nmax_grad_norm: 1.0\n")
# (model, where, param dtype, mesh): test/training's programs (check_adamw, check_sharded_grads) and
# MoE training (test/moe: the expert backward, and with ep the dispatch in the backward).
TRAIN = [("llama_tiny", "shared", "fp32", "tp=2"), ("qwen2_tiny", "shared", "fp32", "tp=2,dp_shard=2,cp=2"),
         ("llama_tiny", "shared", "bf16", "tp=2,dp_shard=2,cp=2"), ("gpt2_s", "generated", "fp32", "tp=2"),
         ("mistral_s", "generated", "fp32", "tp=2,dp_shard=2"), ("mixtral_moe", "moe", "fp32", "tp=1"),
         ("mixtral_moe", "moe", "fp32", "dp_shard=2,ep=2")]
# (model, where, plan, mesh): e2e.fused.*'s programs compiled with --no-fuse.
NO_FUSE = [("llama_tiny", "shared", "fp32", "tp=1"), ("llama_tiny", "shared", "bf16", "tp=2"),
           ("qwen2_tiny", "shared", "bf16", "tp=1"), ("gpt2_s", "generated", "fp32", "tp=1"),
           ("bert_m", "generated", "fp32", "tp=1"), ("bert_m", "generated", "bf16", "tp=1")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--models", required=True, help="the generated models (gen_models.py --out)")
    ap.add_argument("--shared", required=True, help="the shared checkout (models/*.onnx)")
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--only", default="", help="a regex: check only the artifacts whose label matches")
    args = ap.parse_args()
    os.makedirs(args.workdir, exist_ok=True)

    def source(model, where):
        if where == "moe":  # test/moe's exports
            return os.path.join(ROOT, "test", "moe", model + ".onnx")
        return (os.path.join(args.shared, "models", model + ".onnx") if where == "shared"
                else os.path.join(args.models, model + ".onnx"))

    jobs = []  # (label, onnx, compile arguments)
    for model, where, plan, mesh, _ in CELLS:
        jobs.append((f"{model}.{plan}.{mesh}", source(model, where),
                     [f"--plan={os.path.join(PLANS, plan + '.yaml')}", f"--mesh={mesh}"]))
    gen = subprocess.run([sys.executable, os.path.join(ROOT, "test", "e2e", "gen_models.py"), "--list"],
                         check=True, stdout=subprocess.PIPE, text=True).stdout.split()
    jobs += [(f"{model}.default", source(model, "generated"), []) for model in gen]
    for model, where, dtype, mesh in TRAIN:
        plan = os.path.join(args.workdir, f"train-{dtype}.yaml")
        with open(plan, "w") as f:
            f.write(TRAIN_PLAN.format(dtype=dtype))
        jobs.append((f"{model}.train-{dtype}.{mesh}", source(model, where), [f"--plan={plan}", f"--mesh={mesh}"]))
    for model, where, plan, mesh in NO_FUSE:
        jobs.append((f"{model}.{plan}.{mesh}.no-fuse", source(model, where),
                     [f"--plan={os.path.join(PLANS, plan + '.yaml')}", f"--mesh={mesh}", "--no-fuse"]))
    import onnx  # e2e.fused's ONNX node tests, both ways
    nodes = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data", "node")
    for node in ("test_softmax_large_number", "test_logsoftmax_large_number", "test_softmax_axis_2"):
        for extra in ([], ["--no-fuse"]):
            jobs.append((node + (".no-fuse" if extra else ""), os.path.join(nodes, node, "model.onnx"), extra))
    if args.only:
        jobs = [j for j in jobs if re.search(args.only, j[0])]

    def check(job):
        label, onnx_path, cargs = job
        art = os.path.join(args.workdir, re.sub(r"[^A-Za-z0-9_.-]", "_", label) + ".shardc")
        p = subprocess.run([args.shardc, "compile", onnx_path, "-o", art, "--quiet"] + cargs,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            return label, 2, "compile failed:\n" + p.stdout
        p = subprocess.run([args.shardc_run, "--check-backend", "cuda", art],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        return label, p.returncode, p.stdout

    missing = collections.OrderedDict()  # "kind dtypes" -> (artifacts, first artifact's line)
    failed = []
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for label, rc, out in pool.map(check, jobs):
            last = out.strip().splitlines()[-1] if out.strip() else ""
            print(f"{label}: rc {rc}: {last}")
            if rc == 2 or not last.startswith("checked "):
                failed.append(label)
                print(out)
                continue
            for line in out.splitlines():
                m = re.match(r"missing: (.*?): (\d+) steps?, first (.*)", line)
                if m:
                    arts, first = missing.setdefault(m.group(1), ([], f"{label}: {m.group(3)}"))
                    arts.append(label)
    print(f"\n{len(jobs)} artifacts checked; step kinds the CUDA backend lacks: {len(missing)}")
    for what, (arts, first) in missing.items():
        print(f"  {what}: in {len(arts)} artifacts; first {first}")
    if failed:
        print(f"no answer for {len(failed)} artifacts: {', '.join(failed)}")
    return 1 if missing or failed else 0


if __name__ == "__main__":
    sys.exit(main())
