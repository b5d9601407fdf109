"""Generate the bundled style artworks with code, from fixed seeds, so they carry no licence burden.

Run ``python assets/make_styles.py`` to rewrite ``assets/styles/*.png``. Each piece has one strong,
distinct visual signature, so students can tell the styles apart in the results.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

SIZE = 384
OUT = Path(__file__).parent / "styles"


def _smooth_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """Low-frequency noise: random values on a coarse grid, bicubically upsampled."""
    grid = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
    return np.asarray(img, dtype=np.float32) / 255.0


def flow_brush(seed: int = 1) -> Image.Image:
    """Short thick brush strokes that follow a swirling flow field, in a night-sky palette."""
    rng = np.random.default_rng(seed)
    angle = _smooth_noise(rng, SIZE, 5) * 4 * np.pi
    palette = [(18, 38, 92), (36, 78, 160), (80, 140, 210), (240, 200, 60), (250, 240, 170), (20, 60, 70)]
    img = Image.new("RGB", (SIZE, SIZE), palette[0])
    draw = ImageDraw.Draw(img)
    for _ in range(5000):
        x, y = rng.uniform(0, SIZE, 2)
        color = palette[rng.choice(len(palette), p=[.15, .3, .25, .1, .08, .12])]
        pts = [(x, y)]
        for _ in range(8):
            a = angle[int(y) % SIZE, int(x) % SIZE]
            x, y = x + 3 * np.cos(a), y + 3 * np.sin(a)
            pts.append((x, y))
        draw.line(pts, fill=tuple(int(c) for c in color), width=int(rng.integers(3, 6)))
    return img


def stained_glass(seed: int = 2) -> Image.Image:
    """Voronoi cells of saturated colour separated by dark lead lines."""
    rng = np.random.default_rng(seed)
    n = 90
    sites = rng.uniform(0, SIZE, (n, 2))
    colors = np.array([(200, 30, 40), (30, 90, 200), (240, 190, 30), (30, 150, 70), (140, 40, 160),
                       (230, 110, 20), (60, 180, 200)])[rng.integers(0, 7, n)]
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    d = (xx[..., None] - sites[:, 0]) ** 2 + (yy[..., None] - sites[:, 1]) ** 2
    order = np.argsort(d, axis=-1)
    nearest = order[..., 0]
    d_sorted = np.take_along_axis(d, order[..., :2], -1)
    edge = np.sqrt(d_sorted[..., 1]) - np.sqrt(d_sorted[..., 0]) < 3.0
    arr = colors[nearest].astype(np.float32)
    arr *= 0.8 + 0.4 * _smooth_noise(rng, SIZE, 24)[..., None]  # glass is never flat
    arr[edge] = (25, 20, 20)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def pointillism(seed: int = 3) -> Image.Image:
    """Thousands of small round dots of pure colour over a pale ground, Seurat-like."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (SIZE, SIZE), (245, 240, 225))
    draw = ImageDraw.Draw(img)
    field = _smooth_noise(rng, SIZE, 4)
    warm = [(230, 120, 40), (240, 200, 60), (200, 60, 50)]
    cool = [(40, 120, 60), (50, 90, 190), (120, 180, 90)]
    for _ in range(9000):
        x, y = rng.uniform(0, SIZE, 2)
        pool = warm if rng.random() < field[int(y), int(x)] else cool
        c = pool[rng.integers(0, 3)]
        r = rng.uniform(2, 3.5)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=c)
    return img


def geometric_blocks(seed: int = 4) -> Image.Image:
    """Bold primary-colour rectangles between thick black bars, from recursive splits."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (SIZE, SIZE), (245, 242, 232))
    draw = ImageDraw.Draw(img)
    fills = [(245, 242, 232)] * 4 + [(210, 30, 30), (20, 50, 150), (245, 200, 20), (20, 20, 20)]

    def split(x0, y0, x1, y1, depth):
        if depth == 0 or (x1 - x0 < 50 and y1 - y0 < 50):
            draw.rectangle((x0, y0, x1, y1), fill=fills[rng.integers(0, len(fills))], outline=(10, 10, 10), width=6)
            return
        if (x1 - x0) > (y1 - y0):
            cut = int(rng.uniform(x0 + 0.3 * (x1 - x0), x0 + 0.7 * (x1 - x0)))
            split(x0, y0, cut, y1, depth - 1)
            split(cut, y0, x1, y1, depth - 1)
        else:
            cut = int(rng.uniform(y0 + 0.3 * (y1 - y0), y0 + 0.7 * (y1 - y0)))
            split(x0, y0, x1, cut, depth - 1)
            split(x0, cut, x1, y1, depth - 1)

    split(0, 0, SIZE - 1, SIZE - 1, 6)
    return img


def ink_wash(seed: int = 5) -> Image.Image:
    """Layered translucent grey-black washes with dry, feathered edges on warm paper."""
    rng = np.random.default_rng(seed)
    paper = np.ones((SIZE, SIZE, 3), np.float32) * np.array([236, 228, 208], np.float32)
    for _ in range(22):
        mask = Image.new("L", (SIZE, SIZE), 0)
        d = ImageDraw.Draw(mask)
        x, y = rng.uniform(0, SIZE, 2)
        for _ in range(60):
            x += rng.normal(0, 12)
            y += rng.normal(0, 5)
            r = rng.uniform(6, 22)
            d.ellipse((x - r, y - r * 0.6, x + r, y + r * 0.6), fill=255)
        mask = mask.filter(ImageFilter.GaussianBlur(rng.uniform(0.8, 3)))
        m = np.asarray(mask, np.float32)[..., None] / 255.0
        m *= 0.55 + 0.45 * _smooth_noise(rng, SIZE, 40)[..., None]
        paper = paper * (1 - 0.75 * m) + np.array([20, 20, 28], np.float32) * 0.75 * m
    return Image.fromarray(np.clip(paper, 0, 255).astype(np.uint8))


def wave_lines(seed: int = 6) -> Image.Image:
    """Dense parallel curves that ripple like a woodcut sea, in two inks."""
    rng = np.random.default_rng(seed)
    img = Image.new("RGB", (SIZE, SIZE), (250, 246, 236))
    draw = ImageDraw.Draw(img)
    phase = _smooth_noise(rng, SIZE, 6) * 2 * np.pi
    xs = np.arange(0, SIZE + 4, 4)
    for i, y0 in enumerate(range(-10, SIZE + 10, 7)):
        ys = [y0 + 6 * np.sin(x / 18.0 + phase[min(max(y0, 0), SIZE - 1), min(x, SIZE - 1)]) for x in xs]
        color = (20, 50, 110) if (i // 3) % 2 == 0 else (200, 70, 40)
        draw.line(list(zip(xs.tolist(), ys)), fill=color, width=3)
    return img


STYLES = {
    "flow_brush": flow_brush,
    "stained_glass": stained_glass,
    "pointillism": pointillism,
    "geometric_blocks": geometric_blocks,
    "ink_wash": ink_wash,
    "wave_lines": wave_lines,
}

if __name__ == "__main__":
    OUT.mkdir(exist_ok=True)
    for name, make in STYLES.items():
        make().save(OUT / f"{name}.png", optimize=True)
        print("wrote", OUT / f"{name}.png")
