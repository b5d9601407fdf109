"""ui.runs on its own, without a page: how a live run is followed."""

from __future__ import annotations

import time
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
    state, *_ = runs._follow(_FastRun(), record, panel, (0, 1), several=False)
    assert state is RunState.DONE and drawn[-1].state is RunState.DONE
    assert 2 <= len(drawn) <= 1.0 / runs.DRAW_EVERY_S + 2
