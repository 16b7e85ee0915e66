#!/usr/bin/env python3
"""kit2.sh's figures: for each bench shape, shardc's forward over graph replays (median and
best of --repeat) beside PyTorch's forward in each mode measured in the same call, the
kernel anchors beside PyTorch's GEMM and SDPA, and for each training shape shardc's training
step beside PyTorch's (tokens/s, MFU, the ratios).

  python3 bench/gpu/bench_report.py BENCH_DIR KIT_DIR [TRAIN_DIR]
BENCH_DIR holds <shape>.json (prepare.py: tokens, FLOPs, GEMM dtypes), TRAIN_DIR the training
shapes' <shape>.json (parameters, the FLOPs formula's terms); KIT_DIR the logs
(shardc-<shape>.txt, profile-<shape>.txt, train-<shape>.txt, torch-<shape>.jsonl,
kernels.jsonl).

MFU of a training step, as bench_torch.py computes it (so that the two compare): FLOPs per step
= 6·(P − V·H)·T + 6·L·B·S²·H, i.e. 3 × (2 FLOPs per non-embedding parameter and token, the
embedding lookup doing none, plus causal attention's half of QKᵀ and PV), over the H100 SXM's
989 TFLOP/s of dense bf16."""
import glob
import json
import os
import re
import sys


def jsonl(path):
    rows = []
    if os.path.exists(path):
        for line in open(path):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return rows


PEAK_TFLOPS = 989.0  # H100 SXM, dense bf16 (bench_torch.py's mfu_vs_989)
# Issue 11's anchors for the 1b training step, measured on an H100 by bench_torch.py (tok/s):
# printed beside this call's ratios, never instead of them.
ANCHORS_1B = {"eager": 45.0e3, "compile": 56.2e3}


def train_flops(info):
    """bench_torch.py's training FLOPs per step (the module docstring)."""
    b, s, layers, h = info["batch"], info["seq"], info["layers"], info["hidden"]
    return 6 * (info["params"] - info["embedding_params"]) * info["tokens"] + 6 * layers * b * s * s * h


def report_train(train, kit):
    for info_path in sorted(glob.glob(os.path.join(train, "*.json"))):
        info = json.load(open(info_path))
        name = info["shape"]
        log = os.path.join(kit, f"train-{name}.txt")
        text = open(log).read() if os.path.exists(log) else ""
        m = re.search(r"timed steps: (\d+) \(runs (\d+) to (\d+)\), mean ([0-9.]+) ms, median ([0-9.]+) ms, "
                      r"best ([0-9.]+) ms", text)
        if not m:
            err = [l for l in text.splitlines() if "error" in l]
            print(f"shardc {name} train step: failed: {(err or text.splitlines()[-1:] or ['no output'])[-1][:200]}")
            continue
        timed, first, mean, median, best = int(m[1]), int(m[2]), float(m[4]), float(m[5]), float(m[6])
        losses = [float(x) for x in re.findall(r"^step \d+ loss (\S+)", text, re.M)]
        trend = f"{losses[0]:.4f} -> {losses[-1]:.4f}" if losses else "not printed"
        tok_s, flops = info["tokens"] / (mean / 1e3), train_flops(info)
        tflops = flops / (mean / 1e3) / 1e12
        gemm = ", ".join(f"{n} {d}" for d, n in sorted(info["gemm_dtypes"].items())) or "none"
        print(f"shardc {name} train step: mean {mean:.3f} ms, median {median:.3f} ms, best {best:.3f} ms over {timed} "
              f"steps (runs {first} on); {tok_s:,.0f} tok/s; {tflops:.1f} TFLOP/s, MFU {tflops / PEAK_TFLOPS:.1%} "
              f"(6·(P−V·H)·T + 6·L·B·S²·H = {flops / 1e12:.2f} TFLOP a step; shardc's own count "
              f"{info['flops_counted'] / (mean / 1e3) / 1e12:.1f} TFLOP/s); {info['params'] / 1e6:.1f} M parameters; "
              f"GEMMs: {gemm}; loss {trend}")
        rows = [r for r in jsonl(os.path.join(kit, f"torch-{name}.jsonl"))
                if r.get("what") == f"llama_{name}_train_step" and "tok_s" in r]
        for r in rows:
            print(f"  pytorch {r['mode']:16s} train step {r['tok_s']:11,.0f} tok/s, MFU {r['mfu_vs_989']:.1%}; "
                  f"shardc / pytorch {r['mode']}: {tok_s / r['tok_s']:.3f}")
        compiled = [r for r in rows if r["mode"] == "compile"]
        if compiled:
            ratio = tok_s / compiled[0]["tok_s"]
            print(f"shardc {name} train step / torch.compile: {ratio:.3f} (target 1.0: {'met' if ratio >= 1.0 else 'not met'})")
        else:
            print(f"shardc {name} train step: no torch.compile training step measured in this call (see torch-{name}.err)")
        if name == "1b":
            print("  the issue's H100 anchors (not this call): " + ", ".join(
                f"{mode} {tok / 1e3:.1f}k tok/s, shardc / {mode} {tok_s / tok:.3f}" for mode, tok in ANCHORS_1B.items()))


