"""Computations behind the explainer pages: what a unit sees, toy Gram matrices, the tile-shuffle
experiment, and how the costs scale (the top patches are in :mod:`nst_core.patches`). Pure torch; the pages only draw what these return."""

from __future__ import annotations

import math

import torch
from PIL import Image

from . import costs
from .images import fit_long_side, resize_tensor, to_tensor
from .model import LayerInfo, VGGFeatures


def analysis_size(model: VGGFeatures, layer: str, size: tuple[int, int]) -> tuple[int, int]:
    """(H, W) at which ``layer`` can be computed for an image meant to be ``size``.

    A layer of stride s needs at least s pixels on each side (pool5 needs 32): below that its grid
    has no rows, and torch refuses to pool. A long, thin image — the loader accepts 8:1 — at a small
    app size can fall short, so the whole image is scaled up, keeping its shape, until its short
    side reaches s. Sizes that are already big enough come back unchanged."""
    h, w = int(size[0]), int(size[1])
    return fit_long_side((h, w), max(h, w), model.table[layer].stride)


def layer_shapes(model: VGGFeatures, size: tuple[int, int]) -> list[dict]:
    """One row per named layer: (n_H, n_W, n_C) for an input of ``size``, stride and receptive field.

    Each row's grid is the one :func:`activations` computes for that layer, so for an image too
    thin for the deep layers those rows count the scaled-up image (:func:`analysis_size`)."""
    rows = []
    for info in model.table.values():
        if info.kind == "relu":
            continue
        h, w = analysis_size(model, info.name, size)
        rows.append({"layer": info.name, "n_H": h // info.stride, "n_W": w // info.stride, "n_C": info.channels,
                     "stride": info.stride, "receptive field (px)": info.receptive_field,
                     "features index": info.output_index})
    return rows


def unit_center(info: LayerInfo, i: int, j: int) -> tuple[float, float]:
    """Input-pixel centre (y, x) of the unit at row i, column j. With padded 3×3 convolutions and
    2×2 pools, unit i of a layer with stride s sits over pixels i·s … i·s + s − 1."""
    offset = (info.stride - 1) / 2
    return i * info.stride + offset, j * info.stride + offset


