#!/usr/bin/env bash
# On the GPU machine (device tool), from the repository root, with gpu-bundle/ carried:
#   bash bench/gpu/run.sh
# Builds the runtime with CMake alone (no LLVM there), runs the GPU unit tests, runs every
# bundle cell with --backend cuda and compares with the CPU backend and onnxruntime.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
cmake -S runtime -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHARDC_ENABLE_GPU_TESTS=ON \
  -DCMAKE_CUDA_ARCHITECTURES=90a > "$out/cmake.log" 2>&1 || { tail -30 "$out/cmake.log"; exit 1; }
ninja -C build-gpu > "$out/build.log" 2>&1 || { grep -E "error" -A3 "$out/build.log" | head -40; exit 1; }
(cd build-gpu && ctest -R "gpu|unit.runtime" --output-on-failure) 2>&1 | tail -15 | tee "$out/ctest.txt"
python3 - "$PWD/gpu-bundle" <<'PY' > "$out/cells.sh"
import json, sys
for c in json.load(open(sys.argv[1] + "/cells.json")):
    a = c["artifact"]
    print(f'./build-gpu/bin/shardc-run gpu-bundle/{a} --backend cuda --threads {c["ranks"]} '
          f'--inputs gpu-bundle/{c["inputs"]} --outputs gpu-bundle/{a.replace(".shardc", ".cuda.npz")} '
          f'> "$OUT_DIR/{a.replace("/", "_")}.log" 2>&1 || tail -3 "$OUT_DIR/{a.replace("/", "_")}.log"')
PY
OUT_DIR="$out" bash "$out/cells.sh"
python3 bench/gpu/compare.py gpu-bundle | tee "$out/compare.txt"
