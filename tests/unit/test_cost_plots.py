"""The cost-curve figures: axes that show the decrease, in numbers a student reads."""

from __future__ import annotations

import warnings

import pytest

from nst_core import Step, plots
from tests.support import gradient_image, step_record


def _falling(noise: float = 1e-12) -> list[Step]:
    """J falls 100-fold; the content cost starts at rounding noise (not exactly 0) from the photo."""
    rows = []
    for s in range(1, 41):
        style = 100.0 / s ** 1.25
        content = noise if s == 1 else 0.3
        rows.append(step_record(s, elapsed=0.1 * s, size=(48, 64), total=content + style, content=content,
                                style=style, style_layers={"conv1_1": 0.6 * style, "conv2_1": 0.4 * style}))
    return rows


def test_a_log_axis_ignores_rounding_noise_near_zero():
    hist = _falling()
    ax = plots.cost_curves(hist).axes[0]
    assert ax.get_yscale() == "log"
    lo, hi = ax.get_ylim()
    smallest_total = min(h.total for h in hist)
    assert lo > smallest_total / 200, lo  # not 10⁻¹²: the fall of J fills the axis
    assert hi < 2 * max(h.total for h in hist)
    fig = plots.compare_runs({"a": hist, "b": _falling(0.0)})
    for ax in fig.axes:
        assert ax.get_ylim()[0] > smallest_total / 200


def test_log_ticks_read_as_plain_numbers():
    ax = plots.cost_curves(_falling()).axes[0]
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() + ax.get_yticklabels(minor=True) if t.get_text()]
    assert labels and not any("e" in t or "$" in t for t in labels), labels


def test_compare_runs_names_every_run_below_the_axes():
    fig = plots.compare_runs({"Run 1 · β 5": _falling(), "Run 2 · β 20": _falling(0.0)})
    texts = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
    assert texts == ["Run 1 · β 5", "Run 2 · β 20"]
    assert all(ax.get_legend() is None for ax in fig.axes)  # nothing drawn over the curves


def _figures():
    import torch

    from nst_core.checks import ShuffleLayer
    from nst_core.costs import gram_matrix
    block = torch.rand(8, 12, 12, generator=torch.Generator().manual_seed(0))
    g = gram_matrix(block)
    hist = _falling()
    return [plots.cost_curves(hist), plots.layer_shares(hist), plots.layer_costs(hist), plots.compare_runs({"a": hist}),
            *plots.gram_panels(g, 2 * g, torch.arange(8), 8), *plots.pair_panels(block, 0, 1),
            *plots.toy_panels(block[:5, :4, :4], gram_matrix(block[:5, :4, :4]), 0, 1),
            plots.feature_grid(block, torch.arange(8), "conv2_1", n=8),
            plots.channel_overlay(gradient_image(), block[0], (0, 0, 10, 10), "channel 0"),
            plots.receptive_fields(gradient_image(), [{"layer": "conv1_1", "receptive field (px)": 3},
                                                      {"layer": "conv2_1", "receptive field (px)": 10}]),
            plots.shuffle_layer_bars([ShuffleLayer("conv1_1", 3, 1.1, 0.05), ShuffleLayer("conv5_1", 132, 1.0, 0.5)],
                                     "How much each layer changed")]


def test_every_text_in_the_figures_is_readable_on_a_projector():
    """Tick labels of 10 pt could not be read from the back of a room: nothing under MIN_FONT."""
    assert plots.FONT >= 16 and plots.MIN_FONT >= 13
    for fig in _figures():
        fig.canvas.draw()
        texts = fig.findobj(lambda a: hasattr(a, "get_fontsize") and hasattr(a, "get_text"))
        for ax in fig.axes:  # tick labels are made at draw time, outside the figure's artist tree
            if ax.axison:
                texts += ax.get_xticklabels() + ax.get_yticklabels() + ax.get_yticklabels(minor=True)
        sizes = [t.get_fontsize() for t in texts if t.get_text().strip() and t.get_visible()]
        assert sizes and min(sizes) >= plots.MIN_FONT, (fig.axes[0].get_title(), min(sizes))


def test_the_live_chart_has_projector_fonts_and_both_terms():
    spec = plots.live_cost_chart(_falling()[:3])
    config = spec["config"]
    assert config["axis"]["labelFontSize"] >= 16 and config["axis"]["titleFontSize"] >= 16
    assert config["legend"]["labelFontSize"] >= 16
    lines, = spec["layer"]  # one size: no level marker
    assert {v["term"] for v in lines["data"]["values"]} == {"α·J_content", "β·J_style"}
    assert len(lines["data"]["values"]) == 6


