"""What identifies a run: image bytes, settings, and the network with its arithmetic."""

from __future__ import annotations

import pytest
import torch

from nst_core import load_vgg
from nst_core.serve.identity import digest, network_identity, run_key
from nst_core.transfer import TransferConfig

from tests.support import gradient_image, stripes_image


def test_run_key_follows_every_image_byte_setting_and_network(vgg19_random, vgg16_random):
    content, style = gradient_image(), stripes_image()
    net = network_identity(vgg19_random)
    cfg = TransferConfig(size=64, steps=3)
    key = run_key(content, [style], cfg, net)
    assert key == run_key(content.copy(), [style.copy()], cfg, net), "same bytes, same run"
    touched = content.copy()
    touched.putpixel((0, 0), (0, 0, 0))
    assert run_key(touched, [style], cfg, net) != key
    assert run_key(content, [style, style], cfg, net) != key, "every style counts"
    assert run_key(content, [style], TransferConfig(size=64, steps=4), net) != key
    assert run_key(content, [style], cfg, network_identity(vgg16_random)) != key
    other_seed = load_vgg("vgg19", "random", seed=1)
    assert network_identity(other_seed) != net, "different weights of one architecture differ"


def test_digest_tells_tensors_and_images_apart_and_refuses_other_things():
    img = gradient_image(8, 8)
    assert digest(img) != digest(torch.zeros(1, 3, 8, 8))
    assert digest(img) == digest(img.copy())
    with pytest.raises(TypeError):
        digest(object())


def test_the_identity_includes_the_arithmetic_auto_resolves_to(monkeypatch):
    """A config says "auto"; what that computes in depends on the model and the machine, so two
    servers that resolve it differently never share a result."""
    model = load_vgg("vgg19", "random", seed=0)
    monkeypatch.setattr(model, "auto_precision", lambda: "fp32")
    fp32 = network_identity(model)
    assert "|fp32|" in fp32 and fp32 == network_identity(model)
    monkeypatch.setattr(model, "auto_precision", lambda: "bf16")
    assert "|bf16|" in network_identity(model) and network_identity(model) != fp32
    content, style, cfg = gradient_image(), stripes_image(), TransferConfig(size=64, steps=3)
    assert run_key(content, [style], cfg, network_identity(model)) != run_key(content, [style], cfg, fp32)
