"""Precompute the Layer experiments page's results for bundled images with trained weights.

    NST_WEIGHTS=../shared/weights/vgg16_hed_features_fp16.pth .venv/bin/python -m assets.make_experiments

Writes assets/experiments/<content>__<style>/<experiment>_<i>.jpg and index.json. Made once, so
every run is long and at 384 px (the page's own recompute is sized for class time): 300 Adam steps
for each reconstruction, the Fine preset (200 L-BFGS steps) for each stylization, as the gallery
(the Quick preset at 384 px had left Grace Hopper barely painted, so β seemed not to matter). Pass pair names
(content__style) to make only those, and NST_EXPERIMENTS=beta,weights to make only those experiments
(the others already in index.json are kept).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from nst_core import load_image, load_vgg, stylize
from dataclasses import replace

from nst_core.experiments import EXPERIMENTS, RECONSTRUCTION, series
from nst_core.transfer import preset_config

ASSETS = Path(__file__).resolve().parent
PAIRS = [("grace_hopper", "starry_night.jpg"), ("chelsea_cat", "the_scream.jpg")]
SIZE = 384
LONG_RECONSTRUCTION = replace(RECONSTRUCTION, size=SIZE, steps=300)
LONG_STYLIZATION = preset_config("Fine", size=SIZE)


def main(only: list[str]) -> None:
    weights = os.environ.get("NST_WEIGHTS")
    if not weights:
        sys.exit("set NST_WEIGHTS to a trained VGG features file (see README)")
    trained = load_vgg(None, weights)
    random = load_vgg(trained.arch, "random", seed=0)
    for content_name, style_file in PAIRS:
        pair = f"{content_name}__{Path(style_file).stem}"
        if only and pair not in only:
            continue
        content = load_image(ASSETS / "content" / f"{content_name}.jpg")
        style = load_image(ASSETS / "styles" / style_file)
        out = ASSETS / "experiments" / pair
        out.mkdir(parents=True, exist_ok=True)
        index_path = out / "index.json"
        index = json.loads(index_path.read_text()) if index_path.is_file() else {}
        wanted = os.environ.get("NST_EXPERIMENTS", ",".join(EXPERIMENTS)).split(",")
        for name in [n for n in EXPERIMENTS if n in wanted]:
            items = []
            for i, (label, cfg) in enumerate(series(name, reconstruction=LONG_RECONSTRUCTION,
                                                     stylization=LONG_STYLIZATION)):
                model = random if name == "weights" and label == "random" else trained
                t = time.perf_counter()
                image, history = stylize(content, style, cfg, model)
                path = out / f"{name}_{i}.jpg"
                image.save(path, quality=92)
                items.append({"file": path.name, "label": label, "seconds": round(time.perf_counter() - t, 1),
                              "network": model.description, "steps": cfg.steps, "size": cfg.size,
                              "optimizer": cfg.optimizer, "init": cfg.init, "tv_weight": cfg.tv_weight})
                print(f"{pair}/{name}/{label}: {items[-1]['seconds']} s", flush=True)
            index[name] = items
            index_path.write_text(json.dumps(index, indent=1))


if __name__ == "__main__":
    main(sys.argv[1:])
