"""A run's states, the transitions allowed between them, and what a waiting student is told.
Kept apart from :mod:`.lifecycle` and free of PyTorch, so the Ray registry, which only moves
states and bytes, never loads it."""

from __future__ import annotations

import enum
from dataclasses import dataclass


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


# A run told to stop may still end otherwise at the step it was told: its last step, or the cap.
_ENDS_OF_A_COMPUTATION = frozenset({RunState.DONE, RunState.DIVERGED, RunState.CAPPED, RunState.STOPPED,
                                    RunState.FAILED})

# The allowed transitions; a state that lists nothing is final.
TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.WITHDRAWN, RunState.REFUSED}),
    RunState.RUNNING: _ENDS_OF_A_COMPUTATION | {RunState.STOPPING},
    RunState.STOPPING: _ENDS_OF_A_COMPUTATION,
    **{state: frozenset() for state in (RunState.DONE, RunState.DIVERGED, RunState.CAPPED, RunState.STOPPED,
                                        RunState.FAILED, RunState.WITHDRAWN, RunState.REFUSED)},
}
FINISHED = frozenset(state for state, nexts in TRANSITIONS.items() if not nexts)
JOINABLE = frozenset({RunState.QUEUED, RunState.RUNNING})  # a stopping run is too late to join
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


@dataclass(frozen=True)
class QueueStatus:
    """What a waiting student is told."""

    ahead: int  # runs running plus runs queued before this one
    wait_s: float  # their remaining estimated seconds, shared over the slots
    memory_bound: bool = False  # first in line with a free slot, but waiting for memory
