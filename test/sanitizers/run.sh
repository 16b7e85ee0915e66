#!/usr/bin/env bash
# One sanitizer entry (sanitize.asan_ubsan, sanitize.tsan): builds runtime/ alone with the
# sanitizers into BUILD/sanitize/MODE, runs its unit tests under them, then compiles a few
# multi-rank cells with the normal shardc and runs them with the sanitized shardc-run as
# in-process ranks (threads), checked by tools/shardc_verify.py against onnxruntime and
# PyTorch's reference outputs; then the runtime's test artifacts on thread ranks (and a dead
# rank), and under ASan/UBSan ONNX's node tests. Any sanitizer report fails the entry.
#
#   run.sh MODE SRC BUILD SHARDC PYTHON SHARED [CXX]
#     MODE   asan_ubsan (AddressSanitizer + UndefinedBehaviorSanitizer) or tsan (ThreadSanitizer)
#     SRC    the source root; BUILD the main build dir; SHARDC the normally built compiler;
#     PYTHON the venv's python; SHARED the folder holding models/llama_tiny.onnx
#     CXX    the C++ compiler of the main build (default c++)
#
# CUDA is off in these builds (host sanitizers do not instrument nvcc's code, and the CPU
# ranks are what they check); so is MPI (ranks as processes: the threads are TSan's target).
set -euo pipefail
mode=$1 src=$2 build=$3 shardc=$4 python=$5 shared=$6 cxx=${7:-c++}
case "$mode" in
  asan_ubsan) sanitize=address,undefined ;;
  tsan) sanitize=thread ;;
  *) echo "run.sh: unknown mode '$mode' (asan_ubsan or tsan)" >&2; exit 2 ;;
esac
here=$(cd "$(dirname "$0")" && pwd)
dir=$build/sanitize/$mode
jobs=${SHARDC_SANITIZE_JOBS:-2}
t0=$(date +%s)

# Runtime options, set here so that a finding always fails the run, whatever the caller set.
# OpenBLAS: one thread (no pool of its own beside the rank threads).
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_init_order=1:check_initialization_order=1:detect_invalid_pointer_pairs=0:print_summary=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=0"
export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$here/tsan.supp:print_suppressions=0"

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
# -O1 (the sanitizers' usual level: fast to build, readable stacks), assertions kept.
mkdir -p "$build/sanitize"
cmake -S "$src/runtime" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS_RELEASE=-O1 -DCMAKE_C_FLAGS_RELEASE=-O1 \
      -DSHARDC_SANITIZE="$sanitize" -DSHARDC_ENABLE_CUDA=OFF -DSHARDC_ENABLE_MPI=OFF \
      "${launcher[@]}" >"$build/sanitize/$mode.configure.log" 2>&1 ||
  { cat "$build/sanitize/$mode.configure.log"; exit 1; }
cmake --build "$dir" --parallel "$jobs" >"$build/sanitize/$mode.build.log" 2>&1 ||
  { tail -50 "$build/sanitize/$mode.build.log"; exit 1; }
t1=$(date +%s)
echo "[sanitize.$mode] built runtime/ with -fsanitize=$sanitize in $((t1 - t0))s ($dir)"

# TSan of older toolchains refuses the address layout of kernels with more mmap randomness
# ("unexpected memory mapping"): then the whole entry reruns with ASLR off (setarch -R).
probe=$("$dir/test/unit/shardc-gemm-plan-tests" --gtest_filter=-* 2>&1 || true)
if [[ $probe == *"unexpected memory mapping"* ]] && [ -z "${SHARDC_SANITIZE_NO_ASLR:-}" ]; then
  echo "[sanitize.$mode] the sanitizer rejects this address layout: rerunning with ASLR off"
  export SHARDC_SANITIZE_NO_ASLR=1
  exec setarch "$(uname -m)" -R "$0" "$@"
