"""What the training checks (check_loss.py, check_grads.py, check_adamw.py) share: their common
command-line arguments and running shardc / shardc-run with a failure that prints their output.
numpy only, like the checks."""
import argparse
import pathlib
import subprocess
import sys


def arguments(doc):
    """The parser with the arguments every check takes; each adds its own."""
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--shardc", required=True)
    ap.add_argument("--shardc-run", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--name", required=True, help="the model's key prefix in the references")
    ap.add_argument("--mesh", default="dp_replicate=1,dp_shard=1,cp=1,tp=1")
    ap.add_argument("--ranks", type=int, default=1)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--references", default=str(pathlib.Path(__file__).with_name("references.npz")))
    return ap


def adamw_plan(meta, param_dtype="fp32"):
    """The train plan of the references' AdamW runs (meta_json: their hyperparameters and
    max_grad_norm), with `param_dtype` compute."""
    hyper = meta["adamw"]
    return (f"tp_plan: auto\nmp_policy: {{param_dtype: {param_dtype}, reduce_dtype: fp32, output_dtype: fp32}}\n"
            "mode: train\n"
            f"optimizer: {{name: adamw, lr: {hyper['lr']!r}, betas: [{hyper['betas'][0]!r}, {hyper['betas'][1]!r}], "
            f"eps: {hyper['eps']!r}, weight_decay: {hyper['weight_decay']!r}}}\n"
            f"max_grad_norm: {meta['max_grad_norm']!r}\n")


def run(cmd, timeout=280):
    """Runs `cmd` (paths allowed); on failure prints FAIL with its output and exits 1. Returns stdout."""
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        print(f"FAIL: {' '.join(map(str, cmd))} exited {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")
        sys.exit(1)
    return r.stdout
