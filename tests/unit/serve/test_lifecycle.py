"""A run's one state: the transitions written down as data, each allowed one accepted and every
other refused; the record a watcher gets is frozen and picklable."""

from __future__ import annotations

import itertools
import pickle
from dataclasses import replace

import pytest
from PIL import Image

from nst_core.serve.lifecycle import Run, RunView
from nst_core.serve.states import FINISHED, SERVED, TRANSITIONS, ForbiddenTransition, QueueStatus, RunState, advance

from tests.support import step_record

ALLOWED = [(a, b) for a, nexts in TRANSITIONS.items() for b in sorted(nexts)]  # one order in every process
FORBIDDEN = [(a, b) for a, b in itertools.product(RunState, RunState) if b not in TRANSITIONS[a]]


def test_the_table_names_every_state_and_only_states():
    assert set(TRANSITIONS) == set(RunState)
    assert all(nexts <= set(RunState) for nexts in TRANSITIONS.values())
    assert len(ALLOWED) + len(FORBIDDEN) == len(RunState) ** 2


@pytest.mark.parametrize(("current", "new"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_every_allowed_transition_is_accepted(current, new):
    assert advance(current, new) is new
    run = Run(state=current)
    run.advance(new)
    assert run.state is new


@pytest.mark.parametrize(("current", "new"), FORBIDDEN, ids=[f"{a}->{b}" for a, b in FORBIDDEN])
def test_every_forbidden_transition_is_refused(current, new):
    with pytest.raises(ForbiddenTransition):
        advance(current, new)
    run = Run(state=current)
    with pytest.raises(ForbiddenTransition):
        run.advance(new)
    assert run.state is current


def test_finished_states_are_final_and_every_state_is_reached_from_queued():
    assert FINISHED == {RunState.DONE, RunState.DIVERGED, RunState.CAPPED, RunState.STOPPED, RunState.FAILED,
                        RunState.WITHDRAWN, RunState.REFUSED}
    assert SERVED <= FINISHED
    reached, frontier = {RunState.QUEUED}, [RunState.QUEUED]
    while frontier:
        for nxt in TRANSITIONS[frontier.pop()] - reached:
            reached.add(nxt)
            frontier.append(nxt)
    assert reached == set(RunState)


def test_the_loop_statuses_name_states():
    """A loop record's status (``Step.status``) ends a run in the state of the same name."""
    for status in ("done", "diverged"):
        assert RunState(status) in FINISHED
    assert RunState("running") is RunState.RUNNING


def test_a_view_is_frozen_and_survives_pickling():
    latest, first = (replace(step_record(step=s), best_image=None) for s in (2, 1))
    view = RunView("k", RunState.DONE, 3, "Finished.", QueueStatus(1, 2.0), latest, (first,), ((1, b"jpeg"),), None, 0, Image.new("RGB", (4, 3), "red"), 2, 12.5)
    back = pickle.loads(pickle.dumps(view))
    assert back.state is RunState.DONE and back.finished and back.best.tobytes() == view.best.tobytes()
    assert back.history[0].step == 1 and back.queue == QueueStatus(1, 2.0) and back.ended == 12.5
    with pytest.raises(AttributeError):
        view.state = RunState.FAILED