def main():
    bench, kit = sys.argv[1], sys.argv[2]
    torch_rows = []
    for info_path in sorted(glob.glob(os.path.join(bench, "*.json"))):
        info = json.load(open(info_path))
        name = info["shape"]
        text = open(os.path.join(kit, f"shardc-{name}.txt")).read() if os.path.exists(
            os.path.join(kit, f"shardc-{name}.txt")) else ""
        m = re.search(r"timing: (\d+) runs timed alone .*?median ([0-9.]+) ms, best ([0-9.]+) ms", text)
        gemm = ", ".join(f"{n} {d}" for d, n in sorted(info["gemm_dtypes"].items())) or "none"
        if not m:
            err = [l for l in text.splitlines() if "error" in l]
            print(f"shardc {name}: failed: {(err or text.splitlines()[-1:] or ['no output'])[-1][:200]}")
            continue
        runs, median, best = int(m[1]), float(m[2]), float(m[3])
        tok_s = info["tokens"] / (median / 1e3)
        print(f"shardc {name} forward: median {median:.3f} ms, best {best:.3f} ms over {runs} timed runs (graph replays on a GPU); "
              f"{tok_s:,.0f} tok/s; {info['flops'] / (median / 1e3) / 1e12:.1f} TFLOP/s; GEMMs: {gemm}")
        rows = jsonl(os.path.join(kit, f"torch-{name}.jsonl"))
        torch_rows += rows
        fwd = [r for r in rows if r.get("what") == f"llama_{name}_forward" and "tok_s" in r]
        for r in fwd:
            print(f"  pytorch {r['mode']:16s} forward {r['tok_s']:14,.0f} tok/s ({r['s'] * 1e3:.3f} ms)")
        for r in rows:
            if "error" in r:
                print(f"  pytorch {r.get('mode')}: {r['error'][:160]}")
        if fwd:
            top = max(fwd, key=lambda r: r["tok_s"])
            print(f"shardc {name} forward / best PyTorch mode measured ({top['mode']}): {tok_s / top['tok_s']:.3f}")
        else:
            print(f"shardc {name}: no PyTorch forward measured in this call (see torch-{name}.err)")
        prof = os.path.join(kit, f"profile-{name}.txt")
        if os.path.exists(prof) and os.path.getsize(prof):
            print(open(prof).read().rstrip())
    ours = {r["what"]: r for r in jsonl(os.path.join(kit, "kernels.jsonl")) if "what" in r}
    theirs = {}
    for r in torch_rows:
        theirs.setdefault(r.get("what"), r)
    for mine, other, label in [("flash_fwd_causal_b4_h32_s2048_d64", "sdpa_fwd_causal_b4_h32_s2048_d64",
                                "attention (causal, b4 h32 s2048 d64, bf16)"),
                               ("cublaslt_gemm_bf16_8192", "gemm_bf16_8192", "bf16 GEMM 8192^3")]:
        a, b = ours.get(mine, {}).get("tflops"), theirs.get(other, {}).get("tflops")
        ratio = f"{a / b:.3f}" if a and b else "n/a"
        print(f"{label}: shardc {a if a else 'n/a'} TFLOP/s, PyTorch {round(b, 2) if b else 'n/a'} TFLOP/s, ratio {ratio}")
    if len(sys.argv) > 3:
        report_train(sys.argv[3], kit)


if __name__ == "__main__":
    main()
