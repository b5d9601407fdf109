"""Figures of a run's costs over its steps: J(G) and its parts, each style layer's share, runs
compared, and the live chart a page redraws while a run goes."""

from __future__ import annotations

import math
import textwrap
from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..describe import friendly_number, objective_terms, size_label
from .common import FONT, new_figure

if TYPE_CHECKING:
    from ..transfer import Step


def _xs(history: list[Step]) -> list[int]:
    return [h.step for h in history]


TERMS = [("content", "α·J_content", "#1f77b4"), ("style", "β·J_style", "#d62728"), ("tv", "TV", "#7f7f7f")]


def stage_spans(history: list[Step]) -> list[tuple[int, int]]:
    """(first, last + 1) record indices of each coarse-to-fine level in a cost history."""
    spans, first = [], 0
    for n in range(1, len(history) + 1):
        if n == len(history) or history[n].size != history[first].size:
            spans.append((first, n))
            first = n
    return spans


def _cost_scale(history: list[Step], keys=("total",)) -> str:
    """Log when the cost falls over more than a factor 20 (a linear axis would flatten the end),
    linear otherwise (a log axis would flatten the whole run)."""
    values = [v for h in history for v in (getattr(h, k) for k in keys) if v is not None and v > 0]
    return "log" if values and max(values) / min(values) > 20 else "linear"


def _level_marks(history: list[Step], spans=None) -> list[tuple[float, str, bool]]:
    """(x, new size, label on the left) for each move to a finer level: the line sits between the two
    steps, and one in the chart's right half takes its label on its left, where there is room (on
    its right the label ran past the axes and onto the cost's jump)."""
    middle = (history[0].step + history[-1].step) / 2 if history else 0
    marks = []
    for first, _ in (spans or stage_spans(history))[1:]:
        x = history[first].step - 0.5
        marks.append((x, f"{size_label(history[first].size)} px", x > middle))
    return marks


def _mark_stages(ax, history: list[Step], spans=None, explain: bool = True):
    """A dashed line where the run moves to a finer level, labelled with the new size: from there
    the cost is measured on a new, larger image, so its value may jump up although no step raised it."""
    for x, size, left in _level_marks(history, spans):
        ax.axvline(x, color="#555", ls="--", lw=1.5)
        ax.annotate(size + ("\nlarger image" if explain else ""), (x, 1), xycoords=("data", "axes fraction"),
                    xytext=(-4 if left else 4, -4), textcoords="offset points", va="top",
                    ha="right" if left else "left", fontsize=FONT - 2, color="#222",
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="none", alpha=0.8))


LOG_DECADES = 6  # a log axis never spans more: a cost of 10⁻¹² next to 1 is rounding, not a cost


def _limit_log(ax, arrays, floor: float | None = None):
    """Start a log axis at the first nonzero values, not at the 0 (or the rounding noise) of an
    untouched term, and no lower than ``floor``; label it in plain numbers (0.5, 2, 10⁻³)."""
    positive = np.concatenate([a[np.isfinite(a) & (a > 0)] for a in arrays] or [np.array([1.0])])
    if positive.size:
        top = positive.max()
        low = max(positive.min(), top * 10.0 ** -LOG_DECADES, floor or 0.0)
        ax.set_ylim(low / 1.5, top * 1.5)
        decades = math.log10(top / low) if low > 0 else LOG_DECADES
    else:
        decades = LOG_DECADES
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: friendly_number(v, 2)))
    # Under about a decade there is one major tick or none: some minor ones carry the numbers.
    some = FuncFormatter(lambda v, _: friendly_number(v, 2) if f"{v:.0e}"[0] in "235" else "")
    ax.yaxis.set_minor_formatter(some if decades < 1.3 else NullFormatter())


def _floor(totals) -> float:
    """The lowest cost worth showing beside J(G): a hundredth of its smallest value. A term below
    that is too small to change the picture."""
    values = np.concatenate([np.asarray(t, dtype=float) for t in totals] or [np.array([np.nan])])
    values = values[np.isfinite(values) & (values > 0)]
    return float(values.min()) / 100 if values.size else 0.0


