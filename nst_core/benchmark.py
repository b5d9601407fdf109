"""``python -m nst_core benchmark``: seconds per step, measured, never asserted in tests.

For each size it times a bare forward+backward (gradient with respect to the input only) through
the network cut at the deepest default layer, then the same number of steps of :func:`run`, and
reports their ratio: what the costs, Gram matrices, optimizer and bookkeeping add.
"""

from __future__ import annotations

import json
import platform
import resource
import time

import torch

from .model import load_vgg, resolve_device, step_gflop
from .transfer import TransferConfig, run


def _bare_step_seconds(model, layers, size, steps) -> float:
    x = torch.rand(1, 3, *size, device=model.mean.device, requires_grad=True)
    times = []
    for _ in range(steps + 1):  # the first pass warms up allocators and kernels
        t = time.perf_counter()
        acts = model.extract(x, layers)
        sum(a.sum() for a in acts.values()).backward()
        x.grad = None
        times.append(time.perf_counter() - t)
    return sorted(times[1:])[len(times[1:]) // 2]


def _run_step_seconds(model, size, steps) -> float:
    img = torch.rand(1, 3, *size)
    cfg = TransferConfig(size=max(size), steps=steps + 1, snapshot_every=10**9)
    stamps = [rec.elapsed for rec in run(img, img, cfg, model) if rec.status == "running"]
    deltas = [b - a for a, b in zip(stamps, stamps[1:])]
    return sorted(deltas)[len(deltas) // 2]


def measure(arch: str, weights: str, sizes, steps: int, device="auto") -> dict:
    device = resolve_device(device)
    model = load_vgg(arch, weights, device=device)
    cfg = TransferConfig()
    rows = []
    for side in sizes:
        size = (side, side)
        bare = _bare_step_seconds(model, cfg.layers, size, steps)
        full = _run_step_seconds(model, size, steps)
        rows.append({"size": side, "bare_fwd_bwd_s": round(bare, 4), "run_step_s": round(full, 4),
                     "overhead_ratio": round(full / bare, 3),
                     "gflop_per_step": round(step_gflop(arch, cfg.layers, size), 1)})
    return {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads, {platform.processor() or 'cpu'}",
        "device": str(device), "torch": torch.__version__, "network": model.description,
        "layers": cfg.layers, "steps_timed": steps, "rows": rows,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main(args) -> int:
    result = measure(args.arch, args.weights, args.sizes, args.steps)
    print(f"{result['network']} on {result['device']} ({result['machine']}), torch {result['torch']}")
    print(f"{'size':>6} {'bare fwd+bwd s':>15} {'run() step s':>13} {'overhead':>9} {'GFLOP':>7}")
    for r in result["rows"]:
        print(f"{r['size']:>6} {r['bare_fwd_bwd_s']:>15.3f} {r['run_step_s']:>13.3f} "
              f"{r['overhead_ratio']:>8.2f}× {r['gflop_per_step']:>7.0f}")
    print(f"peak RSS {result['peak_rss_mb']} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
    return 0
