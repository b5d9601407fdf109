"""Loading, validating and converting images; every bad input becomes one readable ``ImageError``."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

MAX_FILE_BYTES = 10 * 1024 * 1024  # the same cap as the app's upload limit
MAX_PIXELS = 40_000_000  # a 40-megapixel photo decodes to ~120 MB of RGB; beyond that, refuse
# Uploads are decoded straight to this long side: twice the largest run size, as a style image may be
# used at up to twice the result's side.
MAX_WORKING_SIDE = 1024
# Formats other than JPEG and PNG are decoded whole at a high cost in memory, so they are refused
# above this size (docs/benchmarks.md, "Constants behind the loop and the server").
FULL_DECODE_MAX_PIXELS = 16_000_000
# Images are shrunk by an integer box average to at least this many times the working side, then
# resampled with Lanczos: Pillow's own ``thumbnail`` default, close to a direct Lanczos and far cheaper.
REDUCING_GAP = 2.0
STRIP_BYTES = 1 * 2**20  # decoded rows handled at once when an image is shrunk strip by strip
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


# Formats libjpeg decodes at 1/2, 1/4 or 1/8 scale; MPO is the multi-picture JPEG many cameras write.
_DRAFTABLE = ("JPEG", "MPO")
# EXIF orientations that turn the image a quarter (the stored width becomes the shown height).
_SWAPS_SIDES = (5, 6, 7, 8)


def _integer_scale(mode: str, maximum: float) -> float:
    """The white level of a 16- or 32-bit image: 16-bit modes use their full range, and an "I" or
    "F" image is read as 16-bit once any value passes 8-bit's 255."""
    return 65535.0 if mode.startswith("I;16") or maximum > 255 else 255.0


def _to_rgb(img: Image.Image, hi: float | None = None) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency is composited on white. ``hi``, the white level of a
    16- or 32-bit image, is given when ``img`` is one strip of a larger image."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        hi = hi if hi is not None else _integer_scale(img.mode, arr.max())
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


def load_image(source, notes: list[str] | None = None, max_side: int = MAX_WORKING_SIDE) -> Image.Image:
    """Open a path, bytes, a file-like object or a PIL image as an RGB PIL image.

    Honours EXIF orientation, takes the first frame of an animation, converts every mode to RGB,
    enforces the file-size and pixel limits, and decodes larger images straight to ``max_side``
    (``MAX_WORKING_SIDE`` unless given), without ever holding them at full size in RGB.
    Anything it cannot use raises :class:`ImageError`. Human-readable remarks about changes made
    (downscaling, dropped transparency, first frame only) are appended to ``notes`` if given.
    """
    notes = notes if notes is not None else []
    if isinstance(source, Image.Image):
        img, name, data = source, "the image", None
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
        # PIL's format plugins also raise TypeError, KeyError or IndexError on some corrupt headers
        # (a TIFF without its dimensions, found by the fuzz test).
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, TypeError, KeyError, IndexError) as exc:
            raise ImageError(f"{name} is not an image this app can read (PNG, JPEG, WebP, GIF, "
                             "BMP, TIFF).") from exc
    try:
        return _decode(img, name, notes, data, max_side)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(f"{name} is too large to decode safely.") from exc
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError, TypeError, KeyError, IndexError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is damaged or truncated and cannot be decoded.") from exc


def _decode(img: Image.Image, name: str, notes: list[str], data: bytes | None, max_side: int) -> Image.Image:
    w, h = img.size
    if w < 1 or h < 1:
        raise ImageError(f"{name} has no pixels ({w}×{h}).")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name} is {w}×{h} pixels; the limit is {MAX_PIXELS // 10**6} million pixels.")
    # EXIF rotation swaps the sides but changes neither the shortest side nor the aspect ratio, so
    # both are checked on the stored size, before a single pixel is decoded.
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{name} is only {w}×{h} pixels; each side needs at least {MIN_SIDE}.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{name} is {w}×{h} pixels: an aspect ratio above {MAX_ASPECT:g}:1 is too "
                         "extreme to stylize. Crop it first.")
    animated = getattr(img, "n_frames", 1) > 1
    if animated:
        img.seek(0)
        notes.append(f"{name} is animated; only its first frame is used.")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        notes.append(f"{name} has transparency; it was placed on a white background.")
    if max(w, h) <= max_side:
        _load(img)
        return _to_rgb(ImageOps.exif_transpose(img))
    rgb, orientation = _decode_shrunk(img, name, data, max_side)
    if orientation not in (None, 1):
        rgb.getexif()[ExifTags.Base.Orientation] = orientation
        ImageOps.exif_transpose(rgb, in_place=True)
    if orientation in _SWAPS_SIDES:
        w, h = h, w
    notes.append(f"{name} ({w}×{h}) was scaled down to {rgb.width}×{rgb.height}.")
    return rgb


