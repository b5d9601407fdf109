"""Figures of what the network computes: activation maps, Gram matrices, the toy block's products,
receptive fields and the shuffled-tiles experiment."""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import matplotlib
import numpy as np
import torch
from matplotlib.colors import FuncNorm, PowerNorm
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from matplotlib.ticker import ScalarFormatter
from PIL import Image, ImageDraw

from ..analysis import interior
from ..describe import friendly_number
from .common import CMAP, FONT, MIN_FONT, new_figure


@dataclass(frozen=True)
class CellPicture:
    """A drawn matrix figure as PNG bytes, with where its cells lie in the picture's pixels, so a
    page can box any one cell (:meth:`with_box`) in milliseconds instead of drawing the figure
    again on every move of a slider."""

    png: bytes
    left: float  # pixel x of the matrix's left edge
    top: float  # pixel y of the matrix's top edge
    cell_w: float
    cell_h: float

    def with_box(self, row: int, col: int, colour: str = "#ff2d2d", width: int = 5) -> bytes:
        """The picture with cell (row, col) boxed."""
        return self.with_rect((row, col, row + 1, col + 1), colour, width)

    def with_rect(self, box, colour: str = "#ff2d2d", width: int = 3) -> bytes:
        """The picture with ``box`` = (top, left, bottom, right), in cells, outlined just outside it,
        so the line is thick enough to find on a phone without hiding a small cell."""
        top, left, bottom, right = box
        img = Image.open(io.BytesIO(self.png)).convert("RGB")
        corners = [self.left + left * self.cell_w - width, self.top + top * self.cell_h - width,
                   self.left + right * self.cell_w + width, self.top + bottom * self.cell_h + width]
        ImageDraw.Draw(img).rectangle([round(v) for v in corners], outline=colour, width=width)
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        return buf.getvalue()


def cell_picture(fig: Figure, ax, shape: tuple[int, int], dpi: int = 120) -> CellPicture:
    """Render ``fig`` (whose ``ax`` shows a matrix of ``shape`` with ``imshow``) and locate its cells.

    Saved at the figure's own size (no tight bounding box), so the layout's pixel positions are the
    picture's."""
    fig.set_dpi(dpi)
    buf = io.BytesIO()
    # Saving at the figure's own dpi draws it once and leaves its layout in place, so the cells are
    # located after it: a separate layout pass first cost a second full draw.
    fig.savefig(buf, format="png", dpi=dpi)
    (x0, y0), (x1, y1) = ax.transData.transform([(-0.5, -0.5), (shape[1] - 0.5, shape[0] - 0.5)])
    height = fig.bbox.height
    top, bottom = height - y0, height - y1  # imshow puts row 0 at the top: y0 is the top edge
    return CellPicture(buf.getvalue(), min(x0, x1), min(top, bottom), abs(x1 - x0) / shape[1],
                       abs(bottom - top) / shape[0])


