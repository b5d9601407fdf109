"""Runs: the typed run record, the session's gallery, time estimates, and the one run panel that
Stylize, the Cost curves A/B test and the Layer experiments all use (progress, preview, Stop,
queue, recovery)."""

from __future__ import annotations

import io
import json
import os
import time
from dataclasses import dataclass, field, replace

import streamlit as st
import torch
from PIL import Image, PngImagePlugin

from nst_core import ModelError, Step, TransferConfig, VGGFeatures, run, to_pil
from nst_core.estimate import Calibration, calibration_key, measure_speed, predict_seconds
from nst_core.slots import FairQueue

MAX_RUNS_KEPT = 8  # finished runs kept per session, newest first; bounds a session's memory
GALLERY = "runs"  # the session key of the gallery; other destinations are a page's own key


@dataclass
class RunRecord:
    """One run, live or finished. ``history`` keeps the loop's typed records (images dropped)."""

    label: str
    settings: dict  # what the PNG's metadata and the JSON download carry
    model: str
    history: list[Step] = field(default_factory=list)
    snapshots: list[tuple[int, bytes]] = field(default_factory=list)
    weights: dict = field(default_factory=dict)  # the α, β, λ the loop actually used
    status: str = "running"  # running | done | stopped | diverged | failed
    message: str = ""
    best: torch.Tensor | None = None  # while live; becomes ``image`` when finished
    image: bytes | None = None  # PNG
    id: int = 0
    estimated: float = 0.0  # the seconds announced before the run, to set beside the real ones

    def rows(self) -> list[dict]:
        """The history as flat rows, for the figures (the same flattener as the CLI's CSV)."""
        return [h.as_row() for h in self.history]

    @property
    def last(self) -> Step | None:
        return self.history[-1] if self.history else None


@dataclass
class Job:
    """One run to do: a configuration of the loop and what it runs on."""

    label: str
    content: Image.Image
    styles: list[Image.Image]
    config: TransferConfig
    model: VGGFeatures
    names: dict = field(default_factory=dict)  # image names, for the record's settings


@dataclass
class Batch:
    """The runs one button started; kept in the session while they run, so a rerun mid-run
    (Stop, or any widget change) can store what they reached."""

    dest: str
    done: list[RunRecord] = field(default_factory=list)
    current: RunRecord | None = None


@st.cache_resource
def run_slots() -> FairQueue:
    """One queue for the whole server process (Streamlit sessions are threads of one process)."""
    return FairQueue(int(os.environ.get("NST_MAX_RUNS", "2")))


@st.cache_resource(max_entries=1)
def calibration() -> Calibration:
    """What finished runs taught about this server's speed, shared by every session."""
    return Calibration()


@st.cache_resource(max_entries=4, show_spinner="Measuring this server's speed…")
def machine_speed(description: str, _model) -> float:
    return measure_speed(_model)


def _predicted(job: Job) -> float:
    shape = (job.content.height, job.content.width)
    # The speed is measured in float32; what "auto" arithmetic means was decided at model load.
    config = replace(job.config, precision=job.model.compute_precision(job.config.precision))
    return predict_seconds(config, shape, job.model.arch, machine_speed(job.model.description, job.model),
                           len(job.styles))


def estimate(jobs: list[Job]) -> float:
    """Seconds the jobs should take, calibrated by the runs this server has finished."""
    cal = calibration()
    return sum(cal.estimate(calibration_key(j.model.description, j.config), _predicted(j)) for j in jobs)


