#!/usr/bin/env bash
# The main demo: build, compile the bundled llama_tiny export with the default plan (Hugging
# Face's tensor-parallel plan, NeMo's bf16 mixed precision, FSDP over dp_shard) for 4 ranks,
# run it on 4 CPU ranks and check it against the unsharded program and onnxruntime.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
model="$root/../shared/models/llama_tiny.onnx"
work="$root/build/demo"
mkdir -p "$work"
bin="$root/build/bin"
mesh=tp=2,dp_shard=2
echo "== the plan shardc chooses for $mesh"
"$bin/shardc" plan "$model" --mesh "$mesh" --print | sed -n '1,12p'
echo "== compile for 4 ranks"
"$bin/shardc" compile "$model" --mesh "$mesh" -o "$work/llama_tiny.tp2_fsdp2.shardc"
echo "== what each rank holds and sends"
"$bin/shardc" report "$work/llama_tiny.tp2_fsdp2.shardc" | sed -n '1,8p'
echo "== run on 4 ranks, compare with the unsharded program (same plan, one rank) and onnxruntime"
# bf16 tolerances: |err| <= 5e-2 + 2e-2 |want| (docs/sharding.md).
"$bin/shardc" verify "$model" --nproc 4 --mesh "$mesh" --atol 5e-2 --rtol 2e-2 --workdir "$work/verify"
