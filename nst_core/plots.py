"""Matplotlib figures for the explainer pages. Each function returns a ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot, so they hold
no global state: concurrent sessions cannot draw into each other's figures, and nothing leaks
when a figure goes out of scope. Font sizes are set for a classroom projector.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

FONT = 13
CMAP = "magma"


def _fig(w: float, h: float) -> Figure:
    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def scale_limits(blocks: list[torch.Tensor], scaling: str, order: torch.Tensor, n: int):
    """Colour limits for feature grids: None per channel, one pair per layer block, or one pair for all."""
    if scaling == "channel":
        return [None] * len(blocks)
    shown = [b[order[:n]] for b in blocks]
    if scaling == "layer":
        return [(float(s.min()), float(s.max())) for s in shown]
    lo, hi = min(float(s.min()) for s in shown), max(float(s.max()) for s in shown)
    return [(lo, hi)] * len(blocks)


def feature_grid(block: torch.Tensor, order: torch.Tensor, title: str, n: int = 16, limits=None) -> Figure:
    """The first ``n`` channels of an activation block (in ``order``) as small heatmaps."""
    cols = int(math.ceil(math.sqrt(n)))
    rows = int(math.ceil(n / cols))
    fig = _fig(4.2, 4.2 * rows / cols + 0.5)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, k in zip(axes.flat, order[:n].tolist()):
        m = block[k].cpu().numpy()
        kw = {} if limits is None else {"vmin": limits[0], "vmax": max(limits[1], limits[0] + 1e-9)}
        ax.imshow(m, cmap=CMAP, interpolation="nearest", **kw)
        ax.set_title(f"ch {k}", fontsize=FONT - 3, pad=2)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title, fontsize=FONT + 1)
    return fig


def channel_overlay(image: Image.Image, amap: torch.Tensor, box, title: str) -> Figure:
    """One channel's map stretched over the image, with the receptive field of one unit boxed."""
    fig = _fig(6, 6 * image.height / image.width + 0.6)
    ax = fig.add_subplot()
    ax.imshow(image)
    heat = Image.fromarray(np.uint8(255 * _norm(amap.cpu().numpy()))).resize(image.size, Image.Resampling.NEAREST)
    ax.imshow(np.asarray(heat), cmap=CMAP, alpha=0.55)
    top, left, bottom, right = box
    ax.add_patch(Rectangle((left - 0.5, top - 0.5), right - left, bottom - top, fill=False, lw=3, ec="#00e5ff"))
    ax.set_title(title, fontsize=FONT)
    ax.axis("off")
    return fig


def patches_grid(patches, title: str) -> Figure:
    """A 3×3 grid of the image patches that excite one unit most."""
    fig = _fig(6, 6.6)
    axes = fig.subplots(3, 3, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, p in zip(axes.flat, patches):
        ax.imshow(p.crop.resize((96, 96), Image.Resampling.NEAREST if p.crop.width < 24 else Image.Resampling.BICUBIC))
        ax.set_title(f"{p.value:.3g}", fontsize=FONT - 2)
    fig.suptitle(title, fontsize=FONT)
    return fig


def _norm(m: np.ndarray) -> np.ndarray:
    lo, hi = float(m.min()), float(m.max())
    return (m - lo) / (hi - lo) if hi > lo else np.zeros_like(m)


def _annotated(ax, m: np.ndarray, title: str, cmap="Blues", vmax=None):
    ax.imshow(m, cmap=cmap, vmin=0, vmax=vmax if vmax is not None else max(float(m.max()), 1e-9))
    for (r, c), v in np.ndenumerate(m):
        ax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=FONT - 2,
                color="white" if vmax is not None and v > 0.6 * vmax else "black")
    ax.set_title(title, fontsize=FONT)
    ax.set_xticks([])
    ax.set_yticks([])


def toy_walkthrough(block: torch.Tensor, gram: torch.Tensor, k: int, k2: int) -> Figure:
    """Channel k, channel k′, their element-wise product, and the Gram matrix with G[k, k′] boxed."""
    a, b = block[k].numpy(), block[k2].numpy()
    prod = a * b
    fig = _fig(15, 3.9)
    axes = fig.subplots(1, 4, width_ratios=[1, 1, 1, 1.25])
    vmax = max(float(block.max()), 1e-9)
    _annotated(axes[0], a, f"channel {k}", vmax=vmax)
    _annotated(axes[1], b, f"channel {k2}", vmax=vmax)
    _annotated(axes[2], prod, f"product: sum = {prod.sum():.3g}", cmap="Greens", vmax=vmax * vmax)
    g = gram.numpy()
    _annotated(axes[3], g, "Gram matrix G", cmap="Oranges", vmax=float(g.max()))
    axes[3].set_xticks(range(g.shape[1]))
    axes[3].set_yticks(range(g.shape[0]))
    axes[3].add_patch(Rectangle((k2 - 0.5, k - 0.5), 1, 1, fill=False, lw=3, ec="#d62728"))
    if k != k2:
        axes[3].add_patch(Rectangle((k - 0.5, k2 - 0.5), 1, 1, fill=False, lw=2, ec="#d62728", ls="--"))
    return fig


