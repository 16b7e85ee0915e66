#!/usr/bin/env bash
# GPU kit, second device call (timeout 360 s), sent right after kit1.sh while the machine is
# warm (build-gpu/ is then still there; otherwise it is built again first). Figures, not tests:
#   - every bench artifact in gpu-bundle/bench/ (bf16 policy, random weights bound at load):
#     forward time over graph replays alone (shardc-run --repeat: CUDA events around each
#     replay, inputs and weights already on the GPU, the first run and the capture excluded;
#     best and median), tokens/s, TFLOP/s, the GEMM dtype, the ten most expensive kernels;
#   - the kernel anchors (shardc-bench-kernels: flash attention, cuBLASLt GEMM);
#   - every training-step artifact in gpu-bundle/train/ (bench/gpu/train_steps.sh: 12 AdamW
#     steps over random weights from a token file, the first two left out of the timing;
#     at most 60 s a shape, 100 s for 1b; KIT2_TRAIN=0 leaves them out);
#   - PyTorch on the same shapes in the same call (gpu-bundle/bench_torch.py, a copy of
#     ../shared/tools/bench_torch.py: training step and forward in eager, torch.compile,
#     reduce-overhead, each line kept as it comes, within what is left of KIT2_SECONDS), and
#     the ratios (bench/gpu/bench_report.py).
# Logs come back as $OUT/kit2-logs.tar.gz beside $OUT/kit2-summary.txt.
set -uo pipefail
out=${OUT:-/tmp/gpu-out}
kit=/tmp/shardc-kit/kit2
rm -rf "$kit"
mkdir -p "$kit" "$out"
start=$(date +%s)
budget=${KIT2_SECONDS:-345}
export SHARDC_CACHE_DIR=${SHARDC_CACHE_DIR:-$PWD/.shardc-cache}
mkdir -p "$SHARDC_CACHE_DIR"
summary="$kit/summary.txt"
: > "$summary"
say() { echo "$*" | tee -a "$summary"; }
left() { echo $(( budget - ($(date +%s) - start) )); }
finish() {
  say "kit2 done in $(( $(date +%s) - start )) s"
  tar -czf "$out/kit2-logs.tar.gz" -C "$(dirname "$kit")" kit2 2>/dev/null
  cp "$summary" "$out/kit2-summary.txt"
  echo "================ kit2 summary ================"
  cat "$summary"
  exit "${1:-0}"
}
say "gpu: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
if [ ! -x build-gpu/bin/shardc-run ]; then
  t=$(date +%s)
  cmake -S runtime -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90a \
    > "$kit/cmake.log" 2>&1 && ninja -C build-gpu shardc-run shardc-bench-kernels > "$kit/build.log" 2>&1 ||
    { say "FAIL build"; tail -20 "$kit/build.log"; finish 1; }
  say "build (cold machine): $(( $(date +%s) - t )) s"
fi
run=build-gpu/bin/shardc-run
shapes=$(ls gpu-bundle/bench/*.shardc 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.shardc$//')
trains=$(ls gpu-bundle/train/*.shardc 2>/dev/null | xargs -n1 basename 2>/dev/null | sed 's/\.shardc$//')
[ -n "$shapes$trains" ] || { say "FAIL no bench or training artifacts in gpu-bundle"; finish 1; }

# shardc first (seconds each), then the kernel anchors, then PyTorch with what is left.
for name in $shapes; do
  art=gpu-bundle/bench/$name.shardc in=gpu-bundle/bench/$name.inputs.npz
  timeout 90 $run "$art" --backend cuda --random-weights --inputs "$in" --repeat 20 > "$kit/shardc-$name.txt" 2>&1
  timeout 60 $run "$art" --backend cuda --random-weights --inputs "$in" --profile --repeat 3 2>&1 |
    sed -n '/^profile:/,/ms per run in steps/p' > "$kit/profile-$name.txt"
done
timeout 40 build-gpu/bin/shardc-bench-kernels > "$kit/kernels.jsonl" 2> "$kit/kernels.err" ||
  say "shardc-bench-kernels failed: $(tail -1 "$kit/kernels.err")"
if [ -n "$trains" ] && [ "${KIT2_TRAIN:-1}" != 0 ]; then
  bash bench/gpu/train_steps.sh "$run" gpu-bundle "$kit" cuda | tee -a "$summary"
fi
for name in $(echo $shapes $trains | tr ' ' '\n' | sort -u); do
  [ "$name" = ci ] && continue
  t=$(left); [ "$t" -gt 20 ] || { say "pytorch $name: no time left"; continue; }
  # The small shape gets at most half of what is left, so that the 1b shape gets some too.
  [ "$name" = small ] && t=$(( t / 2 ))
  timeout "$t" python3 gpu-bundle/bench_torch.py "$name" > "$kit/torch-$name.jsonl" 2> "$kit/torch-$name.err"
  [ $? = 124 ] && say "pytorch $name: stopped after $t s; the modes measured by then are used"
done
python3 bench/gpu/bench_report.py gpu-bundle/bench "$kit" gpu-bundle/train | tee -a "$summary"
finish 0
