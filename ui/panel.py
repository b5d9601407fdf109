"""Drawing a live run: a status line, Stop beside the progress bar, then the preview beside the
cost chart. Everything drawn comes from the run's :class:`~nst_core.serve.RunView`."""

from __future__ import annotations

import streamlit as st

from nst_core.describe import layer_share_text, progress_text, queue_text, share_text
from nst_core.serve import RunState, RunView


class Panel:
    """Where a run is drawn. Drawing it is also what lets Streamlit end a script whose tab has
    closed."""

    def __init__(self, kind: str):
        self.root = st.empty()
        box = self.root.container()
        self.status = box.empty()
        stop_col, bar_col = box.columns([1, 3])  # wide enough for "Stop" in a stage at 1280 px
        stop_col.button("⏹ Stop", key=f"stop_{kind}", help="Stops the run and keeps the best image so far.")
        self.bar = bar_col.progress(0.0, text="Waiting…")
        preview, chart = box.columns(2)
        self.preview, self.chart, self.shares = preview.empty(), chart.empty(), chart.empty()
        self.preview_step = -1

    def note(self, text: str, icon: str) -> None:
        """Say how the student came to watch this run, when not by starting it."""
        self.status.info(text, icon=icon)

    def draw(self, view: RunView, position: tuple[int, int], prefix: str, slots: int) -> None:
        """The run as of ``view``: its place in the queue, or its progress, preview and costs.
        ``position`` is (runs before it, runs in all) among the runs one button started."""
        i, n = position
        if view.state is RunState.QUEUED:
            self.bar.progress(i / n, text=f"{prefix}{queue_text(view.queue, slots)}")
            return
        rec = view.latest
        if rec is None:
            return
        self.bar.progress(min((i + rec.step / max(rec.total_steps, 1)) / n, 1.0), text=prefix + progress_text(rec))
        if view.preview is not None and view.preview_step != self.preview_step:
            self.preview_step = view.preview_step
            self.preview.image(view.preview, caption=f"{prefix}Step {view.preview_step}", width="stretch",
                               output_format="JPEG")
            self.chart.vega_lite_chart(spec=cost_chart(view.history), width="stretch")
            self.shares.caption(f"{share_text(rec)}; {layer_share_text(rec)}.")

    def close(self, done: list) -> None:
        """The runs (``ui.runs.RunRecord``) are over: the live panel and its Stop button give way to
        one line."""
        last = done[-1]
        if last.status is RunState.DONE:
            took = sum(r.last.elapsed for r in done if r.last)
            self.root.success(f"Done in {took:.1f} s.", icon="✅")
        else:
            self.root.error(last.message, icon="💥")


def cost_chart(history) -> dict:
    """The live chart of α·J_content and β·J_style per step (loop records), as a Vega-Lite
    spec with its data inline. A class redraws it once per preview for every watching student; built
    by Altair (``st.line_chart``) it was the largest part of the watching sessions' Python work in a
    profile, and the run waited for the GIL behind it."""
    values = [{"step": h.step, "term": name, "cost": cost}
              for h in history for name, cost in (("α·J_content", h.content), ("β·J_style", h.style))]
    return {"data": {"values": values}, "height": 220, "mark": {"type": "line"},
            "encoding": {"x": {"field": "step", "type": "quantitative", "title": "step"},
                         "y": {"field": "cost", "type": "quantitative", "title": "weighted cost"},
                         "color": {"field": "term", "type": "nominal", "title": None,
                                   "legend": {"orient": "bottom"}}}}

