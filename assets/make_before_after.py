"""The convergence work in pictures: the app's previous default against its default now, on two
bundled pairs, same network, same size, each with its time and its cost under one judge.

    NST_WEIGHTS=../shared/weights/vgg16_hed_features_fp16.pth .venv/bin/python -m assets.make_before_after

Writes assets/before_after/<content>__<style>_{before,after}.jpg and index.json.
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
PAIRS = [("chelsea_cat", "starry_night.jpg"), ("grace_hopper", "the_scream.jpg")]
# The previous default: 40 Adam steps at lr 0.03 on two levels, the finer one starting from the
# coarse result enlarged, in float32.
BEFORE = dict(steps=40, levels=2, optimizer="adam", lr=0.03, precision="fp32")


def main() -> None:
    weights = os.environ.get("NST_WEIGHTS")
    if not weights:
        sys.exit("set NST_WEIGHTS to a trained VGG features file (see README)")
    model = load_vgg(None, weights)
    judge = TransferConfig(size=SIZE, precision="fp32")  # the default objective: α = 1, β = 5, balanced
    OUT.mkdir(exist_ok=True)
    for old in OUT.glob("*.jpg"):
        old.unlink()
    index = {}
    after = preset_config(size=SIZE)
    for content_name, style_file in PAIRS:
        content, style = load_image(ASSETS / "content" / f"{content_name}.jpg"), load_image(ASSETS / "styles" / style_file)
        pair = f"{content_name}__{Path(style_file).stem}"
        for name, cfg, words in [
                ("before", TransferConfig(size=SIZE, **BEFORE), "previous default: Adam lr 0.03, 40 steps, 2 levels, float32"),
                ("after", after, f"{DEFAULT_PRESET} preset now: L-BFGS, {after.steps} steps, {after.levels} levels, "
                                 f"{model.precision_label(after.precision)}")]:
            t = time.perf_counter()
            img, _ = stylize(content, style, cfg, model)
            seconds = time.perf_counter() - t
            img.save(OUT / f"{pair}_{name}.jpg", quality=90)
            cost = evaluate(img, content, style, judge, model)["total"]
            index[f"{pair}_{name}"] = {"settings": words, "seconds": round(seconds, 1), "judged_cost": round(cost, 4),
                                       "network": model.description, "size": SIZE}
            print(f"{pair} {name}: {words}: {seconds:.1f} s, cost {cost:.4g}", flush=True)
    (OUT / "index.json").write_text(json.dumps(index, indent=1))


if __name__ == "__main__":
    main()
