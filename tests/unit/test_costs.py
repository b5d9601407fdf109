"""The seed formulas, checked against small cases worked out by hand."""

import pytest
import torch

from nst_core import content_cost, gram_matrix, scaled_gram, style_layer_cost
from nst_core.costs import FORMULAS, NORMALIZATIONS, total_variation

# Two channels on a 1×2 grid: channel 0 = [1, 2], channel 1 = [3, 4].
A = torch.tensor([[[1.0, 2.0]], [[3.0, 4.0]]])
# The same shape, other values: channel 0 = [0, 1], channel 1 = [1, 1].
B = torch.tensor([[[0.0, 1.0]], [[1.0, 1.0]]])


def test_gram_matrix_by_hand():
    # G_00 = 1·1 + 2·2 = 5, G_01 = 1·3 + 2·4 = 11, G_11 = 3·3 + 4·4 = 25
    assert torch.equal(gram_matrix(A), torch.tensor([[5.0, 11.0], [11.0, 25.0]]))


def test_gram_accepts_batch_of_one_and_is_f_times_f_transpose():
    a = torch.randn(1, 7, 5, 3)
    f = a[0].reshape(7, -1)
    assert torch.allclose(gram_matrix(a), f @ f.T)
    assert gram_matrix(a).shape == (7, 7)


def test_content_cost_by_hand():
    # differences: [1, 1, 2, 3] → squares sum 1 + 1 + 4 + 9 = 15 → ½ · 15
    assert content_cost(A, B).item() == pytest.approx(7.5)
    assert content_cost(A.unsqueeze(0), B.unsqueeze(0)).item() == pytest.approx(7.5)


def test_style_layer_cost_by_hand():
    # G(B) = [[1, 1], [1, 2]]; G(A) − G(B) = [[4, 10], [10, 23]] → Σ² = 16 + 100 + 100 + 529 = 745
    # n_H = 1, n_W = 2, n_C = 2 → (2·1·2·2)² = 64
    assert style_layer_cost(A, B).item() == pytest.approx(745 / 64)


def test_style_layer_cost_accepts_a_precomputed_gram():
    a_S, a_G = torch.randn(1, 4, 6, 5), torch.randn(1, 4, 6, 5)
    assert style_layer_cost(gram_matrix(a_S), a_G).item() == pytest.approx(style_layer_cost(a_S, a_G).item())


def test_style_of_a_different_size_is_rescaled_to_the_generated_positions():
    # A texture tiled 2×2 has 4× the positions and so 4× the unnormalized Gram of one tile;
    # rescaled to the tile's positions it must match exactly, and so cost nothing.
    tile = torch.rand(3, 4, 5)
    tiled = tile.repeat(1, 2, 2)
    assert torch.allclose(gram_matrix(tiled), 4 * gram_matrix(tile))
    assert torch.allclose(scaled_gram(tiled, 20), gram_matrix(tile))
    assert style_layer_cost(tiled, tile).item() == pytest.approx(0.0, abs=1e-6)


def test_mse_normalization_differs_from_seed_only_by_constants():
    a, b = torch.randn(1, 6, 4, 5), torch.randn(1, 6, 4, 5)
    n_C, n_H, n_W = 6, 4, 5
    assert content_cost(a, b, "mse").item() == pytest.approx(content_cost(a, b).item() * 2 / (n_C * n_H * n_W))
    assert style_layer_cost(a, b, "mse").item() == pytest.approx(style_layer_cost(a, b).item() * 4 / n_C ** 2)
    # ...and it equals the tutorial's definition: Gram / (C·H·W), then the mean squared difference.
    ga, gb = gram_matrix(a) / (n_C * n_H * n_W), gram_matrix(b) / (n_C * n_H * n_W)
    assert style_layer_cost(a, b, "mse").item() == pytest.approx(((ga - gb) ** 2).mean().item())


def test_every_normalization_has_all_formulas():
    for norm in NORMALIZATIONS:
        assert set(FORMULAS[norm]) == {"content", "gram", "style_layer", "style", "total"}
    with pytest.raises(ValueError, match="normalization"):
        content_cost(A, B, "nope")


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(ValueError, match="shape"):
        content_cost(A, torch.zeros(2, 1, 3))
    with pytest.raises(ValueError, match="channels"):
        style_layer_cost(torch.zeros(3, 3), A)
    with pytest.raises(ValueError, match="one image"):
        gram_matrix(torch.zeros(2, 3, 4, 4))


def test_total_variation():
    flat = torch.full((1, 3, 8, 8), 0.3)
    assert total_variation(flat).item() == 0.0
    checker = (torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2
    img = checker.float().expand(1, 3, 8, 8)
    assert total_variation(img).item() == pytest.approx(2.0)  # every neighbour differs by 1
