#!/usr/bin/env bash
# The main demo: build, compile the bundled llama_tiny export, run the artifact with
# shardc-run, and check it against onnxruntime and PyTorch's reference output.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
shared="$root/../shared/models"
work="$root/build/demo"
mkdir -p "$work"
bin="$root/build/bin"
"$bin/shardc" inspect "$shared/llama_tiny.onnx" | sed -n '1,12p'
"$bin/shardc" compile "$shared/llama_tiny.onnx" -o "$work/llama_tiny.shardc" --report-unraised
"$root/.venv/bin/python" "$root/tools/shardc_verify.py" \
  --shardc "$bin/shardc" --shardc-run "$bin/shardc-run" \
  --model "$shared/llama_tiny.onnx" --reference "$shared/reference_io.npz" --ref-prefix llama_tiny \
  --atol 1e-4 --workdir "$work"
