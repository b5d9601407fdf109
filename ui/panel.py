"""Drawing a live run: a status line, Stop beside the progress bar, then the preview beside the
cost chart. Everything drawn comes from the run's :class:`~nst_core.serve.RunView`."""

from __future__ import annotations

import time

import streamlit as st

from nst_core.describe import layer_share_text, objective_terms, progress_text, queue_text, share_text
from nst_core.plots import live_cost_chart
from nst_core.serve import RunState, RunView
from nst_core.serve.estimate import remaining_s, time_left_text

REPLAY_FRAMES = 24  # at most this many snapshots are shown in a replay, evenly spread


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
        # A refusal's buttons go in a slot of their own, after the panel: drawn into the panel's
        # place, they stayed on the page, faded, for the whole of the run they started.
        self.after = st.empty()
        self.estimate_s = 0.0  # the seconds announced before Run, blended into the time left
        self.replayed = 0  # frames shown by the last replay (tests read it)
        self.kind = kind

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
            if view.state is RunState.RUNNING:  # admitted: the targets are computed before step 1
                self.bar.progress(i / n, text=f"{prefix}Starting: measuring the content and style images…")
            return
        self.bar.progress(min((i + rec.step / max(rec.total_steps, 1)) / n, 1.0), text=prefix + progress_line(
            view, self.estimate_s))
        if view.preview is not None and view.preview_step != self.preview_step:
            self.preview_step = view.preview_step
            self._frame(view.preview, f"{prefix}Step {view.preview_step}",
                        [h for h in view.history if h.step <= view.preview_step])

    def _frame(self, jpeg: bytes, caption: str, history: list) -> None:
        """A preview with the chart and the shares as of its own step: drawn at the newest step, they
        disagreed with the picture beside them (step 20 beside "style 62%" of step 28)."""
        self.preview.image(jpeg, caption=caption, width="stretch", output_format="JPEG")
        if history:
            last = history[-1]
            self.chart.vega_lite_chart(spec=live_cost_chart(history), width="stretch")
            layers = f"; {layer_share_text(last)}" if "style" in objective_terms(last) else ""
            self.shares.caption(f"At step {last.step}: {share_text(last)}{layers}.")

    def replay(self, view: RunView, seconds: float, position: tuple[int, int] = (0, 1)) -> None:
        """Show a run someone else computed forming: its recorded snapshots, each with the costs up
        to its step, in about ``seconds``. A class's Run of the teacher's pair was served finished at
        once, and nobody saw G evolve, which is the point of the page."""
        frames = list(view.snapshots)
        if len(frames) > REPLAY_FRAMES:
            frames = [frames[round(k * (len(frames) - 1) / (REPLAY_FRAMES - 1))] for k in range(REPLAY_FRAMES)]
        i, n = position
        total = view.latest.total_steps if view.latest is not None else 0
        for step, jpeg in frames:
            history = [h for h in view.history if h.step <= step]
            self.bar.progress(min((i + step / max(total, 1)) / n, 1.0),
                              text=f"Replaying the recorded run: step {step} of {total}")
            self._frame(jpeg, f"Step {step} (replay)", history)
            time.sleep(seconds / len(frames))
        self.replayed = len(frames)

    def close(self, done: list, on_offer=None, kind: str = "") -> None:
        """The runs (``ui.runs.RunRecord``) are over: the live panel and its Stop button give way to
        one line; a refused run's offers (:func:`ui.runs.refusal_offers`) become buttons calling
        ``on_offer(changes, kind)``, which change the settings and run again in one click."""
        last = done[-1]
        if last.status is RunState.DONE:
            took = sum(r.last.elapsed for r in done if r.last)
            self.root.success(f"Done in {took:.1f} s" + (", computed once for everyone who asked for this run."
                                                          if last.shared else "."), icon="✅")
            return
        self.root.error(last.message, icon="💥")
        offers = getattr(last, "offers", ())
        if offers and on_offer is not None:
            for col, (k, (label, changes)) in zip(self.after.container().columns(len(offers)), enumerate(offers)):
                col.button(label, key=f"offer_{kind}_{k}", type="primary", on_click=on_offer,
                           args=(changes, kind), help="Changes the setting and runs again.")


def progress_line(view: RunView, estimate_s: float) -> str:
    """The progress line, with the time left from the pre-run estimate blended with the pace
    measured so far (:func:`~nst_core.serve.estimate.remaining_s`), said in words."""
    rec = view.latest
    left = time_left_text(remaining_s(view.history or (rec,), estimate_s)) if rec.status == "running" else ""
    return progress_text(rec, left)
