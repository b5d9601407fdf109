"""ui.runs on its own, without a page: how a live run is followed."""

from __future__ import annotations

import time
from dataclasses import replace
from types import SimpleNamespace

from nst_core.serve import RunState, RunView
from ui import runs


class _FastRun:
    """A run with a new step at every look, for one second, then done."""

    key = "fast"

    def __init__(self):
        self.version, self.started = 0, time.monotonic()

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        self.version += 1
        done = time.monotonic() - self.started > 1.0
        return RunView(self.key, RunState.DONE if done else RunState.RUNNING, self.version,
                       ended=time.monotonic() if done else None)


def test_a_fast_run_is_drawn_a_few_times_a_second_and_its_end_is_drawn(monkeypatch):
    """Each draw sends the whole cost chart: a run of a thousand steps a second is drawn at most
    every DRAW_EVERY_S, not at every step, and its final state is still drawn."""
    monkeypatch.setattr(runs, "backend", lambda: SimpleNamespace(slots=2))
    drawn = []
    panel = SimpleNamespace(draw=lambda view, *_: drawn.append(view))
    record = runs.RunRecord(label="fast", settings={}, model="m")
    state, *_ = runs._follow(_FastRun(), record, panel, (0, 1))
    assert state is RunState.DONE and drawn[-1].state is RunState.DONE
    assert 2 <= len(drawn) <= 1.0 / runs.DRAW_EVERY_S + 2


class _Slot:
    """Stands for one of the panel's Streamlit slots: remembers what was put in it."""

    def __init__(self):
        self.calls = []

    def __getattr__(self, method):
        return lambda *args, **kwargs: self.calls.append((method, args, kwargs))


def test_the_preview_its_chart_and_its_shares_describe_the_same_step():
    """The preview lags the newest step (snapshots come every few steps); the chart and the shares
    beside it showed the newest step's numbers, so "Step 20" sat beside "style 62%" of step 28.
    A style reconstruction (α = 0) shows no content term, neither in words nor as a line at 0."""
    from ui.panel import Panel
    from tests.support import step_record
    history = tuple(replace(step_record(step=s, content=0.0, style=1.0 / s, total=1.0 / s,
                                        style_layers={"conv1_1": 0.5 / s, "conv2_1": 0.5 / s}),
                            total_steps=40, weights={"alpha": 0.0, "beta": 1.0}) for s in range(1, 29))
    view = RunView("k", RunState.RUNNING, 28, latest=history[-1], history=history, preview=b"jpeg", preview_step=20)
    panel = object.__new__(Panel)
    panel.bar, panel.preview, panel.chart, panel.shares = _Slot(), _Slot(), _Slot(), _Slot()
    panel.preview_step, panel.estimate_s = -1, 0.0
    panel.draw(view, (0, 1), "", 2)
    (_, (image,), kwargs), = panel.preview.calls
    assert kwargs["caption"] == "Step 20"
    (_, _, chart), = panel.chart.calls
    values = chart["spec"]["layer"][0]["data"]["values"]
    assert max(v["step"] for v in values) == 20 and {v["term"] for v in values} == {"β·J_style"}
    (_, (shares,), _), = panel.shares.calls
    assert shares.startswith("At step 20: style 100% of the cost;") and "content" not in shares, shares
    assert "Step 28 of 40" in panel.bar.calls[-1][2]["text"]  # the progress line stays at the newest step


def test_a_run_of_a_batch_says_which_of_the_batch_it_is(monkeypatch):
    """The bar counts the whole batch: "random · Step 60 of 150" sat under a bar 70% full."""
    monkeypatch.setattr(runs, "backend", lambda: SimpleNamespace(slots=2))
    prefixes = set()
    panel = SimpleNamespace(draw=lambda view, position, prefix, slots: prefixes.add(prefix))
    runs._follow(_FastRun(), runs.RunRecord(label="random", settings={}, model="m"), panel, (1, 2))
    assert prefixes == {"random (run 2 of 2) · "}
