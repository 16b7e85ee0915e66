#!/usr/bin/env bash
# Benchmark artifacts for the GPU machine (run here, where LLVM is): the issue's small shape
# (vocab 32000, hidden 512, 8 layers, 8 heads, MLP 1536, batch 8 x seq 512) and, with
# --1b, the Llama-1B shape (vocab 128256, hidden 2048, 16 layers, 32/8 heads, MLP 8192,
# batch 4 x seq 2048). Graphs from test/e2e/gen_models.py (the exporter's Llama structure),
# weights in external data that is not carried: bench/gpu/run_bench.sh binds random
# weights at load (shardc-run --random-weights). Default mixed precision (bf16).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
py="$root/.venv/bin/python"
work="$root/build/bench-gpu"
out="$root/gpu-bundle/bench"
mkdir -p "$work" "$out"
shapes=("small:--vocab 32000 --hidden 512 --layers 8 --heads 8 --kv-heads 8 --intermediate 1536 --batch 8 --seq 512")
[ "${1:-}" = "--1b" ] && shapes+=("1b:--vocab 128256 --hidden 2048 --layers 16 --heads 32 --kv-heads 8 --intermediate 8192 --batch 4 --seq 2048")
for entry in "${shapes[@]}"; do
  name=${entry%%:*}
  args=${entry#*:}
  if [ ! -f "$work/$name.onnx" ]; then
    echo "[bench] generating the $name shape"
    # shellcheck disable=SC2086
    "$py" "$root/test/e2e/gen_models.py" --out "$work" --family llama --name "$name" --external-data $args >/dev/null
  fi
  "$root/build/bin/shardc" compile "$work/$name.onnx" -o "$out/$name.shardc" --quiet
  "$py" -c "
import sys; sys.path.insert(0, '$root/tools')
import numpy as np, onnx
from shardc_verify import make_inputs
np.savez('$out/$name.inputs.npz', **make_inputs(onnx.load('$work/$name.onnx', load_external_data=False), 1234))"
  "$root/build/bin/shardc" report "$out/$name.shardc" | sed -n 3,6p
  # The step's arithmetic (GEMMs and attention) for run_bench.sh's TFLOP/s.
  "$root/build/bin/shardc" report --json "$out/$name.shardc" |
    "$py" -c "import json, sys; print(json.load(sys.stdin)['flops']['total'])" > "$out/$name.flops"
done
du -sh "$out"
