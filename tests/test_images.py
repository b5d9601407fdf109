"""Image loading: every mode becomes RGB, and every bad input becomes one readable ImageError."""

import io

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst_core import ImageError, load_image, resize_long_side, to_pil, to_tensor
from nst_core.images import MAX_FILE_BYTES, MAX_WORKING_SIDE, preserve_colors
from tests.conftest import BAD_IMAGES, encode


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


def test_preserve_colors_keeps_content_chroma_and_generated_luma():
    content = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    generated = torch.rand(1, 3, 16, 16) * 0.5 + 0.25
    out = preserve_colors(generated, content)
    luma = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    assert torch.allclose((out * luma).sum(1), (generated * luma).sum(1), atol=1e-5)
    # chroma = colour minus luma: the same as the content's
    assert torch.allclose(out - (out * luma).sum(1, keepdim=True),
                          content - (content * luma).sum(1, keepdim=True), atol=1e-5)
