from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from nst_core import load_vgg

ROOT = Path(__file__).resolve().parents[1]
REAL_WEIGHTS = Path(os.environ.get("NST_TEST_WEIGHTS",
                                   ROOT.parent / "shared" / "weights" / "vgg16_hed_features_fp16.pth"))


@pytest.fixture(scope="session")
def vgg19_random():
    return load_vgg("vgg19", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_random():
    return load_vgg("vgg16", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_trained():
    if not REAL_WEIGHTS.is_file():
        pytest.skip(f"trained weights not found at {REAL_WEIGHTS} (set NST_TEST_WEIGHTS to a VGG16 "
                    "features state dict to run the real-weights checks)")
    return load_vgg(None, str(REAL_WEIGHTS))


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


@pytest.fixture
def content_img():
    return gradient_image()


@pytest.fixture
def style_img():
    return stripes_image()


@pytest.fixture(autouse=True)
def _deterministic():
    torch.manual_seed(0)