def _inside(m):
    """A map without its outermost ring of positions (a map under 4×4 keeps it). The zero padding
    around the image makes many channels fire along its edges (an edge detector most of all); a scale
    stretched to those values left the rest of the map nearly black."""
    return interior(m, min(1, min(m.shape[-2:]) // 4))


def scale_limits(blocks: list[torch.Tensor], scaling: str, order: torch.Tensor, n: int):
    """Colour limits for feature grids, taken inside the border ring (:func:`_inside`): None per
    channel, one pair per layer block, or one pair for all."""
    if scaling == "channel":
        return [None] * len(blocks)
    shown = [_inside(b[order[:n]]) for b in blocks]
    if scaling == "layer":
        return [(float(s.min()), float(s.max())) for s in shown]
    lo, hi = min(float(s.min()) for s in shown), max(float(s.max()) for s in shown)
    return [(lo, hi)] * len(blocks)


def _unit_range(m: np.ndarray, limits) -> np.ndarray:
    """``m`` on a 0–1 colour scale: ``limits``, or else the map's own range inside its border ring;
    values beyond the limits saturate."""
    inner = _inside(m)
    lo, hi = (float(inner.min()), float(inner.max())) if limits is None else limits
    return np.clip((m - lo) / (hi - lo), 0, 1) if hi > lo else np.zeros_like(m)


def feature_grid(block: torch.Tensor, order: torch.Tensor, title: str, n: int = 16, limits=None) -> Figure:
    """The first ``n`` channels of an activation block (in ``order``) as small heatmaps, each on
    its own colour scale (``limits`` None) or all on ``limits`` = (low, high).

    Drawn as one mosaic in one axes with a label over each map: n separate axes took seconds to
    lay out, and a student moving a slider should see the answer within a second."""
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    h, w = block.shape[-2:]
    gap_x = max(1, round(0.08 * w))
    gap_y = max(2, round(0.32 * w))  # room for the label, which scales with the figure's width
    height, width = rows * (h + gap_y), cols * w + (cols - 1) * gap_x
    mosaic = np.ones((height, width, 3))
    cmap = matplotlib.colormaps[CMAP]
    fig = new_figure(4.2, 4.2 * height / width + 0.5)
    ax = fig.add_subplot()
    for n_, k in enumerate(order[:n].tolist()):
        r, c = divmod(n_, cols)
        top, left = r * (h + gap_y) + gap_y, c * (w + gap_x)
        mosaic[top:top + h, left:left + w] = cmap(_unit_range(block[k].cpu().float().numpy(), limits))[..., :3]
        ax.text(left + w / 2, top - 0.5, f"ch {k}", ha="center", va="bottom", fontsize=FONT - 3)
    ax.imshow(mosaic, interpolation="nearest")
    ax.axis("off")
    fig.suptitle(title, fontsize=FONT + 1)
    return fig


def overlay_picture(image: Image.Image, amap: torch.Tensor, title: str, dpi: int = 120) -> CellPicture:
    """:func:`channel_overlay` without the box, drawn once: a page outlines any unit's receptive
    field on it with :meth:`CellPicture.with_rect` (in image pixels) as the sliders move."""
    fig = channel_overlay(image, amap, None, title)
    return cell_picture(fig, fig.axes[0], (image.height, image.width), dpi)


def channel_overlay(image: Image.Image, amap: torch.Tensor, box, title: str) -> Figure:
    """One channel's map stretched over the image, with the receptive field of one unit boxed
    (``box`` None: no box)."""
    fig = new_figure(6, 6 * image.height / image.width + 0.6)
    ax = fig.add_subplot()
    ax.imshow(image)
    heat = Image.fromarray(np.uint8(255 * _norm(amap.cpu().numpy()))).resize(image.size, Image.Resampling.NEAREST)
    ax.imshow(np.asarray(heat), cmap=CMAP, alpha=0.55)
    if box is not None:
        top, left, bottom, right = box
        ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=3, ec="#00e5ff"))
    ax.set_title(title, fontsize=FONT)
    ax.axis("off")
    return fig


def _norm(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _annotated(ax, m: np.ndarray, title: str, cmap="Blues", vmax=None):
    ax.imshow(m, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(m.max()), 1e-9))
    for (r, c), v in np.ndenumerate(m):
        # Whole numbers from 100 up: "2.5e+03" did not fit its cell (a student typed 50 into the toy block).
        ax.text(c, r, f"{v:.0f}" if abs(v) >= 100 else f"{v:.2g}", ha="center", va="center", fontsize=FONT - 1,
                color="white" if vmax is not None and v > 0.6 * vmax else "black")
    ax.set_title(title, fontsize=FONT)
    ax.set_xticks([])
    ax.set_yticks([])


def _toy_specs(block: torch.Tensor, gram: torch.Tensor, k: int, k2: int):
    a, b = block[k].numpy(), block[k2].numpy()
    vmax = max(float(block.max()), 1e-9)
    g = gram.numpy()
    return [(a, f"channel {k}", "Blues", vmax), (b, f"channel {k2}", "Blues", vmax),
            (a * b, f"product: sum = {friendly_number(float((a * b).sum()))}", "Greens", vmax * vmax),
            (g, "Gram matrix G", "Oranges", float(g.max()))]


def _toy_gram_marks(ax, g: np.ndarray, k: int, k2: int):
    ax.set_xticks(range(g.shape[1]))
    ax.set_yticks(range(g.shape[0]))
    ax.tick_params(labelsize=FONT - 2)
    ax.set_xlabel("channel k′", fontsize=FONT - 1)
    ax.set_ylabel("channel k", fontsize=FONT - 1)
    ax.add_patch(Rectangle((k2 - 0.5, k - 0.5), 1, 1, fill=False, lw=3, ec="#d62728"))
    if k != k2:
        ax.add_patch(Rectangle((k - 0.5, k2 - 0.5), 1, 1, fill=False, lw=2, ec="#d62728", ls="--"))


