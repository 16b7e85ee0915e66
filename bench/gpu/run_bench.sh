#!/usr/bin/env bash
# On the GPU machine, after bench/gpu/run.sh built build-gpu (same device call or a later
# one): forward throughput of the bench artifacts (gpu-bundle/bench/, from
# prepare_bench.sh) with random weights, beside PyTorch eager / torch.compile /
# reduce-overhead on the same shape measured in the same run (../shared/tools/bench_torch.py).
# Prints tokens/s and the ratio to the best PyTorch mode. Figures only; not a test.
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
  python3 "$torch_bench" "$name" > "$out/torch-$name.jsonl" 2>"$out/torch-$name.err"
  python3 - "$name" "$tokens" "$ms" "$out/torch-$name.jsonl" <<'PY'
import json, sys
name, tokens, ms, path = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
ours = tokens / (ms / 1e3)
best = 0.0
for line in open(path):
    r = json.loads(line)
    if r.get("what") == f"llama_{name}_forward" and "tok_s" in r:
        print(f"  pytorch {r['mode']:16s} forward {r['tok_s']:12.0f} tok/s")
        best = max(best, r["tok_s"])
print(f"shardc {name} forward: {ours:12.0f} tok/s ({ms:.2f} ms/step), ratio to the best PyTorch mode {ours / best if best else float('nan'):.3f}")
PY
done
