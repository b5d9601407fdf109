"""Two claims of the course a student can check on their own run, with numbers instead of words.

* J_content is ½ · Σ (a[l](C) − a[l](G))² over every activation of one layer: :func:`content_cost_by_hand`
  lists a few of those differences and adds all of them up, to set beside what the loop reported.
* The network learns nothing during a run: :func:`weights_checksum` is taken when the loop starts
  and when it ends (``Step.network_checksums``), and only the pixels of G change.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import torch

from . import costs
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
