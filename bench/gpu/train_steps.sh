#!/usr/bin/env bash
# The GPU kit's training-step runs: kit2.sh on the device machine (backend cuda), bench.gpu.kit
# here (backend cpu, the ci shape). For every artifact in BUNDLE/train (prepare.py: bf16
# compute, fp32 masters, AdamW), TRAIN_STEPS training steps (default 12) over random weights
# bound at load, fed from BUNDLE/train/<shape>.tokens.bin; shardc-run prints the `timed steps`
# line (the runs after the first two: the first does first-use work such as cuBLASLt's
# algorithm choice, the second records the CUDA graph; NVRTC compiles before the first),
# which bench_report.py turns into tokens/s, MFU and the ratios to PyTorch. One log per shape,
# KIT_DIR/train-<shape>.txt; one summary line per shape on stdout.
#   bash bench/gpu/train_steps.sh SHARDC_RUN BUNDLE KIT_DIR BACKEND
set -uo pipefail
run=$1 bundle=$2 kit=$3 backend=$4
steps=${TRAIN_STEPS:-12}
mkdir -p "$kit"
for art in "$bundle"/train/*.shardc; do
  [ -e "$art" ] || { echo "train: no training artifacts in $bundle/train"; exit 1; }
  name=$(basename "$art" .shardc)
  # 1b: 6 GB of random f32 weights filled on the host and copied in, its kernels compiled.
  limit=60; [ "$name" = 1b ] && limit=100
  t=$(date +%s)
  timeout "$limit" "$run" "$art" --backend "$backend" --random-weights --steps "$steps" \
    --data "$bundle/train/$name.tokens.bin" > "$kit/train-$name.txt" 2>&1
  rc=$?
  took=$(( $(date +%s) - t ))
  if [ $rc = 0 ]; then
    echo "shardc train $name: $(grep -m1 '^timed steps:' "$kit/train-$name.txt") ($took s in all)"
  else
    [ $rc = 124 ] && echo "shardc train $name: stopped after $limit s" ||
      echo "shardc train $name: exit $rc: $(grep -m1 'error' "$kit/train-$name.txt" | cut -c1-200)"
  fi
done
