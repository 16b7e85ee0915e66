#!/usr/bin/env bash
# shardc-run --check-backend cuda on hand-made artifacts: an integer `formula` (add on i64: the
# CPU backend computes it, the CUDA kernel takes f32, bf16 and f16 only) is listed with its
# dtypes and first step, exit 1; the TP MLP (linear, f32 formulas, collectives) and the
# collectives-only artifact are covered, exit 0. Without CUDA in the build: exit 2.
# Usage: check_backend_test.sh SHARDC_RUN SHARDC_TEST_ARTIFACT ON|OFF (CUDA in shardc-run)
set -uo pipefail
run=$1 fixture=$2 cuda=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/mlp" "$dir/coll"
cat > "$dir/int.json" <<'JSON'
{"format_version": 4, "producer": "unit test", "source": "check_backend",
 "mesh": {"dp_replicate": 1, "dp_shard": 1, "cp": 1, "tp": 1},
 "mesh_axes": [["dp_replicate", 1], ["dp_shard", 1], ["cp", 1], ["tp", 1]], "world_size": 1,
 "weight_files": [], "arena_bytes": 256,
 "buffers": [
   {"id": 0, "name": "a", "dtype": "i64", "shape": [4], "storage": "arena", "offset": 0},
   {"id": 1, "name": "b", "dtype": "i64", "shape": [4], "storage": "arena", "offset": 64},
   {"id": 2, "name": "s", "dtype": "i64", "shape": [4], "storage": "arena", "offset": 128},
   {"id": 3, "name": "y", "dtype": "i64", "shape": [4], "storage": "arena", "offset": 192}],
 "inputs": [{"name": "a", "buffer": 0}, {"name": "b", "buffer": 1}],
 "outputs": [{"name": "y", "buffer": 3}],
 "steps": [
   {"op": "formula", "in": [0, 1], "out": [2], "attrs": {"formula": "add"}, "loc": "sum @ m"},
   {"op": "copy", "in": [2], "out": [3], "attrs": {}, "loc": "out @ m"}]}
JSON
"$fixture" write-json "$dir/int.shardc" "$dir/int.json" || exit 1
"$fixture" write "$dir/mlp" 1 2 || exit 1
"$fixture" write-collectives "$dir/coll" 2 || exit 1
"$run" --check-backend cuda "$dir/int.shardc" > "$dir/out.txt" 2> "$dir/err.txt"
rc=$?
if [ "$cuda" != ON ]; then
  [ $rc -eq 2 ] && grep -qF "built without CUDA" "$dir/err.txt" && { echo ok; exit 0; }
  echo "expected exit 2 and 'built without CUDA', got $rc:"; cat "$dir/out.txt" "$dir/err.txt"; exit 1
fi
cat "$dir/out.txt" "$dir/err.txt"
[ $rc -eq 1 ] || { echo "an uncovered dtype: expected exit 1, got $rc"; exit 1; }
want='missing: formula i64,i64 -> i64: 1 step, first step 0 (formula @ sum @ m): formula: an input of dtype i64 (the CUDA kernel takes f32, bf16, f16)'
grep -qxF "$want" "$dir/out.txt" || { echo "missing line: $want"; exit 1; }
[ "$(grep -c '^missing: ' "$dir/out.txt")" -eq 1 ] || { echo "copy i64 is covered: one missing line only"; exit 1; }
tail -n 1 "$dir/out.txt" | grep -q '^checked 2 steps (0 load, 2 run; 2 library, ' || { echo "last line is not 'checked 2 steps ...'"; exit 1; }
for covered in mlp coll; do
  "$run" --check-backend cuda "$dir/$covered/m.shardc" > "$dir/out.txt" 2>&1 || { cat "$dir/out.txt"; echo "$covered: not exit 0"; exit 1; }
  cat "$dir/out.txt"
  tail -n 1 "$dir/out.txt" | grep -q '^checked [0-9]* steps .*covers every step' || { echo "$covered: no 'checked' line"; exit 1; }
done
"$run" --check-backend rocm "$dir/coll/m.shardc" 2> "$dir/err.txt"
[ $? -eq 2 ] || { echo "--check-backend rocm: expected exit 2"; exit 1; }
echo ok
