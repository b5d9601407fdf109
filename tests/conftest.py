"""Fixtures for every layer of tests: small random networks, the trained one where present, stand-in
images, a fixed torch seed, and one torch thread per pytest-xdist worker. PyTorch is
imported where a fixture needs it: pytest-xdist's controller loads this file and runs no test."""

from __future__ import annotations

import os

import pytest

import nst_core  # its names load on first use (nst_core.lazy)
from tests.support import REAL_WEIGHTS, gradient_image, stripes_image

if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch
    # Each of scripts/test.sh's two workers computes on one core: two torch threads each
    # oversubscribed the two cores and took longer than one worker (docs/testing.md).
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def vgg19_random():
    return nst_core.load_vgg("vgg19", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_random():
    return nst_core.load_vgg("vgg16", "random", seed=0)


@pytest.fixture(scope="session")
def vgg16_trained():
    if not REAL_WEIGHTS.is_file():
        pytest.skip(f"trained weights not found at {REAL_WEIGHTS} (set NST_TEST_WEIGHTS to a VGG16 "
                    "features state dict to run the real-weights checks)")
    return nst_core.load_vgg(None, str(REAL_WEIGHTS))


@pytest.fixture
def content_img():
    return gradient_image()


@pytest.fixture
def style_img():
    return stripes_image()


@pytest.fixture(autouse=True)
def _deterministic():
    import torch
    torch.manual_seed(0)
