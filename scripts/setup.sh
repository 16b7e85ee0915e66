#!/usr/bin/env bash
# Installs everything shardc needs on a fresh Debian 12 machine, idempotently:
# Debian packages (LLVM/MLIR 22, protobuf, OpenBLAS, OpenMPI, GoogleTest, FlatBuffers 2.0.8:
# flatc for the schema test; the build uses the headers vendored in third_party/) and one
# pinned venv.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
pkgs=(llvm-22-dev libmlir-22-dev mlir-22-tools llvm-22-tools
      libprotobuf-dev protobuf-compiler libopenblas-dev libgtest-dev
      libopenmpi-dev openmpi-bin zlib1g-dev python3-venv ninja-build cmake g++ ccache
      libflatbuffers-dev flatbuffers-compiler)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "[setup] apt-get install ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
venv="$root/.venv"
want="$root/scripts/requirements.txt"
if [ ! -x "$venv/bin/python" ] || ! cmp -s "$want" "$venv/.requirements"; then
  echo "[setup] python venv at $venv"
  py=python3
  # Prefer a Python >= 3.10 (the pinned wheels need it); Debian 12's is 3.11.
  "$py" -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q -r "$want"
  cp "$want" "$venv/.requirements"
fi
echo "[setup] ok"