def toy_panels(block: torch.Tensor, gram: torch.Tensor, k: int, k2: int) -> list[Figure]:
    """Channel k, channel k′, their element-wise product, and the Gram matrix with G[k, k′] boxed (G
    is the channels' unnormalized cross-covariance: products summed, means not removed), as four
    figures, each readable at 390 px wide, for a page to lay out in columns that stack on a phone."""
    figs = []
    for n, (m, title, cmap, vmax) in enumerate(_toy_specs(block, gram, k, k2)):
        fig = new_figure(3.6, 3.9 if n == 3 else 3.7)
        ax = fig.add_subplot()
        _annotated(ax, m, title, cmap=cmap, vmax=vmax)
        if n == 3:
            _toy_gram_marks(ax, m, k, k2)
        figs.append(fig)
    return figs


def _signed_sqrt_norm(lim: float) -> FuncNorm:
    """A colour scale symmetric about 0 that spreads small values out: colour follows sign·√|x|.
    A Gram matrix's diagonal (channel energies) is far larger than most cross terms, and on a
    linear scale everything but a few cells would be one dark colour."""
    return FuncNorm((lambda x: np.sign(x) * np.sqrt(np.abs(x)), lambda y: np.sign(y) * y * y), vmin=-lim, vmax=lim)


def _gram_panel(fig, ax, m: np.ndarray, title: str, n: int, signed: bool, cell=None, cax=None):
    """One Gram (or Gram difference) heatmap on its own colour scale, with its own colour bar."""
    if signed:
        lim = max(float(np.abs(m).max()), 1e-12)
        im = ax.imshow(m, cmap="RdBu_r", norm=_signed_sqrt_norm(lim), interpolation="nearest")
    else:
        im = ax.imshow(m, cmap="viridis", norm=PowerNorm(0.5, vmin=0, vmax=max(float(m.max()), 1e-12)),
                       interpolation="nearest")
    bar = fig.colorbar(im, cax=cax) if cax is not None else fig.colorbar(im, ax=ax, shrink=0.85, pad=0.02)
    bar.ax.tick_params(labelsize=MIN_FONT)
    bar.formatter = ScalarFormatter(useMathText=True)
    bar.formatter.set_powerlimits((-2, 3))
    bar.update_ticks()
    ax.set_title(title, fontsize=FONT + 1)
    ax.set_xlabel(f"channel k′ (rank 0–{n - 1})", fontsize=FONT - 1)
    ax.set_ylabel("channel k (rank)", fontsize=FONT - 1)
    ax.tick_params(labelsize=MIN_FONT)
    if cell is not None:
        ax.add_patch(Rectangle((cell[1] - 0.5, cell[0] - 0.5), 1, 1, fill=False, lw=2.5, ec="#ff2d2d"))


def _gram_mats(g_style, g_gen, order, n):
    idx = order[:n]
    s = g_style[idx][:, idx].cpu().numpy()
    g = g_gen[idx][:, idx].cpu().numpy()
    return s, g, g - s


def gram_panels(g_style: torch.Tensor, g_gen: torch.Tensor, order: torch.Tensor, n: int,
                labels=("style S", "generated G"), cell=None) -> list[Figure]:
    """G(S), G(other) and their difference as three separate figures, for the first ``n``
    channels in ``order`` (from ``analysis.style_channel_order``).

    Each panel has its own colour scale (square-root, so cross terms are not lost beside the
    diagonal) and its own colour bar. Separate figures let a page put them in columns that stack
    on a phone; each is sized to read at 390 px wide."""
    figs = []
    for m, title, signed in zip(_gram_mats(g_style, g_gen, order, n),
                                [f"G of {labels[0]}", f"G of {labels[1]}",
                                 f"G({labels[1][0]}) − G({labels[0][0]})"], [False, False, True]):
        # Axes placed by hand, square in inches so imshow's aspect moves nothing: a constrained
        # layout took about 0.6 s a panel, most of the time a student waited after picking a layer.
        fig = Figure(figsize=(5.0, 4.6), dpi=100)
        ax = fig.add_axes([0.15, 0.15, 0.5847, 0.6357])  # 2.92 in square
        cax = fig.add_axes([0.765, 0.15, 0.035, 0.6357], label="<colorbar>")
        _gram_panel(fig, ax, m, title, n, signed, cell, cax)
        figs.append(fig)
    return figs


def _pair_specs(a: torch.Tensor, k: int, k2: int, names=None):
    m1, m2 = a[k].cpu().float().numpy(), a[k2].cpu().float().numpy()
    total = float((m1.astype(np.float64) * m2).sum())
    n1, n2 = names or (k, k2)
    return [(m1, f"channel {n1}"), (m2, f"channel {n2}"), (m1 * m2, f"product, sum {friendly_number(total)}")]


