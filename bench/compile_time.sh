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
