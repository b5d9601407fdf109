"""Measure how much memory decoding one huge upload adds to the process, per kind of file.

Each case runs ``nst_core.images.load_image`` in a fresh process, so nothing decoded before can hide
or add to its peak. The child resets its peak resident size (``5`` to /proc/self/clear_refs) once the
file's bytes are in memory, decodes them, and reports VmHWM after minus VmRSS before: the most the
decode ever held at once. Where the reset is not allowed it says so, and the peak is then compared
with VmHWM before the decode (a lower bound).

    .venv/bin/python scripts/measure_decode_memory.py [--root /path/to/a/checkout] [--repeat 1] [--max-side N]

``--root`` picks whose ``nst_core`` is measured, so one command compares two branches; ``--max-side``
separates what decoding in parts saves from what a smaller working side saves.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, sys, time
import psutil
from nst_core.benchmark import peak_rss_mb
from nst_core.images import load_image

data = open(sys.argv[1], "rb").read()
kwargs = {"max_side": int(sys.argv[2])} if len(sys.argv) > 2 else {}
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    reset = True
except OSError:
    reset = False
before_rss, before_hwm = psutil.Process().memory_info().rss / 2**20, peak_rss_mb()
t0 = time.perf_counter()
img = load_image(data, **kwargs)
seconds = time.perf_counter() - t0
after_hwm = peak_rss_mb()
print(json.dumps({"reset": reset, "before_rss": before_rss, "before_hwm": before_hwm,
                  "after_hwm": after_hwm, "seconds": seconds, "size": list(img.size)}))
"""


def _gradient(w: int, h: int, channels: int) -> Image.Image:
    """A smooth gradient with a mild pattern: a stand-in photo that still compresses under 10 MB."""
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None]
    bands = [x + 0 * y, y + 0 * x, (x + y) / 2]
    if channels == 4:
        bands.append(np.broadcast_to(np.where(x > 127, 255, 80).astype(np.float32), (h, w)))
    arr = np.stack([b.astype(np.uint8) for b in bands], -1)
    return Image.fromarray(arr, "RGBA" if channels == 4 else "RGB")


def make_cases(folder: Path) -> dict[str, Path]:
    """The files measured: ~40-megapixel photos in each format, and the flat 39.7 Mpx PNG bomb."""
    w, h = 7744, 5164  # 40.0 Mpx, a 3:2 photo
    cases = {
        "jpeg_40mpx": (_gradient(w, h, 3), "JPEG", {"quality": 85}),
        "png_rgb_40mpx": (_gradient(w, h, 3), "PNG", {"compress_level": 6}),
        "png_rgba_40mpx": (_gradient(w, h, 4), "PNG", {"compress_level": 6}),
        "png_flat_39.7mpx": (Image.new("RGB", (7000, 5670), (120, 160, 200)), "PNG", {"compress_level": 9}),
    }
    paths = {}
    for name, (img, fmt, kw) in cases.items():
        buf = io.BytesIO()
        img.save(buf, fmt, **kw)
        path = folder / f"{name}.{fmt.lower()}"
        path.write_bytes(buf.getvalue())
        paths[name] = path
    return paths


def measure(root: Path, path: Path, max_side: int | None) -> dict:
    extra = [str(max_side)] if max_side else []
    out = subprocess.run([sys.executable, "-c", CHILD, str(path), *extra], cwd=root, capture_output=True,
                         text=True)
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["exit %d" % out.returncode])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="checkout whose nst_core is measured")
    parser.add_argument("--repeat", type=int, default=1, help="fresh processes per case; the median is shown")
    parser.add_argument("--max-side", type=int, default=None,
                        help="pass load_image(max_side=...) (only where that checkout's load_image takes it)")
    args = parser.parse_args()
    print(f"nst_core from {args.root.resolve()}" + (f", max_side={args.max_side}" if args.max_side else ""))
    print(f"{'case':<18} {'file':>9} {'pixels':>11} {'result':>10} {'peak added':>11} {'time':>7}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, path in make_cases(Path(tmp)).items():
            with Image.open(path) as im:
                pixels = f"{im.width}x{im.height}"
            runs = [measure(args.root, path, args.max_side) for _ in range(args.repeat)]
            size = f"{path.stat().st_size / 1024:.0f} KB"
            if "error" in runs[0]:
                print(f"{name:<18} {size:>9} {pixels:>11}  refused: {runs[0]['error']}")
                continue
            added = statistics.median(r["after_hwm"] - (r["before_rss"] if r["reset"] else r["before_hwm"]) for r in runs)
            seconds = statistics.median(r["seconds"] for r in runs)
            result = "x".join(map(str, runs[0]["size"]))
            note = "" if runs[0]["reset"] else "  (peak not reset: lower bound)"
            print(f"{name:<18} {size:>9} {pixels:>11} {result:>10} {added:>8.0f} MB {seconds:>6.2f}s{note}")


if __name__ == "__main__":
    main()
