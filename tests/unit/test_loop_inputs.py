"""Any image the app accepts runs through the whole loop: every size from the smallest allowed to
past the run's size (exactly equal included), every accepted aspect, every mode, any tensor memory
layout, through the engine, the command line and the server's run path."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from nst_core import TransferConfig, load_image, run, to_tensor
from nst_core.__main__ import main
from nst_core.images import MAX_ASPECT, MIN_SIDE
from nst_core.serve.registry import RunRegistry, start_transfer
from tests.support import encode, stripes_image

RUN_SIZE = 32
# Every layer of the default config (conv4_2, conv1_1…conv5_1): the deepest has stride 16, so
# short images are enlarged to keep it, and images at RUN_SIZE go in without any resizing.
CONFIG = TransferConfig(size=RUN_SIZE, steps=3, optimizer="lbfgs", lr=1.0, snapshot_every=2)
MODES = ("RGB", "RGBA", "L", "LA", "P", "PA", "1", "CMYK", "I;16", "I", "F", "YCbCr", "HSV")


def _image(mode: str, w: int, h: int, seed: int) -> Image.Image:
    rgb = Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))
    if mode in ("I;16", "I", "F"):
        grey = np.asarray(rgb.convert("L"), dtype=np.float32)
        scale = 257.0 if mode == "I;16" else 1.0
        arr = (grey * scale).astype({"I;16": np.uint16, "I": np.int32, "F": np.float32}[mode])
        return Image.fromarray(arr).convert("I") if mode == "I" else Image.fromarray(arr)
    if mode == "PA":
        return rgb.convert("P").convert("PA")
    return rgb.convert(mode)


def _file(img: Image.Image) -> bytes:
    """The image as a file the app accepts, in the first format that keeps its mode."""
    for fmt in ("PNG", "TIFF", "JPEG"):
        try:
            return encode(img, fmt)
        except (OSError, ValueError, KeyError):
            continue
    return encode(img.convert("RGB"))


@st.composite
def accepted_images(draw):
    """(image, how it was made): sides from MIN_SIDE to past RUN_SIZE, one of them often exactly
    RUN_SIZE, the aspect within what the app accepts."""
    long_side = draw(st.one_of(st.just(RUN_SIZE), st.integers(MIN_SIDE, 2 * RUN_SIZE)))
    short_min = max(MIN_SIDE, -(-long_side // int(MAX_ASPECT)))
    short_side = draw(st.one_of(st.just(min(long_side, RUN_SIZE)).filter(lambda s: s >= short_min),
                                st.integers(short_min, long_side)))
    w, h = (long_side, short_side) if draw(st.booleans()) else (short_side, long_side)
    mode = draw(st.sampled_from(MODES))
    return _image(mode, w, h, draw(st.integers(0, 1000))), f"{mode} {w}×{h}"


def _finish_ok(records, label):
    last = records[-1]
    assert last.status == "done", f"{label}: {last.status} {last.message}"
    assert last.best_image is not None and torch.isfinite(last.best_image).all(), label


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(accepted_images(), st.sampled_from([1, 2]), st.sampled_from(["lbfgs", "adam"]))
def test_every_accepted_image_runs_through_the_loop(vgg19_random, case, levels, optimizer):
    img, label = case
    rgb = load_image(img)
    cfg = TransferConfig(**{**CONFIG.to_dict(), "levels": levels, "optimizer": optimizer,
                            "lr": 1.0 if optimizer == "lbfgs" else 0.05})
    _finish_ok(list(run(rgb, stripes_image(), cfg, vgg19_random)), label)


@pytest.mark.parametrize("layout", ["channels_last", "transposed", "strided", "float64", "no_grad_view"])
@pytest.mark.parametrize("side", [RUN_SIZE, RUN_SIZE - 8])
def test_tensor_inputs_of_any_memory_layout_run(vgg19_random, layout, side):
    base = to_tensor(stripes_image(side, side))
    content = {
        "channels_last": base.contiguous(memory_format=torch.channels_last),
        "transposed": base.transpose(2, 3).contiguous().transpose(2, 3),
        "strided": torch.cat([base, base], dim=3)[..., ::2],
        "float64": base.double(),
        "no_grad_view": base.expand(1, 3, side, side),
    }[layout]
    assert layout == "float64" or not content.is_contiguous() or layout == "no_grad_view"
    _finish_ok(list(run(content, base.permute(0, 1, 3, 2), CONFIG, vgg19_random)), layout)


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(accepted_images())
def test_every_accepted_image_runs_through_the_command_line(tmp_path_factory, case):
    img, label = case
    folder = tmp_path_factory.mktemp("cli")
    content, style, out = folder / "c.png", folder / "s.png", folder / "g.png"
    content.write_bytes(_file(img))
    stripes_image().save(style)
    code = main(["stylize", str(content), str(style), "-o", str(out), "--size", str(RUN_SIZE), "--steps", "2",
                 "--weights", "random"])
    assert code == 0, label
    assert max(Image.open(out).size) >= RUN_SIZE, label


@settings(max_examples=8, deadline=None, suppress_health_check=list(HealthCheck))
@given(accepted_images())
def test_every_accepted_image_runs_through_the_server(vgg19_random, case):
    img, label = case
    rgb = load_image(_file(img))
    registry = RunRegistry(max_runs=1, max_run_s=600, memory_mb=10**6, rss_mb=lambda: None)
    with start_transfer(registry, rgb, [stripes_image()], CONFIG, vgg19_random, session="s") as sub:
        view = sub.wait()
        while not view.finished:
            view = sub.wait(view.version, timeout=5)
    assert view.state == "done", f"{label}: {view.state} {view.message}"
    assert view.best is not None and max(view.best.size) >= RUN_SIZE, label
