"""The fair queue: order, runs ahead, honest waits, one queued run per session, memory admission."""

from __future__ import annotations

import threading

import pytest

from nst_core.serve.lifecycle import Run
from nst_core.serve.states import QueueStatus, RunState
from nst_core.serve.queue import FairQueue


def queued(session=None, estimate=0.0, memory=0.0) -> Run:
    """A run waiting for the queue, as the registry makes one."""
    return Run(sessions={session} if session is not None else set(), estimate_s=estimate, memory_mb=memory)


def busy_queue(slots: int = 1, **kw) -> tuple[FairQueue, Run]:
    """A queue whose slots are all taken by running runs; returns the queue and the first."""
    q = FairQueue(slots, **kw)
    running = [queued(f"busy{i}", estimate=5) for i in range(slots)]
    for t in running:
        q.enqueue(t)
        assert q.try_admit(t)
    return q, running[0]


def test_first_come_first_served_and_no_overtaking():
    q = FairQueue(1)
    a, b, c = queued("a"), queued("b"), queued("c")
    for t in (a, b, c):
        q.enqueue(t)
    assert not q.try_admit(b) and not q.try_admit(c)
    assert q.try_admit(a)
    assert not q.try_admit(c), "c may not pass b"
    assert not q.try_admit(b), "the only slot is taken"
    q.release(a)
    assert not q.try_admit(c) and q.try_admit(b)
    q.release(b)
    assert q.try_admit(c)


def test_runs_ahead_counts_running_and_queued_before_not_a_position():
    q = FairQueue(2)
    running = [queued(s) for s in "ab"]
    for t in running:
        q.enqueue(t)
        assert q.try_admit(t)
    first, second = queued("c"), queued("d")
    q.enqueue(first)
    q.enqueue(second)
    # The bug: the first waiter was told "1 run(s) ahead" while 2 were running.
    assert q.status(first).ahead == 2
    assert q.status(second).ahead == 3
    assert q.counts() == (2, 2)
    assert q.status(running[0]) == QueueStatus(0, 0.0)


def test_wait_is_remaining_seconds_of_runs_ahead_over_slots(clock):
    q = FairQueue(2, clock=clock)
    r1, r2 = queued("a", estimate=30), queued("b", estimate=30)
    for t in (r1, r2):
        q.enqueue(t)
        q.try_admit(t)
    queued_ahead, me = queued("c", estimate=40), queued("d", estimate=50)
    q.enqueue(queued_ahead)
    q.enqueue(me)
    clock.now = 10.0
    assert q.status(me).wait_s == pytest.approx((20 + 20 + 40) / 2)
    r1.remaining_s = 4.0  # the run's own estimate of what is left replaces the guess
    assert q.status(me).wait_s == pytest.approx((4 + 20 + 40) / 2)
    clock.now = 100.0
    assert q.status(me).wait_s == pytest.approx((4 + 0 + 40) / 2), "an overdue run counts as nearly done"


def test_a_new_run_from_the_same_session_replaces_its_queued_one():
    q, busy = busy_queue()
    old, other = queued("s"), queued("t")
    q.enqueue(old)
    q.enqueue(other)
    new = queued("s")
    assert q.enqueue(new) == [old]
    assert old.state is RunState.WITHDRAWN
    assert q.status(other).ahead == 1 and q.status(new).ahead == 2, "the replacement goes to the back"
    assert q.counts() == (1, 2)


def test_a_shared_queued_run_survives_one_of_its_sessions_moving_on():
    q, busy = busy_queue()
    shared = queued("s")
    q.enqueue(shared)
    assert q.join(shared, "t") == []
    assert q.enqueue(queued("s")) == []
    assert shared.state is RunState.QUEUED and shared.sessions == {"t"}


def test_a_running_run_is_not_replaced():
    q = FairQueue(1)
    running = queued("s")
    q.enqueue(running)
    q.try_admit(running)
    q.enqueue(queued("s"))
    assert running.state is RunState.RUNNING


def test_withdrawal_moves_the_queue_up_and_ends_the_wait():
    q = FairQueue(1)
    busy, a, b = queued("x"), queued("a"), queued("b")
    for t in (busy, a, b):
        q.enqueue(t)
    q.try_admit(busy)
    assert q.withdraw(a)
    assert not q.withdraw(a), "already gone"
    assert not q.withdraw(busy), "a running run is released, not withdrawn"
    assert q.status(b).ahead == 1
    assert q.acquire(a, poll=0.01) is False
    q.release(busy)
    assert q.try_admit(b)


def test_memory_holds_the_head_and_everyone_behind_it():
    room = {"fits": True}
    seen = []

    def fits(need, reserved):
        seen.append((need, reserved))
        return room["fits"]

    q = FairQueue(3, fits=fits)
    running = queued("r", memory=300)
    q.enqueue(running)
    assert q.try_admit(running)
    room["fits"] = False
    big, small = queued("a", memory=900), queued("b", memory=10)
    q.enqueue(big)
    q.enqueue(small)
    assert not q.try_admit(big)
    assert q.status(big) == QueueStatus(1, 0.0, memory_bound=True)
    assert not q.try_admit(small), "a small run does not overtake the one waiting for memory"
    room["fits"] = True
    assert q.try_admit(big) and q.try_admit(small)
    assert seen[-1] == (10, 1200), "admission counts the estimates of the runs already admitted"


def test_acquire_blocks_until_a_slot_frees_and_reports_runs_ahead():
    q, holder = busy_queue()
    waiter = queued("y")
    q.enqueue(waiter)
    reports, admitted = [], threading.Event()

    def wait():
        if q.acquire(waiter, on_wait=reports.append, poll=0.01):
            admitted.set()

    t = threading.Thread(target=wait)
    t.start()
    assert not admitted.wait(0.1)
    q.release(holder)
    assert admitted.wait(5)
    t.join()
    assert reports and reports[0].ahead == 1 and reports[0].wait_s > 0


def test_acquire_gives_up_when_cancelled_or_when_on_wait_raises():
    q, holder = busy_queue()
    a = queued("a")
    q.enqueue(a)
    assert q.acquire(a, poll=0.01, cancelled=lambda: True) is False
    assert a.state is RunState.WITHDRAWN
    b = queued("b")
    q.enqueue(b)

    def rerun(status):
        raise KeyboardInterrupt("the page reran")

    with pytest.raises(KeyboardInterrupt):
        q.acquire(b, on_wait=rerun, poll=0.01)
    assert q.counts() == (1, 0)


def test_slots_must_be_positive():
    with pytest.raises(ValueError):
        FairQueue(0)


def test_a_head_that_cannot_fit_with_nothing_running_is_refused_not_left_blocking():
    q = FairQueue(2, fits=lambda need, reserved: need < 100)
    big, small = queued("a", memory=500), queued("b", memory=10)
    q.enqueue(big)
    q.enqueue(small)
    assert q.acquire(big, poll=0.01) is False and big.state is RunState.REFUSED
    assert q.try_admit(small)
