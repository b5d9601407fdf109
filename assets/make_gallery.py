"""Precompute finished results for the bundled pairs, so a class sees one before pressing Run.

    NST_WEIGHTS=../shared/weights/vgg16_hed_features_fp16.pth .venv/bin/python -m assets.make_gallery

Writes assets/gallery/<content>__<style>.jpg and index.json (a caption per image naming the
weights and settings that made it). Made once, so they need not fit a lesson's budget: the Fine
preset at 384 px, a long converged run (about 1-2 minutes a pair on a 2-core CPU), where a
student's Run gives the Quick preset at 256 px in about 10 s. Pairs already made are skipped;
pass pair names (content__style) to redo those.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from nst_core import load_image, load_vgg, stylize
from nst_core.transfer import preset_config

ASSETS = Path(__file__).resolve().parent
OUT = ASSETS / "gallery"
PRESET = "Fine"
SIZE = 384


def main(only: list[str]) -> None:
    weights = os.environ.get("NST_WEIGHTS")
    if not weights:
        sys.exit("set NST_WEIGHTS to a trained VGG features file (see README)")
    model = load_vgg(None, weights)
    cfg = preset_config(PRESET, size=SIZE)
    OUT.mkdir(exist_ok=True)
    index_path = OUT / "index.json"
    index = json.loads(index_path.read_text()) if index_path.exists() else {}
    for c in sorted((ASSETS / "content").glob("*.jpg")):
        for s in sorted(p for p in (ASSETS / "styles").iterdir() if p.suffix in (".png", ".jpg")):
            stem = f"{c.stem}__{s.stem}"
            if (only and stem not in only) or (not only and (OUT / f"{stem}.jpg").exists()):
                continue
            t = time.perf_counter()
            img, _ = stylize(load_image(c), load_image(s), cfg, model)
            img.save(OUT / f"{stem}.jpg", quality=90)
            index[stem] = (f"{model.description}; {PRESET} preset ({cfg.steps} L-BFGS steps on {cfg.levels} levels, "
                           f"{SIZE} px, β = {cfg.beta:g})")
            index_path.write_text(json.dumps(index, indent=1, sort_keys=True))
            print(f"{stem}: {time.perf_counter() - t:.1f} s", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
