"""Image loading: every mode becomes RGB, and every bad input becomes one readable ImageError."""

import io
import zlib

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst_core import ImageError, load_image, resize_long_side, to_pil, to_tensor
from nst_core import images
from nst_core.images import MAX_FILE_BYTES, MAX_WORKING_SIDE, preserve_colors
from tests.support import BAD_IMAGES, encode


def test_rgb_png_round_trip():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    out = load_image(encode(img))
    assert out.mode == "RGB" and np.array_equal(np.asarray(out), np.asarray(img))


def test_path_and_file_object(tmp_path):
    path = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (1, 2, 3)).save(path)
    assert load_image(path).size == (40, 30)
    assert load_image(str(path)).size == (40, 30)
    with open(path, "rb") as f:
        assert load_image(f).getpixel((0, 0)) == (1, 2, 3)


@pytest.mark.parametrize("mode", ["L", "1", "CMYK", "YCbCr", "I", "F"])
def test_plain_modes_become_rgb(mode):
    fmt = "JPEG" if mode in ("CMYK", "YCbCr") else "TIFF" if mode in ("I", "F") else "PNG"
    img = Image.new(mode, (32, 24))
    assert load_image(encode(img, fmt)).mode == "RGB"


def test_rgba_is_composited_on_white():
    img = Image.new("RGBA", (20, 20), (255, 0, 0, 255))
    img.putpixel((0, 0), (0, 0, 0, 0))
    notes = []
    out = load_image(encode(img), notes)
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((5, 5)) == (255, 0, 0)
    assert any("transparency" in n for n in notes)


def test_grayscale_with_alpha_and_palette_with_transparency():
    la = Image.new("LA", (20, 20), (0, 0))
    assert load_image(encode(la)).getpixel((3, 3)) == (255, 255, 255)
    p = Image.new("P", (20, 20), 1)
    p.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    p.info["transparency"] = 0
    p.putpixel((0, 0), 0)
    out = load_image(encode(p, transparency=0))
    assert out.getpixel((0, 0)) == (255, 255, 255) and out.getpixel((5, 5)) == (0, 255, 0)


def test_16_bit_png_keeps_its_range():
    arr = np.full((20, 20), 65535, np.uint16)
    arr[0, 0] = 0
    arr[1, 1] = 32768
    out = np.asarray(load_image(encode(Image.fromarray(arr))))
    assert out[5, 5, 0] == 255 and out[0, 0, 0] == 0 and 126 <= out[1, 1, 0] <= 129


