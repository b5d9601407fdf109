"""A run's life: one state in one enum, the transitions allowed between states, and the one record
of a run that travels from the service to the page (:class:`RunView`).

Every view of a run is derived from its :class:`RunState`: the queue's line, a watcher's panel, the
gallery's entry. :func:`advance` is the only way a state changes, and it refuses a transition that
:data:`TRANSITIONS` does not list.
"""

from __future__ import annotations

import enum
import io
import itertools
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch
from PIL import Image

from ..images import to_pil
from ..transfer import Step

if TYPE_CHECKING:
    from .queue import Ticket
    from .registry import RunRegistry

log = logging.getLogger(__name__)
SNAPSHOT_SIDE = 160  # long side of the thumbnails kept of a run's progress
# A run's ceiling (NST_MAX_RUN_S) caps its work, not its wall time: a class pressing Run at once
# slows every run several-fold, and a wall-time cap stopped the class's one shared picture at step
# 9 of 70 after 120 s. A run may do WORK_MARGIN times the network work (Step.gflop) its estimate
# fits into the ceiling, the margin for the estimate's own error; wall time stops it only past
# WALL_BACKSTOP times the ceiling, in case it is stuck.
WALL_BACKSTOP = 20


class RunState(enum.StrEnum):
    """Where a run is in its life; the values are the words the pages and the gallery show."""

    QUEUED = "queued"  # waiting for a slot and for memory
    RUNNING = "running"  # computing
    STOPPING = "stopping"  # computing, told to stop at its next step: too late to join
    DONE = "done"  # every step computed
    DIVERGED = "diverged"  # the loop gave up on a cost that was no longer finite
    CAPPED = "capped"  # stopped by the server's ceiling on one run's work or wall time
    STOPPED = "stopped"  # stopped on a student's word, or when every watcher left
    FAILED = "failed"  # an error ended it
    WITHDRAWN = "withdrawn"  # left the queue before it ran: replaced, or nobody waited for it
    REFUSED = "refused"  # never admitted: over a limit, or no memory even with nothing running


_ENDS_OF_A_COMPUTATION = frozenset({RunState.DONE, RunState.DIVERGED, RunState.STOPPED, RunState.FAILED})

# The allowed transitions; a state that lists nothing is final.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.WITHDRAWN, RunState.REFUSED, RunState.FAILED}),
    RunState.RUNNING: _ENDS_OF_A_COMPUTATION | {RunState.STOPPING, RunState.CAPPED},
    RunState.STOPPING: _ENDS_OF_A_COMPUTATION,
    **{state: frozenset() for state in (RunState.DONE, RunState.DIVERGED, RunState.CAPPED, RunState.STOPPED,
                                        RunState.FAILED, RunState.WITHDRAWN, RunState.REFUSED)},
}
FINISHED = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)
LIVE = frozenset(TRANSITIONS) - FINISHED
# Finished states worth serving to the next student who asks: the same request would end the same
# way. A stopped or failed run is only shown to someone rejoining it.
SERVED = frozenset({RunState.DONE, RunState.DIVERGED, RunState.CAPPED})


class ForbiddenTransition(RuntimeError):
    """A state change that :data:`TRANSITIONS` does not allow."""


def advance(current: RunState, new: RunState) -> RunState:
    """``new`` if a run in state ``current`` may go there; else :class:`ForbiddenTransition`."""
    if new not in TRANSITIONS[current]:
        raise ForbiddenTransition(f"a run cannot go from {current.value} to {new.value}")
    return new


def outcome(step_status: str) -> RunState:
    """The final state of a run whose loop ended on a record with ``step_status``."""
    return RunState(step_status)


@dataclass(frozen=True)
class QueueStatus:
    """What a waiting student is told."""

    ahead: int  # runs running plus runs queued before this one
    wait_s: float  # their remaining estimated seconds, shared over the slots
    memory_bound: bool = False  # first in line with a free slot, but waiting for memory


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


