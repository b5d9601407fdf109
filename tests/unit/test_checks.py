"""The course's claims a student checks on their own run: J_content by hand, and a network that does not change."""

from dataclasses import replace

import pytest
import torch

from nst_core import TransferConfig, costs, gram_matrix, run, to_tensor
from nst_core.analysis import gram_distance
from nst_core.checks import (as_normalization, content_cost_by_hand, loop_content_cost, moved_tiles, shuffle_by_layer,
                             weights_checksum)
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



def test_the_loops_j_content_is_what_the_sum_by_hand_gives_on_its_last_image(vgg19_random):
    """How it works sets the two side by side: in fp32, on the loop's own last image, they agree,
    in either normalization."""
    c, s = gradient_image(48, 40), stripes_image(48, 40)
    for norm in ("seed", "mse"):
        cfg = TransferConfig(size=40, steps=3, optimizer="lbfgs", lr=1.0, precision="fp32", normalization=norm,
                             content_layer="conv3_1")
        final = list(run(c, s, cfg, vgg19_random))[-1]
        check = content_cost_by_hand(vgg19_random, c, final.best_image, "conv3_1")
        by_hand, formula = as_normalization(check, norm)
        assert by_hand > 0
        assert by_hand == pytest.approx(formula, rel=1e-6)  # the loop's function on the same numbers
        assert final.best_total == final.total  # the kept image is the last one, whose cost the loop reported
        assert by_hand == pytest.approx(loop_content_cost(final), rel=1e-4)
    assert loop_content_cost(replace(final, weights={"alpha": 0.0})) is None


def test_the_mean_squared_conversion_is_costs_own_formula(vgg19_random):
    c, g = gradient_image(48, 40), gradient_image(48, 40, seed=3)
    check = content_cost_by_hand(vgg19_random, c, g, "conv2_2")
    with torch.no_grad():
        a_C = vgg19_random.extract(to_tensor(c), ["conv2_2"])["conv2_2"]
        a_G = vgg19_random.extract(to_tensor(g), ["conv2_2"])["conv2_2"]
    assert as_normalization(check, "mse")[0] == pytest.approx(float(costs.content_cost(a_C, a_G, "mse")), rel=1e-5)
    assert as_normalization(check, "seed") == (check.by_hand, check.formula)


def test_moved_tiles_moves_every_tile():
    image = torch.arange(8 * 8, dtype=torch.float32).reshape(1, 1, 8, 8).expand(1, 3, 8, 8)
    for tiles in (2, 4, 8):
        t = 8 // tiles
        for seed in range(6):
            out = moved_tiles(image, tiles, seed)
            for r in range(tiles):
                for col in range(tiles):
                    here = (..., slice(r * t, (r + 1) * t), slice(col * t, (col + 1) * t))
                    assert not torch.equal(out[here], image[here]), (tiles, seed, r, col)
            assert sorted(out.flatten().tolist()) == sorted(image.flatten().tolist())  # the same pixels


def test_shuffle_by_layer_measures_activations_and_grams_alike(vgg16_random):
    """Both bars are a change relative to their own size; a Gram sums over places, so it moves
    far less than the activations when big tiles move."""
    texture = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    result = shuffle_by_layer(vgg16_random, texture, ["conv1_1", "conv2_1"], tiles=2, seed=0)
    assert [r.layer for r in result.layers] == ["conv1_1", "conv2_1"] and result.tile == (32, 32)
    assert [r.receptive_field for r in result.layers] == [3, 10]
    for r in result.layers:
        assert r.gram < 0.25 * r.activations, r
    with torch.no_grad():
        a = vgg16_random.extract(result.image, ["conv1_1"])["conv1_1"]
        b = vgg16_random.extract(result.shuffled, ["conv1_1"])["conv1_1"]
    assert result.layers[0].activations == pytest.approx(float((a - b).norm() / a.norm()), rel=1e-5)
    assert result.layers[0].gram == pytest.approx(gram_distance(gram_matrix(a), gram_matrix(b)), rel=1e-4)
