"""A run's life: one state in one enum, the transitions allowed between states, and the one record
of a run that travels from the service to the page (:class:`RunView`).

Every view of a run is derived from its :class:`RunState`: the queue's line, a watcher's panel, the
gallery's entry. :func:`advance` is the only way a state changes, and it refuses a transition that
:data:`TRANSITIONS` does not list.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from PIL import Image

from ..transfer import Step


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
