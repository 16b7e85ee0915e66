#!/usr/bin/env bash
# Compile-time benchmark (prints figures; not a test): llama_tiny from ../shared, and a
# generated 32-layer Llama-style model (hidden 1024, weights in external data, ~1.8 GB).
# Target: the 32-layer model compiles in under 5 s (weights are references, never loaded).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin="$root/build/bin"
work="$root/build/bench"
mkdir -p "$work"
py="$root/.venv/bin/python"

time_compile() { # model, artifact
  local start end
  start=$(date +%s.%N)
  "$bin/shardc" compile "$1" -o "$2" --quiet
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

echo "llama_tiny: $(time_compile "$root/../shared/models/llama_tiny.onnx" "$work/llama_tiny.shardc") s"
big="$work/llama_32l_1024h.onnx"
if [ ! -f "$big" ]; then
  echo "generating $big (32 layers, hidden 1024, external data)..."
  "$py" "$root/test/e2e/gen_models.py" --out "$work" --family llama --layers 32 --hidden 1024 --external-data >/dev/null
fi
du -h "$big"* | sed 's/^/  /'
for i in 1 2 3; do
  echo "llama 32 layers, hidden 1024: $(time_compile "$big" "$work/llama_32l.shardc") s"
done
"$bin/shardc" compile "$big" -o "$work/llama_32l.shardc" --timing 2>&1 | tail -25
ls -l "$work/llama_32l.shardc" | awk '{print "artifact bytes: " $5}'

# A training step of a 32-layer Llama-style model (the issue's "compile time of a 32-layer
# training step"): hidden 256 so that the weights stay small; every parameter trains (the
# generated model carries no exporter metadata), AdamW, FSDP + TP on a 2 x 2 mesh.
train="$work/llama_32l_256h.onnx"
if [ ! -f "$train" ]; then
  "$py" "$root/test/e2e/gen_models.py" --out "$work" --family llama --layers 32 --hidden 256 >/dev/null
fi
plan="$work/train32.yaml"
cat > "$plan" <<'PLAN'
mesh: {dp_shard: 2, tp: 2}
tp_plan: auto
mp_policy: {param_dtype: bf16, reduce_dtype: fp32}
mode: train
trainable: ['*']
optimizer: {name: adamw, lr: 1.0e-3}
max_grad_norm: 1.0
activation_checkpointing: selective
PLAN
for i in 1 2; do
  start=$(date +%s.%N)
  "$bin/shardc" compile "$train" --plan "$plan" -o "$work/train32.shardc" --quiet
  end=$(date +%s.%N)
  echo "llama 32 layers, hidden 256, training step (AdamW, tp2 x dp_shard2): $(echo "$end - $start" | bc) s"
done
"$bin/shardc" compile "$train" --plan "$plan" -o "$work/train32.shardc" --timing 2>&1 | tail -25
