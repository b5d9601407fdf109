"""With the trained VGG16 from ../shared/weights: does the default really stylize?"""

import pytest
import torch

from nst_core import TransferConfig, load_image, run
from nst_core.images import resize_tensor, to_tensor
from nst_core.transfer import evaluate
from tests.conftest import ROOT

pytestmark = pytest.mark.real_weights


def test_default_settings_stylize_and_keep_the_content(vgg16_trained):
    content = load_image(ROOT / "assets/content/chelsea_cat.jpg")
    style = load_image(ROOT / "assets/styles/flow_brush.png")
    cfg = TransferConfig(size=128, steps=60)
    result = [r for r in run(content, style, cfg, vgg16_trained)][-1]
    assert result.status == "done"
    # One fixed yardstick: α = β = 1 on the balanced scale, so each term is a fraction of the cost
    # of an all-zero activation.
    judge = TransferConfig(size=128, alpha=1.0, beta=1.0)
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
