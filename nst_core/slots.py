"""A first-come, first-served limit on concurrent runs, shared by every session in the process.

On two CPU cores, ten simultaneous runs would each crawl and together could exhaust memory; a
queue keeps each run fast and tells a waiting student their place.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager


class RunSlots:
    """At most ``slots`` holders at once; waiters are served in arrival order."""

    def __init__(self, slots: int):
        if slots < 1:
            raise ValueError("slots must be ≥ 1")
        self.slots = slots
        self._cond = threading.Condition()
        self._active = 0
        self._waiting: list[object] = []

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    @contextmanager
    def slot(self, on_wait=None, poll: float = 0.5):
        """Hold one slot for the ``with`` body.

        While queued, ``on_wait(position)`` is called about every ``poll`` seconds (position 1 is
        next). It may raise — a page that reruns does — and the ticket is then withdrawn.
        """
        ticket = object()
        with self._cond:
            self._waiting.append(ticket)
        acquired = False
        try:
            while True:
                with self._cond:
                    position = self._waiting.index(ticket)
                    if position == 0 and self._active < self.slots:
                        self._waiting.pop(0)
                        self._active += 1
                        acquired = True
                        self._cond.notify_all()
                        break
                if on_wait is not None:
                    on_wait(position + 1)
                with self._cond:
                    self._cond.wait(timeout=poll)
            yield
        finally:
            with self._cond:
                if acquired:
                    self._active -= 1
                elif ticket in self._waiting:
                    self._waiting.remove(ticket)
                self._cond.notify_all()
