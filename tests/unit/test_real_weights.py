"""With the trained VGG16 from ../shared/weights: does the default really stylize?"""

import pytest
import torch

from nst_core import TransferConfig, load_image, run
from nst_core.images import resize_tensor, to_tensor
from nst_core.transfer import cost_terms, evaluate, prepare_targets
from tests.support import ROOT

pytestmark = pytest.mark.real_weights


def test_default_settings_stylize_and_keep_the_content(vgg16_trained):
    content = load_image(ROOT / "assets/content/chelsea_cat.jpg")
    style = load_image(ROOT / "assets/styles/flow_brush.png")
    # 96 px and 40 steps keep a wide margin under both limits at a quarter of the time (docs/testing.md).
    cfg = TransferConfig(size=96, steps=40)
    result = [r for r in run(content, style, cfg, vgg16_trained)][-1]
    assert result.status == "done"
    # One fixed yardstick: α = β = 1 on the balanced scale, so each term is a fraction of the cost
    # of an all-zero activation.
    judge = TransferConfig(size=96, alpha=1.0, beta=1.0)
    c = evaluate(result.best_image, content, style, judge, vgg16_trained)
    start = evaluate(resize_tensor(to_tensor(content), tuple(result.best_image.shape[-2:])), content, style,
                     judge, vgg16_trained)
    style_as_g = evaluate(resize_tensor(to_tensor(style), tuple(result.best_image.shape[-2:])), content, style,
                          judge, vgg16_trained)
    # The style statistics moved most of the way toward the style image...
    assert c["style"] < 0.35 * start["style"], (c, start)
    # ...while the content stayed far closer to the photo than the style image itself is.
    assert c["content"] < 0.6 * style_as_g["content"], (c, style_as_g)
    assert torch.isfinite(result.best_image).all()


def _cost_and_gradient(model, precision: str):
    content = load_image(ROOT / "assets/content/chelsea_cat.jpg")
    style = load_image(ROOT / "assets/styles/flow_brush.png")
    # 64 px: on a CPU that only emulates bfloat16 a pass costs about 60x float32's time, and the
    # relative error of the arithmetic does not depend on the image's size.
    cfg = TransferConfig(size=64, alpha=1.0, beta=1000.0, balance="raw", precision=precision)
    c, s = to_tensor(content), to_tensor(style)
    size = tuple(resize_tensor(c, (48, 64)).shape[-2:])
    targets = prepare_targets(c, [s], size, cfg, model)
    # A half-stylized image, so both terms and their gradients are far from zero.
    x = (0.6 * resize_tensor(c, size) + 0.4 * resize_tensor(s, size)).requires_grad_(True)
    total = cost_terms(x, targets, cfg, model)["total"]
    total.backward()
    return total.item(), x.grad.flatten()


def test_bf16_network_gives_the_fp32_cost_and_gradient(vgg16_trained):
    """The network may run in bfloat16; the costs it feeds must stay those of float32 arithmetic."""
    cost32, grad32 = _cost_and_gradient(vgg16_trained, "fp32")
    cost16, grad16 = _cost_and_gradient(vgg16_trained, "bf16")
    assert cost16 == pytest.approx(cost32, rel=0.01)
    assert torch.nn.functional.cosine_similarity(grad16, grad32, dim=0) >= 0.99


def test_the_deepest_style_set_is_paler_and_its_deepest_layer_is_hardest_to_match(vgg16_trained):
    """Layer experiments says: once conv5_1 joins the style layers the bundled reconstruction turns
    paler, and conv5_1 carries the largest share of the style cost left. Both are read off the
    bundled pictures, made with this network."""
    from PIL import ImageStat

    from nst_core.experiments import RECONSTRUCTION, series
    folder = ROOT / "assets/experiments/grace_hopper__starry_night"
    four, five = (load_image(folder / f"style_{i}.jpg") for i in (3, 4))
    assert ImageStat.Stat(five.convert("L")).stddev[0] < 0.85 * ImageStat.Stat(four.convert("L")).stddev[0]
    label, cfg = series("style", reconstruction=RECONSTRUCTION)[-1]
    assert cfg.style_layers[-1] == "conv5_1", label
    terms = evaluate(five, load_image(ROOT / "assets/content/grace_hopper.jpg"),
                     load_image(ROOT / "assets/styles/starry_night.jpg"), cfg, vgg16_trained)
    shares = {k: v for k, v in terms.items() if k.startswith("style_")}
    assert max(shares, key=shares.get) == "style_conv5_1", shares
