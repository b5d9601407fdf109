"""What the tests share that is not a fixture: paths, stand-in images, bad files, loop records."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from nst_core import Step

ROOT = Path(__file__).resolve().parents[1]
REAL_WEIGHTS = Path(os.environ.get("NST_TEST_WEIGHTS",
                                   ROOT.parent / "shared" / "weights" / "vgg16_hed_features_fp16.pth"))


def gradient_image(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    """A smooth colour gradient with a few shapes: a stand-in photo with layout to keep."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arr = np.stack([xx / w, yy / h, 0.5 + 0.5 * np.sin(xx / 7)], -1)
    cy, cx = rng.integers(h // 4, 3 * h // 4), rng.integers(w // 4, 3 * w // 4)
    arr[(yy - cy) ** 2 + (xx - cx) ** 2 < (min(h, w) / 5) ** 2] = (1.0, 0.1, 0.1)
    return Image.fromarray((arr * 255).astype(np.uint8))


def stripes_image(w: int = 64, h: int = 64) -> Image.Image:
    """A strong diagonal texture: a stand-in style."""
    yy, xx = np.mgrid[0:h, 0:w]
    band = ((xx + yy) // 4) % 2
    arr = np.where(band[..., None] == 1, (30, 60, 200), (250, 210, 40)).astype(np.uint8)
    return Image.fromarray(arr)


def step_record(step: int = 1, size: tuple[int, int] = (48, 64), total: float = 0.0, content: float = 0.0,
                style: float = 0.0, tv: float = 0.0, elapsed: float = 0.0,
                style_layers: dict[str, float] | None = None) -> Step:
    """A loop record with the few numbers a test cares about (``size`` is (H, W), as the loop keeps
    it); everything else is zero."""
    import torch  # here, so that a process that runs no test (pytest-xdist's controller) does not load it
    return Step(step=step, total_steps=0, stage=0, size=size, elapsed=elapsed, eta=0.0, content=content,
                style=style, tv=tv, total=total, style_layers=dict(style_layers or {}),
                best_image=torch.zeros(1), best_total=0.0)


def encode(img: Image.Image, fmt: str = "PNG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header is rewritten to claim another size: a decompression bomb."""
    data = bytearray(encode(Image.new("L", (16, 16))))
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    return bytes(data)


def _truncated(fmt: str) -> bytes:
    img = Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    data = encode(img, fmt)
    return data[: len(data) // 2]


# Every kind of bad file the app and the CLI must refuse with one readable message:
# name → (bytes, a regular expression the message matches).
BAD_IMAGES = {
    "empty": (b"", "empty"),
    "text_as_png": (b"hello, this is text pretending to be a png", "not an image"),
    "pdf": (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not an image"),
    "truncated_png": (_truncated("PNG"), "damaged|not an image"),
    "truncated_jpeg": (_truncated("JPEG"), "damaged|not an image"),
    "bomb_30000px": (png_with_declared_size(30000, 30000), "million pixels"),
    "one_pixel": (encode(Image.new("RGB", (1, 1))), "at least"),
    "4000x10": (encode(Image.new("RGB", (4000, 10))), "at least|aspect"),
    "800x40": (encode(Image.new("RGB", (800, 40))), "aspect"),
}
