"""Runs: the typed run record, the session's gallery, time estimates, and the one run panel that
Stylize, the Cost curves A/B test and the Layer experiments all use (progress, preview, Stop,
queue, recovery). Runs go to the server's backend (:func:`ui.network.backend`), never to a
particular one: the pages do not know where their work is computed."""

from __future__ import annotations

import io
import json
import statistics
import threading
import time
import uuid
from dataclasses import dataclass, field, replace

import streamlit as st
import torch
from PIL import Image, PngImagePlugin

from nst_core import Step, TransferConfig, VGGFeatures, to_pil
from nst_core.describe import ready_text
from nst_core.serve import RunHandle, RunRefused, RunRequest, RunState, RunView
from nst_core.serve.estimate import Calibration, calibration_key, measure_speed, predict_run
from nst_core.settings import SIZES
from nst_core.transfer import SKIPPED_NOTE
from ui.network import backend, network_spec
from ui.panel import Panel

MAX_RUNS_KEPT = 8  # finished runs kept per session, newest first; bounds a session's memory
GALLERY = "runs"  # the session key of the gallery; other destinations are a page's own key
SHARED_NOTE = "Computed once for everyone on this server who asked for exactly this run."


@dataclass
class RunRecord:
    """One run, live or finished. ``history`` keeps the loop's typed records (images dropped)."""

    label: str
    settings: dict  # what the PNG's metadata and the JSON download carry
    model: str
    history: list[Step] = field(default_factory=list)
    snapshots: list[tuple[int, bytes]] = field(default_factory=list)
    weights: dict = field(default_factory=dict)  # the α, β, λ the loop actually used
    status: RunState = RunState.RUNNING  # the run's state; final once the record is in the gallery
    message: str = ""
    best: Image.Image | torch.Tensor | None = None  # while live; becomes ``image`` when finished
    image: bytes | None = None  # PNG
    id: int = 0
    estimated: float = 0.0  # the seconds announced before the run, to set beside the real ones
    key: str = ""  # the run's identity (nst_core.serve.RunRequest.key)
    ready_s: float = 0.0  # from Run to this result, as the server saw it: the queue's wait included
    shared: bool = False  # the run was in flight or finished when asked for: someone else computed it
    # A refused run's one-click ways out: (button label, the settings it changes), all choosable on the page.
    offers: tuple[tuple[str, dict], ...] = ()
    # Put in the gallery on opening the page, not by a Run: a Run of the same run takes its place
    # (and its number) instead of listing the identical picture twice.
    found: bool = False

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
    """The runs one button started; kept in the session while they run, so a rerun mid-run (Stop,
    a widget change, or a dropped connection coming back) can go on with them or store what they
    reached."""

    dest: str
    done: list[RunRecord] = field(default_factory=list)
    current: RunRecord | None = None
    kind: str = ""  # the run panel's name on its page
    page: str = ""  # the page that started it
    keys: list[str] = field(default_factory=list)  # every job's identity (nst_core.serve.RunRequest.key)
    pressed: float = 0.0  # time.monotonic() of the click on Run
    # Each job's estimate when Run was pressed: the batch was admitted as a whole then, and a first
    # run slowed by a busy server must not get its second refused halfway through.
    estimates: list[float] = field(default_factory=list)


# What the frame tells this script run; set at each start, since a rerun may run in the same thread.
_script = threading.local()


def session_id() -> str:
    """A stable id for this student's session: the queue keeps at most one waiting run per id."""
    return st.session_state.setdefault("session_id", uuid.uuid4().hex)


@st.cache_resource(max_entries=1)
def calibration() -> Calibration:
    """What finished runs taught about this server's speed, shared by every session."""
    return Calibration()


@st.cache_resource(max_entries=4, show_spinner="Measuring this server's speed…")
def machine_speed(description: str, _model) -> float:
    return measure_speed(_model)


def _predicted(job: Job) -> float:
    return predict_run(job.model, job.config, (job.content.height, job.content.width),
                       machine_speed(job.model.description, job.model), len(job.styles))


def _load_for_a_new_run() -> int:
    """The runs a run started now would compute beside, itself included (at most the slots)."""
    return min(calibration().load() + 1, backend().slots)


