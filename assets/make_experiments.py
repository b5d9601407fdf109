"""Precompute the Layer experiments page's results for bundled images with trained weights.

    NST_WEIGHTS=../shared/weights/vgg16_hed_features_fp16.pth .venv/bin/python -m assets.make_experiments

Writes assets/experiments/<content>__<style>/<experiment>_<i>.jpg and index.json.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from nst_core import load_image, load_vgg, stylize
from nst_core.experiments import EXPERIMENTS, series

ASSETS = Path(__file__).resolve().parent
PAIRS = [("chelsea_cat", "flow_brush"), ("grace_hopper", "stained_glass")]


def main() -> None:
    weights = os.environ.get("NST_WEIGHTS")
    if not weights:
        sys.exit("set NST_WEIGHTS to a trained VGG features file (see README)")
    trained = load_vgg(None, weights)
    random = load_vgg(trained.arch, "random", seed=0)
    for content_name, style_name in PAIRS:
        content = load_image(ASSETS / "content" / f"{content_name}.jpg")
        style = load_image(ASSETS / "styles" / f"{style_name}.png")
        out = ASSETS / "experiments" / f"{content_name}__{style_name}"
        out.mkdir(parents=True, exist_ok=True)
        index = {}
        for name in EXPERIMENTS:
            items = []
            for i, (label, cfg) in enumerate(series(name)):
                model = random if name == "weights" and label == "random" else trained
                t = time.perf_counter()
                image, history = stylize(content, style, cfg, model)
                path = out / f"{name}_{i}.jpg"
                image.save(path, quality=92)
                items.append({"file": path.name, "label": label, "seconds": round(time.perf_counter() - t, 1),
                              "network": model.description, "steps": cfg.steps, "size": cfg.size,
                              "optimizer": cfg.optimizer})
                print(f"{content_name}/{name}/{label}: {items[-1]['seconds']} s", flush=True)
            index[name] = items
            (out / "index.json").write_text(json.dumps(index, indent=1))


if __name__ == "__main__":
    main()