def gram_heatmaps(g_style: torch.Tensor, g_gen: torch.Tensor, order: torch.Tensor, n: int, labels=("style S", "generated G"),
                  cell=None) -> Figure:
    """G(S), G(G) on one colour scale, and their difference, for the first ``n`` channels in ``order``."""
    idx = order[:n]
    s = g_style[idx][:, idx].cpu().numpy()
    g = g_gen[idx][:, idx].cpu().numpy()
    d = g - s
    fig = _fig(15, 5.2)
    axes = fig.subplots(1, 3)
    vmax = max(float(s.max()), float(g.max()), 1e-12)
    for ax, m, t in [(axes[0], s, f"G of {labels[0]}"), (axes[1], g, f"G of {labels[1]}")]:
        im = ax.imshow(m, cmap="viridis", vmin=0, vmax=vmax)
        ax.set_title(t, fontsize=FONT + 1)
    fig.colorbar(im, ax=axes[:2], shrink=0.8)
    lim = max(float(np.abs(d).max()), 1e-12)
    im = axes[2].imshow(d, cmap="RdBu_r", vmin=-lim, vmax=lim)
    axes[2].set_title(f"G({labels[1][0]}) − G({labels[0][0]})", fontsize=FONT + 1)
    fig.colorbar(im, ax=axes[2], shrink=0.8)
    for ax in axes:
        ax.set_xlabel(f"channel k′ (top {n}, by style energy)")
        ax.set_ylabel("channel k")
        if cell is not None:
            ax.add_patch(Rectangle((cell[1] - 0.5, cell[0] - 0.5), 1, 1, fill=False, lw=2.5, ec="#ff2d2d"))
    return fig


def pair_maps(a: torch.Tensor, k: int, k2: int, title: str) -> Figure:
    """Two channels' maps and their product: where both fire together."""
    fig = _fig(12, 3.8)
    axes = fig.subplots(1, 3)
    m1, m2 = a[k].cpu().numpy(), a[k2].cpu().numpy()
    for ax, m, t in [(axes[0], m1, f"channel {k}"), (axes[1], m2, f"channel {k2}"),
                     (axes[2], m1 * m2, f"product: sum = {float((m1 * m2).sum()):.3g}")]:
        ax.imshow(m, cmap=CMAP)
        ax.set_title(t, fontsize=FONT)
        ax.axis("off")
    fig.suptitle(title, fontsize=FONT)
    return fig


def _xs(history):
    return [h["step"] for h in history]


