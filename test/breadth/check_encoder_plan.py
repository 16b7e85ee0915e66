#!/usr/bin/env python3
"""The derived `tp_plan: auto` of an encoder is what its structure says: `shardc plan --explain`
finds the expected attention blocks and MLPs and shards the expected number of linears
colwise and rowwise (the rest replicated). A model whose attention stops being raised still
runs correctly replicated, so the e2e.encoders numbers alone would not notice.

  check_encoder_plan.py --shardc BIN --model M.onnx --expect attention=2,mlp=2,colwise=8,rowwise=4,replicated=0
                        [--mesh tp=4] [--shardc-arg=--input-shape=input_ids=3x16 ...]

The decoders of test/breadth/export_models.py use it too (packed_colwise counted as its own
style), so that a fused projection falling back to replicated fails a test.
"""
import argparse
import re
import subprocess
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--expect", required=True, help="attention=N,mlp=N,colwise=N,rowwise=N,replicated=N[,packed_colwise=N]")
    ap.add_argument("--mesh", default="tp=2")
    ap.add_argument("--shardc-arg", action="append", default=[])
    args = ap.parse_args()
    want = {k: int(v) for k, v in (kv.split("=") for kv in args.expect.split(","))}
    cmd = [args.shardc, "plan", args.model, "--explain", "--mesh", args.mesh] + args.shardc_arg
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if p.returncode != 0:
        print(f"FAIL: {' '.join(cmd)} exited {p.returncode}:\n{p.stdout}")
        return 1
    got = {"colwise": 0, "rowwise": 0, "replicated": 0}
    m = re.search(r"derived from the raised graph: (\d+) attention block\(s\), (\d+) MLP\(s\)", p.stdout)
    if not m:
        print(f"FAIL: no derivation line in:\n{p.stdout}")
        return 1
    got["attention"], got["mlp"] = int(m.group(1)), int(m.group(2))
    section = None
    for line in p.stdout.splitlines():
        if re.match(r"^# \w+:$", line):
            section = line[2:-1]
            continue
        lm = re.match(r"^#   (\S+): ([a-z_ ]+?): ", line)
        if section == "linears" and lm:
            style = "replicated" if lm.group(2) == "not sharded" else lm.group(2)
            got[style] = got.get(style, 0) + 1
    bad = {k: (got.get(k, 0), v) for k, v in want.items() if got.get(k, 0) != v}
    print("derived: " + ", ".join(f"{k}={v}" for k, v in sorted(got.items())))
    if bad:
        print("FAIL: " + "; ".join(f"{k}: got {g}, want {w}" for k, (g, w) in sorted(bad.items())))
        print(p.stdout)
        return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
