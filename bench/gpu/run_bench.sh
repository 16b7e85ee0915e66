#!/usr/bin/env bash
# On the GPU machine, after bench/gpu/run.sh built build-gpu (same device call or a later
# one): forward throughput of the bench artifacts (gpu-bundle/bench/, from
# prepare_bench.sh) with random weights, beside PyTorch eager / torch.compile /
# reduce-overhead on the same shape measured in the same run (../shared/tools/bench_torch.py).
# Prints tokens/s, TFLOP/s, the ratio to the best PyTorch mode and the ten most expensive
# kernels. Figures only; not a test.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
torch_bench=${TORCH_BENCH:-../shared/tools/bench_torch.py}
for art in gpu-bundle/bench/*.shardc; do
  name=$(basename "$art" .shardc)
  tokens=$(python3 -c "import numpy as np; d=np.load('gpu-bundle/bench/$name.inputs.npz'); print(int(np.prod(d[d.files[0]].shape)))")
  ./build-gpu/bin/shardc-run "$art" --backend cuda --random-weights --inputs "gpu-bundle/bench/$name.inputs.npz" \
    --repeat 20 > "$out/bench-$name.txt" 2>&1
  ms=$(grep -o 'mean [0-9.]* ms' "$out/bench-$name.txt" | awk '{print $2}')
  if [ -z "$ms" ]; then echo "shardc $name: failed"; tail -3 "$out/bench-$name.txt"; continue; fi
  # The ten most expensive kernels (a separate run: profiled steps are timed one by one, not
  # replayed as a graph).
  ./build-gpu/bin/shardc-run "$art" --backend cuda --random-weights --inputs "gpu-bundle/bench/$name.inputs.npz" \
    --profile --repeat 3 2>&1 | sed -n '/^profile:/,/ms per run in steps/p' | tee "$out/profile-$name.txt"
  python3 "$torch_bench" "$name" > "$out/torch-$name.jsonl" 2>"$out/torch-$name.err"
  flops=$(cat "gpu-bundle/bench/$name.flops" 2>/dev/null || echo 0)
  python3 - "$name" "$tokens" "$ms" "$out/torch-$name.jsonl" "$flops" <<'PY'
import json, sys
name, tokens, ms, path, flops = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], int(sys.argv[5])
ours = tokens / (ms / 1e3)
if flops:
    print(f"shardc {name} forward: {flops / 1e9:.1f} GFLOP per step (GEMMs and attention), {flops / (ms / 1e3) / 1e12:.1f} TFLOP/s")
best = 0.0
for line in open(path):
    r = json.loads(line)
    if r.get("what") == f"llama_{name}_forward" and "tok_s" in r:
        print(f"  pytorch {r['mode']:16s} forward {r['tok_s']:12.0f} tok/s")
        best = max(best, r["tok_s"])
print(f"shardc {name} forward: {ours:12.0f} tok/s ({ms:.2f} ms/step), ratio to the best PyTorch mode {ours / best if best else float('nan'):.3f}")
PY
done

# Kernel anchors: the flash attention kernel and the cuBLASLt GEMM beside PyTorch's causal SDPA
# (cuDNN) and bf16 GEMM from the bench_torch.py runs above (same device, same call).
./build-gpu/bin/shardc-bench-kernels > "$out/kernels.jsonl" 2>"$out/kernels.err" || { echo "shardc-bench-kernels failed"; cat "$out/kernels.err"; }
python3 - "$out" <<'PY'
import glob, json, sys
out = sys.argv[1]
ours = {}
for line in open(f"{out}/kernels.jsonl"):
    r = json.loads(line)
    ours[r["what"]] = r
torch = {}
for path in sorted(glob.glob(f"{out}/torch-*.jsonl")):
    for line in open(path):
        r = json.loads(line)
        if r.get("what") in ("gemm_bf16_8192", "sdpa_fwd_causal_b4_h32_s2048_d64"):
            torch.setdefault(r["what"], r)
pairs = [("flash_fwd_causal_b4_h32_s2048_d64", "sdpa_fwd_causal_b4_h32_s2048_d64", "attention (causal, b4 h32 s2048 d64, bf16)"),
         ("cublaslt_gemm_bf16_8192", "gemm_bf16_8192", "bf16 GEMM 8192^3")]
for mine, theirs, label in pairs:
    a, b = ours.get(mine, {}).get("tflops"), torch.get(theirs, {}).get("tflops")
    ratio = f"{a / b:.3f}" if a and b else "n/a"
    print(f"{label}: shardc {a if a else 'n/a'} TFLOP/s, PyTorch {round(b, 2) if b else 'n/a'} TFLOP/s, ratio {ratio}")
PY