def pair_panels(a: torch.Tensor, k: int, k2: int, names=None) -> list[Figure]:
    """Two channels' maps and their product (where both fire together) as three figures, each
    readable at 390 px wide, for a page to lay out in columns that stack on a phone. ``names``
    labels the channels when ``a`` holds only some of a layer's channels."""
    figs = []
    for m, t in _pair_specs(a, k, k2, names):
        h, w = m.shape
        title_in = 0.5
        fig = Figure(figsize=(4.0, 4.0 * h / w + title_in), dpi=100)  # placed by hand: no layout pass
        ax = fig.add_axes([0, 0, 1, 1 - title_in / fig.get_figheight()])
        ax.imshow(m, cmap=CMAP, aspect="auto", interpolation="nearest")
        ax.set_title(t, fontsize=FONT + 1)
        ax.axis("off")
        figs.append(fig)
    return figs


def receptive_fields(image: Image.Image, rows: list[dict], center=None) -> Figure:
    """Each conv block's first layer's receptive field drawn as a square around one point.

    The names go in a legend under the picture, not beside the squares: the small squares sit
    inside each other, and their labels piled up unreadably, worst on a phone."""
    fig = new_figure(5.2, 5.2 * image.height / image.width + 1.1)
    ax = fig.add_subplot()
    ax.imshow(image)
    cy, cx = center or (image.height / 2, image.width / 2)
    for i, row in enumerate(rows):
        rf = row["receptive field (px)"]
        ax.add_patch(Rectangle((cx - rf / 2, cy - rf / 2), rf, rf, fill=False, lw=2.5, ec=f"C{i}",
                               label=f"{row['layer']}: {rf} px"))
    ax.set_xlim(-0.5, image.width - 0.5)
    ax.set_ylim(image.height - 0.5, -0.5)
    ax.axis("off")
    fig.legend(loc="outside lower center", ncol=2, fontsize=FONT - 1, frameon=False, handlelength=1.2)
    return fig


def shuffle_layer_bars(layers, title: str = "") -> Figure:
    """After shuffling an image's tiles, how far each layer moved: its activations (red; what the
    content cost compares, place by place) above its Gram matrix (green; what the style cost
    compares), both as a fraction of their own size. ``layers`` are
    :class:`nst_core.checks.ShuffleLayer` rows; each is named with how many pixels its units see,
    since a seam between two tiles changes the Gram most where a unit sees across it."""
    # Horizontal bars: the layers' names stay level and large on a phone's narrow column.
    fig = new_figure(4.8, 5.2)
    ax = fig.add_subplot()
    y = np.arange(len(layers))
    height = 0.4
    for offset, key, colour, label in [(-height / 2, "activations", "#d62728", "activations (place by place)"),
                                       (height / 2, "gram", "#2ca02c", "Gram matrix (style)")]:
        values = [getattr(r, key) for r in layers]
        bars = ax.barh(y + offset, values, height, color=colour, label=label)
        for b, v in zip(bars, values):
            ax.text(v, b.get_y() + b.get_height() / 2, f" {v:.0%}", ha="left", va="center", fontsize=MIN_FONT)
    ax.set_yticks(y, [f"{r.layer}\n{r.receptive_field} px" for r in layers])
    ax.invert_yaxis()  # shallow layers on top, as in the network
    ax.set_ylabel("layer, and how far one of its units sees", fontsize=FONT - 2)
    ax.set_xlabel("change, % of its own size", fontsize=FONT - 1)
    ax.tick_params(labelsize=MIN_FONT)
    ax.xaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
    top = max([r.activations for r in layers] + [r.gram for r in layers] + [0.1])
    ax.set_xlim(0, top * 1.3)  # room for the value written after the longest bar
    ax.grid(axis="x", alpha=0.3)
    fig.legend(loc="outside lower center", fontsize=FONT - 2, ncol=1, frameon=False, handlelength=1.2)
    if title:
        ax.set_title(title, fontsize=FONT + 1)
    return fig


def gram_pictures(g_style: torch.Tensor, g_gen: torch.Tensor, order: torch.Tensor, n: int,
                  labels=("style S", "generated G"), dpi: int = 120) -> list[CellPicture]:
    """:func:`gram_panels` drawn once, without a marked cell: a page boxes the chosen cell with
    :meth:`CellPicture.with_box`."""
    return [cell_picture(fig, fig.axes[0], (n, n), dpi) for fig in gram_panels(g_style, g_gen, order, n, labels)]
