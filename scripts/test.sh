#!/usr/bin/env bash
# Builds everything and runs every test (lit, gtest, end-to-end) under ctest.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/build.sh"
start=$(date +%s)
ctest --test-dir "$root/build" --output-on-failure -j"$(nproc)" "$@"
echo "[test] done in $(( $(date +%s) - start ))s"
