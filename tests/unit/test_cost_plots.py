"""The cost-curve figures: axes that show the decrease, in numbers a student reads."""

from __future__ import annotations

from nst_core import Step, plots
from tests.support import step_record


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