def estimate(jobs: list[Job]) -> float:
    """Seconds the jobs should take, calibrated by the runs this server has finished and its load now."""
    cal, load = calibration(), _load_for_a_new_run()
    return sum(cal.estimate(calibration_key(j.model.description, j.config), _predicted(j), load) for j in jobs)


def estimate_text(jobs: list[Job]) -> str:
    """The estimate shown beside Run, and a warning when it passes the server's ceiling on one run."""
    each = [estimate([j]) for j in jobs]
    seconds, limit = sum(each), backend().max_run_s
    if max(each) > limit:
        emulated = any(j.model.emulates(j.config.precision) for j in jobs)
        return (f"⏱ About {seconds:.0f} s: over this server's limit of {limit:.0f} s per run. "
                + ("Choose auto arithmetic (bf16 is emulated here), or lower" if emulated else "Lower")
                + " the steps or the size.")
    return f"⏱ About {seconds:.0f} s on this server."


def png_bytes(img: Image.Image, settings: dict | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if settings:
        info.add_text("nst-settings", json.dumps(settings, default=str))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _known(key: str) -> None:
    """This session has the run ``key``, or stopped it: :func:`resume_panel` leaves it alone."""
    st.session_state.setdefault("known_runs", set()).add(key)


def _finish(record: RunRecord, status: RunState, message: str) -> RunRecord:
    ss = st.session_state
    ss["run_counter"] = ss.get("run_counter", 0) + 1
    best = record.best
    if isinstance(best, torch.Tensor):
        best = to_pil(best)
    image = png_bytes(best, record.settings) if best is not None else None
    if record.key:
        _known(record.key)
    return replace(record, status=status, message=message, best=None, image=image, id=ss["run_counter"])


def _commit(batch: Batch) -> None:
    """Put a batch's runs where its page shows them: the gallery (newest first), or the page's key."""
    done = [r for r in batch.done if r.image is not None]  # a run refused or stopped before step 1 shows nothing
    if batch.dest == GALLERY:
        runs = st.session_state.setdefault(GALLERY, [])
        for record in done:
            for old in [r for r in runs if r.found and r.key == record.key]:
                runs.remove(old)
                record.id = old.id
            runs.insert(0, record)
        del runs[MAX_RUNS_KEPT:]
    else:
        st.session_state[batch.dest] = done


def recover_interrupted(page: str) -> None:
    """Called by the frame before ``page`` runs. A run that was live when this script run began was
    interrupted by a rerun: a Stop click, a widget change, a move to another page, or a dropped
    connection coming back (Streamlit stops the script when the connection drops and reruns it
    when the browser reconnects).

    Stop, or another page: stop the run and keep what it reached. Otherwise the run goes on, and
    the page decides in :func:`resume_panel`: the same jobs are followed again, others stop it."""
    _script.page = page
    settle_interrupted()  # left over from a script run that ended before its page could decide
    batch = st.session_state.pop("live", None)
    if batch is None:
        return
    if batch.page == page and batch.current is not None and not st.session_state.get(f"stop_{batch.kind}"):
        st.session_state["interrupted"] = batch
        return
    _stop(batch)


def settle_interrupted() -> None:
    """An interrupted run no page went on with: stop it and keep what it reached."""
    batch = st.session_state.pop("interrupted", None)
    if batch is not None:
        _stop(batch)


def _stop(batch: Batch) -> None:
    """Stop the batch's current run unless classmates are watching it too, and store what its runs
    reached."""
    current = batch.current
    if current is not None:
        status, message = RunState.STOPPED, ""
        # Before the run's first answer its record has no key yet; the job's key is the run's.
        key = current.key or (batch.keys[len(batch.done)] if len(batch.done) < len(batch.keys) else None)
        watching = backend().rejoin(key, session_id()) if key else None
        if watching is not None:
            view = watching.view()
            watching.leave(stop=True)
            # Even with no step to keep: otherwise the page found a run stopped before its first
            # step still in flight and followed it again.
            _known(key)
            after = backend().peek(key)
            if after is None or after.state is not RunState.RUNNING:
                # It ends within a step: the estimate this rerun shows must not count it as a
                # second run beside the next one (it showed twice the time after every Stop).
                calibration().seen(key, False)
            _update(current, view)
            if view.finished and view.state is not RunState.STOPPED:  # it ended on its own before the click
                status, message = view.state, "" if view.state is RunState.DONE else view.message
        if current.best is not None:
            step = current.last.step if current.last else 0
            if status is not RunState.DONE:  # a run that finished all its steps was not stopped
                message = message or f"Stopped at step {step}; the best image so far is kept."
            batch.done.append(_finish(current, status, message))
        elif status is RunState.STOPPED:  # the gallery gets no entry, so say why nothing appears
            st.toast("Stopped before its first step: there is no picture to keep yet.", icon="⏹️")
    _commit(batch)


def _record(job: Job) -> tuple[RunRecord, float, str]:
    """A fresh record for ``job``, with the estimate it announces, and the calibration's key."""
    predicted = _predicted(job)
    cal_key = calibration_key(job.model.description, job.config)
    record = RunRecord(job.label, {**job.names, "network": job.model.description, **job.config.to_dict()},
                       job.model.description,
                       estimated=calibration().estimate(cal_key, predicted, _load_for_a_new_run()))
    return record, predicted, cal_key


_STARTERS: dict[str, set] = {}  # run key -> sessions of this process that pressed Run and started it
_STARTERS_KEPT = 512  # the oldest keys go first
_starters_lock = threading.Lock()


def _note_starter(key: str) -> None:
    with _starters_lock:
        _STARTERS.setdefault(key, set()).add(session_id())
        while len(_STARTERS) > _STARTERS_KEPT:
            del _STARTERS[next(iter(_STARTERS))]


def _started_here(key: str) -> bool:
    """Whether this session started the run ``key``: only then is it called "your run"."""
    with _starters_lock:
        return session_id() in _STARTERS.get(key, ())


def run_panel(jobs: list[Job], kind: str, dest: str = GALLERY, resumed: Batch | None = None,
              note: tuple[str, str] | None = None, retry: bool = False) -> list[RunRecord]:
    """Run the jobs one after another, with a progress bar, a live preview, a cost chart and a Stop
    button; store the finished runs in ``dest`` and return them.

    Each job goes through the server's shared registry: an identical run in flight is joined (its
    recorded steps replayed first), one already finished is served as a replay of how it formed,
    and a new one waits in the fair queue. ``resumed`` is an interrupted batch of these same jobs
    (:func:`resume_panel`): its finished runs are kept and its current run is followed again, not
    started anew. ``note`` (text, icon) says how the student came to watch. With ``retry`` a refused
    run offers buttons that change the settings and run again (the page calls :func:`run_requested`).
    """
    ss = st.session_state
    keys = [_key(j) for j in jobs]
    interrupted = ss.get("interrupted")
    if resumed is None and interrupted is not None and interrupted.kind == kind:
        # Run pressed again while this panel's run was live: the same jobs go on in one panel with
        # one gallery entry (the class saw two panels, one of them "Stopped at step 200"); other
        # jobs stop it first, keeping what it reached.
        del ss["interrupted"]
        if interrupted.keys == keys:
            resumed = interrupted
        else:
            _stop(interrupted)
    batch = resumed or Batch(dest, kind=kind, page=getattr(_script, "page", ""), keys=keys,
                             pressed=time.monotonic(), estimates=[estimate([job]) for job in jobs])
    panel = Panel(kind)
    if note:
        panel.note(*note)
    ss["live"] = batch
    for i, job in enumerate(jobs):
        if i < len(batch.done):
            continue
        fresh, predicted, cal_key = _record(job)
        if i < len(batch.estimates):
            fresh.estimated = batch.estimates[i]
        record = batch.current or fresh
        batch.current = record
        again = backend().rejoin(record.key, session_id()) if record.key else None
        if again is not None:
            handle = again
        else:
            try:
                handle = backend().start(_request(job, record.estimated))
            except RunRefused as exc:
                record.offers = tuple(refusal_offers(job, exc)) if retry and len(jobs) == 1 else ()
                # With buttons, the words point at them: the service's own figures are rougher than theirs.
                message = f"{exc.reason} Lower its work in one click:" if record.offers else exc.message
                batch.done.append(_finish(record, RunState.REFUSED, message))
                break
            record.key, record.shared = handle.key, handle.joined
            if not handle.joined:
                _note_starter(handle.key)
        panel.estimate_s = record.estimated
        first = handle.view()
        if again is None and handle.joined:
            served = first.finished
            if note is None:  # a page that found the run on opening has already said whose it may be
                panel.note(("This exact run had already been computed on this server: here is how it formed, "
                            "replayed in a few seconds." if served else
                            "Your run is still going on the server: here it is again." if _started_here(handle.key)
                            else "Another student started this same run; you are watching it, its steps so far "
                            "replayed first."), "🤝")
            panel.replay(first, REPLAY_S if served else CATCH_UP_S, (i, len(jobs)))
        status, message, ended, load = _follow(handle, record, panel, (i, len(jobs)))
        handle.leave()  # not when the script is stopped mid-run: then the run goes on for the rerun
        if status is RunState.DONE:  # "Finished 70 steps." tells nothing the page does not; skipped steps do
            notes = (SHARED_NOTE if record.shared else "", message if SKIPPED_NOTE in message else "")
            message = " ".join(note for note in notes if note)
        # Ready when the run ended, maybe long before this student's tab came back for it; a result
        # kept from before this Run (the cache) was ready as soon as it was shown.
        ready_at = ended if ended is not None and ended > batch.pressed else time.monotonic()
        record.ready_s = ready_at - batch.pressed
        batch.done.append(_finish(record, status, message))
        batch.current = None
        if status is RunState.DONE and record.last is not None and not record.shared:
            calibration().record(cal_key, predicted, record.last.elapsed, load)
        if status is not RunState.DONE:
            break
    ss.pop("live", None)
    _commit(batch)
    panel.close(batch.done, on_offer=_take_offer, kind=kind)
    return batch.done


REPLAY_S = 4.0  # a served run's snapshots and costs are replayed in this long
CATCH_UP_S = 2.0  # a run joined midway: its steps so far, before it goes on live
# A live run is drawn at most this often (and when it ends): each draw sends the whole cost chart to
# the browser, and a small network or a GPU makes ten or more steps a second.
DRAW_EVERY_S = 0.25


def refusal_offers(job: Job, refused: RunRefused) -> list[tuple[str, dict]]:
    """One-click ways out of a refusal, each a setting the page offers: auto arithmetic where bf16
    is emulated, the largest size of the size slider, and a round number of steps, that this
    server's estimate lets through (the service's own figures are only a first guess: time is not
    quite proportional to pixels)."""
    cfg, limit = job.config, backend().max_run_s
    timed = refused.max_steps is not None  # refused for time, not for memory

    def fits(config) -> bool:
        return not timed or estimate([replace(job, config=config)]) <= limit

    offers = []
    if job.model.emulates(cfg.precision) and fits(replace(cfg, precision="auto")):
        offers.append(("▶ Run in auto arithmetic (fp32 here)", {"precision": "auto"}))
    top = refused.max_size if refused.max_size else (cfg.size if timed else 0)
    for size in sorted((s for s in SIZES if s <= top and s < cfg.size), reverse=True):
        if fits(replace(cfg, size=size)):
            offers.append((f"▶ Run at {size} px", {"size": size}))
            break
    steps = refused.max_steps or 0
    while steps >= 1 and not fits(replace(cfg, steps=steps)):
        steps = steps - 5 if steps > 20 else steps - 1
    if timed and 1 <= steps < cfg.steps:
        offers.append((f"▶ Run with {steps} steps", {"steps": steps}))
    return offers


def _take_offer(changes: dict, kind: str) -> None:
    """A refusal's button: change the settings, and have the page run them at once."""
    st.session_state.update(changes)
    st.session_state[f"run_now_{kind}"] = True


def run_requested(kind: str) -> bool:
    """Whether a refusal's button asked the page to run ``kind`` again now (once)."""
    return bool(st.session_state.pop(f"run_now_{kind}", False))


def _request(job: Job, estimate_s: float | None = None) -> RunRequest:
    return RunRequest(job.content, tuple(job.styles), job.config, network_spec(job.model), session_id(), estimate_s)


def _key(job: Job) -> str:
    return _request(job).key


def resume_panel(jobs: list[Job], kind: str, dest: str = GALLERY) -> list[RunRecord]:
    """Where a page would call :func:`run_panel` had Run been pressed. Returns what ``run_panel``
    returns when it goes on with a run, else nothing:

    - after a rerun that interrupted this panel's runs (:func:`recover_interrupted`): the same jobs
      are followed again, as if nothing happened; other jobs (a changed setting) stop them, and
      what they reached goes to ``dest``;
    - after a reload (a new session), or back with the same images and settings: the run in flight
      for exactly this one job is shown again, or its kept result put in the gallery, found
      through the run's identity. Runs this session already has, or stopped, are left alone.
    """
    ss = st.session_state
    interrupted = ss.get("interrupted")
    if interrupted is not None and interrupted.kind == kind:
        del ss["interrupted"]
        if jobs and interrupted.keys == [_key(j) for j in jobs]:
            return run_panel(jobs, kind, dest, resumed=interrupted, note=("Reconnected to your run.", "🔁"))
        _stop(interrupted)
        return []
    if len(jobs) != 1 or dest != GALLERY or "live" in ss:
        return []
    job = jobs[0]
    key = _key(job)
    if key in ss.get("known_runs", ()):
        return []
    view = backend().peek(key)
    if view is None or view.state in (RunState.WITHDRAWN, RunState.REFUSED, RunState.FAILED):
        return []
    mine = _started_here(key)
    if view.finished:  # straight into the gallery, which the page draws next
        record = _record(job)[0]
        record.key, record.found = key, True
        _update(record, view)
        _commit(Batch(GALLERY, done=[_finish(record, view.state, "Found again: this exact run had already "
                                                                 "finished on this server. Press ▶ Run to watch "
                                                                 "it form.")]))
        return []
    # A new session cannot tell a reload of its own page from a classmate's run with the same
    # images and settings: only a run this session started is called "yours".
    note = (("Your run is still going on the server: here it is again.", "🔁") if mine else
            ("Someone on this server started this same run (the same images and settings); you are "
             "watching it. If you started it before reloading the page, it is yours.", "🤝"))
    return run_panel(jobs, kind, note=note)


def _update(record: RunRecord, view: RunView) -> None:
    record.history = list(view.history)
    record.snapshots = list(view.snapshots)
    if view.best is not None:
        record.best = view.best
    if view.latest is not None:
        record.weights = view.latest.weights


def _follow(handle: RunHandle, record: RunRecord, panel: Panel,
            position: tuple[int, int]) -> tuple[RunState, str, float | None, float]:
    """Draw the run as it goes until it ends; return its final state, message, end time and the
    mean number of runs that computed beside it (itself included), which its calibration needs."""
    # Which run of the batch: the bar counts the whole batch, so "random · Step 60 of 150" sat under a bar 70% full.
    i, n = position
    prefix = f"{record.label} (run {i + 1} of {n}) · " if n > 1 else ""
    slots, version, loads, cal, drawn_at = backend().slots, -1, [], calibration(), -DRAW_EVERY_S
    while True:
        view = handle.wait(version, timeout=0.5)
        if view.version != version:
            version = view.version
            _update(record, view)
        computing = view.state in (RunState.RUNNING, RunState.STOPPING)
        cal.seen(handle.key, computing)
        if computing:
            loads.append(min(cal.load(), slots))
        if view.finished or time.monotonic() - drawn_at >= DRAW_EVERY_S:
            drawn_at = time.monotonic()
            panel.draw(view, position, prefix, slots)
        if view.finished:
            return view.state, view.message, view.ended, statistics.mean(loads) if loads else 1.0



def show_run(entry: RunRecord, key: str) -> None:
    """One finished run: its image, status, download buttons and settings."""
    if entry.image is None:
        st.info("This run stopped before its first step.")
        return
    st.image(entry.image, caption=f"Run {entry.id}: {entry.label} ({entry.status})", width="stretch")
    notes = [entry.message] if entry.message else []
    if entry.ready_s:
        notes.append(ready_text(entry.ready_s, entry.last.elapsed if entry.last else None))
    if notes:
        st.caption(" ".join(notes))
    c1, c2 = st.columns(2)
    # No rerun on a download: on a busy server a rerun blanked the result for seconds under the
    # student's click, and thirty downloads would be thirty script runs for nothing.
    c1.download_button("⬇ Download PNG", entry.image, file_name=f"nst_run{entry.id}.png", mime="image/png",
                       key=f"dl_{key}", help="The PNG also carries the settings in its metadata.", on_click="ignore")
    c2.download_button("⬇ Settings (JSON)", json.dumps(entry.settings, indent=2, default=str),
                       file_name=f"nst_run{entry.id}.json", mime="application/json", key=f"dlj_{key}",
                       on_click="ignore")
