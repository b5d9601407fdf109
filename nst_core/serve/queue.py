"""A fair queue for runs on one shared server.

Two CPU cores and 2.7 GB serve a whole class. The queue lets ``NST_MAX_RUNS`` runs go at once, in
arrival order, and only when the memory budget has room for the next one. A session keeps at most
one run waiting: pressing Run again replaces the waiting one, so one student cannot fill the queue
from five tabs of one session. Each waiting run knows how many runs are ahead of it (those running
and those queued before it) and an honest wait: their remaining estimated seconds over the slots.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

from .lifecycle import QueueStatus


@dataclass(eq=False)
class Ticket:
    """One run's place in the queue. ``sessions`` are the sessions waiting for it (several when
    students share one run). ``remaining_s`` is kept up to date by whoever runs it."""

    sessions: set = field(default_factory=set)
    estimate_s: float = 0.0
    memory_mb: float = 0.0
    state: str = "new"  # new | queued | running | released | withdrawn | refused
    admitted_at: float | None = None
    remaining_s: float | None = None
    number: int = 0


class FairQueue:
    """At most ``slots`` runs at once, served first come first served, admitted against memory.

    ``fits(memory_mb, reserved_mb)`` says whether a run needing ``memory_mb`` fits beside work
    already admitted, which was promised ``reserved_mb``; the default always says yes. The head of
    the queue is never overtaken: a small run behind a large one waits for it, which keeps the
    order honest. A head that does not fit while nothing runs is refused (state ``refused``)
    rather than left to block the queue.
    """

    def __init__(self, slots: int, fits: Callable[[float, float], bool] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        if slots < 1:
            raise ValueError("slots must be ≥ 1")
        self.slots = int(slots)
        self._fits = fits or (lambda need, reserved: True)
        self._clock = clock
        self._cond = threading.Condition()
        self._queued: list[Ticket] = []
        self._running: list[Ticket] = []
        self._numbers = itertools.count(1)

    # ------------------------------------------------------------ joining and leaving

    def enqueue(self, ticket: Ticket) -> list[Ticket]:
        """Put ``ticket`` at the back. Each of its sessions leaves any other run it was waiting
        for; those left waiting for nobody are withdrawn and returned."""
        with self._cond:
            ticket.state, ticket.number = "queued", next(self._numbers)
            replaced = self._take_sessions(ticket.sessions, keep=ticket)
            self._queued.append(ticket)
            self._cond.notify_all()
            return replaced

    def join(self, ticket: Ticket, session) -> list[Ticket]:
        """Add ``session`` to a queued or running ticket; like :meth:`enqueue`, it leaves any other
        queued ticket, and the tickets withdrawn because of that are returned."""
        with self._cond:
            replaced = self._take_sessions({session}, keep=ticket)
            ticket.sessions.add(session)
            self._cond.notify_all()
            return replaced

    def leave(self, ticket: Ticket, session) -> None:
        with self._cond:
            ticket.sessions.discard(session)

    def withdraw(self, ticket: Ticket) -> bool:
        """Take a queued ticket out; False if it was already running or gone."""
        with self._cond:
            if ticket.state != "queued":
                return False
            self._queued.remove(ticket)
            ticket.state = "withdrawn"
            self._cond.notify_all()
            return True

    def _take_sessions(self, sessions, keep: Ticket) -> list[Ticket]:
        withdrawn = []
        for other in list(self._queued):
            if other is keep or not (other.sessions & sessions):
                continue
            other.sessions -= sessions
            if not other.sessions:
                self._queued.remove(other)
                other.state = "withdrawn"
                withdrawn.append(other)
        return withdrawn

    # ------------------------------------------------------------ admission

    def try_admit(self, ticket: Ticket) -> bool:
        """Admit ``ticket`` if it is first in line, a slot is free and its memory fits."""
        with self._cond:
            if ticket.state == "running":
                return True
            if ticket.state != "queued" or self._queued[0] is not ticket or len(self._running) >= self.slots:
                return False
            if not self._fits(ticket.memory_mb, sum(t.memory_mb for t in self._running)):
                if not self._running:
                    # Nothing will end and free memory: waiting would stall everyone behind it.
                    self._queued.pop(0)
                    ticket.state = "refused"
                    self._cond.notify_all()
                return False
            self._queued.pop(0)
            self._running.append(ticket)
            ticket.state, ticket.admitted_at = "running", self._clock()
            self._cond.notify_all()
            return True

    def release(self, ticket: Ticket) -> None:
        """A run ended (or a waiting one gave up): free its slot or its place."""
        with self._cond:
            if ticket in self._running:
                self._running.remove(ticket)
            elif ticket in self._queued:
                self._queued.remove(ticket)
            if ticket.state in ("running", "queued", "new"):
                ticket.state = "released"
            self._cond.notify_all()

    def acquire(self, ticket: Ticket, on_wait: Callable[[QueueStatus], None] | None = None,
                poll: float = 0.5, cancelled: Callable[[], bool] | None = None) -> bool:
        """Wait until ``ticket`` is admitted (True), or until it is withdrawn, refused for memory or
        ``cancelled()`` says to give up (False, and the ticket leaves the queue). ``on_wait`` hears
        the status about every ``poll`` seconds; if it raises, the ticket leaves the queue too."""
        try:
            while not self.try_admit(ticket):
                if ticket.state in ("withdrawn", "refused") or (cancelled is not None and cancelled()):
                    self.withdraw(ticket)
                    return False
                if on_wait is not None:
                    on_wait(self.status(ticket))
                with self._cond:
                    self._cond.wait(timeout=poll)
            return True
        except BaseException:
            self.withdraw(ticket)
            raise

    # ------------------------------------------------------------ what a waiting student sees

    def status(self, ticket: Ticket) -> QueueStatus:
        with self._cond:
            if ticket.state != "queued":
                return QueueStatus(0, 0.0)
            before = self._queued[: self._queued.index(ticket)]
            now = self._clock()
            running = sum(self._remaining(t, now) for t in self._running)
            queued = sum(max(t.estimate_s, 0.0) for t in before)
            memory_bound = not before and len(self._running) < self.slots
            return QueueStatus(len(self._running) + len(before), (running + queued) / self.slots, memory_bound)

    @staticmethod
    def _remaining(ticket: Ticket, now: float) -> float:
        if ticket.remaining_s is not None:
            return max(ticket.remaining_s, 0.0)
        started = now if ticket.admitted_at is None else ticket.admitted_at
        return max(ticket.estimate_s - (now - started), 0.0)

    def counts(self) -> tuple[int, int]:
        """(running, queued), for a server's status line."""
        with self._cond:
            return len(self._running), len(self._queued)

    @contextmanager
    def slot(self, on_wait: Callable[[int], None] | None = None, poll: float = 0.5, session=None,
             estimate_s: float = 0.0, memory_mb: float = 0.0):
        """Hold one slot for the ``with`` body (the run panel of a page that runs in its own thread).

        While queued, ``on_wait(runs_ahead)`` is called about every ``poll`` seconds; it may raise
        (a page that reruns does) and the ticket is then withdrawn. With ``session``, a new call
        from that session replaces its waiting one, which then raises :class:`Withdrawn`.
        """
        ticket = Ticket(sessions={session} if session is not None else set(), estimate_s=estimate_s,
                        memory_mb=memory_mb)
        self.enqueue(ticket)
        try:
            report = None if on_wait is None else (lambda status: on_wait(status.ahead))
            if not self.acquire(ticket, on_wait=report, poll=poll):
                raise Withdrawn("This server has no memory for this run even with nothing else running."
                                if ticket.state == "refused" else
                                "A newer run from the same session replaced this one in the queue.")
            yield ticket
        finally:
            self.release(ticket)


class Withdrawn(RuntimeError):
    """A queued run left the queue without running: replaced by a newer one from the same
    session, or refused because it cannot fit in memory."""
