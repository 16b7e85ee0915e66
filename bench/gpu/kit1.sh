#!/usr/bin/env bash
# GPU kit, first device call (timeout 300 s), from the repository root with gpu-bundle/ carried
# (bench/gpu/prepare.py made it here). docs/gpu-status.md says when and how to send it.
#   1. preflight: GPU, driver, CUDA, CMake, Python packages
#   2. the runtime built with CMake alone (minimal dependencies fall back automatically)
#   3. the GPU unit tests (cuBLASLt, flash attention, NCCL on one GPU, library kernels)
#   4. the check cells (bench/gpu/cells.py): CUDA against the CPU backend and onnxruntime,
#      every run three times, the graph replay bit-identical to the first run
#   5. NCCL through shardc-run with one-rank worlds (bench/gpu/nccl_checks.sh)
# Logs go to /tmp/shardc-kit/kit1 and come back packed as $OUT/kit1-logs.tar.gz (outputs left
# out) beside $OUT/kit1-summary.txt: the device tool returns at most 8 files. The summary is
# printed last.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
kit=/tmp/shardc-kit/kit1
rm -rf "$kit"
mkdir -p "$kit" "$out"
start=$(date +%s)
export SHARDC_CACHE_DIR=${SHARDC_CACHE_DIR:-$PWD/.shardc-cache}
mkdir -p "$SHARDC_CACHE_DIR"
summary="$kit/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
elapsed() { echo $(( $(date +%s) - start )); }
finish() {
  say "kit1 done in $(elapsed) s"
  tar -czf "$out/kit1-logs.tar.gz" --exclude="*.npz" -C "$(dirname "$kit")" kit1 2>/dev/null
  cp "$summary" "$out/kit1-summary.txt"
  echo "================ kit1 summary ================"
  cat "$summary"
  exit "${1:-0}"
}

# 1. Preflight.
{
  nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader
  nvcc --version | tail -2
  cmake --version | head -1
  ninja --version
  python3 -c "import sys, numpy, onnx, onnxruntime; print('python', sys.version.split()[0], 'numpy', numpy.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
  python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)" 2>&1 | tail -1
  nproc
} > "$kit/preflight.txt" 2>&1
say "preflight: $(head -1 "$kit/preflight.txt") | $(grep -m1 release "$kit/preflight.txt" | sed 's/.*release/CUDA/') | $(nproc) cores"
[ -f gpu-bundle/cells.json ] || { say "FAIL no gpu-bundle/ (run bench/gpu/prepare.py here and carry gpu-bundle)"; finish 1; }

# 2. Build (reused when the machine is still warm from an earlier call).
t=$(date +%s)
cmake -S runtime -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDC_ENABLE_GPU_TESTS=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a > "$kit/cmake.log" 2>&1 || { say "FAIL configure"; tail -30 "$kit/cmake.log"; finish 1; }
grep -m1 "shardc runtime:" "$kit/cmake.log" | sed 's/^-- //' | tee -a "$summary"
ninja -C build-gpu > "$kit/build.log" 2>&1 || { say "FAIL build"; grep -E "error" -A3 "$kit/build.log" | head -40; finish 1; }
say "build: $(( $(date +%s) - t )) s"

# 3. GPU unit tests.
t=$(date +%s)
(cd build-gpu && timeout 120 ctest -R "^gpu\.|unit.cuda_kernel_table" --output-on-failure --timeout 60) > "$kit/ctest-gpu.log" 2>&1
say "gpu unit tests: $(grep -E "tests passed|tests failed" "$kit/ctest-gpu.log" | tail -1) ($(( $(date +%s) - t )) s)"
grep -E "^\s*[0-9]+ - .*\((Failed|Timeout|SEGFAULT|Not Run)" "$kit/ctest-gpu.log" | tee -a "$summary"

# 4. The check cells.
t=$(date +%s)
python3 bench/gpu/cells.py --bundle gpu-bundle --shardc-run build-gpu/bin/shardc-run --backend cuda \
  --out "$kit/cells" --timeout 90 2>&1 | tee "$kit/cells.txt"
cells_rc=${PIPESTATUS[0]}
grep -E "^(PASS|FAIL)|^cells:" "$kit/cells.txt" >> "$summary"
say "cells: $(( $(date +%s) - t )) s"

# 5. NCCL with one-rank worlds.
bash bench/gpu/nccl_checks.sh build-gpu gpu-bundle "$kit/nccl" "$kit/cells/llama_tiny_fp32.tp1.cpu.npz" 2>&1 | tail -20
cat "$kit/nccl/summary.txt" >> "$summary" 2>/dev/null
finish "$cells_rc"
