"""The course's claims a student checks on their own run: J_content by hand, and a network that does not change."""

import pytest
import torch

from nst_core import TransferConfig, run, to_tensor
from nst_core.checks import content_cost_by_hand, weights_checksum
from tests.support import gradient_image, stripes_image


def test_content_cost_by_hand_adds_up_to_the_loops_formula(vgg19_random):
    c, g = gradient_image(48, 40), gradient_image(48, 40, seed=3)
    check = content_cost_by_hand(vgg19_random, c, g, "conv2_2", k=4)
    assert check.shape == (20, 24, 128)
    assert check.by_hand == pytest.approx(check.formula, rel=1e-6) and check.by_hand > 0
    halves = [t.half_square for t in check.terms]
    assert len(halves) == 4 and halves == sorted(halves, reverse=True)
    for t in check.terms:  # each listed term is ½·(a_C − a_G)² of the values shown beside it
        assert t.half_square == pytest.approx(0.5 * (t.a_C - t.a_G) ** 2, rel=1e-9)
        assert 0 <= t.row < 20 and 0 <= t.column < 24 and 0 <= t.channel < 128
    assert sum(halves) <= check.by_hand


def test_content_cost_by_hand_is_zero_for_the_photo_itself(vgg19_random):
    c = gradient_image(48, 40)
    assert content_cost_by_hand(vgg19_random, c, to_tensor(c), "conv4_2").by_hand == 0.0


def test_a_run_reports_the_network_unchanged_and_the_checksum_sees_one_changed_weight(vgg19_random):
    cfg = TransferConfig(size=32, steps=3, optimizer="lbfgs", lr=1.0)
    final = list(run(gradient_image(), stripes_image(), cfg, vgg19_random))[-1]
    before, after = final.network_checksums
    assert before == after == weights_checksum(vgg19_random) and len(before) == 8
    weight = next(vgg19_random.parameters())
    with torch.no_grad():
        weight[0, 0, 0, 0] += 1e-3
        try:
            assert weights_checksum(vgg19_random) != before
        finally:
            weight[0, 0, 0, 0] -= 1e-3
