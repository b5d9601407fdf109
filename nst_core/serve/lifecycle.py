"""A run's life: the one record of a run that travels from the service to the page
(:class:`RunView`), and the computation itself (:class:`SharedRun`).

Every view of a run is derived from its :class:`~.states.RunState`: the queue's line, a watcher's
panel, the gallery's entry. :func:`~.states.advance` is the only way a state changes, and it
refuses a transition that :data:`~.states.TRANSITIONS` does not list.
"""

from __future__ import annotations

import io
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..images import to_pil
from ..transfer import Step
from . import memory
from .estimate import remaining_s
from .states import FINISHED, JOINABLE, QueueStatus, RunState, advance

if TYPE_CHECKING:
    from .registry import RunRegistry

log = logging.getLogger(__name__)
SNAPSHOT_SIDE = 160  # long side of the thumbnails kept of a run's progress
# Past this many times the ceiling (NST_MAX_RUN_S) of wall time a run is stopped as stuck; its work,
# not its wall time, is what the ceiling caps (see registry.WORK_MARGIN).
WALL_BACKSTOP = 20


@dataclass(frozen=True)
class RunView:
    """Everything a watcher draws of one run, as of ``version``. Frozen and picklable: images are
    PIL or JPEG bytes, and ``latest`` and ``history`` are loop records without their images."""

    key: str
    state: RunState
    version: int
    message: str = ""
    queue: QueueStatus | None = None  # while queued
    latest: Step | None = None
    history: tuple[Step, ...] = ()
    snapshots: tuple[tuple[int, bytes], ...] = ()  # (step, JPEG thumbnail)
    preview: bytes | None = None  # the newest snapshot at full size as a JPEG, while running
    preview_step: int = 0
    best: Image.Image | None = None
    subscribers: int = 0
    # When the run finished, on the service's clock (time.monotonic in the app): a student whose
    # tab was away when it did is told when the picture was ready, not when they came back.
    ended: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


@dataclass(eq=False)
class Run:
    """One run's state, and what the queue needs to place it: the sessions waiting for it (several
    when students share one run), its estimated seconds and memory. ``remaining_s`` is kept up to
    date by whoever computes it."""

    key: str = ""
    sessions: set = field(default_factory=set)
    estimate_s: float = 0.0
    memory_mb: float = 0.0
    state: RunState = RunState.QUEUED
    admitted_at: float | None = None
    remaining_s: float | None = None
    number: int = 0  # its place in the order of arrival

    def advance(self, new: RunState) -> None:
        self.state = advance(self.state, new)