def test_the_live_chart_plots_both_weighted_terms_of_every_step():
    history = [step_record(step=s, content=10.0 * s, style=100.0 / s) for s in (1, 2, 5)]
    lines = plots.live_cost_chart(history)["layer"][0]
    points = {(v["step"], v["term"]): v["cost"] for v in lines["data"]["values"]}
    assert points == {(s, t): c for s in (1, 2, 5) for t, c in (("α·J_content", 10.0 * s), ("β·J_style", 100.0 / s))}
    assert (lines["encoding"]["x"]["field"], lines["encoding"]["y"]["field"]) == ("step", "cost")


def test_the_live_chart_marks_the_move_to_a_larger_image_where_the_cost_jumps():
    """A coarse-to-fine run's cost jumps up when the image grows: the chart says why, at that step."""
    history = [step_record(step=s, size=(64, 96) if s <= 3 else (128, 192), content=1.0, style=4.0 if s == 4 else 1.0)
               for s in range(1, 7)]
    lines, rule, label = plots.live_cost_chart(history)["layer"]
    assert [v["step"] for v in rule["data"]["values"]] == [3.5]
    assert rule["mark"]["type"] == "rule" and label["encoding"]["text"]["field"] == "label"
    assert label["data"]["values"][0]["label"] == "192×128 px: larger image"


@pytest.mark.parametrize("steps", [[3], [3, 3]])
def test_layer_shares_of_one_step_is_a_bar_with_its_shares(steps):
    """A run that ended at its first step (one record, or a level's and the run's final record at the
    same step) still shows each layer's share, as a bar one step wide, not a collapsed axis."""
    hist = [step_record(step=s, style_layers={"conv1_1": 1.0, "conv2_1": 3.0}) for s in steps]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plots.layer_shares(hist)
        plots.png(fig)
    ax = fig.axes[0]
    assert ax.get_xlim() == (2.5, 3.5)
    labels = sorted(t.get_text().strip() for t in ax.texts)
    assert labels == ["conv1_1 25%", "conv2_1 75%"], labels


def test_a_late_level_label_stays_inside_its_axes():
    """The label of a move to a larger image late in a run ran past the axes' right edge."""
    history = [step_record(s, size=(85, 128) if s <= 56 else (170, 256), total=3.0 - s / 40, content=0.5,
                           style=2.5 - s / 40, style_layers={"conv1_1": 1.0, "conv5_1": 2.0}) for s in range(1, 71)]
    for fig in (plots.cost_curves(history), plots.layer_shares(history)):
        fig.canvas.draw()
        ax = fig.axes[0]
        box = ax.get_window_extent()
        label = next(t for t in ax.texts if "px" in t.get_text())
        extent = label.get_window_extent()
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1, (label.get_text(), extent, box)


def test_every_number_of_the_toy_gram_fits_its_cell():
    """A student who types 50 into the toy block gets a Gram entry of about 2500: "2.5e+03" spilled
    out of its cell, over the axis."""
    import torch

    from nst_core.costs import gram_matrix
    block = torch.rand(5, 4, 4, generator=torch.Generator().manual_seed(0))
    block[0, 0, 0] = 50.0
    gram_fig = plots.toy_panels(block, gram_matrix(block), 0, 1)[3]
    gram_fig.canvas.draw()
    ax = gram_fig.axes[0]
    cell = ax.get_window_extent().width / 5
    numbers = [t for t in ax.texts if all(float(x).is_integer() for x in t.get_position())]  # at cell centres
    assert len(numbers) == 25
    assert max(t.get_window_extent().width for t in numbers) < cell, [t.get_text() for t in numbers]


def test_the_shuffle_bars_are_readable_on_a_phone():
    """The Gram page's shuffle chart fills a phone's column (about 358 px): drawn as the page draws it
    (130 dpi), its smallest text must still be 12 screen pixels tall there. Vertical bars needed a
    wide figure for five layers' names, and their labels came out 10 px tall."""
    import io

    from PIL import Image

    from nst_core.checks import ShuffleLayer
    rows = [ShuffleLayer(f"conv{i}_1", rf, 1.1, g) for i, rf, g in [(1, 3, 0.05), (2, 10, 0.08), (3, 24, 0.13),
                                                                  (4, 60, 0.2), (5, 132, 0.51)]]
    width = Image.open(io.BytesIO(plots.png(plots.shuffle_layer_bars(rows, "How much each layer changed"),
                                            dpi=130))).width
    assert plots.MIN_FONT * 130 / 72 * 358 / width >= 12, width