def cost_curves(history: list[Step], title: str = "", scale: str = "auto", total_steps: int | None = None) -> Figure:
    """J(G) and its weighted parts over the steps.

    Linear scale: the parts stacked, so the top edge is J(G) and the colours show what it is paying
    for. Log scale (chosen by ``"auto"`` when the cost falls over more than a factor 20): one line
    per term, with zeros (a content cost starting from the content photo) left out instead of drawn
    at 10⁻¹²; the axis starts at the smallest nonzero value. Each coarse-to-fine level is drawn
    as its own piece, with the switch marked: there the cost is measured on a new, larger image.
    Draws any history so far; during a run, ``total_steps`` keeps the x axis still.
    """
    fig = new_figure(5.2, 4.2)
    ax = fig.add_subplot()
    if not history:
        ax.text(0.5, 0.5, "no steps yet", ha="center", va="center", fontsize=FONT, transform=ax.transAxes)
        ax.axis("off")
        return fig
    scale = _cost_scale(history) if scale == "auto" else scale
    terms = [t for t in TERMS if any((getattr(h, t[0]) or 0) > 0 for h in history)]
    spans = stage_spans(history)
    arrays = []
    for n, (first, last) in enumerate(spans):
        part = history[first:last]
        x = _xs(part)
        if scale == "linear":
            ax.stackplot(x, *[[_positive(getattr(h, k)) for h in part] for k, _, _ in terms],
                         colors=[c for *_, c in terms], alpha=0.8,
                         labels=[label for _, label, _ in terms] if n == 0 else ())
            ax.plot(x, [h.total for h in part], color="black", lw=2.5, label="J(G) total" if n == 0 else None)
            continue
        for key, label, color in [("total", "J(G) total", "black"), *terms]:
            y = np.array([getattr(h, key) if _positive(getattr(h, key)) else np.nan for h in part], dtype=float)
            arrays.append(y)
            ax.plot(x, y, color=color, lw=2.8 if key == "total" else 2, label=label if n == 0 else None)
    if scale == "log":
        ax.set_yscale("log")
        _limit_log(ax, arrays, _floor([[h.total for h in history]]))
    else:
        ax.set_ylim(0, None)
    _mark_stages(ax, history, spans)
    if total_steps:
        ax.set_xlim(0, max(total_steps, history[-1].step) + 0.5)
    ax.set_xlabel("step", fontsize=FONT)
    ax.set_ylabel("weighted cost" + (" (log scale)" if scale == "log" else ""), fontsize=FONT)
    ax.tick_params(labelsize=FONT - 2)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=FONT - 2, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(terms) + 1, frameon=False,
              handlelength=1.2, columnspacing=1.0)
    if title:
        ax.set_title(title, fontsize=FONT + 1)
    return fig


def _positive(v) -> float:
    """A cost for stacking: NaN (a term a record did not measure), None and negatives count as 0."""
    return float(v) if v is not None and v > 0 else 0.0


def _layer_rows(history: list[Step]) -> tuple[list[str], np.ndarray]:
    """The style layers (those of the first record) and each one's cost per record."""
    layers = list(history[0].style_layers) if history else []
    ys = np.array([[_positive(h.style_layers.get(name)) for h in history] for name in layers], dtype=float)
    return layers, ys.reshape(len(layers), len(history))


