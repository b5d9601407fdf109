"""A fair queue for runs on one shared server.

Two CPU cores and 2.7 GB serve a whole class. The queue lets ``NST_MAX_RUNS`` runs go at once, in
arrival order, and only when the memory budget has room for the next one. A session keeps at most
one run waiting: pressing Run again replaces the waiting one, so one student cannot fill the queue
from five tabs of one session. Each waiting run knows how many runs are ahead of it (those running
and those queued before it) and an honest wait: their remaining estimated seconds over the slots.

The queue holds the runs themselves (:class:`~nst_core.serve.lifecycle.Run`) and moves a queued
run's state: admitted (running), withdrawn, or refused for memory.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable

from .lifecycle import Run
from .states import FINISHED, QueueStatus, RunState


class FairQueue:
    """At most ``slots`` runs at once, served first come first served, admitted against memory.

    ``fits(memory_mb, reserved_mb)`` says whether a run needing ``memory_mb`` fits beside work
    already admitted, which was promised ``reserved_mb``; the default always says yes. The head of
    the queue is never overtaken: a small run behind a large one waits for it, which keeps the
    order honest. A head that does not fit while nothing runs is refused rather than left to block
    the queue.
    """

    def __init__(self, slots: int, fits: Callable[[float, float], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if slots < 1:
            raise ValueError("slots must be ≥ 1")
        self.slots = int(slots)
        self._fits = fits or (lambda need, reserved: True)
        self._clock = clock
        self._cond = threading.Condition()
        self._queued: list[Run] = []
        self._running: list[Run] = []
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------ joining and leaving

    def enqueue(self, run: Run) -> list[Run]:
        """Put the queued ``run`` at the back. Each of its sessions leaves any other run it was
        waiting for; those left waiting for nobody are withdrawn and returned."""
        with self._cond:
            if run.state is not RunState.QUEUED:
                raise ValueError(f"only a queued run can wait in the queue, not a {run.state.value} one")
            run.number = next(self._numbers)
            replaced = self._take_sessions(run.sessions, keep=run)
            self._queued.append(run)
            self._cond.notify_all()
            return replaced

    def join(self, run: Run, session) -> list[Run]:
        """Add ``session`` to a queued or running run; like :meth:`enqueue`, it leaves any other
        queued run, and the runs withdrawn because of that are returned."""
        with self._cond:
            replaced = self._take_sessions({session}, keep=run)
            run.sessions.add(session)
            self._cond.notify_all()
            return replaced

    def leave(self, run: Run, session) -> None:
        with self._cond:
            run.sessions.discard(session)

    def withdraw(self, run: Run) -> bool:
        """Take a queued run out; False if it was already running or over."""
        with self._cond:
            if run.state is not RunState.QUEUED:
                return False
            if run in self._queued:
                self._queued.remove(run)
            run.advance(RunState.WITHDRAWN)
            self._cond.notify_all()
            return True

    def _take_sessions(self, sessions, keep: Run) -> list[Run]:
        withdrawn = []
        for other in list(self._queued):
            if other is keep or not (other.sessions & sessions):
                continue
            other.sessions -= sessions
            if not other.sessions:
                self._queued.remove(other)
                other.advance(RunState.WITHDRAWN)
                withdrawn.append(other)
        return withdrawn

    # ------------------------------------------------------------ admission

    def try_admit(self, run: Run) -> bool:
        """Admit ``run`` if it is first in line, a slot is free and its memory fits."""
        with self._cond:
            if run in self._running:
                return True
            if run.state is not RunState.QUEUED or self._queued[0] is not run or len(self._running) >= self.slots:
                return False
            if not self._fits(run.memory_mb, sum(r.memory_mb for r in self._running)):
                if not self._running:
                    # Nothing will end and free memory: waiting would stall everyone behind it.
                    self._queued.pop(0)
                    run.advance(RunState.REFUSED)
                    self._cond.notify_all()
                return False
            self._queued.pop(0)
            self._running.append(run)
            run.advance(RunState.RUNNING)
            run.admitted_at = self._clock()
            self._cond.notify_all()
            return True

    def release(self, run: Run) -> None:
        """A run ended: free its slot (or its place, if it never ran)."""
        with self._cond:
            if run in self._running:
                self._running.remove(run)
            elif run in self._queued:
                self._queued.remove(run)
            self._cond.notify_all()

    def acquire(self, run: Run, on_wait: Callable[[QueueStatus], None] | None = None,
                poll: float = 0.5, cancelled: Callable[[], bool] | None = None) -> bool:
        """Wait until ``run`` is admitted (True), or until it is withdrawn, refused for memory or
        ``cancelled()`` says to give up (False, and the run leaves the queue). ``on_wait`` hears
        the status about every ``poll`` seconds; if it raises, the run leaves the queue too."""
        try:
            while not self.try_admit(run):
                if run.state in FINISHED or (cancelled is not None and cancelled()):
                    self.withdraw(run)
                    return False
                if on_wait is not None:
                    on_wait(self.status(run))
                with self._cond:
                    self._cond.wait(timeout=poll)
            return True
        except BaseException:
            self.withdraw(run)
            raise

    # ------------------------------------------------------------ what a waiting student sees

    def status(self, run: Run) -> QueueStatus:
        with self._cond:
            if run.state is not RunState.QUEUED or run not in self._queued:
                return QueueStatus(0, 0.0)
            before = self._queued[: self._queued.index(run)]
            now = self._clock()
            running = sum(self._remaining(r, now) for r in self._running)
            queued = sum(max(r.estimate_s, 0.0) for r in before)
            memory_bound = not before and len(self._running) < self.slots
            return QueueStatus(len(self._running) + len(before), (running + queued) / self.slots, memory_bound)

    @staticmethod
    def _remaining(run: Run, now: float) -> float:
        if run.remaining_s is not None:
            return max(run.remaining_s, 0.0)
        started = now if run.admitted_at is None else run.admitted_at
        return max(run.estimate_s - (now - started), 0.0)

    def counts(self) -> tuple[int, int]:
        """(running, queued), for a server's status line."""
        with self._cond:
            return len(self._running), len(self._queued)
