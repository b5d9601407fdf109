"""Run a preset on bundled pairs and lay the results out on one sheet, for the by-eye check that the
default looks finished on every pair (issue: "every picture the app shows is a finished picture").

    .venv/bin/python -m scripts.contact_sheet --size 384 --styles starry_night,great_wave -o test-output/sheet.jpg

Rows are content photos, columns styles; each cell is captioned with its seconds and final cost
share, and the style image heads its column. Nothing here is asserted: a person looks at the sheet.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from PIL import Image, ImageDraw

from nst_core import load_image, load_vgg, stylize
from nst_core.transfer import DEFAULT_PRESET, preset_config

ASSETS = Path(__file__).resolve().parent.parent / "assets"
WEIGHTS = "../shared/weights/vgg16_hed_features_fp16.pth"
CELL = 256


def _thumb(img: Image.Image) -> Image.Image:
    img = img.convert("RGB")
    img.thumbnail((CELL, CELL))
    return img


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--preset", default=DEFAULT_PRESET)
    p.add_argument("--contents", default="", help="comma-separated stems (default: every bundled photo)")
    p.add_argument("--styles", default="", help="comma-separated stems (default: every bundled style)")
    p.add_argument("--weights", default=WEIGHTS)
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                   help="override a TransferConfig field of the preset (JSON value), e.g. --set steps=120")
    p.add_argument("-o", "--out", default="test-output/contact_sheet.jpg")
    args = p.parse_args()

    def pick(folder: str, names: str) -> list[Path]:
        files = sorted(f for f in (ASSETS / folder).iterdir() if f.suffix in (".jpg", ".png"))
        wanted = [n for n in names.split(",") if n]
        return [f for f in files if not wanted or f.stem in wanted]

    contents, styles = pick("content", args.contents), pick("styles", args.styles)
    model = load_vgg(None, args.weights)
    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = preset_config(args.preset, size=args.size, **overrides)
    label_h = 18
    sheet = Image.new("RGB", ((len(styles) + 1) * CELL, (len(contents) + 1) * (CELL + label_h)), "white")
    draw = ImageDraw.Draw(sheet)
    for j, s in enumerate(styles, start=1):
        sheet.paste(_thumb(load_image(s)), (j * CELL, 0))
        draw.text((j * CELL + 4, CELL + 2), s.stem, fill="black")
    for i, c in enumerate(contents, start=1):
        y = i * (CELL + label_h)
        sheet.paste(_thumb(load_image(c)), (0, y))
        draw.text((4, y + CELL + 2), c.stem, fill="black")
        for j, s in enumerate(styles, start=1):
            t = time.perf_counter()
            img, records = stylize(load_image(c), load_image(s), cfg, model)
            seconds = time.perf_counter() - t
            last = records[-1]
            sheet.paste(_thumb(img), (j * CELL, y))
            draw.text((j * CELL + 4, y + CELL + 2),
                      f"{seconds:.0f} s, style {last.style / max(last.total, 1e-30):.0%} of J", fill="black")
            print(f"{c.stem}__{s.stem}: {seconds:.1f} s, J {last.total:.4g}", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        sheet.save(args.out, quality=88)  # after each row, so a long sheet can be looked at early
    print(f"{model.description}; {args.preset} {overrides or ''} at {args.size} px -> {args.out}")


if __name__ == "__main__":
    main()