class SharedRun(Run):
    """One computation and the subscribers who watch it. Only its worker thread touches the
    generator; everyone else reads :meth:`view`. The queue moves its state until it is admitted;
    after that only this object does, under its own lock."""

    def __init__(self, key: str, make_generator: Callable[[], Iterator[Step]], registry: RunRegistry, *,
                 session, estimate_s: float = 0.0, memory_mb: float = 0.0, work_gflop: float | None = None):
        super().__init__(key, {session}, float(estimate_s or 0.0), float(memory_mb))
        self._registry = registry
        self.work_gflop = work_gflop  # the network work it may do (Step.gflop); None: wall time alone
        self._make_generator = make_generator
        self._cond = threading.Condition()
        self._subs: dict[int, tuple[object, float]] = {}  # id -> (session, watched until)
        # When the last watcher left; None while someone watches, or while the last ones merely
        # went quiet (their leases lapse, and that never ends the run).
        self._empty_since: float | None = None
        # A watcher said Stop while others still watched: the run ends once none of them watches
        # any more, rather than run on for tabs that merely went quiet (a reloaded page's old tab).
        self._stop_asked = False
        self.message, self.version = "", 0
        self._history: list[Step] = []
        self._snapshots: list[tuple[int, bytes]] = []
        self._preview: tuple[int, bytes] | None = None
        self._best: torch.Tensor | None = None
        self._best_pil: tuple[torch.Tensor, Image.Image] | None = None
        self._final: RunView | None = None  # the record kept once the run is over
        self.thread = threading.Thread(target=self._work, name=f"nst-run-{key[:8]}", daemon=True)

    # ------------------------------------------------------------ subscribers

    def subscribe(self, session) -> int | None:
        """A new subscriber's id, or None when the run is stopping or over (then the caller starts
        a fresh one)."""
        with self._cond:
            if self.state not in JOINABLE:
                return None
            sub_id = next(_SUB_IDS)
            self._subs[sub_id] = (session, self._registry.clock() + self._registry.lease_s)
            self._empty_since, self._stop_asked = None, False
            return sub_id

    def touch(self, sub_id: int) -> None:
        with self._cond:
            if sub_id in self._subs:
                self._subs[sub_id] = (self._subs[sub_id][0], self._registry.clock() + self._registry.lease_s)

    def leave(self, sub_id: int, stop: bool) -> None:
        """``sub_id`` stops watching. With ``stop`` (the student means it) the session's other
        subscriptions, left by interrupted scripts, go too; and if nobody else watches, a queued run
        is withdrawn and a computing one stops at its next step."""
        reg = self._registry
        with self._cond:
            session, _ = self._subs.pop(sub_id, (None, 0.0))
            if stop:
                for other in [i for i, (s, _) in self._subs.items() if s == session]:
                    del self._subs[other]
            if session is not None and all(s != session for s, _ in self._subs.values()):
                reg.queue.leave(self, session)
            self._stop_asked = self._stop_asked or stop
            if not self._subs:
                self._empty_since = reg.clock()
                if stop and not reg.queue.withdraw(self) and self.state is RunState.RUNNING:
                    self.advance(RunState.STOPPING)
            self._cond.notify_all()

    def _abandoned(self) -> bool:
        """Whether to give the run up: it was told to stop, or its last watcher left and nobody came
        back within the grace period, or a watcher said Stop and the others have lapsed since. A
        watcher whose script stopped without leaving (a closed tab, but also a locked phone or a
        starved tab) lapses after its lease and never ends the run by itself, queued or computing:
        it may come back for its picture, and the run's work is bounded anyway."""
        reg = self._registry
        with self._cond:
            now = reg.clock()
            for sub_id in [i for i, (_, until) in self._subs.items() if now > until]:
                del self._subs[sub_id]
            if self.state is RunState.STOPPING or self.state in FINISHED:
                return True
            if self._subs:
                return False
            if not self._stop_asked and (self._empty_since is None or now - self._empty_since < reg.grace_s):
                return False
            # Withdrawn or told to stop under this lock, so nobody joins it meanwhile.
            if not reg.queue.withdraw(self) and self.state is RunState.RUNNING:
                self.advance(RunState.STOPPING)
            return True

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        reg = self._registry
        message = ""
        try:
            admitted = reg.queue.acquire(self, on_wait=lambda status: self._publish(), poll=reg.poll_s,
                                         cancelled=self._abandoned)
        except Exception as exc:  # noqa: BLE001 - a queue failure must not kill the server
            log.exception("queue failure")
            admitted, message = False, f"The run could not be queued: {exc}"
        if not admitted:
            if self.state is RunState.REFUSED:
                held = reg.rss_mb()
                beside = f" beside the {held:.0f} MB the server holds now" if held is not None else ""
                message = (f"This server has no room for this run: it needs about {self.memory_mb:.0f} MB{beside}, "
                           f"and even with nothing else running its budget of {reg.memory_mb:.0f} MB does not "
                           "allow it. Choose a smaller size.")
            self._finish(self.state, message or "Nobody was waiting for this run any more.")
            return
        self._publish()
        gen, state = None, RunState.FAILED
        started = reg.clock()
        try:
            gen = self._make_generator()
            for rec in gen:
                self._record(rec)
                if rec.status != "running":
                    state, message = RunState(rec.status), rec.message
                    break
                if self._abandoned():
                    state = RunState.STOPPED
                    why = "" if self._stop_asked else " when nobody was watching"
                    message = f"Stopped at step {rec.step}{why}; the best image so far is kept."
                    break
                if self.work_gflop is not None and rec.gflop > self.work_gflop:
                    state = RunState.CAPPED
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: this run needed more work than "
                               f"a run may do on this shared server (about {reg.max_run_s:g} s of it when free). "
                               "The best image so far is kept.")
                    break
                if reg.clock() - started >= WALL_BACKSTOP * reg.max_run_s:
                    state = RunState.CAPPED
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: it ran for "
                               f"{WALL_BACKSTOP * reg.max_run_s:g} s, far past the {reg.max_run_s:g} s a run may "
                               "take on this shared server. The best image so far is kept.")
                    break
            else:
                state, message = RunState.DONE, "Finished."
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the server down
            log.exception("run %s failed", self.key[:8])
            state, message = RunState.FAILED, f"The run failed: {exc}"
        finally:
            if gen is not None:
                gen.close()
            reg.queue.release(self)
            self._finish(state, message)

    def _record(self, rec: Step) -> None:
        snapshot = preview = None
        if rec.image is not None:  # encoded once here, not once per watching student
            snapshot = (rec.step, _jpeg(rec.image, SNAPSHOT_SIDE))
            preview = (rec.step, _jpeg(rec.image, quality=90))
        with self._cond:
            self._history.append(replace(rec, best_image=None, image=None))
            self._best = rec.best_image
            if snapshot is not None:
                self._snapshots.append(snapshot)
                self._preview = preview
            self.remaining_s = remaining_s(self._history, self.estimate_s)
            self.version += 1
            self._cond.notify_all()

    def _publish(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def _finish(self, state: RunState, message: str) -> None:
        with self._cond:
            if self.state is not state:  # the queue already set a withdrawal or a refusal
                self.advance(state)
            self.message = message
            self.version += 1
            self._final = replace(self._view_locked(final=True), ended=self._registry.clock())
            # keep nothing but the final view: the generator's closure holds the images and the model
            self._make_generator = None
            self._best = self._preview = self._best_pil = None
            self._history, self._snapshots = [], []
            self._cond.notify_all()
        self._registry.finished(self)
        memory.trim_after_run()  # the run's freed activations back to the system, watched or not

    # ------------------------------------------------------------ views

    @property
    def final(self) -> RunView | None:
        return self._final

    def view(self) -> RunView:
        with self._cond:
            return self._final if self._final is not None else self._view_locked(final=False)

    def _view_locked(self, final: bool) -> RunView:
        # The queue withdraws or refuses a run before its worker writes why: until then it is queued.
        state = self.state if final or self.state not in FINISHED else RunState.QUEUED
        status = self._registry.queue.status(self) if state is RunState.QUEUED else None
        step, preview = (0, None) if final or self._preview is None else self._preview
        latest = self._history[-1] if self._history else None  # already without its images
        return RunView(self.key, state, self.version, self.message, status, latest, tuple(self._history),
                       tuple(self._snapshots), preview, step, self._best_image(), len(self._subs))

    def _best_image(self) -> Image.Image | None:
        """One PIL conversion per best image, however many subscribers poll."""
        if self._best is None:
            return None
        if self._best_pil is None or self._best_pil[0] is not self._best:
            self._best_pil = (self._best, to_pil(self._best))
        return self._best_pil[1]

    def wait(self, after_version: int, timeout: float) -> RunView:
        with self._cond:
            if self.version <= after_version and self._final is None:
                self._cond.wait(timeout=timeout)
        return self.view()


def _jpeg(image: torch.Tensor, side: int | None = None, quality: int = 85) -> bytes:
    img = to_pil(image)
    if side is not None:
        img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


_SUB_IDS = itertools.count(1)