class SharedRun:
    """One computation and the subscribers who watch it. Only its worker thread touches the
    generator; everyone else reads :meth:`view`."""

    def __init__(self, key: str, make_generator: Callable[[], Iterator[Step]], ticket: Ticket,
                 registry: RunRegistry, work_gflop: float | None = None):
        self.key, self.ticket, self._registry = key, ticket, registry
        self.work_gflop = work_gflop  # the network work it may do (Step.gflop); None: wall time alone
        self._make_generator = make_generator
        self._cond = threading.Condition()
        self._subs: dict[int, tuple[object, float]] = {}  # id -> (session, watched until)
        # When the last watcher left or stopped; None while someone watches, or while the last
        # ones merely went quiet (their leases lapse, and that never ends the run).
        self._empty_since: float | None = None
        self._stop_now = False
        self._ending = False  # the worker decided to stop for want of watchers: too late to join
        self.state, self.message, self.version = "queued", "", 0
        self._history: list[Step] = []
        self._snapshots: list[tuple[int, bytes]] = []
        self._preview: tuple[int, bytes] | None = None
        self._best: torch.Tensor | None = None
        self._best_pil: tuple[torch.Tensor, Image.Image] | None = None
        self.final: RunView | None = None
        self.thread = threading.Thread(target=self._work, name=f"nst-run-{key[:8]}", daemon=True)

    # ------------------------------------------------------------ subscribers

    def _subscribe(self, session) -> int | None:
        """A new subscriber's id, or None when the run is already ending unwatched or withdrawn
        (then the caller starts a fresh one)."""
        with self._cond:
            if self._ending or self.final is not None or self.ticket.state in ("withdrawn", "refused"):
                return None
            sub_id = next(_SUB_IDS)
            self._subs[sub_id] = (session, self._registry.clock() + self._registry.lease_s)
            self._empty_since = None
            self._stop_now = False
            return sub_id

    def _touch(self, sub_id: int) -> None:
        with self._cond:
            if sub_id in self._subs:
                self._subs[sub_id] = (self._subs[sub_id][0], self._registry.clock() + self._registry.lease_s)

    def _leave(self, sub_id: int, stop: bool) -> None:
        with self._cond:
            session, _ = self._subs.pop(sub_id, (None, 0.0))
            if stop:  # the student means it: their subscriptions of interrupted scripts go too
                for other in [i for i, (s, _) in self._subs.items() if s == session]:
                    del self._subs[other]
            if session is not None and all(s != session for s, _ in self._subs.values()):
                self._registry.queue.leave(self.ticket, session)
            if not self._subs:
                self._empty_since = self._registry.clock()
                self._stop_now = self._stop_now or stop
            self._cond.notify_all()

    def _drop_session(self, session) -> None:
        """The session's newer Run replaced this queued one."""
        with self._cond:
            for sub_id in [i for i, (s, _) in self._subs.items() if s == session]:
                del self._subs[sub_id]
            if not self._subs:
                self._empty_since, self._stop_now = self._registry.clock(), True
            self._cond.notify_all()

    def _abandoned(self) -> bool:
        """Whether to give the run up: its last watcher left or pressed Stop (or a newer Run replaced
        it) and nobody came back within the grace period. A watcher whose script stopped without
        leaving (a closed tab, but also a locked phone or a starved tab) lapses after its lease and
        never ends the run, queued or computing: it may come back for its picture, and the run's
        work is bounded anyway."""
        reg = self._registry
        with self._cond:
            now = reg.clock()
            for sub_id in [i for i, (_, until) in self._subs.items() if now > until]:
                del self._subs[sub_id]
            if self._subs or self._empty_since is None:
                return False
            self._ending = self._stop_now or now - self._empty_since >= reg.grace_s
            return self._ending

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        reg = self._registry
        try:
            admitted = reg.queue.acquire(self.ticket, on_wait=lambda status: self._publish(), poll=reg.poll_s,
                                         cancelled=self._abandoned)
        except Exception as exc:  # noqa: BLE001 - a queue failure must not kill the server
            log.exception("queue failure")
            admitted, self.message = False, f"The run could not be queued: {exc}"
        if not admitted:
            if self.ticket.state == "refused":
                held = reg._rss_mb()
                beside = f" beside the {held:.0f} MB the server holds now" if held is not None else ""
                self._finish("refused", f"This server has no room for this run: it needs about "
                                        f"{self.ticket.memory_mb:.0f} MB{beside}, and even with nothing else running "
                                        f"its budget of {reg.memory_mb:.0f} MB does not allow it. Choose a smaller "
                                        "size.")
            else:
                self._finish("withdrawn", self.message or "Nobody was waiting for this run any more.")
            return
        gen, state, message = None, "failed", ""
        started = reg.clock()
        try:
            gen = self._make_generator()
            for rec in gen:
                self._record(rec)
                if rec.status != "running":
                    state, message = rec.status, rec.message
                    break
                if self._abandoned():
                    state = "stopped"
                    message = f"Stopped at step {rec.step} when nobody was watching; the best image so far is kept."
                    break
                if self.work_gflop is not None and rec.gflop > self.work_gflop:
                    state = "capped"
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: this run needed more work than "
                               f"a run may do on this shared server (about {reg.max_run_s:g} s of it when free). "
                               "The best image so far is kept.")
                    break
                if reg.clock() - started >= WALL_BACKSTOP * reg.max_run_s:
                    state = "capped"
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: it ran for "
                               f"{WALL_BACKSTOP * reg.max_run_s:g} s, far past the {reg.max_run_s:g} s a run may "
                               "take on this shared server. The best image so far is kept.")
                    break
            else:
                state, message = "done", "Finished."
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the server down
            log.exception("run %s failed", self.key[:8])
            state, message = "failed", f"The run failed: {exc}"
        finally:
            if gen is not None:
                gen.close()
            reg.queue.release(self.ticket)
            self._finish(state, message)

    def _record(self, rec: Step) -> None:
        snapshot = preview = None
        if rec.image is not None:  # encoded once here, not once per watching student
            snapshot = (rec.step, _jpeg(rec.image, SNAPSHOT_SIDE))
            preview = (rec.step, _jpeg(rec.image, quality=90))
        with self._cond:
            self.state = "running"
            self._history.append(replace(rec, best_image=None, image=None))
            self._best = rec.best_image
            if snapshot is not None:
                self._snapshots.append(snapshot)
                self._preview = preview
            self.ticket.remaining_s = rec.eta
            self.version += 1
            self._cond.notify_all()

    def _publish(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def _finish(self, state: str, message: str) -> None:
        with self._cond:
            self.state, self.message = state, message
            self.version += 1
            self.final = replace(self._view_locked(final=True), ended=self._registry.clock())
            # keep nothing but the final view: the generator's closure holds the images and the model
            self._make_generator = None
            self._best = self._preview = self._best_pil = None
            self._history, self._snapshots = [], []
            self._cond.notify_all()
        self._registry._finished(self)

    # ------------------------------------------------------------ views

    def view(self) -> RunView:
        with self._cond:
            return self.final if self.final is not None else self._view_locked(final=False)

    def _view_locked(self, final: bool) -> RunView:
        status = self._registry.queue.status(self.ticket) if self.state == "queued" else None
        best = self._best_image()
        step, preview = (0, None) if final or self._preview is None else self._preview
        latest = self._history[-1] if self._history else None  # already without its images
        return RunView(self.key, RunState(self.state), self.version, self.message, status, latest, tuple(self._history),
                       tuple(self._snapshots), preview, step, best,
                       len(self._subs))

    def _best_image(self) -> Image.Image | None:
        """One PIL conversion per best image, however many subscribers poll."""
        if self._best is None:
            return None
        if self._best_pil is None or self._best_pil[0] is not self._best:
            self._best_pil = (self._best, to_pil(self._best))
        return self._best_pil[1]

    def wait(self, after_version: int, timeout: float) -> RunView:
        with self._cond:
            if self.version <= after_version and self.final is None:
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


class _Result:
    """A finished run as the results cache keeps it: its final view alone."""

    def __init__(self, final: RunView):
        self.final = final
        self.key = final.key

    def view(self) -> RunView:
        return self.final

    def wait(self, after_version: int, timeout: float) -> RunView:
        return self.final


class Subscription:
    """A session watching one run. Poll :meth:`wait` (it keeps the subscription alive) and call
    :meth:`leave` when done watching; ``with`` does that when its block ends normally.

    A block that ends by an exception (the script was stopped or rerun: a dropped connection, a
    click) does not leave: the subscription lapses after its lease, and the run goes on for the
    browser that reconnects, the rerun that follows it again or the reload that finds its result
    (:meth:`RunRegistry.rejoin`); ``leave(stop=True)`` from the same session ends it at once.
    """

    def __init__(self, run: SharedRun | _Result, sub_id: int | None, joined: bool):
        self.run, self._id = run, sub_id
        self.joined = joined  # True when the run was already in flight or finished: nobody computed it anew

    @property
    def key(self) -> str:
        return self.run.key

    def view(self) -> RunView:
        if self._id is not None:
            self.run._touch(self._id)
        return self.run.view()

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        """The view once it is newer than ``after_version``, or after ``timeout`` seconds."""
        if self._id is not None:
            self.run._touch(self._id)
        return self.run.wait(after_version, timeout)

    def leave(self, stop: bool = False) -> None:
        """Stop watching. With ``stop`` and nobody else watching, the run stops at its next step
        (keeping its best image) instead of after the grace period; the session's other
        subscriptions to it, left by interrupted scripts, end too."""
        if self._id is not None:
            self.run._leave(self._id, stop)
            self._id = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.leave()
