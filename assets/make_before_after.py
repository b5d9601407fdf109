"""The speed work in one picture pair: the plain loop the project started from against the default
preset, same pair, same network, same size, each with its time and its cost under one judge.

    NST_WEIGHTS=../shared/weights/vgg16_hed_features_fp16.pth .venv/bin/python -m assets.make_before_after

Writes assets/before_after/{before,after}.jpg and index.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from nst_core import TransferConfig, load_image, load_vgg, stylize
from nst_core.transfer import DEFAULT_PRESET, evaluate, preset_config

ASSETS = Path(__file__).resolve().parent
OUT = ASSETS / "before_after"
SIZE = 256
CONTENT, STYLE = ASSETS / "content" / "chelsea_cat.jpg", ASSETS / "styles" / "flow_brush.png"
# The engine's first default: one scale, Adam at lr 0.02, 200 steps.
BEFORE = TransferConfig(size=SIZE, steps=200, optimizer="adam", lr=0.02, levels=1)


def main() -> None:
    weights = os.environ.get("NST_WEIGHTS")
    if not weights:
        sys.exit("set NST_WEIGHTS to a trained VGG features file (see README)")
    model = load_vgg(None, weights)
    content, style = load_image(CONTENT), load_image(STYLE)
    judge = TransferConfig(size=SIZE)  # the default layers, α = 1, β = 5, balanced
    OUT.mkdir(exist_ok=True)
    index = {}
    after = preset_config(size=SIZE)
    for name, cfg, words in [("before", BEFORE, "plain loop: one scale, Adam lr 0.02, 200 steps"),
                             ("after", after, f"{DEFAULT_PRESET} preset: {after.levels} coarse-to-fine levels, "
                                              f"Adam lr {after.lr:g}, {after.steps} steps")]:
        t = time.perf_counter()
        img, _ = stylize(content, style, cfg, model)
        seconds = time.perf_counter() - t
        img.save(OUT / f"{name}.jpg", quality=90)
        cost = evaluate(img, content, style, judge, model)["total"]
        index[name] = {"settings": words, "seconds": round(seconds, 1), "judged_cost": round(cost, 4),
                       "network": model.description, "size": SIZE}
        print(f"{name}: {words}: {seconds:.1f} s, cost {cost:.4g}", flush=True)
    (OUT / "index.json").write_text(json.dumps(index, indent=1))


if __name__ == "__main__":
    main()
