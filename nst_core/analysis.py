"""Computations behind the explainer pages: what a unit sees, toy Gram matrices, the tile-shuffle
experiment, and how the costs scale. Pure torch; the pages only draw what these return."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

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


@dataclass
class Patch:
    """One place that excites a unit: the receptive-field crop, and a wider view with the field
    at ``context_box`` inside it (so a page can draw the field on its surroundings)."""

    image: int  # index into the list of images searched
    i: int
    j: int
    value: float
    box: tuple[int, int, int, int]  # the receptive field in the searched picture (top, left, bottom, right)
    crop: Image.Image
    source: str = ""  # the image's name
    scale: int = 0  # long side, in pixels, at which the image was searched
    context: Image.Image | None = None
    context_box: tuple[int, int, int, int] | None = None


@dataclass
class PatchIndex:
    """Where every channel of one layer fires most in a collection of images at several scales.

    Built once per (model, layer) by :func:`patch_index`, with every channel at once; then
    :func:`index_patches` answers any channel without running the network. Small: a few candidate
    places per channel and picture, plus the pictures as 8-bit arrays."""

    info: LayerInfo
    names: list[str] = field(default_factory=list)  # the source image's name, per picture
    origin: list[int] = field(default_factory=list)  # the source image's index, per picture
    scales: list[int] = field(default_factory=list)  # long side of each picture
    zoom: list[float] = field(default_factory=list)  # source-image pixels per picture pixel
    pictures: list[torch.Tensor] = field(default_factory=list)  # (3, H, W) uint8
    grids: list[tuple[int, int]] = field(default_factory=list)  # the layer's (n_H, n_W) per picture
    values: torch.Tensor | None = None  # (C, pictures, M) activations at candidate places, −inf where none
    places: torch.Tensor | None = None  # (C, pictures, M) flat grid positions


def _min_distance(info: LayerInfo) -> float:
    """Two patches closer than this (input pixels) show the same place."""
    return max(info.receptive_field / 2, info.stride)


class IndexBuilder:
    """Builds :func:`patch_indexes` one image at a time, so a background job can hand the CPU back
    between images and report how far it got; ``build()`` gives the same indexes as one call."""

    def __init__(self, model: VGGFeatures, layers, scales=(160, 256, 384), per_picture: int = 12,
                 pooling: str = "max", border_px: int = 0):
        self.model, self.layers = model, list(dict.fromkeys(layers))
        self.deepest = _deepest_of(model, self.layers)
        self.scales, self.per_picture, self.pooling, self.border_px = scales, per_picture, pooling, border_px
        self.indexes = {name: PatchIndex(model.table[name]) for name in self.layers}
        self.found: dict[str, tuple[list, list]] = {name: ([], []) for name in self.layers}
        self.names, self.origin, self.sizes, self.zoom, self.pictures = [], [], [], [], []
        self.images = 0

    def add(self, name: str, img) -> None:
        """Search one image (PIL, or a (1, 3, H, W) tensor in [0, 1]) at every scale."""
        for _ in self.adding(name, img):
            pass

    def adding(self, name: str, img):
        """:meth:`add`, pausing after each scale (a generator): a background job hands the CPU
        back between them, since a forward pass at 384 px takes seconds on two cores."""
        base = img if isinstance(img, torch.Tensor) else to_tensor(img)
        long_side = max(base.shape[-2:])
        for side in (self.scales or (None,)):
            with torch.no_grad():
                x = base if side is None else resize_tensor(base, fit_long_side(tuple(base.shape[-2:]), side))
                x = fit_image(self.model, self.deepest, x).to(self.model.mean.device)
                acts = self.model.extract(x, self.layers, self.pooling)
                for layer, a in acts.items():
                    v, f, grid = _block_maxima(a[0].float(), self.model.table[layer], self.per_picture,
                                               self.border_px)
                    self.found[layer][0].append(v)
                    self.found[layer][1].append(f)
                    self.indexes[layer].grids.append(grid)
                del acts  # every layer's maps at once: let them go before the next scale
                self.names.append(name)
                self.origin.append(self.images)
                self.sizes.append(max(x.shape[-2:]))
                self.zoom.append(long_side / max(x.shape[-2:]))
                self.pictures.append((x[0].cpu().clamp(0, 1) * 255 + 0.5).to(torch.uint8))
            yield side
        self.images += 1

    def build(self) -> dict[str, PatchIndex]:
        for layer, index in self.indexes.items():
            # The picture lists are shared between the layers' indexes: one copy of the pixels.
            index.names, index.origin, index.scales, index.zoom = self.names, self.origin, self.sizes, self.zoom
            index.pictures = self.pictures
            index.values = torch.stack(self.found[layer][0], 1)
            index.places = torch.stack(self.found[layer][1], 1)
        return self.indexes


def patch_indexes(model: VGGFeatures, images: list, layers, scales=(160, 256, 384), per_picture: int = 12,
                  pooling: str = "max", border_px: int = 0) -> dict[str, PatchIndex]:
    """Search ``images`` (``(name, PIL image or (1, 3, H, W) tensor)`` pairs, or bare images) at
    each long side in ``scales`` (``None``: as given) for the places each channel of each of
    ``layers`` responds to most. One forward pass per picture serves every layer, so indexing all
    layers costs about as much as indexing the deepest.

    Per picture and channel it keeps the ``per_picture`` strongest block maxima of the map (blocks
    about half a receptive field wide), so the candidates already lie at different places.
    Several scales let a unit find its pattern at the size it responds to: a deep unit that likes
    a face needs the face small enough to fit in its field.

    With ``border_px`` > 0, places within that many input pixels of a picture's edge are not
    candidates (:func:`border_margin`): there a unit sees the zero padding's black frame, and the
    units that respond to the frame would fill the grid with picture edges.
    """
    builder = IndexBuilder(model, layers, scales, per_picture, pooling, border_px)
    for n, item in enumerate(images):
        builder.add(*(item if isinstance(item, tuple) else (f"image {n + 1}", item)))
    return builder.build()


def merge_indexes(first: PatchIndex, second: PatchIndex) -> PatchIndex:
    """One index over the pictures of both (same layer, same candidates per picture): how a
    student's own images join the bundled ones without searching those again. ``Patch.image``
    numbers the second index's images after the first's."""
    if first.info.name != second.info.name or first.values.shape[2] != second.values.shape[2]:
        raise ValueError("only indexes of one layer with the same number of candidates can be merged")
    shift = max(first.origin, default=-1) + 1
    return PatchIndex(first.info, first.names + second.names, first.origin + [o + shift for o in second.origin],
                      first.scales + second.scales, first.zoom + second.zoom, first.pictures + second.pictures,
                      first.grids + second.grids, torch.cat([first.values, second.values], 1),
                      torch.cat([first.places, second.places], 1))


def _block_maxima(a: torch.Tensor, info: LayerInfo, m: int, border_px: int = 0):
    """Each channel's ``m`` strongest block maxima (values, flat positions in the whole grid,
    padded with −inf), and the grid. A block is about half a receptive field, so the candidates are
    spread out; the ``border_px`` frame (in input pixels) is left out."""
    grid = tuple(a.shape[-2:])
    margin = border_margin(info, grid, border_px) if border_px > 0 else 0
    inner = interior(a, margin)  # a view: the frame is cut off, not overwritten in a copy
    block = max(1, min(int(_min_distance(info) // info.stride), *inner.shape[-2:]))
    v, where = F.max_pool2d(inner[None], block, stride=block, ceil_mode=True, return_indices=True)
    v, where = v[0].flatten(1), where[0].flatten(1)
    k = min(m, v.shape[1])
    top, pick = v.topk(k, dim=1)
    row, col = where.gather(1, pick).div(inner.shape[-1], rounding_mode="floor"), where.gather(1, pick) % inner.shape[-1]
    flat = ((row + margin) * grid[1] + col + margin).to(torch.int32)  # int32: half the memory of the index
    return F.pad(top, (0, m - k), value=-math.inf).cpu(), F.pad(flat, (0, m - k)).cpu(), grid


def patch_index(model: VGGFeatures, images: list, layer: str, scales=(160, 256, 384), per_picture: int = 12,
                pooling: str = "max", border_px: int = 0) -> PatchIndex:
    """:func:`patch_indexes` for one layer."""
    return patch_indexes(model, images, [layer], scales, per_picture, pooling, border_px)[layer]


def _context(picture: torch.Tensor, box: tuple[int, int, int, int], info: LayerInfo):
    """A view around a receptive field (twice its size, at least 32 px) and the field inside it."""
    top, left, bottom, right = box
    h, w = picture.shape[-2:]
    side = max(2 * info.receptive_field, 32)
    t = max(0, min(h - side, round((top + bottom - side) / 2)))
    lft = max(0, min(w - side, round((left + right - side) / 2)))
    b, r = min(h, t + side), min(w, lft + side)
    view = Image.fromarray(picture[:, t:b, lft:r].permute(1, 2, 0).numpy())
    return view, (top - t, left - lft, bottom - t, right - lft)


def index_patches(index: PatchIndex, channel: int, k: int = 9, max_per_image: int | None = 3) -> list[Patch]:
    """The ``k`` strongest places for one channel, from distinct places, strongest first.

    As in Zeiler & Fergus (2013): each activation is the unit's response to the receptive-field
    patch at that place. Places are taken greedily from the highest; one is skipped if its centre,
    in the source image's pixels, lies within half a receptive field of one already taken from the
    same image (at any scale), or if its image already gave ``max_per_image`` patches, so the grid
    shows what different images have in common."""
    info = index.info
    if not 0 <= channel < index.values.shape[0]:
        raise ValueError(f"{info.name} has channels 0–{index.values.shape[0] - 1}, not {channel}.")
    v = index.values[channel].flatten()
    m = index.values.shape[2]
    taken: list[tuple[int, tuple[float, float], float]] = []
    per_image: dict[int, int] = {}
    chosen: list[Patch] = []
    for flat in v.argsort(descending=True).tolist():
        value = float(v[flat])
        if not math.isfinite(value) or len(chosen) == k:
            break
        p = flat // m
        src, zoom = index.origin[p], index.zoom[p]
        if max_per_image is not None and per_image.get(src, 0) >= max_per_image:
            continue
        place = int(index.places[channel, p, flat % m])
        i, j = divmod(place, index.grids[p][1])
        cy, cx = unit_center(info, i, j)
        centre, reach = (cy * zoom, cx * zoom), _min_distance(info) * zoom
        if any(s == src and math.dist(c, centre) < max(r, reach) for s, c, r in taken):
            continue
        picture = index.pictures[p]
        box = receptive_field_box(info, i, j, tuple(picture.shape[-2:]))
        crop = Image.fromarray(picture[:, box[0]:box[2], box[1]:box[3]].permute(1, 2, 0).numpy())
        context, context_box = _context(picture, box, info)
        chosen.append(Patch(src, i, j, value, box, crop, index.names[p], index.scales[p], context, context_box))
        taken.append((src, centre, reach))
        per_image[src] = per_image.get(src, 0) + 1
    return chosen


def patch_view(patch: Patch, side: int = 144, colour=(0, 229, 255)) -> Image.Image:
    """One patch as a picture ``side`` px wide: its surroundings with the receptive field boxed.

    Drawn with PIL, not Matplotlib: nine of them take milliseconds, where the 3×3 figure took a
    second per channel."""
    view, box = (patch.context, patch.context_box) if patch.context is not None else (patch.crop, None)
    z = side / view.width
    small = view.width < 48  # a shallow unit's few pixels: keep them square, not blurred
    out = view.resize((side, max(1, round(view.height * z))),
                      Image.Resampling.NEAREST if small else Image.Resampling.BICUBIC)
    if box is not None:
        top, left, bottom, right = box
        ImageDraw.Draw(out).rectangle([round(left * z), round(top * z), round(right * z) - 1, round(bottom * z) - 1],
                                      outline=colour, width=max(2, side // 64))
    return out


def bundled_collection(assets: Path, long_side: int = 512) -> list[tuple[str, Image.Image]]:
    """The images to search for top patches, as (name, image) pairs: every bundled photo
    (``content/``), every painting (``styles/*.jpg``; the synthetic styles are left out, they would
    only show a unit's taste for our own generator) and the natural photos in ``photos/``."""
    paths = [*sorted((assets / "content").glob("*.jpg")), *sorted((assets / "styles").glob("*.jpg")),
             *sorted((assets / "photos").glob("*.jpg"))]
    out = []
    for p in paths:
        with Image.open(p) as img:
            img = img.convert("RGB")
        img.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
        out.append((p.stem.replace("_", " "), img))
    return out


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
    image = fit_image(model, _deepest_of(model, layers), image)
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
            deepest = _deepest_of(model, [content_layer, *style_layers])
            c, s = (fit_image(model, deepest, to_tensor(img, side)) for img in (content, style))
            a_c = model.extract(c, [content_layer])[content_layer]
            a_s = model.extract(s, list(style_layers))
            row = {"size": side, "J_content(C,0)": float(costs.content_cost(a_c, torch.zeros_like(a_c)))}
            for name, act in a_s.items():
                row[f"J_style[{name}](S,0)"] = float(costs.style_layer_cost(act, torch.zeros_like(act)))
            row["mean activation, content layer"] = float(a_c.mean())
            rows.append(row)
    return rows


def _deepest_of(model: VGGFeatures, layers) -> str:
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