fi
# LeakSanitizer cannot run under ptrace-based sandboxes (it stops the process to scan it):
# there, leaks go unchecked and everything else still runs.
if [ "$mode" = asan_ubsan ] && [[ $probe == *"LeakSanitizer has encountered a fatal error"* ]]; then
  echo "[sanitize.$mode] LeakSanitizer does not work here (ptrace?): detect_leaks=0"
  export ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0"
fi

# The runtime's unit tests (the sanitized build registers exactly those).
failed=0
ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600 || failed=1
t2=$(date +%s)
echo "[sanitize.$mode] unit tests in $((t2 - t1))s"

# Multi-rank cells on in-process ranks, compiled by the normal shardc: tensor parallel
# (all_reduce), sequence parallel (reduce_scatter, all_gather), FSDP x tp in bf16 (the 16-bit
# conversions), context x tensor parallel with --repeat and --profile (the timed runs and the
# step profile), vocabulary parallel, uneven shards padded (a generated model, from
# e2e.generate), and bf16 attention in the SIMT emulator. Shared exports are also compared with
# PyTorch's reference outputs.
work=$dir/cells
cell() { # name model mesh ranks plan [extra shardc_verify args...]
  local name=$1 model=$2 mesh=$3 ranks=$4 plan=$5
  shift 5
  local tol=(--atol 1e-4) src_model=(--model "$build/test/e2e/models/$model.onnx")
  [ "$plan" = bf16 ] && tol=(--atol 5e-2 --rtol 2e-2)
  if [ -f "$shared/models/$model.onnx" ]; then
    src_model=(--model "$shared/models/$model.onnx" --reference "$shared/models/reference_io.npz"
               --ref-prefix "$model")
  fi
  local s
  s=$(date +%s)
  if "$python" "$src/tools/shardc_verify.py" --shardc "$shardc" --shardc-run "$dir/bin/shardc-run" \
       "${src_model[@]}" --workdir "$work/$name" "${tol[@]}" \
       --compile-arg=--plan="$src/test/e2e/plans/$plan.yaml" --compile-arg=--mesh="$mesh" \
       --compile-arg=--quiet --run-arg=--threads --run-arg="$ranks" "$@" >"$work/$name.log" 2>&1; then
    echo "[sanitize.$mode] cell $name: ok in $(( $(date +%s) - s ))s"
  else
    failed=1
    echo "[sanitize.$mode] cell $name: FAILED; $work/$name.log and the run's whole output:"
    cat "$work/$name.log"
    [ -f "$work/$name/run.log" ] && cat "$work/$name/run.log"
  fi
}
mkdir -p "$work"
cell llama_tiny.tp2 llama_tiny tp=2 2 fp32
cell llama_tiny.tp2.sp llama_tiny tp=2 2 fp32-sp
cell llama_tiny.tp2_dps2.bf16 llama_tiny tp=2,dp_shard=2 4 bf16
cell llama_tiny.cp2_tp2 llama_tiny cp=2,tp=2 4 fp32 --run-arg=--repeat --run-arg=1 --run-arg=--profile
cell qwen2_tiny.tp2_dps2.vocab qwen2_tiny tp=2,dp_shard=2 4 fp32-vocab
cell llama_odd_b4.tp2_dps2.vocab llama_odd_b4 tp=2,dp_shard=2 4 fp32-vocab
# bf16 attention on the CUDA flash kernel's source through the SIMT emulator (its threads are
# ucontext fibers, inside each rank thread).
SHARDC_CPU_ATTENTION=simt cell llama_tiny.tp2.bf16_simt llama_tiny tp=2 2 bf16

