"""Top patches: the places in a collection of pictures that excite one channel of a layer most,
each with its receptive field, for What layers see. The index is built once per layer, in the
background, and then answers any channel in milliseconds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from .analysis import border_margin, deepest_of, fit_image, interior, receptive_field_box, unit_center
from .images import fit_long_side, resize_tensor, to_tensor
from .model import LayerInfo, VGGFeatures


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


CONTEXT_MIN_PX = 32  # the smallest view around a patch that a page shows


def _min_distance(info: LayerInfo) -> float:
    """Two patches closer than this (input pixels) show the same place: half a receptive field, and
    for shallow layers half the view shown around the patch, since two 3 px fields a few pixels
    apart looked identical in their 32 px views."""
    return max(info.receptive_field / 2, info.stride, CONTEXT_MIN_PX / 2)


class IndexBuilder:
    """Builds :func:`patch_indexes` one image at a time, so a background job can hand the CPU back
    between images and report how far it got; ``build()`` gives the same indexes as one call."""

    def __init__(self, model: VGGFeatures, layers, scales=(160, 256, 384), per_picture: int = 12,
                 pooling: str = "max", border_px: int = 0):
        self.model, self.layers = model, list(dict.fromkeys(layers))
        self.deepest = deepest_of(model, self.layers)
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
    side = max(2 * info.receptive_field, CONTEXT_MIN_PX)
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
