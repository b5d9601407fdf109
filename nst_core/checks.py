"""Two claims of the course a student can check on their own run, with numbers instead of words.

* J_content is ½ · Σ (a[l](C) − a[l](G))² over every activation of one layer: :func:`content_cost_by_hand`
  lists a few of those differences and adds all of them up, to set beside what the loop reported.
* The network learns nothing during a run: :func:`weights_checksum` is taken when the loop starts
  and when it ends (``Step.network_checksums``), and only the pixels of G change.
* Style ignores *where*: :func:`shuffle_by_layer` shuffles an image's tiles and measures, per
  layer, how far the activations move (what the content cost compares) and how far the Gram
  matrix moves (what the style cost compares), both as a fraction of their own size.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from . import costs
from .analysis import fit_image
from .images import resize_tensor, to_tensor
from .model import VGGFeatures


@dataclass(frozen=True)
class ContentTerm:
    """One activation of the content layer: where it is, its value for C and for G, its share of J."""

    row: int
    column: int
    channel: int
    a_C: float
    a_G: float
    half_square: float  # ½ · (a_C − a_G)²


@dataclass(frozen=True)
class ContentCheck:
    layer: str
    shape: tuple[int, int, int]  # (n_H, n_W, n_C), as the course writes it
    terms: tuple[ContentTerm, ...]  # the largest few terms of the sum
    by_hand: float  # ½ · Σ over every activation, added up here in float64
    formula: float  # costs.content_cost on the same activations (the loop's function)


def content_cost_by_hand(model: VGGFeatures, content, generated, layer: str, pooling: str = "max",
                         k: int = 5) -> ContentCheck:
    """The seed's content cost of ``generated`` against ``content`` at ``layer``, written out: the
    ``k`` largest terms ½·(a(C) − a(G))² with their positions, the sum of every term, and the same
    cost from :func:`costs.content_cost`. ``content`` is resized to ``generated``'s size first, as
    the loop does. Images are PIL images or (1, 3, H, W) tensors in [0, 1]."""
    g = generated if isinstance(generated, torch.Tensor) else to_tensor(generated)
    c = content if isinstance(content, torch.Tensor) else to_tensor(content)
    c = resize_tensor(c, tuple(g.shape[-2:]))
    device = model.mean.device
    with torch.no_grad():
        a_C = model.extract(c.to(device), [layer], pooling, "fp32")[layer][0].double().cpu()
        a_G = model.extract(g.to(device), [layer], pooling, "fp32")[layer][0].double().cpu()
    half = 0.5 * (a_C - a_G) ** 2
    n_C, n_H, n_W = half.shape
    top = half.flatten().topk(min(k, half.numel())).indices.tolist()
    terms = []
    for flat in top:
        ch, rest = divmod(flat, n_H * n_W)
        i, j = divmod(rest, n_W)
        terms.append(ContentTerm(i, j, ch, float(a_C[ch, i, j]), float(a_G[ch, i, j]), float(half[ch, i, j])))
    return ContentCheck(layer, (n_H, n_W, n_C), tuple(terms), float(half.sum()),
                        float(costs.content_cost(a_C, a_G, "seed")))


def weights_checksum(model: VGGFeatures) -> str:
    """CRC-32 of the bytes of every weight and bias of the network, as 8 hex digits: it changes if any
    single bit of any weight changes, and costs about 30 ms for VGG19 (a cryptographic digest, 4×
    more, would guard against nobody here)."""
    crc = 0
    with torch.no_grad():
        for p in model.parameters():
            crc = zlib.crc32(p.detach().cpu().contiguous().numpy().data, crc)
    return f"{crc:08x}"


def loop_content_cost(final) -> float | None:
    """J_content as the loop computed it on its last image: the final ``Step`` keeps α·J_content
    and the α it used (``weights["alpha"]``, scaled by the automatic balance), so J_content is
    their quotient. None when the run had no content term."""
    alpha = (final.weights or {}).get("alpha") or 0.0
    if alpha <= 0 or final.content is None or final.content != final.content:
        return None
    return float(final.content) / float(alpha)


def as_normalization(check: ContentCheck, normalization: str) -> tuple[float, float]:
    """(by hand, by the loop's function) in ``normalization``: the mean-squared cost is the seed's
    ½·Σ times 2 / (n_H·n_W·n_C), so one sum serves both formulas."""
    if normalization == "seed":
        return check.by_hand, check.formula
    n_H, n_W, n_C = check.shape
    factor = 2.0 / (n_H * n_W * n_C)
    return check.by_hand * factor, check.formula * factor


@dataclass(frozen=True)
class ShuffleLayer:
    """One layer after the shuffle: ``activations`` = ‖a(S) − a(S′)‖ / ‖a(S)‖, which is
    √(J_content(S, S′) / J_content(S, 0)) at that layer; ``gram`` = ‖G(S) − G(S′)‖ / ‖G(S)‖."""

    layer: str
    receptive_field: int  # input pixels one unit sees
    activations: float
    gram: float


@dataclass(frozen=True)
class ShuffleResult:
    image: torch.Tensor  # the image as measured (cropped to whole tiles)
    shuffled: torch.Tensor
    tile: tuple[int, int]  # a tile's (height, width) in pixels
    layers: tuple[ShuffleLayer, ...]


def moved_tiles(image: torch.Tensor, tiles: int, seed: int = 0) -> torch.Tensor:
    """``image`` cut into tiles×tiles tiles put back so that no tile stays where it was (a seeded
    random derangement): with a plain random order, 2×2 tiles and seed 0 kept half the picture in
    place."""
    _, _, h, w = image.shape
    th, tw = h // tiles, w // tiles
    n = tiles * tiles
    generator = torch.Generator().manual_seed(seed)
    order = list(range(n))
    while n > 1 and any(i == o for i, o in enumerate(order)):
        order = torch.randperm(n, generator=generator).tolist()
    pieces = [image[..., r * th:(r + 1) * th, c * tw:(c + 1) * tw] for r in range(tiles) for c in range(tiles)]
    rows = [torch.cat([pieces[order[r * tiles + c]] for c in range(tiles)], dim=-1) for r in range(tiles)]
    return torch.cat(rows, dim=-2)


def shuffle_by_layer(model: VGGFeatures, image: torch.Tensor, layers, tiles: int = 2, seed: int = 0) -> ShuffleResult:
    """Shuffle ``image``'s tiles×tiles tiles and measure every layer of ``layers`` both ways, in one
    forward pass per image. The same measure for both, a change relative to its own size, so a
    layer's two bars can be compared: the activations move wherever a feature moved; the Gram moves
    only where the seams between tiles made new features (an edge that was not in the picture),
    which counts more where a unit's receptive field is large beside a tile."""
    layers = list(dict.fromkeys(layers))
    deepest = max(layers, key=lambda name: model.table[name].output_index)
    image = fit_image(model, deepest, image)
    shuffled = moved_tiles(image, tiles, seed)
    image = image[..., : shuffled.shape[-2], : shuffled.shape[-1]]
    with torch.no_grad():
        a = model.extract(image.to(model.mean.device), layers)
        b = model.extract(shuffled.to(model.mean.device), layers)
    rows = []
    for name in layers:
        ga, gb = costs.gram_matrix(a[name].double()), costs.gram_matrix(b[name].double())
        act = float((a[name] - b[name]).norm() / a[name].norm().clamp_min(1e-12))
        gram = float((ga - gb).norm() / ga.norm().clamp_min(1e-12))
        rows.append(ShuffleLayer(name, model.table[name].receptive_field, act, gram))
    return ShuffleResult(image, shuffled, (shuffled.shape[-2] // tiles, shuffled.shape[-1] // tiles), tuple(rows))
