"""Loading, validating and converting images; every bad input becomes one readable ``ImageError``."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 10 * 1024 * 1024  # the same cap as the app's upload limit
MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to ~120 MB of RGB; beyond that, refuse
MAX_WORKING_SIDE = 2048  # decoded images are shrunk to this long side at once, to bound memory
MIN_SIDE = 16  # below this, the deepest VGG layers have no positions left
MAX_ASPECT = 8.0

# PIL's own decompression-bomb guard: an image over this size raises instead of decoding.
Image.MAX_IMAGE_PIXELS = MAX_PIXELS
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An input image cannot be used; the message says why, in words a student can read."""


def _read_bytes(source) -> tuple[bytes, str]:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source), "the uploaded file"
    if hasattr(source, "read"):
        data = source.read(MAX_FILE_BYTES + 1)
        return data, getattr(source, "name", "the uploaded file")
    path = Path(source)
    if not path.is_file():
        raise ImageError(f"{path}: no such file.")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ImageError(f"{path.name} is {path.stat().st_size / 2**20:.1f} MB; the limit is "
                         f"{MAX_FILE_BYTES // 2**20} MB.")
    return path.read_bytes(), path.name


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = 65535.0 if img.mode.startswith("I;16") or arr.max() > 255 else 255.0
        arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        img = Image.fromarray(arr)
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "La", "PA", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img).convert("RGB")
    return img.convert("RGB")


def load_image(source, notes: list[str] | None = None) -> Image.Image:
    """Open a path, bytes, a file-like object or a PIL image as an RGB PIL image.

    Honours EXIF orientation, takes the first frame of an animation, converts every mode to RGB,
    enforces the file-size and pixel limits, and shrinks huge photos to ``MAX_WORKING_SIDE``.
    Anything it cannot use raises :class:`ImageError`. Human-readable remarks about changes made
    (downscaling, dropped transparency, first frame only) are appended to ``notes`` if given.
    """
    notes = notes if notes is not None else []
    if isinstance(source, Image.Image):
        img, name = source, "the image"
    else:
        data, name = _read_bytes(source)
        if len(data) == 0:
            raise ImageError(f"{name} is empty (0 bytes).")
        if len(data) > MAX_FILE_BYTES:
            raise ImageError(f"{name} is larger than {MAX_FILE_BYTES // 2**20} MB.")
        try:
            img = Image.open(io.BytesIO(data))
        except Image.DecompressionBombError as exc:
            raise ImageError(f"{name} claims more than {MAX_PIXELS // 10**6} million pixels; "
                             "it is refused as a possible decompression bomb.") from exc
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
            raise ImageError(f"{name} is not an image this app can read (PNG, JPEG, WebP, GIF, "
                             "BMP, TIFF).") from exc
    try:
        return _decode(img, name, notes)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name} is too large to decode safely.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded.") from exc


def _decode(img: Image.Image, name: str, notes: list[str]) -> Image.Image:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name} has no pixels ({w}×{h}).")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name} is {w}×{h} pixels; the limit is {MAX_PIXELS // 10**6} million pixels.")
    if getattr(img, "n_frames", 1) > 1:
        img.seek(0)
        notes.append(f"{name} is animated; only its first frame is used.")
    if max(w, h) > MAX_WORKING_SIDE and img.format == "JPEG":
        # Let the JPEG decoder skip detail it would only throw away (up to 8× fewer pixels).
        img.draft("RGB", (MAX_WORKING_SIDE, MAX_WORKING_SIDE))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img.load()
    img = ImageOps.exif_transpose(img)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        notes.append(f"{name} has transparency; it was placed on a white background.")
    rgb = _to_rgb(img)
    w, h = rgb.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name} is only {w}×{h} pixels; each side needs at least {MIN_SIDE}.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{name} is {w}×{h} pixels: an aspect ratio above {MAX_ASPECT:g}:1 is too "
                         "extreme to stylize. Crop it first.")
    if max(w, h) > MAX_WORKING_SIDE:
        rgb = resize_long_side(rgb, MAX_WORKING_SIDE)
        notes.append(f"{name} ({w}×{h}) was scaled down to {rgb.width}×{rgb.height}.")
    return rgb


def resize_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Resize so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    w, h = img.size
    scale = long_side / max(w, h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return img if size == img.size else img.resize(size, Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image, long_side: int | None = None) -> torch.Tensor:
    """RGB PIL image → float tensor in [0, 1] shaped (1, 3, H, W), optionally resized first."""
    if long_side is not None:
        img = resize_long_side(img, long_side)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0)


def to_pil(x: torch.Tensor) -> Image.Image:
    """Float tensor (1, 3, H, W) or (3, H, W) in [0, 1] → RGB PIL image (values are clamped)."""
    if x.dim() == 4:
        x = x[0]
    arr = (x.detach().float().cpu().clamp(0, 1).permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8)
    return Image.fromarray(arr)


def resize_tensor(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Antialiased bilinear resize of a (B, C, H, W) tensor to (H, W)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)


def fit_long_side(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(H, W) scaled so the longer side is ``long_side``."""
    h, w = shape
    scale = long_side / max(h, w)
    return max(1, round(h * scale)), max(1, round(w * scale))


# ITU-R BT.601 luma weights: the Y of YIQ/YCbCr.
_LUMA = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)


def preserve_colors(generated: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Keep the content's colours: the generated image's luminance with the content's chroma.

    The luminance-swap variant of colour preservation (Gatys et al. 2016b): add the change in
    luminance to every channel of the content, which keeps its chroma.
    """
    content = resize_tensor(content, tuple(generated.shape[-2:]))
    luma = _LUMA.to(generated)
    y_gen = (generated * luma).sum(1, keepdim=True)
    y_con = (content * luma).sum(1, keepdim=True)
    return (content + (y_gen - y_con)).clamp(0, 1)