def receptive_field_box(info: LayerInfo, i: int, j: int, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) pixels, exclusive at the far end, that unit (i, j) can see, clipped."""
    cy, cx = unit_center(info, i, j)
    half = info.receptive_field / 2
    top, left = max(0, math.floor(cy - half + 0.5)), max(0, math.floor(cx - half + 0.5))
    bottom, right = min(size[0], math.floor(cy + half + 0.5)), min(size[1], math.floor(cx + half + 0.5))
    return top, left, bottom, right


TOY_KINDS = {"correlated": "fire together", "random": "independent", "anticorrelated": "never fire together"}


def toy_block(kind: str = "correlated", n_C: int = 5, n_H: int = 4, n_W: int = 4, seed: int = 0) -> torch.Tensor:
    """A small activation block (n_C, n_H, n_W) like the lecture's five-channel picture.

    Every channel behaves like a unit after a ReLU: it fires (0.6–1.0) at half of the positions and
    is 0 elsewhere. Channel 1's firing places are set against channel 0's:

    * ``correlated`` ("fire together"): the same places as channel 0;
    * ``random`` ("independent"): half of channel 0's places and half of its silent ones, so knowing
      channel 0 says nothing about channel 1 (their correlation is near 0);
    * ``anticorrelated`` ("never fire together"): exactly channel 0's silent places.

    So G[0, 1] is largest for ``correlated``, about half as large for ``random``, and 0 for
    ``anticorrelated``. Channels 2… are quieter bystanders (a quarter of the places, half of them
    where channel 0 fires), so their entries in channel 0's row stay below the "independent" G[0, 1].

    Why sparse: with dense, all-positive values (the earlier toy drew every entry uniformly from
    [0, 1]) the uncentred sum Σ a_k·a_k′ is dominated by the channels' means — about n_H·n_W/4 even
    for independent channels — and 16 positions of noise could then put "independent" above "fire
    together". Real ReLU units are sparse, and sparsity is what makes co-firing visible in G.
    """
    if kind not in TOY_KINDS:
        raise ValueError(f"unknown toy block '{kind}': use one of {', '.join(TOY_KINDS)}")
    g = torch.Generator().manual_seed(seed)
    n = n_H * n_W
    half = n // 2

    def fire(places: torch.Tensor) -> torch.Tensor:
        strength = (0.6 + 0.4 * torch.rand(n, generator=g)).round(decimals=1)
        channel = torch.zeros(n)
        channel[places] = strength[places]
        return channel

    order = torch.randperm(n, generator=g)
    on, off = order[:half], order[half:]

    def background() -> torch.Tensor:
        # Quieter bystanders: a quarter of the places, half of them where channel 0 fires, so no
        # bystander looks more tied to channel 0 than channel 1 does.
        q = max(1, n // 8)
        return fire(torch.cat([on[torch.randperm(len(on), generator=g)[:q]],
                               off[torch.randperm(len(off), generator=g)[:q]]]))

    block = torch.stack([background() for _ in range(n_C)])
    block[0] = fire(on)
    if n_C > 1:
        block[1] = fire({"correlated": on, "anticorrelated": off,
                         "random": torch.cat([on[: half // 2], off[: half - half // 2]])}[kind])
    return block.reshape(n_C, n_H, n_W)


def channel_correlation(a: torch.Tensor) -> torch.Tensor:
    """Pearson correlation between channels across positions: the Gram matrix once each channel's
    mean is removed and its scale divided out. Shown beside the raw Gram to explain it."""
    f = a.reshape(a.shape[0], -1)
    f = f - f.mean(1, keepdim=True)
    norm = f.norm(dim=1, keepdim=True).clamp_min(1e-12)
    f = f / norm
    return f @ f.T


def channel_covariance(a: torch.Tensor) -> torch.Tensor:
    """Cross-covariance of the channels across the n_H·n_W positions (means removed, averaged).

    The lecture calls the Gram matrix an *unnormalized cross-covariance*: G is the same product
    without removing the means and summed instead of averaged, so G = n·(cov + μ·μᵀ) with n the
    number of positions and μ the channel means (:func:`gram_parts`)."""
    f = a.reshape(a.shape[0], -1)
    f = f - f.mean(1, keepdim=True)
    return f @ f.T / f.shape[1]


def gram_parts(a: torch.Tensor, k: int, k2: int) -> dict[str, float]:
    """One Gram entry taken apart: G[k, k′] = n·(cov[k, k′] + μ_k·μ_k′).

    ``covariance`` is the part that says whether the two channels fire *together*; ``means`` is the
    part that is there merely because both fire at all. ``correlation`` is the covariance scaled to
    [−1, 1]."""
    f = a.reshape(a.shape[0], -1)
    n = f.shape[1]
    mu = f.mean(1)
    return {"gram": float(f[k] @ f[k2]), "positions": n, "mean_k": float(mu[k]), "mean_k2": float(mu[k2]),
            "covariance": float(channel_covariance(a)[k, k2]), "means": n * float(mu[k] * mu[k2]),
            "correlation": float(channel_correlation(a)[k, k2])}


def toy_entries(seed: int = 0, k: int = 0, k2: int = 1) -> dict[str, dict[str, float]]:
    """G[k, k′] of each toy block (:data:`TOY_KINDS` order: fire together, independent, never),
    taken apart by :func:`gram_parts`: the three cases a page sets side by side, so the student
    sees the entry fall in the order the text promises."""
    return {kind: gram_parts(toy_block(kind, seed=seed), k, k2) for kind in TOY_KINDS}


def gram_distance(reference: torch.Tensor, other: torch.Tensor) -> float:
    """‖G(other) − G(reference)‖ / ‖G(reference)‖ (Frobenius): how far one Gram matrix is from
    another, as a fraction of the reference's own size (0 = the same style statistics)."""
    return float((other - reference).norm() / reference.norm().clamp_min(1e-12))