def png_bytes(img: Image.Image, settings: dict | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if settings:
        info.add_text("nst-settings", json.dumps(settings, default=str))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _thumb(img: Image.Image, side: int = 160) -> bytes:
    img = img.copy()
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _finish(record: RunRecord, status: str, message: str) -> RunRecord:
    ss = st.session_state
    ss["run_counter"] = ss.get("run_counter", 0) + 1
    image = png_bytes(to_pil(record.best), record.settings) if record.best is not None else None
    return replace(record, status=status, message=message, best=None, image=image, id=ss["run_counter"])


def _commit(batch: Batch) -> None:
    """Put a batch's runs where its page shows them: the gallery (newest first), or the page's key."""
    if batch.dest == GALLERY:
        runs = st.session_state.setdefault(GALLERY, [])
        for record in batch.done:
            runs.insert(0, record)
        del runs[MAX_RUNS_KEPT:]
    else:
        st.session_state[batch.dest] = batch.done


def recover_interrupted() -> None:
    """A Stop click or a widget change reruns the page mid-run: keep what the runs had reached."""
    batch = st.session_state.pop("live", None)
    if batch is None:
        return
    current = batch.current
    if current is not None and current.best is not None:
        step = current.last.step if current.last else 0
        batch.done.append(_finish(current, "stopped", f"Stopped at step {step}; the best image so far is kept."))
    _commit(batch)


def run_panel(jobs: list[Job], kind: str, dest: str = GALLERY) -> list[RunRecord]:
    """Run the jobs one after another, with a progress bar, a live preview, a cost chart and a Stop
    button; store the finished runs in ``dest`` and return them."""
    slots = run_slots()
    status = st.empty()
    stop_col, bar_col = st.columns([1, 5])
    stop_col.button("⏹ Stop", key=f"stop_{kind}", help="Stops the run and keeps the best image so far.")
    bar = bar_col.progress(0.0, text="Waiting…")
    preview, chart = st.columns(2)
    preview_slot, chart_slot = preview.empty(), chart.empty()

    def waiting(position: int) -> None:
        bar.progress(0.0, text=f"Queued: {position} run(s) ahead of you share this server's "
                               f"{slots.slots} slot(s). It starts by itself.")

    batch = Batch(dest)
    st.session_state["live"] = batch
    with slots.slot(on_wait=waiting):
        for i, job in enumerate(jobs):
            prefix = f"{job.label} · " if len(jobs) > 1 else ""
            predicted = _predicted(job)
            key = calibration_key(job.model.description, job.config)
            record = batch.current = RunRecord(job.label, {**job.names, "network": job.model.description,
                                                           **job.config.to_dict()}, job.model.description,
                                               estimated=calibration().estimate(key, predicted))
            status_, message = _drive(job, record, lambda rec: _draw(rec, record, prefix, (i, len(jobs)), bar,
                                                                     preview_slot, chart_slot))
            batch.done.append(_finish(record, status_, message))
            batch.current = None
            if status_ == "done" and record.last is not None:
                calibration().record(key, predicted, record.last.elapsed)
            if status_ != "done":
                break
    st.session_state.pop("live", None)
    _commit(batch)
    last = batch.done[-1]
    if last.status == "done":
        status.success(f"Done in {sum(r.last.elapsed for r in batch.done if r.last):.1f} s.", icon="✅")
    else:
        status.error(last.message, icon="💥")
    return batch.done


def _drive(job: Job, record: RunRecord, draw) -> tuple[str, str]:
    """Run the loop for one job, recording every step; a bad configuration ends it with a message."""
    gen = run(job.content, job.styles, job.config, job.model)
    try:
        for rec in gen:
            record.history.append(replace(rec, image=None, best_image=None))
            record.best, record.weights = rec.best_image, rec.weights
            draw(rec)
            if rec.status != "running":
                return rec.status, rec.message
    except (ValueError, ModelError) as exc:
        return "failed", f"This run cannot go on: {exc}"
    finally:
        gen.close()
    return "stopped", "The run ended early."


def _draw(rec: Step, record: RunRecord, prefix: str, position: tuple[int, int], bar, preview_slot,
          chart_slot) -> None:
    i, n = position
    text = (f"{prefix}Step {rec.step}/{rec.total_steps} · J = {rec.total:.4g} "
            f"(α·J_content {rec.content:.3g}, β·J_style {rec.style:.3g}) · "
            f"{rec.elapsed:.0f} s, about {rec.eta:.0f} s left")
    bar.progress(min((i + rec.step / max(rec.total_steps, 1)) / n, 1.0), text=text)
    if rec.image is not None:
        snap = to_pil(rec.image)
        record.snapshots.append((rec.step, _thumb(snap)))
        preview_slot.image(snap, caption=f"{prefix}Step {rec.step}", width="stretch")
        chart_slot.line_chart([{"α·J_content": h.content, "β·J_style": h.style} for h in record.history],
                              height=220)


def run_summary(entry: RunRecord, short: bool = False) -> str:
    """The settings that matter most for comparing runs, in words."""
    s = entry.settings
    parts = {"content layer": s.get("content_layer"), "style layers": ", ".join(s.get("style_layers") or ()),
             "optimizer": s.get("optimizer"), "steps": s.get("steps"), "size": s.get("size"), "β": s.get("beta"),
             "start": s.get("init")}
    parts = {k: v for k, v in parts.items() if v not in (None, "")}
    if short:
        return ", ".join(f"{k} {v}" for k, v in parts.items() if k != "style layers")
    return "\n".join(f"- **{k}**: {v}" for k, v in parts.items())


def show_run(entry: RunRecord, key: str) -> None:
    """One finished run: its image, status, download buttons and settings."""
    if entry.image is None:
        st.info("This run stopped before its first step.")
        return
    st.image(entry.image, caption=f"Run {entry.id}: {entry.label} ({entry.status})", width="stretch")
    if entry.status != "done":
        st.caption(entry.message)
    c1, c2 = st.columns(2)
    c1.download_button("⬇ Download PNG", entry.image, file_name=f"nst_run{entry.id}.png", mime="image/png",
                       key=f"dl_{key}", help="The PNG also carries the settings in its metadata.")
    c2.download_button("⬇ Settings (JSON)", json.dumps(entry.settings, indent=2, default=str),
                       file_name=f"nst_run{entry.id}.json", mime="application/json", key=f"dlj_{key}")
