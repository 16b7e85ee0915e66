#!/usr/bin/env bash
# shardc-run on the FlatBuffers manifest: --dump-manifest prints it readably; an artifact of
# the first (JSON) format or a corrupt one gets a one-line error.
# Usage: manifest_cli_test.sh SHARDC_RUN SHARDC_TEST_ARTIFACT
set -euo pipefail
run=$1 fixture=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
"$fixture" write-collectives "$dir" 2
"$run" --dump-manifest "$dir/m.shardc" > "$dir/dump.txt"
for want in 'format_version: 4' 'name: "tp"' 'kind: all_reduce' 'storage: Arena' 'dtype: F32'; do
  grep -qF "$want" "$dir/dump.txt" || { echo "dump lacks '$want':"; cat "$dir/dump.txt"; exit 1; }
done
# The first format: version 1 in the header.
cp "$dir/m.shardc" "$dir/old.shardc"
printf '\001' | dd of="$dir/old.shardc" bs=1 seek=8 conv=notrunc status=none
for args in "$dir/old.shardc" "--dump-manifest $dir/old.shardc"; do
  if "$run" $args > "$dir/out.txt" 2> "$dir/err.txt"; then echo "old artifact accepted"; exit 1; fi
  [ "$(wc -l < "$dir/err.txt")" -eq 1 ] || { echo "not one line:"; cat "$dir/err.txt"; exit 1; }
  grep -qF "old.shardc: artifact format version 1, this runtime reads version 4 (recompile the model with this shardc)" "$dir/err.txt" ||
    { echo "unexpected error:"; cat "$dir/err.txt"; exit 1; }
done
# A flipped manifest byte: the checksum catches it.
cp "$dir/m.shardc" "$dir/bad.shardc"
printf '\377' | dd of="$dir/bad.shardc" bs=1 seek=60 conv=notrunc status=none
if "$run" --dump-manifest "$dir/bad.shardc" > /dev/null 2> "$dir/err.txt"; then echo "corrupt artifact dumped"; exit 1; fi
grep -qF "checksum mismatch in manifest" "$dir/err.txt" || { cat "$dir/err.txt"; exit 1; }
echo ok
