#!/usr/bin/env bash
# build.runtime.minimal: builds runtime/ alone with -DSHARDC_MINIMAL_DEPS=ON (no OpenBLAS, zlib
# or GoogleTest: the blocked sgemm, the built-in inflate, mini-gtest), as the GPU machines
# must, into BUILD/runtime-minimal; checks its preflight line and that nothing links those
# libraries; runs a few of its unit tests (the fallbacks, npz, GEMMs, the executor); then one
# e2e cell (llama_tiny tp=2, compiled by the normal shardc) on its shardc-run, and the same run
# again from a numpy savez_compressed copy of the inputs (the built-in inflate end to end).
#
#   run.sh SRC BUILD SHARDC PYTHON SHARED [CXX]
#
# MPI is off (the GPU machines have none); CUDA stays as found, so where nvcc is, the CUDA
# backend, the NCCL communicator and the GPU test programs are built too (not run).
set -euo pipefail
src=$1 build=$2 shardc=$3 python=$4 shared=$5 cxx=${6:-c++}
dir=$build/runtime-minimal
jobs=${SHARDC_MINIMAL_JOBS:-2}
log=$build/runtime-minimal.log
t0=$(date +%s)

launcher=()
if command -v ccache >/dev/null; then
  launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache
            -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
fi
cmake -S "$src/runtime" -B "$dir" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=Release \
      -DSHARDC_MINIMAL_DEPS=ON -DSHARDC_ENABLE_MPI=OFF "${launcher[@]}" >"$log" 2>&1 ||
  { cat "$log"; exit 1; }
# No preflight line is itself a failure: the checks below report it, naming what is missing.
preflight=$(grep -m1 -- "-- shardc runtime:" "$log" || true)
echo "[minimal] ${preflight#-- }"
for want in "BLAS: blocked fallback" "zlib: built-in inflate" "tests: mini-gtest"; do
  [[ $preflight == *"$want"* ]] || { echo "[minimal] FAILED: the preflight lacks '$want'"; exit 1; }
done
t1=$(date +%s)

# What the checks need, and the GPU test programs where CUDA is (their build is the point).
targets=(shardc-run shardc-minimal-deps-tests shardc-runtime-tests)
available=$(ninja -C "$dir" -t targets all 2>/dev/null)
for t in shardc-nccl-gpu-tests shardc-gemm-gpu-tests shardc-grad-kernels-gpu-tests shardc-flash-gpu-tests; do
  grep -q "^$t:" <<<"$available" && targets+=("$t")
done
nice -n 5 ninja -C "$dir" -j"$jobs" "${targets[@]}" >>"$log" 2>&1 || { tail -50 "$log"; exit 1; }
t2=$(date +%s)
echo "[minimal] configured in $((t1 - t0))s, built ${targets[*]} in $((t2 - t1))s ($dir)"

# No OpenBLAS, zlib or GoogleTest in what was linked.
for exe in "$dir/bin/shardc-run" "$dir/test/unit/shardc-runtime-tests"; do
  if linked=$(ldd "$exe" 2>/dev/null | grep -E "libopenblas|libz\.so|libgtest|libblas|libcblas"); then
    echo "[minimal] FAILED: $exe links $linked"
    exit 1
  fi
done

failed=0
run() { # name command...
  local name=$1
  shift
  if "$@" >"$dir/$name.log" 2>&1; then
    echo "[minimal] $name: ok ($(grep -Eo "^\[  PASSED  \] [0-9]+ tests" "$dir/$name.log" | tail -1 | cut -c14-))"
  else
    failed=1
    echo "[minimal] $name: FAILED:"
    cat "$dir/$name.log"
  fi
}
run unit.minimal_deps "$dir/test/unit/shardc-minimal-deps-tests"
run unit.runtime.npz_gemm_executor "$dir/test/unit/shardc-runtime-tests" \
  --gtest_filter='Npz.*:MatMul.*:Gemm.*:Linear.*:Executor.*'

# llama_tiny at tp=2 on two thread ranks, against onnxruntime and PyTorch's reference.
model=$shared/models/llama_tiny.onnx
if [ ! -f "$model" ]; then
  echo "[minimal] no $model: the e2e cell is skipped"
  exit $failed
fi
work=$dir/cell
rm -rf "$work"
s=$(date +%s)
if "$python" "$src/tools/shardc_verify.py" --shardc "$shardc" --shardc-run "$dir/bin/shardc-run" \
     --model "$model" --reference "$shared/models/reference_io.npz" --ref-prefix llama_tiny \
     --workdir "$work" --atol 1e-4 --compile-arg=--plan="$src/test/e2e/plans/fp32.yaml" \
     --compile-arg=--mesh=tp=2 --compile-arg=--quiet --run-arg=--threads --run-arg=2 \
     >"$dir/cell.log" 2>&1; then
  echo "[minimal] llama_tiny.tp2: ok in $(( $(date +%s) - s ))s"
else
  echo "[minimal] llama_tiny.tp2: FAILED:"
  cat "$dir/cell.log"
  [ -f "$work/run.log" ] && cat "$work/run.log"
  exit 1
fi
# The same artifact from a savez_compressed copy of its inputs: outputs equal bit for bit.
artifact=$work/model.shardc
"$python" - "$work/inputs.npz" "$work/inputs_deflated.npz" <<'PY'
import sys, zipfile, numpy as np
arrays = dict(np.load(sys.argv[1]))
np.savez_compressed(sys.argv[2], **arrays)
assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zipfile.ZipFile(sys.argv[2]).infolist())
PY
"$dir/bin/shardc-run" "$artifact" --inputs "$work/inputs_deflated.npz" \
  --outputs "$work/outputs_deflated.npz" --threads 2 >"$dir/deflated.log" 2>&1 ||
  { echo "[minimal] deflated inputs: FAILED:"; cat "$dir/deflated.log"; exit 1; }
"$python" - "$work/shardc_outputs.npz" "$work/outputs_deflated.npz" <<'PY' || failed=1
import sys, numpy as np
a, b = np.load(sys.argv[1]), np.load(sys.argv[2])
assert sorted(a.files) == sorted(b.files), (a.files, b.files)
for k in a.files:
    assert a[k].tobytes() == b[k].tobytes(), f"{k} differs"
print(f"[minimal] deflated inputs: outputs equal bit for bit ({', '.join(a.files)})")
PY
echo "[minimal] total $(( $(date +%s) - t0 ))s"
exit $failed
