#!/usr/bin/env python3
"""The expert-parallel backward in a training artifact (docs/moe.md#training).

    check_ep_backward.py --shardc B --shardc-run R --artifact A.shardc --layers N [--ep-shard]

Passes when the artifact runs each MoE layer's backward as a dispatch (moe_grouped_gemm_grad
steps, no moe_experts_grad, and more moe_dispatch / moe_combine collectives in the backward
than the forward's) and gathers nothing over ep (the expert stacks stay split). With
--ep-shard (ep_shard > 1: the stacks FSDP-stored over ep_shard) the forward must gather the
stacks over ep_shard and the backward reduce-scatter each layer's two expert gradients over
ep_shard only. Prints the step's collective payload and ring wire bytes per rank (shardc report).
"""
import argparse
import json
import subprocess
import sys

ap = argparse.ArgumentParser()
ap.add_argument("--shardc", required=True)
ap.add_argument("--shardc-run", required=True)
ap.add_argument("--artifact", required=True)
ap.add_argument("--layers", type=int, required=True, help="MoE layers of the model")
ap.add_argument("--ep-shard", action="store_true", help="the stacks are stored over ep_shard (ep_shard > 1)")
args = ap.parse_args()

report = json.loads(subprocess.run([args.shardc, "report", args.artifact, "--json"], check=True,
                                   capture_output=True, text=True).stdout)
manifest = subprocess.run([args.shardc_run, args.artifact, "--dump-manifest"], check=True, capture_output=True,
                          text=True).stdout
ok = True


def check(cond, what):
    global ok
    ok &= bool(cond)
    print(f"{'PASS' if cond else 'FAIL'} {what}")


grads = manifest.count("kind: moe_grouped_gemm_grad,")
check(grads == args.layers, f"{grads} moe_grouped_gemm_grad steps, one per MoE layer ({args.layers})")
check("kind: moe_experts_grad," not in manifest, "no moe_experts_grad step")
colls = report["collectives"]
back = [c for c in colls if c["phase"] == "backward" and c["kind"] in ("moe_dispatch", "moe_combine")]
# Per layer: x's, dy's and the weights' rows dispatched, the rows' dx and dweights combined.
check(len(back) == 5 * args.layers, f"{len(back)} moe_dispatch / moe_combine collectives in the backward "
      f"(5 per layer expected)")
gathers = [c for c in colls if c["kind"] == "all_gather" and "ep" in c["axes"].split(",")]
check(not gathers, f"no all_gather over ep ({len(gathers)} found: {[c['loc'] for c in gathers]})")
if args.ep_shard:
    fwd = [c for c in colls if c["phase"] == "forward" and c["kind"] == "all_gather" and c["axes"] == "ep_shard"]
    check(fwd, f"{len(fwd)} all_gather over ep_shard in the forward (the stored expert stacks)")
    rs = [c for c in colls if c["phase"] == "backward" and c["kind"] == "reduce_scatter" and c["axes"] == "ep_shard"]
    check(len(rs) == 2 * args.layers, f"{len(rs)} reduce_scatter over ep_shard alone in the backward "
          f"(the expert gradients: 2 per layer expected)")
print(f"collectives per rank per step: payload {report['collective_bytes']} bytes, "
      f"ring wire {report['ring_wire_bytes']} bytes")
sys.exit(0 if ok else 1)
