#!/usr/bin/env bash
# Multi-process tests of shardc-run (registered in test/unit/CMakeLists.txt): the TP MLP
# artifact under mpirun, --nproc and --threads, and the dead-rank test (SHARDC_TEST_EXIT_AT_STEP,
# which only the test build shardc-run-testhooks reads: kill mode is given that binary).
set -u
mode=$1 run=$2 helper=$3 mpirun=$4
dir=$(mktemp -d "${TMPDIR:-/tmp}/shardc-mpi-XXXXXX")
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

case $mode in
smoke)
  "$helper" write "$dir" 1 2 || fail "writing the artifact"
  "$mpirun" --allow-run-as-root --oversubscribe -np 2 "$run" "$dir/m.shardc" \
      --inputs "$dir/in.npz" --outputs "$dir/mpirun.npz" || fail "mpirun -np 2"
  "$helper" compare "$dir/mpirun.npz" "$dir/expected.npz" || fail "mpirun -np 2 output"
  "$helper" write "$dir" 2 2 || fail "writing the 2x2 artifact"
  "$run" --nproc 4 "$dir/m.shardc" --inputs "$dir/in.npz" --outputs "$dir/nproc.npz" \
      || fail "--nproc 4"
  "$helper" compare "$dir/nproc.npz" "$dir/expected.npz" || fail "--nproc 4 output"
  "$run" --threads 4 "$dir/m.shardc" --inputs "$dir/in.npz" --outputs "$dir/threads.npz" \
      || fail "--threads 4"
  cmp "$dir/threads.npz" "$dir/nproc.npz" || fail "--threads and --nproc outputs differ in bytes"
  ;;
kill)
  # Rank 3 of 4 _exits before step 3 (the all_reduce on one tp group of all four ranks).
  # $2... after the three paths: extra environment, e.g. OMPI_MCA_orte_abort_on_non_zero_status=0
  # so that the survivors' own timeouts (not mpirun) must end the job.
  "$helper" write "$dir" 1 4 || fail "writing the artifact"
  start=$(date +%s)
  env "${@:5}" SHARDC_TEST_EXIT_AT_STEP=3:3 timeout 60 "$run" --nproc 4 "$dir/m.shardc" \
      --inputs "$dir/in.npz" --collective-timeout 2s >"$dir/log" 2>&1
  rc=$? elapsed=$(( $(date +%s) - start ))
  cat "$dir/log"
  [ "$rc" -ne 0 ] || fail "exit status 0"
  [ "$rc" -ne 124 ] || fail "still running after 60 s"
  [ "$elapsed" -le 20 ] || fail "took ${elapsed}s"
  grep -q "rank 3" "$dir/log" || fail "the output does not name rank 3"
  grep -q "step 3" "$dir/log" || fail "the output does not name step 3"
  if [ $# -ge 5 ]; then # the survivors reported: each names rank 3 and the step
    grep -q "step 3 (all_reduce @ reshard @ m.mlp.down): timed out after 2s on group \[tp\] (ranks 0,1,2,3): rank 3 did not arrive" "$dir/log" \
      || fail "no survivor reported the timeout"
  fi
  ;;
*) fail "unknown mode $mode" ;;
esac
echo PASS