def shuffle_tiles(image: torch.Tensor, tiles: int = 4, seed: int = 0) -> torch.Tensor:
    """Cut the image into a tiles×tiles grid and put the pieces back in a random order."""
    _, _, h, w = image.shape
    th, tw = h // tiles, w // tiles
    image = image[..., : th * tiles, : tw * tiles]
    pieces = [image[..., r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(tiles) for c in range(tiles)]
    order = torch.randperm(len(pieces), generator=torch.Generator().manual_seed(seed)).tolist()
    rows = [torch.cat([pieces[order[r * tiles + c]] for c in range(tiles)], dim=-1) for r in range(tiles)]
    return torch.cat(rows, dim=-2)


def shuffle_experiment(model: VGGFeatures, image: torch.Tensor, style_layers, content_layer: str,
                       tiles: int = 4, seed: int = 0) -> dict:
    """How much the Gram matrices and the content activations change when the image is scrambled.

    Both are relative: ‖G(S) − G(S')‖ / ‖G(S)‖ per style layer, and J_content(S, S') / J_content(S, 0)
    at the content layer. Style should barely move; content should jump.
    """
    layers = list(dict.fromkeys([*style_layers, content_layer]))
    image = fit_image(model, deepest_of(model, layers), image)
    shuffled = shuffle_tiles(image, tiles, seed)
    image = image[..., : shuffled.shape[-2], : shuffled.shape[-1]]
    with torch.no_grad():
        a = model.extract(image, layers)
        b = model.extract(shuffled, layers)
        gram_change = {}
        for name in style_layers:
            gram_change[name] = gram_distance(costs.gram_matrix(a[name]), costs.gram_matrix(b[name]))
        ac, bc = a[content_layer], b[content_layer]
        content_change = float(costs.content_cost(ac, bc) / costs.content_cost(ac, torch.zeros_like(ac)).clamp_min(1e-12))
    return {"shuffled": shuffled, "gram_change": gram_change, "content_change": content_change}


def cost_scales(model: VGGFeatures, content: Image.Image, style: Image.Image, content_layer: str, style_layers,
                sizes=(128, 256)) -> list[dict]:
    """J_content(C, 0) and J_style[l](S, 0) at several image sizes: how each cost's scale depends on
    the image area and on the network. This is why α/β must be derived per network and size."""
    rows = []
    with torch.no_grad():
        for side in sizes:
            deepest = deepest_of(model, [content_layer, *style_layers])
            c, s = (fit_image(model, deepest, to_tensor(img, side)) for img in (content, style))
            a_c = model.extract(c, [content_layer])[content_layer]
            a_s = model.extract(s, list(style_layers))
            row = {"size": side, "J_content(C,0)": float(costs.content_cost(a_c, torch.zeros_like(a_c)))}
            for name, act in a_s.items():
                row[f"J_style[{name}](S,0)"] = float(costs.style_layer_cost(act, torch.zeros_like(act)))
            row[f"mean a[{content_layer}]"] = float(a_c.mean())  # the activations themselves keep their scale
            rows.append(row)
    return rows


def deepest_of(model: VGGFeatures, layers) -> str:
    return max(layers, key=lambda name: model.table[name].output_index)


def fit_image(model: VGGFeatures, layer: str, image: torch.Tensor) -> torch.Tensor:
    """The image, scaled up (shape kept) if it is too small for ``layer``: see :func:`analysis_size`."""
    return resize_tensor(image, analysis_size(model, layer, tuple(image.shape[-2:])))


def activations(model: VGGFeatures, images: list[torch.Tensor], layer: str,
                size: tuple[int, int] | None = None) -> list[torch.Tensor]:
    """One layer's activation block (C, H, W) for each image, resized to ``size`` first if given.

    Any image the loader accepts works at any size: one too small for the layer is computed at
    :func:`analysis_size` instead (a page should draw it at that size too)."""
    with torch.no_grad():
        return [model.extract(fit_image(model, layer, img if size is None else resize_tensor(img, size)),
                              [layer])[layer][0] for img in images]


def channel_order(a: torch.Tensor) -> torch.Tensor:
    """Channels sorted by mean activation, strongest first."""
    return a.mean(dim=(1, 2)).argsort(descending=True)


BORDER_PX = 16  # how far in from the image's edge the zero padding's frame is felt, in input pixels


def border_margin(info: LayerInfo, grid: tuple[int, int], border_px: int = BORDER_PX) -> int:
    """Rows and columns to drop at each edge of a layer's grid so the frame does not count:
    ``border_px`` input pixels in grid steps, at least 1, and never more than a quarter of the
    shorter side (a small map keeps its middle half)."""
    return max(0, min(max(1, math.ceil(border_px / info.stride)), min(grid) // 4))


def interior(a: torch.Tensor, margin: int) -> torch.Tensor:
    """The activation block (C, H, W) without ``margin`` rows and columns at each edge."""
    return a[..., margin:a.shape[-2] - margin, margin:a.shape[-1] - margin] if margin > 0 else a


def style_channel_order(a: torch.Tensor, info: LayerInfo, border_px: int = BORDER_PX) -> torch.Tensor:
    """Channels sorted by their energy away from the image's border, strongest first.

    Every VGG convolution pads with zeros, so at the edge a unit sees a black frame, and some
    channels are edge-of-image detectors: in the trained VGG16 (HED) conv3_1 channel 2 and conv4_1
    channel 461 top the plain ranking on most styles with 3–8× more energy per position on the
    border than inside. Ranking on the interior picks channels that respond to the texture. The
    Gram matrix itself is unchanged: the cost sums over every position."""
    inner = interior(a, border_margin(info, tuple(a.shape[-2:]), border_px))
    f = inner.reshape(inner.shape[-3], -1)
    return (f * f).sum(1).argsort(descending=True)

