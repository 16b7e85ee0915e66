#!/usr/bin/env bash
# shardc-run with --comm/--backend cuda where there is no GPU (registered in
# test/unit/CMakeLists.txt when shardc-run has NCCL):
#   refuse     combinations that cannot work fail with one error line, before any rank starts
#   mpi        mpirun -np 2 --backend cuda [--comm nccl]: every rank fails cleanly, naming itself
#   torchrun   two processes with RANK/WORLD_SIZE/LOCAL_RANK/MASTER_ADDR/MASTER_PORT: the TCP
#              rendezvous completes, then each rank fails with "no CUDA device"
#   cpu        the collectives artifact on CPU ranks: --comm mpi, auto under mpirun, --threads
# The no-GPU modes exit 77 (skipped) where a GPU is visible: there bench/gpu/nccl_checks.sh (kit1.sh) runs NCCL.
set -u
mode=$1 run=$2 helper=$3 mpirun=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardc-nccl-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; [ -f "$dir/log" ] && cat "$dir/log"; exit 1; }
if [ "$mode" != cpu ] && command -v nvidia-smi >/dev/null && nvidia-smi -L >/dev/null 2>&1; then
  echo "SKIP: a GPU is visible"
  exit 77
fi
errors() { grep -c "shardc-run: error:" "$dir/log"; }

case $mode in
refuse)
  "$helper" write-collectives "$dir" 2 || fail "writing the artifact"
  # args | the expected error
  while IFS='|' read -r args want; do
    # shellcheck disable=SC2086
    timeout 30 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" $args >"$dir/log" 2>&1
    rc=$?
    [ "$rc" -eq 1 ] || fail "$args: exit $rc, expected 1"
    [ "$(errors)" -eq 1 ] || fail "$args: not one error line"
    grep -qF -- "$want" "$dir/log" || fail "$args: expected '$want'"
  done <<'CASES'
--comm nccl|error: --comm nccl needs --backend cuda
--comm nccl --backend cpu --nproc 2|error: --comm nccl needs --backend cuda
--comm nccl --backend cuda --threads 2|error: --comm nccl cannot run ranks as threads (--threads)
--comm mpi --threads 2|error: --comm mpi needs ranks that are processes
--comm mpi|error: --comm mpi needs an MPI launcher
--comm local --nproc 2|error: --comm local runs ranks as threads of one process
--comm tcp|error: --comm must be auto, local, mpi or nccl, not 'tcp'
--backend cuda --comm nccl|m.shardc: the artifact is compiled for 2 ranks (mesh dp_replicate=1 dp_shard=1 cp=1 tp=2): launch 2 processes
CASES
  # Under mpirun: threads and the local communicator are refused on every rank.
  timeout 60 "$mpirun" -np 2 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --comm local >"$dir/log" 2>&1
  [ $? -ne 0 ] || fail "--comm local under mpirun: exit 0"
  grep -q "under mpirun each process is a rank" "$dir/log" || fail "--comm local under mpirun"
  ;;
mpi)
  "$helper" write-collectives "$dir" 2 || fail "writing the artifact"
  for comm in "--comm nccl" ""; do
    start=$(date +%s)
    # shellcheck disable=SC2086
    timeout 60 "$mpirun" -np 2 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --backend cuda $comm \
        >"$dir/log" 2>&1
    rc=$? elapsed=$(( $(date +%s) - start ))
    [ "$rc" -ne 0 ] || fail "mpirun -np 2 --backend cuda $comm: exit 0"
    [ "$rc" -ne 124 ] || fail "mpirun -np 2 --backend cuda $comm: still running after 60 s"
    [ "$elapsed" -le 30 ] || fail "took ${elapsed}s"
    for r in 0 1; do
      grep -q "^shardc-run: error: rank $r: no CUDA device: " "$dir/log" || fail "$comm: rank $r did not say it has no CUDA device"
    done
    [ "$(errors)" -eq 2 ] || fail "$comm: not one error line per rank"
    grep -qiE "segmentation|core dumped|terminate called|signal" "$dir/log" && fail "$comm: a rank crashed"
  done
  ;;
torchrun)
  "$helper" write-collectives "$dir" 2 || fail "writing the artifact"
  port=$(( 20000 + (RANDOM % 20000) ))
  start=$(date +%s)
  for r in 0 1; do
    RANK=$r WORLD_SIZE=2 LOCAL_RANK=$r MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
      timeout 60 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --backend cuda --verbose --all-ranks \
      >"$dir/r$r.log" 2>&1 &
    eval "pid$r=$!"
  done
  wait "$pid0"; rc0=$?
  wait "$pid1"; rc1=$?
  elapsed=$(( $(date +%s) - start ))
  cat "$dir/r0.log" "$dir/r1.log" >"$dir/log"
  for r in 0 1; do
    eval "rc=\$rc$r"
    [ "$rc" -eq 1 ] || fail "rank $r: exit $rc, expected 1"
    grep -q "rank $r: NCCL bootstrap (torchrun) done: rank $r of 2, local rank $r" "$dir/r$r.log" \
      || fail "rank $r: the rendezvous did not complete"
    grep -q "shardc-run: error: no CUDA device: " "$dir/r$r.log" || fail "rank $r: no 'no CUDA device' error"
    [ "$(grep -c "shardc-run: error:" "$dir/r$r.log")" -eq 1 ] || fail "rank $r: not one error line"
  done
  [ "$elapsed" -le 30 ] || fail "took ${elapsed}s"
  # A bad variable is one line too, before any rendezvous.
  RANK=2 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 30 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --backend cuda >"$dir/log" 2>&1
  [ $? -eq 1 ] && grep -q "shardc-run: error: RANK=2 is not below WORLD_SIZE=2" "$dir/log" \
    || fail "RANK=2 WORLD_SIZE=2"
  # CPU ranks from torchrun-style variables are refused with a hint.
  RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1 MASTER_PORT=$port \
    timeout 30 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" >"$dir/log" 2>&1
  [ $? -eq 1 ] && grep -q "a torchrun-style launch" "$dir/log" || fail "torchrun variables with --backend cpu"
  ;;
cpu)
  "$helper" write-collectives "$dir" 2 || fail "writing the artifact"
  "$mpirun" -np 2 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --comm mpi --outputs "$dir/mpi.npz" \
      >"$dir/log" 2>&1 || fail "mpirun -np 2 --comm mpi"
  "$helper" compare "$dir/mpi.npz" "$dir/expected.npz" || fail "mpirun -np 2 --comm mpi output"
  "$mpirun" -np 2 "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --outputs "$dir/auto.npz" \
      >"$dir/log" 2>&1 || fail "mpirun -np 2 (auto)"
  cmp "$dir/auto.npz" "$dir/mpi.npz" || fail "--comm auto and --comm mpi differ"
  "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --threads 2 --comm local --outputs "$dir/threads.npz" \
      >"$dir/log" 2>&1 || fail "--threads 2 --comm local"
  cmp "$dir/threads.npz" "$dir/mpi.npz" || fail "--threads and mpirun outputs differ in bytes"
  "$helper" write-collectives "$dir" 1 || fail "writing the one-rank artifact"
  "$run" "$dir/m.shardc" --inputs "$dir/in.npz" --outputs "$dir/one.npz" >"$dir/log" 2>&1 \
    || fail "one rank"
  "$helper" compare "$dir/one.npz" "$dir/expected.npz" || fail "one rank output"
  ;;
*) fail "unknown mode $mode" ;;
esac
echo PASS
