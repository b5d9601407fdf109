"""Measure how much memory one run of the optimization loop adds to the process, at a few sizes.

The memory budget (nst_core.serve.memory) admits runs against an estimate of this figure. Each size runs
in a fresh process so its peak (VmHWM in /proc/self/status) starts clean; the figure is the peak
after a few steps minus the resident size just before the run, with the network already loaded.

    .venv/bin/python scripts/measure_run_memory.py [--sizes 128 256 384] [--steps 3] [--optimizer adam] [--precision fp32]

Prints one line per size and the per-megapixel coefficient fitted through them (least squares).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, torch
from nst_core import load_vgg
from nst_core.benchmark import peak_rss_mb
from nst_core.serve.memory import resident_mb
from nst_core.model import configure_threads
from nst_core.transfer import TransferConfig, run
configure_threads()
size, steps, optimizer, arch, precision = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
model = load_vgg(arch, "random", seed=0)
content = torch.rand(1, 3, size, size)
style = torch.rand(1, 3, size, size)
cfg = TransferConfig(size=size, steps=steps, optimizer=optimizer, levels=1, snapshot_every=1, precision=precision)
before = resident_mb()
between = []
for rec in run(content, style, cfg, model):
    between.append(resident_mb())
print(json.dumps({"precision": model.compute_precision(precision), "size": size, "before": before, "peak": peak_rss_mb(), "between": between}))
"""


def measure(size: int, steps: int, optimizer: str, arch: str, precision: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(size), str(steps), optimizer, arch, precision],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 384])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--optimizer", default="adam", choices=("adam", "lbfgs"))
    parser.add_argument("--arch", default="vgg19")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16"))
    args = parser.parse_args()
    points = []
    for size in args.sizes:
        r = measure(size, args.steps, args.optimizer, args.arch, args.precision)
        added = r["peak"] - r["before"]
        mpx = size * size / 1e6
        points.append((mpx, added))
        print(f"{size} px ({mpx:.3f} MP): RSS before {r['before']:.0f} MB, peak {r['peak']:.0f} MB, "
              f"added {added:.0f} MB; RSS between steps {', '.join(f'{b:.0f}' for b in r['between'])} MB")
    n = len(points)
    if n < 2:
        return
    mx = sum(p[0] for p in points) / n
    my = sum(p[1] for p in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    print(f"fit: {slope:.0f} MB per megapixel + {my - slope * mx:.0f} MB ({args.optimizer}, {args.arch}, {r['precision']})")


if __name__ == "__main__":
    main()
