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
cells_rc=$? # the script's status, after the NCCL checks below (which print PASS/FAIL lines)
# NCCL through shardc-run on the one GPU: one-rank worlds, under mpirun -np 1 where there is an
# mpirun, else as a job of one, torchrun-style variables (RANK=0 WORLD_SIZE=1), and PyTorch's
# torchrun itself (its agent's store on MASTER_PORT) where it is installed. The compiler drops
# collectives on groups of one, so the cells have none; the collectives-only test artifact keeps
# every step kind (most packed along inner dims: the CUDA backend's copy2D) and has exact
# expected values. Then the one-rank llama_tiny fp32 cell under NCCL against the CPU backend.
nccl="$out/nccl"; mkdir -p "$nccl"
if ldd build-gpu/bin/shardc-run | grep -q libnccl && [ -x build-gpu/test/unit/shardc-test-artifact ]; then
  art=build-gpu/test/unit/shardc-test-artifact run=build-gpu/bin/shardc-run d=$(mktemp -d)
  launch=""; command -v mpirun >/dev/null && launch="mpirun --allow-run-as-root -np 1"
  $art write-collectives "$d" 1
  hows="launcher variables"; command -v torchrun >/dev/null && hows="$hows torchrun"
  for how in $hows; do
    env="" l=$launch
    [ $how = variables ] && env="RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517" l=""
    [ $how = torchrun ] && l="torchrun --nproc-per-node 1 --master-port 29519 --no-python"
    env $env timeout 120 $l $run "$d/m.shardc" --backend cuda --comm nccl --verbose --inputs "$d/in.npz" \
      --outputs "$d/$how.npz" > "$nccl/collectives.$how.log" 2>&1; rc=$?
    $art compare "$d/$how.npz" "$d/expected.npz" && r=PASS || r=FAIL
    echo "$r nccl collectives artifact (${how}: ${l:-job of one}${env:+ $env}), exit $rc" | tee -a "$nccl/summary.txt"
    [ $r = PASS ] || tail -5 "$nccl/collectives.$how.log"
  done
  if command -v torchrun >/dev/null; then
    # Two torchrun ranks on the one GPU: the bootstrap (past torchrun's store) must complete on
    # both; NCCL then refuses two ranks on one device, which is expected here.
    d2=$(mktemp -d); $art write-collectives "$d2" 2
    timeout 120 torchrun --nproc-per-node 2 --master-port 29521 --no-python $run "$d2/m.shardc" \
      --backend cuda --verbose --all-ranks --inputs "$d2/in.npz" > "$nccl/torchrun2.log" 2>&1
    n=$(grep -c "NCCL bootstrap (torchrun) done" "$nccl/torchrun2.log")
    echo "$([ "$n" = 2 ] && echo PASS || echo FAIL) torchrun --nproc-per-node 2: bootstrap done on $n of 2 ranks" \
      "(then: $(grep -m1 -o 'error: .*' "$nccl/torchrun2.log" | cut -c1-120))" | tee -a "$nccl/summary.txt"
  fi
  cell=gpu-bundle/llama_tiny/fp32.tp1
  timeout 300 $launch $run $cell.shardc --backend cuda --comm nccl --inputs gpu-bundle/llama_tiny/inputs.npz \
    --outputs $cell.nccl.npz > "$nccl/llama_tiny.log" 2>&1 || tail -5 "$nccl/llama_tiny.log"
  python3 - $cell <<'PY' | tee -a "$nccl/summary.txt"
import sys, numpy as np
cell = sys.argv[1]
try:
    got, want = np.load(cell + ".nccl.npz"), np.load(cell + ".cpu.npz")
except OSError as e:
    sys.exit(f"FAIL nccl {cell}: {e}")
for k in want.files:
    err = np.abs(got[k].astype(np.float64) - want[k].astype(np.float64)).max()
    print(f"{'PASS' if err <= 1e-3 else 'FAIL'} nccl {cell} {k} vs cpu: max|err| {err:.3e}")
PY
else
  echo "SKIP nccl: shardc-run built without NCCL, or no shardc-test-artifact" | tee "$nccl/summary.txt"
fi
exit $cells_rc