# The runtime's own test artifacts on thread ranks (test/unit/shardc-test-artifact): the TP MLP
# on a 2x2 mesh and the collectives-only artifact (every collective kind, 2 ranks), against their
# expected outputs; then the dead-rank path (shardc-run-testhooks, shardc-run with the test
# hooks): rank 3 of 4 stops before step 3 and the others must time out on their collective and
# report it (LocalWorld's waits and abort).
helper=$dir/test/unit/shardc-test-artifact
run=$dir/bin/shardc-run
reported() { grep -Eq "WARNING: ThreadSanitizer|ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$1"; }
artifact() { # name command... (the command's output goes to $work/name.log)
  local name=$1
  shift
  if "$@" >"$work/$name.log" 2>&1; then
    echo "[sanitize.$mode] $name: ok"
  else
    failed=1
    echo "[sanitize.$mode] $name: FAILED:"
    cat "$work/$name.log"
  fi
}
mkdir -p "$work/tp_mlp" "$work/collectives" "$work/dead_rank"
artifact tp_mlp.write "$helper" write "$work/tp_mlp" 2 2
artifact tp_mlp.threads4 "$run" "$work/tp_mlp/m.shardc" --inputs "$work/tp_mlp/in.npz" \
  --outputs "$work/tp_mlp/out.npz" --threads 4
artifact tp_mlp.compare "$helper" compare "$work/tp_mlp/out.npz" "$work/tp_mlp/expected.npz"
artifact collectives.write "$helper" write-collectives "$work/collectives" 2
artifact collectives.threads2 "$run" "$work/collectives/m.shardc" --inputs "$work/collectives/in.npz" \
  --outputs "$work/collectives/out.npz" --threads 2
artifact collectives.compare "$helper" compare "$work/collectives/out.npz" "$work/collectives/expected.npz"
artifact dead_rank.write "$helper" write "$work/dead_rank" 1 4
if SHARDC_TEST_EXIT_AT_STEP=3:3 "$dir/test/unit/shardc-run-testhooks" "$work/dead_rank/m.shardc" \
     --inputs "$work/dead_rank/in.npz" --threads 4 --collective-timeout 2s --all-ranks \
     >"$work/dead_rank.log" 2>&1 ||
   reported "$work/dead_rank.log" || ! grep -q "rank 3" "$work/dead_rank.log"; then
  failed=1
  echo "[sanitize.$mode] dead_rank: FAILED (expected a failure naming rank 3, no sanitizer report):"
  cat "$work/dead_rank.log"
else
  echo "[sanitize.$mode] dead_rank: ok"
fi

# ASan/UBSan only (one rank): ONNX's node tests for the supported ops (onnx_node_tests.py,
# as e2e.onnx_node_tests), the edge cases of every CPU kernel (empty tensors, out-of-range
# slices, casts). Their pass rate is e2e.onnx_node_tests' business; here no run may report.
if [ "$mode" = asan_ubsan ]; then
  rm -rf "$work/onnx_node_tests"
  s=$(date +%s)
  "$python" "$src/test/e2e/onnx_node_tests.py" --shardc "$shardc" --shardc-run "$run" \
    --workdir "$work/onnx_node_tests" --jobs "$jobs" >"$work/onnx_node_tests.log" 2>&1 ||
    { failed=1; echo "[sanitize.$mode] onnx_node_tests: FAILED:"; tail -20 "$work/onnx_node_tests.log"; }
  # grep exits 1 when no log has a report, which is the passing case; `found` decides.
  found=$(grep -lE "runtime error:|ERROR: (AddressSanitizer|LeakSanitizer)" \
            "$work/onnx_node_tests"/*/log.txt 2>/dev/null || true)
  if [ -n "$found" ]; then
    failed=1
    echo "[sanitize.$mode] onnx_node_tests: sanitizer reports in:"
    for f in $found; do echo "== $f"; grep -A12 -E "runtime error:|ERROR: " "$f" | head -14; done
  else
    echo "[sanitize.$mode] onnx_node_tests: no report ($(tail -1 "$work/onnx_node_tests.log" | cut -c1-60)) in $(( $(date +%s) - s ))s"
  fi
fi
echo "[sanitize.$mode] cells in $(( $(date +%s) - t2 ))s; total $(( $(date +%s) - t0 ))s"
exit $failed
