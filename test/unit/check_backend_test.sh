#!/usr/bin/env bash
# shardc-run --check-backend cuda on hand-made artifacts: the TP MLP's bias and activation are
# library `formula` steps, a kind the CUDA backend has no kernel for (compiled artifacts fuse
# them into generated kernels): listed with their dtypes and first step, exit 1; the
# collectives-only artifact needs no kernel: exit 0. Without CUDA in the build: exit 2.
# Usage: check_backend_test.sh SHARDC_RUN SHARDC_TEST_ARTIFACT ON|OFF (CUDA in shardc-run)
set -uo pipefail
run=$1 fixture=$2 cuda=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/mlp" "$dir/coll"
"$fixture" write "$dir/mlp" 1 2 || exit 1
"$fixture" write-collectives "$dir/coll" 2 || exit 1
"$run" --check-backend cuda "$dir/mlp/m.shardc" > "$dir/out.txt" 2> "$dir/err.txt"
rc=$?
if [ "$cuda" != ON ]; then
  [ $rc -eq 2 ] && grep -qF "built without CUDA" "$dir/err.txt" && { echo ok; exit 0; }
  echo "expected exit 2 and 'built without CUDA', got $rc:"; cat "$dir/out.txt" "$dir/err.txt"; exit 1
fi
cat "$dir/out.txt" "$dir/err.txt"
[ $rc -eq 1 ] || { echo "an uncovered kind: expected exit 1, got $rc"; exit 1; }
for want in 'missing: formula f32 -> f32: 1 step, first step 1 (formula @ act @ m.mlp): no CUDA kernel for this step kind' \
            'missing: formula f32,f32 -> f32: 1 step, first step 4 (formula @ bias @ m.mlp.down)'; do
  grep -qF "$want" "$dir/out.txt" || { echo "missing line: $want"; exit 1; }
done
tail -n 1 "$dir/out.txt" | grep -q '^checked 6 steps ' || { echo "last line is not 'checked 6 steps ...'"; exit 1; }
"$run" --check-backend cuda "$dir/coll/m.shardc" > "$dir/out.txt" 2>&1 || { cat "$dir/out.txt"; echo "collectives: not exit 0"; exit 1; }
tail -n 1 "$dir/out.txt" | grep -q '^checked [0-9]* steps .*covers every step' || { cat "$dir/out.txt"; exit 1; }
"$run" --check-backend rocm "$dir/coll/m.shardc" 2> "$dir/err.txt"
[ $? -eq 2 ] || { echo "--check-backend rocm: expected exit 2"; exit 1; }
echo ok