def cost_curves(history: list[dict], title: str = "") -> Figure:
    """α·J_content, β·J_style and the total over the steps, on a log scale."""
    fig = _fig(8, 4.5)
    ax = fig.add_subplot()
    x = _xs(history)
    for key, label, color in [("total", "J(G) total", "black"), ("content", "α·J_content", "#1f77b4"),
                              ("style", "β·J_style", "#d62728"), ("tv", "TV", "#7f7f7f")]:
        y = [max(h[key], 1e-12) for h in history]
        if key == "tv" and not any(h[key] > 0 for h in history):
            continue
        ax.plot(x, y, label=label, color=color, lw=2.5 if key == "total" else 2)
    _mark_stages(ax, history)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("cost (weighted)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=FONT - 1)
    ax.set_title(title, fontsize=FONT + 1)
    return fig


def _mark_stages(ax, history):
    for prev, h in zip(history, history[1:]):
        if prev.get("size") != h.get("size"):
            ax.axvline(h["step"], color="#999", ls="--", lw=1)
            ax.text(h["step"], ax.get_ylim()[1], f" {h['size'].replace('x', '×')} px", va="top",
                    fontsize=FONT - 3, color="#555")


def layer_costs(history: list[dict], title: str = "") -> Figure:
    """Each style layer's weighted cost β·λ·J_style[l]: as lines (log scale) and as its share of J_style."""
    layers = [k[len("style_"):] for k in history[0] if k.startswith("style_")]
    fig = _fig(14, 4.8)
    ax1, ax2 = fig.subplots(1, 2)
    x = _xs(history)
    ys = np.array([[max(h[f"style_{name}"], 1e-12) for h in history] for name in layers])
    for name, y in zip(layers, ys):
        ax1.plot(x, y, label=name, lw=2)
    ax1.set_yscale("log")
    ax1.set_xlabel("step")
    ax1.set_ylabel("β·λ[l]·J_style[l]")
    ax1.grid(alpha=0.3, which="both")
    ax1.legend(fontsize=FONT - 2)
    ax1.set_title("Per-layer style cost", fontsize=FONT + 1)
    shares = ys / ys.sum(0, keepdims=True)
    ax2.stackplot(x, shares, labels=layers, alpha=0.85)
    ax2.set_ylim(0, 1)
    ax2.set_xlabel("step")
    ax2.set_ylabel("share of J_style")
    ax2.set_title("Which layer dominates", fontsize=FONT + 1)
    ax2.legend(fontsize=FONT - 2, loc="upper right")
    fig.suptitle(title, fontsize=FONT + 1)
    return fig


def compare_runs(histories: dict[str, list[dict]]) -> Figure:
    """Runs overlaid: the total cost, and its content and style parts, against time in seconds."""
    fig = _fig(14, 4.8)
    ax1, ax2 = fig.subplots(1, 2)
    for i, (label, hist) in enumerate(histories.items()):
        color = f"C{i}"
        t = [h["elapsed"] for h in hist]
        ax1.plot(t, [max(h["total"], 1e-12) for h in hist], color=color, lw=2.5, label=label)
        ax2.plot(t, [max(h["content"], 1e-12) for h in hist], color=color, lw=2, ls="-", label=f"{label}: α·J_content")
        ax2.plot(t, [max(h["style"], 1e-12) for h in hist], color=color, lw=2, ls="--", label=f"{label}: β·J_style")
    for ax, t in [(ax1, "Total cost J(G)"), (ax2, "Content (solid) and style (dashed)")]:
        ax.set_yscale("log")
        ax.set_xlabel("seconds")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=FONT - 3)
        ax.set_title(t, fontsize=FONT + 1)
    return fig


def receptive_fields(image: Image.Image, rows: list[dict], center=None) -> Figure:
    """Each conv block's first layer's receptive field drawn as a square around one point."""
    fig = _fig(7, 7 * image.height / image.width + 0.4)
    ax = fig.add_subplot()
    ax.imshow(image)
    cy, cx = center or (image.height / 2, image.width / 2)
    for i, row in enumerate(rows):
        rf = row["receptive field (px)"]
        color = f"C{i}"
        ax.add_patch(Rectangle((cx - rf / 2, cy - rf / 2), rf, rf, fill=False, lw=2.5, ec=color))
        ax.text(cx - rf / 2, cy - rf / 2 - 2, f"{row['layer']}: {rf} px", color=color, fontsize=FONT - 1,
                fontweight="bold", va="bottom")
    ax.set_xlim(-0.5, image.width - 0.5)
    ax.set_ylim(image.height - 0.5, -0.5)
    ax.axis("off")
    return fig


def shuffle_bars(gram_change: dict[str, float], content_change: float, content_layer: str) -> Figure:
    """Relative change of each layer's Gram matrix beside the relative content cost, after shuffling."""
    fig = _fig(8, 4.2)
    ax = fig.add_subplot()
    names = list(gram_change) + [f"content\n{content_layer}"]
    values = list(gram_change.values()) + [content_change]
    colors = ["#2ca02c"] * len(gram_change) + ["#d62728"]
    bars = ax.bar(names, values, color=colors)
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v, f"{v:.2f}", ha="center", va="bottom", fontsize=FONT - 1)
    ax.set_ylabel("relative change")
    ax.set_title("Shuffling tiles: Gram matrices (green) vs content (red)", fontsize=FONT + 1)
    ax.grid(axis="y", alpha=0.3)
    return fig


def image_row(images: list[Image.Image], titles: list[str], suptitle: str = "") -> Figure:
    """Images side by side with a title under each: for experiment results."""
    n = len(images)
    fig = _fig(3.2 * n, 3.6)
    axes = fig.subplots(1, n, squeeze=False)[0]
    for ax, img, t in zip(axes, images, titles):
        ax.imshow(img)
        ax.set_title(t, fontsize=FONT)
        ax.axis("off")
    if suptitle:
        fig.suptitle(suptitle, fontsize=FONT + 1)
    return fig