def test_exif_orientation_is_honoured():
    img = Image.new("RGB", (40, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    out = load_image(encode(img, "JPEG", exif=exif.tobytes()))
    assert out.size == (20, 40)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100)
    notes = []
    out = load_image(buf.getvalue(), notes)
    r, g, b = out.getpixel((10, 10))
    assert r > 200 and b < 50 and any("first frame" in n for n in notes)


def test_huge_valid_photo_is_downscaled_and_says_so():
    img = Image.new("RGB", (5000, 3000), (9, 9, 9))
    notes = []
    out = load_image(encode(img, "JPEG", quality=50), notes)
    assert max(out.size) == MAX_WORKING_SIDE and any("scaled down" in n for n in notes)


@pytest.mark.parametrize("data, match", list(BAD_IMAGES.values()), ids=list(BAD_IMAGES))
def test_bad_inputs_raise_image_error(data, match):
    with pytest.raises(ImageError, match=match):
        load_image(data)


def test_file_too_large(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(b"\0" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ImageError, match="MB"):
        load_image(path)
    with pytest.raises(ImageError, match="MB"):
        load_image(b"\0" * (MAX_FILE_BYTES + 1))


def test_missing_path():
    with pytest.raises(ImageError, match="no such file"):
        load_image("/nonexistent/photo.jpg")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes_only_raise_image_error(data):
    try:
        out = load_image(data)
    except ImageError:
        return
    assert out.mode == "RGB"


_VALID = [encode(Image.fromarray(np.random.default_rng(s).integers(0, 255, (24, 24, 3), dtype=np.uint8)), f)
          for s, f in enumerate(["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_VALID), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
       st.integers(0, 10**6))
def test_fuzz_mutated_images_only_raise_image_error(data, flips, cut):
    buf = bytearray(data)
    for pos, value in flips:
        buf[pos % len(buf)] = value
    buf = buf[: max(1, cut % (len(buf) + 1))]
    try:
        out = load_image(bytes(buf))
    except ImageError:
        return
    assert out.mode == "RGB" and min(out.size) >= 1


def test_tensor_round_trip_and_resize():
    img = Image.fromarray(np.random.default_rng(2).integers(0, 255, (30, 50, 3), dtype=np.uint8))
    t = to_tensor(img)
    assert t.shape == (1, 3, 30, 50) and t.dtype == torch.float32 and 0 <= t.min() and t.max() <= 1
    assert np.array_equal(np.asarray(to_pil(t)), np.asarray(img))
    assert resize_long_side(img, 100).size == (100, 60)
    assert to_tensor(img, long_side=25).shape == (1, 3, 15, 25)


def test_fit_long_side_keeps_the_short_side_at_least_min_side():
    assert images.fit_long_side((600, 800), 400) == (300, 400)
    assert images.fit_long_side((100, 800), 256) == (32, 256)
    assert images.fit_long_side((100, 800), 256, min_side=64) == (64, 512)  # a panorama keeps 64 rows
    assert images.fit_long_side((800, 100), 256, min_side=16) == (256, 32)  # already enough: unchanged
    assert images.fit_long_side((48, 200), 200, min_side=16) == (48, 200)


def test_preserve_colors_keeps_content_chroma_and_generated_luma():
    content = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    generated = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = preserve_colors(generated, content)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((out * luma).sum(1), (generated * luma).sum(1), atol=1e-5)
    # chroma = colour minus luma: the same as the content's
    assert torch.allclose(out - (out * luma).sum(1, keepdim=True),
                          content - (content * luma).sum(1, keepdim=True), atol=1e-5)


# Decoding huge uploads: the working-size result comes straight from the decoded file, never via a
# full-size RGB copy. Small stand-ins (a few hundred pixels, shrunk to a few dozen) keep these tests
# fast; the strips are made tiny so every image is converted in many of them.

def _photo(w: int = 240, h: int = 150, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 255, (h, w, 4), dtype=np.uint8)
    arr[h // 4: h // 2, w // 5: w // 2] = (128, 60, 200, 255)  # a flat patch, so PNG's filters vary by row
    arr[:, :, 3] = np.where(np.arange(w) < w // 3, 0, arr[:, :, 3])  # a transparent band
    return Image.fromarray(arr, "RGBA")


_PNG_KINDS = {
    "RGB": lambda im: im.convert("RGB"),
    "RGBA": lambda im: im,
    "L": lambda im: im.convert("L"),
    "LA": lambda im: im.convert("LA"),
    "P_transparent": lambda im: im.convert("RGB").quantize(200),
    "P_4bit": lambda im: im.convert("RGB").quantize(16),
    "1": lambda im: im.convert("1"),
    "I16": lambda im: Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257),
}


@pytest.fixture
def small_strips(monkeypatch):
    monkeypatch.setattr(images, "STRIP_BYTES", 4000)


@pytest.fixture
def largest_image(monkeypatch):
    """Records the pixel count of every image PIL allocates (a decode target included), and of every
    image it converts, resizes, reduces or copies; the test reads the largest of each."""
    seen = {"allocated": 0, "converted": 0}

    def record(kind, size):
        seen[kind] = max(seen[kind], size[0] * size[1])

    for name in ("new", "fill"):
        original = getattr(Image.core, name)
        monkeypatch.setattr(Image.core, name,
                            lambda mode, size, *a, _f=original: (record("allocated", size), _f(mode, size, *a))[1])
    for name in ("convert", "reduce", "resize", "copy", "transpose"):
        original = getattr(Image.Image, name)
        monkeypatch.setattr(Image.Image, name,
                            lambda self, *a, _f=original, **k: (record("converted", self.size), _f(self, *a, **k))[1])
    monkeypatch.setattr(Image, "alpha_composite",
                        lambda a, b, _f=Image.alpha_composite: (record("converted", a.size), _f(a, b))[1])
    return seen


@pytest.mark.parametrize("kind", list(_PNG_KINDS) + ["JPEG"])
@pytest.mark.parametrize("w, h", [(1200, 750), (200, 125)])  # shrunk 20× (reduced first) and 3.3×
def test_huge_upload_is_never_converted_at_full_size(kind, w, h, small_strips, largest_image):
    img = _PNG_KINDS.get(kind, lambda im: im.convert("RGB"))(_photo(w, h))
    data = encode(img, "JPEG") if kind == "JPEG" else encode(img, transparency=3) if kind.startswith("P") else encode(img)
    largest_image.update(allocated=0, converted=0)
    out = load_image(data, max_side=60)
    assert out.mode == "RGB" and max(out.size) == 60
    # No conversion ever touches the image whole: only strips, and the image already at the final
    # width (60 px) waiting for its columns to be resized.
    assert 0 < largest_image["converted"] <= w * h // 3
    if kind == "JPEG":  # libjpeg decodes it at a fraction of its size: it is never held whole at all
        assert 0 < largest_image["allocated"] <= w * h // 3


@pytest.mark.parametrize("kind", list(_PNG_KINDS))
def test_png_shrunk_in_strips_equals_a_whole_conversion(kind, small_strips):
    img = _PNG_KINDS[kind](_photo())
    data = encode(img, optimize=True, transparency=3) if kind.startswith("P") else encode(img, optimize=True)
    whole = Image.open(io.BytesIO(data))
    whole.load()
    rgb = images._to_rgb(whole)
    factor = int(max(rgb.size) / (images.REDUCING_GAP * 40))
    h, w = images.fit_long_side((rgb.height, rgb.width), 40)
    expected = (rgb.reduce(factor) if factor > 1 else rgb).resize((w, h), Image.Resampling.LANCZOS)
    notes = []
    out = load_image(data, notes, max_side=40)
    assert np.array_equal(np.asarray(out), np.asarray(expected))
    assert any("scaled down" in n for n in notes)
    assert any("transparency" in n for n in notes) == (kind in ("RGBA", "LA", "P_transparent", "P_4bit"))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_huge_upload_keeps_exif_orientation(fmt):
    img = Image.new("RGB", (300, 100), (0, 0, 255))
    img.paste((255, 0, 0), (0, 0, 50, 50))  # top-left, which a 90° clockwise turn puts top-right
    exif = Image.Exif()
    exif[0x0112] = 6
    notes = []
    out = load_image(encode(img, fmt, exif=exif.tobytes()), notes, max_side=60)
    assert out.size == (20, 60)
    r, g, b = out.getpixel((17, 2))
    assert r > 200 and b < 60
    assert any("(100×300)" in n for n in notes)


def test_huge_animation_uses_first_frame():
    frames = [Image.new("RGB", (300, 100), c) for c in [(255, 0, 0), (0, 0, 255)]]
    for fmt in ("GIF", "PNG", "MPO"):
        buf = io.BytesIO()
        frames[0].save(buf, fmt, save_all=True, append_images=frames[1:])
        notes = []
        r, g, b = load_image(buf.getvalue(), notes, max_side=60).getpixel((30, 10))
        assert r > 200 and b < 50 and any("first frame" in n for n in notes)


def test_whole_decode_formats_are_capped_below_the_pixel_limit(monkeypatch):
    monkeypatch.setattr(images, "FULL_DECODE_MAX_PIXELS", 20_000)
    big = Image.new("RGB", (300, 100), (10, 200, 30))
    with pytest.raises(ImageError, match="JPEG"):
        load_image(encode(big, "WEBP"), max_side=60)
    # the same pixels as a JPEG (MPO: a camera's multi-picture JPEG) are decoded in parts, and a PNG's
    # whole decode is small at any accepted size, so they pass
    assert load_image(encode(big, "JPEG"), max_side=60).size == (60, 20)
    assert load_image(encode(big, "MPO", save_all=True, append_images=[big]), max_side=60).size == (60, 20)
    assert load_image(encode(big), max_side=60).size == (60, 20)


def test_truncated_huge_png_raises_image_error(small_strips):
    data = encode(_photo(1200, 750))
    with pytest.raises(ImageError, match="damaged"):
        load_image(data[: len(data) // 2], max_side=60)


_BIG_PNG = encode(_photo(200, 120).convert("RGB"), optimize=True)


def _fix_crcs(buf: bytearray) -> None:
    """Rewrite every PNG chunk's CRC, so a mutation reaches the decoder instead of the CRC check."""
    pos = 8
    while pos + 12 <= len(buf):
        end = pos + 8 + int.from_bytes(buf[pos:pos + 4], "big")
        if end + 4 > len(buf):
            return
        buf[end:end + 4] = zlib.crc32(buf[pos + 4:end]).to_bytes(4, "big")
        pos = end + 4


def test_huge_png_with_broken_compressed_data_raises_image_error():
    buf = bytearray(_BIG_PNG)
    start = buf.index(b"IDAT") + 4
    for offset, mask in ((50, 0xFF), (51, 0x55), (57, 0x13)):
        buf[start + offset] ^= mask
    _fix_crcs(buf)  # valid chunks around a broken deflate stream
    with pytest.raises(ImageError, match="damaged"):
        load_image(bytes(buf), max_side=40)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(33, 10**6), st.integers(0, 255)), min_size=1, max_size=8),
       st.booleans(), st.integers(0, 10**6))
def test_fuzz_mutated_huge_png_only_raises_image_error(flips, fix_crcs, cut):
    buf = bytearray(_BIG_PNG)
    for pos, value in flips:  # past the header, so the decoder is the one that meets them
        buf[33 + pos % (len(buf) - 33)] = value
    buf = buf[: 33 + cut % (len(buf) - 32)]
    if fix_crcs:
        _fix_crcs(buf)
    try:
        out = load_image(bytes(buf), max_side=40)
    except ImageError:
        return
    assert out.mode == "RGB" and max(out.size) == 40