def _draw_shares(ax, history: list[Step], total_steps: int | None = None) -> None:
    """Each style layer's share of β·J_style, stacked to 100%, each band named where it ends."""
    layers, ys = _layer_rows(history)
    if not layers or not history:
        ax.text(0.5, 0.5, "no style layers yet" if history else "no steps yet", ha="center", va="center",
                fontsize=FONT, transform=ax.transAxes)
        ax.axis("off")
        return
    sums = ys.sum(0, keepdims=True)
    shares = np.divide(ys, sums, out=np.zeros_like(ys), where=sums > 0)
    x = _xs(history)
    if x[0] == x[-1]:  # every record at one step: a bar, since an area needs two points
        x, shares = [x[0] - 0.5, x[0] + 0.5], np.repeat(shares[:, -1:], 2, axis=1)
    ax.stackplot(x, 100 * shares, labels=layers, alpha=0.9, colors=[f"C{i}" for i in range(len(layers))])
    for i, name in enumerate(layers):  # readable without a legend, even on a phone
        mid = 100 * (shares[:i, -1].sum() + shares[i, -1] / 2)
        if shares[i, -1] > 0.06:
            ax.text(x[-1], mid, f" {name} {shares[i, -1]:.0%}", va="center", ha="left", fontsize=FONT - 2)
    _mark_stages(ax, history, explain=False)
    ax.set_ylim(0, 100)
    ax.set_xlim(x[0], max(x[-1], total_steps or 0))
    ax.set_xlabel("step", fontsize=FONT)
    ax.set_ylabel("% of β·J_style", fontsize=FONT)
    ax.tick_params(labelsize=FONT - 2)


def layer_shares(history: list[Step], title: str | None = None, total_steps: int | None = None) -> Figure:
    """Each style layer's share of β·J_style over the steps, stacked to 100%.

    Works on the history so far, so a page can redraw it live during a run; ``total_steps`` fixes
    the x axis so the picture grows to the right instead of stretching."""
    fig = new_figure(5.2, 4.4)
    ax = fig.add_subplot()
    _draw_shares(ax, history, total_steps)
    if ax.axison:
        ax.legend(fontsize=FONT - 3, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3, frameon=False)
    if title is None:
        title = "Which style layer carries the cost"
    if title:  # "" where the page has its own heading
        ax.set_title(title, fontsize=FONT + 1)
    return fig


def layer_costs(history: list[Step], title: str = "") -> Figure:
    """Each style layer's weighted cost β·λ[l]·J_style[l] over the steps (log scale, from the
    smallest nonzero value), beside its share of β·J_style (:func:`layer_shares`' picture). Wide:
    for a phone, show :func:`layer_shares` alone."""
    fig = new_figure(13, 5.2)
    ax1, ax2 = fig.subplots(1, 2)
    layers, ys = _layer_rows(history)
    x = _xs(history)
    arrays = []
    for first, last in stage_spans(history):
        for i, (name, y) in enumerate(zip(layers, ys)):
            seg = np.where(y[first:last] > 0, y[first:last], np.nan)
            arrays.append(seg)
            ax1.plot(x[first:last], seg, color=f"C{i}", lw=2, label=name if first == 0 else None)
    ax1.set_yscale("log")
    _limit_log(ax1, arrays)
    _mark_stages(ax1, history, explain=False)
    ax1.set_xlabel("step", fontsize=FONT)
    ax1.set_ylabel("β·λ[l]·J_style[l]", fontsize=FONT)
    ax1.tick_params(labelsize=FONT - 2, which="both")
    ax1.grid(alpha=0.3, which="both")
    fig.legend(*ax1.get_legend_handles_labels(), loc="outside lower center", ncol=max(len(layers), 1),
               fontsize=FONT - 1, frameon=False)
    ax1.set_title("Per-layer style cost", fontsize=FONT + 1)
    _draw_shares(ax2, history)
    ax2.set_title("Which layer dominates", fontsize=FONT + 1)
    if title:
        fig.suptitle(title, fontsize=FONT + 1)
    return fig


