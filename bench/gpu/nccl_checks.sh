#!/usr/bin/env bash
# NCCL through shardc-run on the one GPU of the device machine (called by kit1.sh):
#   bench/gpu/nccl_checks.sh BUILD BUNDLE OUTDIR CPU_REFERENCE.npz
# One-rank worlds, under mpirun -np 1 where there is an mpirun, as a job of one with
# torchrun-style variables (RANK=0 WORLD_SIZE=1), and under PyTorch's torchrun where it is
# installed. The compiler drops collectives on groups of one, so the model cells have none; the
# collectives-only test artifact (shardc-test-artifact) keeps every step kind, most packed
# along inner dims (the CUDA backend's copy2D), with exact expected values. Then two torchrun
# ranks' bootstrap, and the one-rank llama_tiny fp32 cell under NCCL against the CPU backend.
# One PASS/FAIL/SKIP line each in OUTDIR/summary.txt.
set -uo pipefail
build=$1 bundle=$2 nccl=$3 reference=$4
mkdir -p "$nccl"
: > "$nccl/summary.txt"
run=$build/bin/shardc-run art=$build/test/unit/shardc-test-artifact
if ! ldd "$run" | grep -q libnccl || [ ! -x "$art" ]; then
  echo "SKIP nccl: shardc-run built without NCCL, or no shardc-test-artifact" | tee "$nccl/summary.txt"
  exit 0
fi
d=$(mktemp -d)
launch=""; command -v mpirun >/dev/null && launch="mpirun --allow-run-as-root -np 1"
$art write-collectives "$d" 1
hows="launcher variables"; command -v torchrun >/dev/null && hows="$hows torchrun"
for how in $hows; do
  env="" l=$launch
  [ $how = variables ] && env="RANK=0 WORLD_SIZE=1 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=29517" l=""
  [ $how = torchrun ] && l="torchrun --nproc-per-node 1 --master-port 29519 --no-python"
  env $env timeout 60 $l $run "$d/m.shardc" --backend cuda --comm nccl --verbose --inputs "$d/in.npz" \
    --outputs "$d/$how.npz" > "$nccl/collectives.$how.log" 2>&1; rc=$?
  $art compare "$d/$how.npz" "$d/expected.npz" && r=PASS || r=FAIL
  echo "$r nccl collectives artifact (${how}: ${l:-job of one}${env:+ $env}), exit $rc" | tee -a "$nccl/summary.txt"
  [ $r = PASS ] || tail -5 "$nccl/collectives.$how.log"
done
if command -v torchrun >/dev/null; then
  # Two torchrun ranks on the one GPU: the bootstrap (past torchrun's store) must complete on
  # both; NCCL then refuses two ranks on one device, which is expected here.
  d2=$(mktemp -d); $art write-collectives "$d2" 2
  timeout 60 torchrun --nproc-per-node 2 --master-port 29521 --no-python $run "$d2/m.shardc" \
    --backend cuda --verbose --all-ranks --inputs "$d2/in.npz" > "$nccl/torchrun2.log" 2>&1
  n=$(grep -c "NCCL bootstrap (torchrun) done" "$nccl/torchrun2.log")
  echo "$([ "$n" = 2 ] && echo PASS || echo FAIL) torchrun --nproc-per-node 2: bootstrap done on $n of 2 ranks" \
    "(then: $(grep -m1 -o 'error: .*' "$nccl/torchrun2.log" | cut -c1-120))" | tee -a "$nccl/summary.txt"
fi
cell=$bundle/llama_tiny/fp32.tp1
timeout 120 $launch $run $cell.shardc --backend cuda --comm nccl --check-replay --inputs $bundle/llama_tiny/inputs.npz \
  --outputs "$nccl/llama_tiny.nccl.npz" > "$nccl/llama_tiny.log" 2>&1 || tail -5 "$nccl/llama_tiny.log"
python3 - "$nccl/llama_tiny.nccl.npz" "$reference" <<'PY' | tee -a "$nccl/summary.txt"
import sys, numpy as np
try:
    got, want = np.load(sys.argv[1]), np.load(sys.argv[2])
except OSError as e:
    sys.exit(f"FAIL nccl llama_tiny fp32.tp1: {e}")
for k in want.files:
    err = np.abs(got[k].astype(np.float64) - want[k].astype(np.float64)).max()
    print(f"{'PASS' if err <= 1e-3 else 'FAIL'} nccl llama_tiny fp32.tp1 {k} vs cpu (with --check-replay): max|err| {err:.3e}")
PY