def _decode_shrunk(img: Image.Image, name: str, data: bytes | None, max_side: int) -> tuple[Image.Image, int | None]:
    """An image larger than ``max_side``, decoded straight to RGB with that long side (still in its
    stored orientation), and its EXIF orientation. No full-size converted copy is ever made: a JPEG
    is decoded at 1/2–1/8 scale by libjpeg itself, anything else is decoded whole in its own mode
    (see ``FULL_DECODE_MAX_PIXELS``), and each strip of rows is converted to RGB and shrunk on its own."""
    hi = None
    # The size comes from the stored size, not the drafted one, so a JPEG keeps its exact aspect.
    height, width = fit_long_side((img.height, img.width), max_side)
    w, h = img.size
    if img.format in _DRAFTABLE:
        # Let the JPEG decoder skip detail it would only throw away (up to 8× fewer pixels).
        img.draft("RGB", (width, height))
    elif data is not None and img.format != "PNG" and w * h > FULL_DECODE_MAX_PIXELS:
        raise ImageError(
            f"{name} is {w}×{h} pixels; a {img.format or 'file'} like this is decoded whole, and above "
            f"{FULL_DECODE_MAX_PIXELS // 10**6} million pixels that takes too much of the shared server's "
            "memory. Save it as a JPEG or a PNG, or scale it down first.")
    _load(img)
    orientation = img.getexif().get(ExifTags.Base.Orientation)
    if img.mode in ("I", "F"):
        hi = _integer_scale(img.mode, img.getextrema()[1])
    w, h = img.size
    factor = max(1, int(max(w, h) / (REDUCING_GAP * max_side)))
    # Lanczos resizes rows first, then columns, so each strip's rows can be resized on their own;
    # only the columns wait for the whole image, already at the final width.
    columns = Image.new("RGB", (width, -(-h // factor)))
    y = 0
    # Converted per strip, then averaged: transparency is put on white before its colours are mixed.
    for strip in _crop_strips(img, _strip_rows(img, factor)):
        part = _to_rgb(strip, hi)
        if factor > 1:
            part = part.reduce(factor)
        columns.paste(part.resize((width, part.height), Image.Resampling.LANCZOS), (0, y))
        y += part.height
    return columns.resize((width, height), Image.Resampling.LANCZOS), orientation


def _load(img: Image.Image) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        img.load()


def _strip_rows(img: Image.Image, factor: int) -> int:
    """Rows per strip: about STRIP_BYTES of decoded pixels, and a multiple of ``factor`` so that
    reducing each strip on its own averages exactly the blocks a whole-image reduce would."""
    rows = STRIP_BYTES // (4 * img.width)  # PIL keeps 1–4 bytes a pixel; assume the most
    return max(factor, rows // factor * factor)


def _crop_strips(img: Image.Image, rows: int):
    for y in range(0, img.height, rows):
        yield img.crop((0, y, img.width, min(img.height, y + rows)))


def resize_long_side(img: Image.Image, long_side: int) -> Image.Image:
    """Resize so the longer side is ``long_side`` pixels, keeping the aspect ratio."""
    h, w = fit_long_side((img.height, img.width), long_side)
    return img if (w, h) == img.size else img.resize((w, h), Image.Resampling.LANCZOS)


def to_tensor(img: Image.Image, long_side: int | None = None) -> torch.Tensor:
    """RGB PIL image → float tensor in [0, 1] shaped (1, 3, H, W), optionally resized first."""
    if long_side is not None:
        img = resize_long_side(img, long_side)
    arr = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    # Contiguous in (C, H, W) order: an optimizer flattens G's gradient with .view(-1).
    return torch.from_numpy(arr).permute(2, 0, 1).unsqueeze(0).contiguous()


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


def fit_long_side(shape: tuple[int, int], long_side: int, min_side: int = 1) -> tuple[int, int]:
    """(H, W) scaled so the longer side is ``long_side``; where the shorter side would then fall
    below ``min_side``, scaled so the shorter side is ``min_side`` instead (a narrow panorama keeps
    enough rows for the deepest layer)."""
    h, w = shape
    scale = long_side / max(h, w)
    fitted = max(1, round(h * scale)), max(1, round(w * scale))
    if min(fitted) >= min_side:
        return fitted
    scale = min_side / min(h, w)
    return max(min_side, round(h * scale)), max(min_side, round(w * scale))


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