def compare_runs(histories: dict[str, list[Step]], scale: str = "auto") -> Figure:
    """Runs overlaid against time in seconds: the total cost J(G) (top) and its content (solid) and
    style (dashed) parts (bottom). Label the runs with ``describe.differing_labels`` so each legend
    entry says what differs. Stacked, not side by side, so it stays readable in a narrow column."""
    fig = new_figure(5.2, 7.6)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    if scale == "auto":
        everything = [h for hist in histories.values() for h in hist]
        scale = _cost_scale(everything, ("total", "content", "style"))
    top, bottom = [], []
    for i, (label, hist) in enumerate(histories.items()):
        color = f"C{i}"
        for first, last in stage_spans(hist):
            part = hist[first:last]
            t = [h.elapsed for h in part]
            y = lambda key: np.array([getattr(h, key) if getattr(h, key) > 0 else np.nan for h in part],  # noqa: E731
                                     dtype=float)
            top.append(y("total"))
            bottom += [y("content"), y("style")]
            first_piece = first == 0
            ax1.plot(t, top[-1], color=color, lw=2.5, label=label if first_piece else None)
            ax2.plot(t, bottom[-2], color=color, lw=2, ls="-")
            ax2.plot(t, bottom[-1], color=color, lw=2, ls="--")
            if not first_piece:
                ax1.axvline(t[0], color=color, ls=":", lw=1.2)
    floor = _floor(top)
    for ax, arrays, t in [(ax1, top, "Total cost J(G)"), (ax2, bottom, "α·J_content (solid), β·J_style (dashed)")]:
        if scale == "log":
            ax.set_yscale("log")
            _limit_log(ax, arrays, floor)
        else:
            ax.set_ylim(0, None)
        ax.grid(alpha=0.3, which="both")
        ax.tick_params(labelsize=FONT - 2)
        ax.set_title(t, fontsize=FONT + 1)
    ax2.set_xlabel("seconds (dotted: a run moves to a larger image)", fontsize=FONT - 1)
    # Below the axes, one run a line: a label that names what differs can be long, and inside
    # the axes it would hide the curves.
    handles, labels = ax1.get_legend_handles_labels()
    fig.legend(handles, [textwrap.fill(label, 44) for label in labels], loc="outside lower center", ncol=1,
               fontsize=FONT - 2, frameon=False)
    return fig


# The live cost chart (Vega-Lite, drawn by the browser): Vega's default 10–11 px labels cannot
# be read on a projector, so its fonts match the figures'.
VEGA_FONTS = {"axis": {"labelFontSize": 16, "titleFontSize": 18},
              "legend": {"labelFontSize": 16, "titleFontSize": 16, "symbolSize": 200},
              "title": {"fontSize": 18}, "text": {"fontSize": 16}}


def live_cost_chart(history) -> dict:
    """The live chart of α·J_content and β·J_style per step (loop records), as a Vega-Lite spec
    with its data inline and projector-sized fonts (:data:`VEGA_FONTS`). A class redraws it once
    per preview for every watching student, so it is a plain dict, not an Altair chart. As on Cost
    curves, a dashed line marks each move to a finer level, where the cost may jump up."""
    terms = objective_terms(history[-1]) if history else ()  # a reconstruction's other term is not drawn as 0
    values = [{"step": h.step, "term": name, "cost": cost} for h in history
              for term, name, cost in (("content", "α·J_content", h.content), ("style", "β·J_style", h.style))
              if term in terms]
    # The height holds the axes and the legend too; steps are whole numbers even at step 1.
    x = {"field": "step", "type": "quantitative", "title": "step", "scale": {"zero": False},
         "axis": {"format": "d", "tickMinStep": 1}}
    layers = [{"data": {"values": values}, "mark": {"type": "line", "strokeWidth": 3},
               "encoding": {"x": x, "y": {"field": "cost", "type": "quantitative", "title": "cost"},
                            "color": {"field": "term", "type": "nominal", "title": None,
                                      "legend": {"orient": "top", "direction": "vertical"}}}}]
    for step, size, left in _level_marks(history):
        level = [{"step": step, "label": f"{size}: larger image"}]
        layers += [{"data": {"values": level}, "mark": {"type": "rule", "strokeDash": [6, 4], "color": "#555"},
                    "encoding": {"x": x}},
                   {"data": {"values": level}, "mark": {"type": "text", "align": "right" if left else "left",
                                                        "baseline": "top", "dx": -6 if left else 6, "y": 4,
                                                        "color": "#222"},
                    "encoding": {"x": x, "text": {"field": "label"}}}]
    return {"height": 320, "config": VEGA_FONTS, "layer": layers}
