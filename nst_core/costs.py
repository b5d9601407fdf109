"""The costs of neural style transfer, exactly as the course material and Gatys et al. (2016) write them.

Notation: ``a`` is one layer's activation block with n_H × n_W positions and n_C channels. Every
function accepts it shaped (1, C, H, W) or (C, H, W).

* ``content_cost``      J_content(C, G)   = 1/2 · Σ (a(C) − a(G))²
* ``gram_matrix``       G_kk'             = Σ_i Σ_j a_ijk · a_ijk'          (unnormalized)
* ``style_layer_cost``  J_style[l](S, G)  = 1/(2·n_H·n_W·n_C)² · Σ_k Σ_k' (G(S) − G(G))²_kk'

The loop (``transfer.cost_terms``) sums them as J(G) = α · J_content + β · Σ_l λ[l] · J_style[l](S, G),
keeping every weighted term apart so a student can see which one is being paid.

A second, named normalization (``"mse"``) is offered for comparison: the mean-squared costs of the
PyTorch neural-transfer tutorial, whose Gram matrix is divided by n_C·n_H·n_W. It differs from the
seed's only by constant factors, which ``NORMALIZATIONS`` states.
"""

from __future__ import annotations

import torch

NORMALIZATIONS = ("seed", "mse")

# The style cost's double sum, named so a page can break the formula before it on a narrow screen.
STYLE_SUMS = r" \sum_{k} \sum_{k'}"
# LaTeX for every formula, per normalization, so the app can always display the active one.
FORMULAS: dict[str, dict[str, str]] = {
    "seed": {
        "content": r"J_{content}(C,G) = \frac{1}{2} \sum_{i,j,k} \left(a^{[l](C)}_{ijk} - a^{[l](G)}_{ijk}\right)^2",
        "gram": r"G^{[l]}_{kk'} = \sum_{i=1}^{n_H^{[l]}} \sum_{j=1}^{n_W^{[l]}} a^{[l]}_{ijk}\, a^{[l]}_{ijk'}",
        "style_layer": r"J^{[l]}_{style}(S,G) = \frac{1}{\left(2\, n_H^{[l]} n_W^{[l]} n_C^{[l]}\right)^2}"
                       + STYLE_SUMS + r" \left(G^{[l](S)}_{kk'} - G^{[l](G)}_{kk'}\right)^2",
        "style": r"J_{style}(S,G) = \sum_{l} \lambda^{[l]}\, J^{[l]}_{style}(S,G)",
        "total": r"J(G) = \alpha\, J_{content}(C,G) + \beta\, J_{style}(S,G)",
    },
    "mse": {
        "content": r"J_{content}(C,G) = \frac{1}{n_H n_W n_C} \sum_{i,j,k} \left(a^{[l](C)}_{ijk} - a^{[l](G)}_{ijk}\right)^2",
        "gram": r"\tilde G^{[l]}_{kk'} = \frac{1}{n_C n_H n_W} \sum_{i,j} a^{[l]}_{ijk}\, a^{[l]}_{ijk'}",
        "style_layer": r"J^{[l]}_{style}(S,G) = \frac{1}{n_C^2}"
                       + STYLE_SUMS + r" \left(\tilde G^{[l](S)}_{kk'} - \tilde G^{[l](G)}_{kk'}\right)^2",
        "style": r"J_{style}(S,G) = \sum_{l} \lambda^{[l]}\, J^{[l]}_{style}(S,G)",
        "total": r"J(G) = \alpha\, J_{content}(C,G) + \beta\, J_{style}(S,G)",
    },
}
TV_FORMULA = (r"J_{TV}(G) = \operatorname{mean}_{i,j,c}\left[(G_{i+1,j,c}-G_{i,j,c})^2\right]"
              r" + \operatorname{mean}_{i,j,c}\left[(G_{i,j+1,c}-G_{i,j,c})^2\right]")


def _chw(a: torch.Tensor) -> torch.Tensor:
    if a.dim() == 4:
        if a.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {a.shape[0]}")
        return a[0]
    if a.dim() != 3:
        raise ValueError(f"expected activations shaped (1, C, H, W) or (C, H, W), got {tuple(a.shape)}")
    return a


def _check_normalization(normalization: str) -> None:
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"unknown normalization '{normalization}': use one of {NORMALIZATIONS}")


def gram_matrix(a: torch.Tensor) -> torch.Tensor:
    """G_kk' = Σ_i Σ_j a_ijk · a_ijk' — the unnormalized channel cross-covariance, shape (C, C)."""
    a = _chw(a)
    f = a.reshape(a.shape[0], -1)
    return f @ f.T


def scaled_gram(a: torch.Tensor, n_positions: int) -> torch.Tensor:
    """The Gram of ``a`` rescaled as if it had been summed over ``n_positions`` positions.

    The unnormalized Gram grows with the number of positions n_H·n_W. When the style image's
    size differs from the generated image's, its Gram is rescaled to the generated image's number
    of positions so both sums count the same number of terms; with equal sizes this is the plain
    Gram and the seed formula is unchanged.
    """
    a = _chw(a)
    return gram_matrix(a) * (n_positions / (a.shape[1] * a.shape[2]))


def content_cost(a_C: torch.Tensor, a_G: torch.Tensor, normalization: str = "seed") -> torch.Tensor:
    """J_content(C, G) = 1/2 · Σ (a(C) − a(G))² (seed), or the mean squared difference (mse)."""
    _check_normalization(normalization)
    a_C, a_G = _chw(a_C), _chw(a_G)
    if a_C.shape != a_G.shape:
        raise ValueError(f"content activations differ in shape: {tuple(a_C.shape)} vs {tuple(a_G.shape)}")
    sq = ((a_C - a_G) ** 2).sum()
    return 0.5 * sq if normalization == "seed" else sq / a_G.numel()


def style_layer_cost(a_S: torch.Tensor, a_G: torch.Tensor, normalization: str = "seed") -> torch.Tensor:
    """J_style[l](S, G) = Σ_k Σ_k' (G(S) − G(G))²_kk' / (2·n_H·n_W·n_C)².

    ``a_S`` is the style image's activation block, or its precomputed Gram matrix (C, C) already
    at the generated image's scale (see ``scaled_gram``), so targets are never recomputed.
    n_H, n_W and n_C are taken from the generated image's activations ``a_G``.
    """
    _check_normalization(normalization)
    a_G = _chw(a_G)
    n_C, n_H, n_W = a_G.shape
    gram_S = a_S if a_S.dim() == 2 else scaled_gram(a_S, n_H * n_W)
    if gram_S.shape != (n_C, n_C):
        raise ValueError(f"style Gram is {tuple(gram_S.shape)} but the layer has {n_C} channels")
    sq = ((gram_S - gram_matrix(a_G)) ** 2).sum()
    if normalization == "seed":
        return sq / (2 * n_H * n_W * n_C) ** 2
    # mse: both Grams divided by n_C·n_H·n_W, then the mean over the n_C² entries.
    return sq / ((n_C * n_H * n_W) ** 2 * n_C ** 2)


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels: a smoothness prior, off by default.

    A mean rather than a sum, so its weight does not depend on the image size.
    """
    dh = image[..., 1:, :] - image[..., :-1, :]
    dw = image[..., :, 1:] - image[..., :, :-1]
    return (dh ** 2).mean() + (dw ** 2).mean()
