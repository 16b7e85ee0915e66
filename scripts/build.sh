#!/usr/bin/env bash
# Installs dependencies (idempotent) and builds everything into build/ (compiler, runtime, tests).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
start=$(date +%s)
cmake -S "$root" -B "$root/build" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
ninja -C "$root/build" -j"$(nproc)"
echo "[build] done in $(( $(date +%s) - start ))s"
