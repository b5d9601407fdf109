"""Resident size of a server process over a series of runs, with or without handing freed memory
back to the system after each run (memory.trim_after_run): does the process grow, and does the
trim help? Runs go through LocalBackend as the app's do, each one different (seed, size).

    .venv/bin/python scripts/measure_rss_growth.py --weights ../shared/weights/vgg16_hed_features_fp16.pth \
        --runs 12 --sizes 192 256 384 --steps 10 [--trim]
"""

from __future__ import annotations

import argparse
import glob
import json
import time
from dataclasses import replace

from PIL import Image

from nst_core.serve import LocalBackend, NetworkSpec, RunRequest
from nst_core.serve import memory
from nst_core.transfer import preset_config


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--runs", type=int, default=12)
    ap.add_argument("--sizes", type=int, nargs="+", default=[192, 256, 384])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--trim", action="store_true")
    args = ap.parse_args()
    spec = NetworkSpec("vgg16", args.weights)
    backend = LocalBackend()
    model = backend._load_model(spec)
    spec = NetworkSpec.of(model, weights=args.weights)
    content = Image.open(sorted(glob.glob("assets/content/*"))[0]).convert("RGB")
    style = Image.open(sorted(glob.glob("assets/styles/*"))[0]).convert("RGB")
    rows = [{"run": 0, "rss_mb": round(memory.resident_mb())}]
    for i in range(args.runs):
        cfg = replace(preset_config("Quick"), steps=args.steps, size=args.sizes[i % len(args.sizes)], seed=i,
                      init="noise")
        handle = backend.start(RunRequest(content, (style,), cfg, spec, f"s{i}"))
        version = -1
        while True:
            view = handle.wait(version, timeout=0.5)
            version = view.version
            if view.finished:
                break
        handle.leave()
        time.sleep(0.2)
        if args.trim:
            memory.trim_after_run(force=True)
        rows.append({"run": i + 1, "size": cfg.size, "state": str(view.state), "rss_mb": round(memory.resident_mb())})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"trim": args.trim, "first": rows[0]["rss_mb"], "peak": max(r["rss_mb"] for r in rows),
                      "last": rows[-1]["rss_mb"]}))


if __name__ == "__main__":
    main()
