"""Shared runs: one computation per identical request, live progress, Stop, quiet tabs, the queue
and memory budget through the registry, and the real loop."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import pytest
import torch

from nst_core.serve.admission import RunRefused
from nst_core.serve.estimate import run_gflop
from nst_core.serve.lifecycle import WALL_BACKSTOP
from nst_core.serve.states import FINISHED, RunState
from nst_core.serve.registry import WORK_MARGIN, RunRegistry, start_transfer, transfer_key
from nst_core.transfer import Step, TransferConfig

from tests.support import gradient_image, stripes_image


def fake_step(i, n, status="running", value=None):
    img = torch.full((1, 3, 8, 8), (i if value is None else value) / max(n, 1))
    return Step(step=i, total_steps=n, stage=0, size=(8, 8), elapsed=0.01 * i, eta=0.01 * (n - i),
                content=1.0, style=1.0, tv=0.0, total=2.0 / i, style_layers={}, best_image=img,
                best_total=2.0 / i, image=img if i % 2 == 1 else None, status=status,
                message="Finished." if status == "done" else "")


class Script:
    """A stand-in for transfer.run: ``n`` steps, each after ``delay`` seconds; counts its starts."""

    def __init__(self, n=4, delay=0.0, fail_at=None):
        self.n, self.delay, self.fail_at = n, delay, fail_at
        self.starts, self.closed = 0, 0

    def __call__(self):
        self.starts += 1
        return self._gen()

    def _gen(self):
        try:
            for i in range(1, self.n + 1):
                time.sleep(self.delay)
                if i == self.fail_at:
                    raise RuntimeError("out of cheese")
                yield fake_step(i, self.n, "done" if i == self.n else "running")
        finally:
            self.closed += 1


def until(view_fn, predicate, timeout=60.0):  # a deadline for hangs only: the host may be busy
    deadline = time.monotonic() + timeout
    view = view_fn()
    while not predicate(view):
        assert time.monotonic() < deadline, f"timed out in state {view.state}"
        time.sleep(0.01)
        view = view_fn()
    return view


def registry(**kw):
    kw.setdefault("max_runs", 2)
    kw.setdefault("max_run_s", 60)
    kw.setdefault("grace_s", 0.2)
    kw.setdefault("poll_s", 0.02)
    kw.setdefault("rss_mb", lambda: 100.0)
    kw.setdefault("memory_mb", 10_000)
    return RunRegistry(**kw)


def test_two_students_asking_for_one_run_share_one_computation():
    reg, work = registry(), Script(n=6, delay=0.05)
    a = reg.start_or_join("k", work, session="A")
    b = reg.start_or_join("k", work, session="B")
    assert not a.joined and b.joined
    va = until(a.view, lambda v: v.finished)
    vb = until(b.view, lambda v: v.finished)
    assert work.starts == 1 and work.closed == 1
    assert va.state == vb.state == "done"
    assert va.best.tobytes() == vb.best.tobytes()
    assert len(va.history) == 6 and [s for s, _ in va.snapshots] == [1, 3, 5]
    assert va.latest.best_image is None, "views carry PIL images, not the worker's tensors"
    assert va.ended == vb.ended and va.ended <= time.monotonic()


def test_a_finished_run_is_served_at_once_from_the_cache():
    reg, work = registry(), Script(n=3)
    with reg.start_or_join("k", work, session="A") as sub:
        until(sub.view, lambda v: v.finished)
    again = reg.start_or_join("k", work, session="B")
    assert again.joined and again.view().state == "done" and work.starts == 1
    assert reg.results.bytes > 0
    assert reg.peek("k").state == "done" and reg.peek("other") is None


def test_a_request_in_the_moment_a_run_ends_gets_its_result_not_a_second_computation():
    """A run ends under its own lock and only then hands its result to the registry: a student who
    asks for it in between is served that result."""
    reg, work = registry(), Script(n=3)
    between = []
    hand_over = reg.finished

    def finished(run):
        between.append(reg.start_or_join("k", work, session="B"))
        hand_over(run)

    reg.finished = finished
    a = reg.start_or_join("k", work, session="A")
    until(a.view, lambda v: v.finished)
    until(lambda: between, bool)
    assert between[0].joined and between[0].view().state == "done"
    assert work.starts == 1


def test_live_progress_is_seen_while_running():
    reg, work = registry(), Script(n=50, delay=0.02)
    sub = reg.start_or_join("k", work, session="A")
    view = until(lambda: sub.wait(-1, 0.1), lambda v: v.state == "running" and v.preview is not None)
    later = sub.wait(view.version, timeout=5)
    assert later.version > view.version and len(later.history) >= len(view.history)
    sub.leave(stop=True)


def test_when_everyone_leaves_the_run_stops_and_keeps_its_best_image():
    reg, work = registry(grace_s=0.2), Script(n=10_000, delay=0.01)
    sub = reg.start_or_join("k", work, session="A")
    until(sub.view, lambda v: len(v.history) >= 3)
    left = time.monotonic()
    sub.leave()
    view = until(lambda: reg.peek("k"), lambda v: v is not None and v.finished)
    assert time.monotonic() - left < 3
    assert view.state == "stopped" and view.best is not None and "best image" in view.message
    assert work.closed == 1
    # A stopped run is shown to whoever rejoins it, but a new request computes afresh.
    assert reg.rejoin("k", "A").view().state == "stopped"
    fresh = reg.start_or_join("k", Script(n=2), session="B")
    assert not fresh.joined
    until(fresh.view, lambda v: v.state == "done")


def test_a_reload_within_the_grace_period_rejoins_the_live_run():
    reg, work = registry(grace_s=1.0), Script(n=10_000, delay=0.01)
    sub = reg.start_or_join("k", work, session="A")
    until(sub.view, lambda v: len(v.history) >= 2)
    sub.leave()
    back = reg.rejoin("k", "A-reloaded")
    time.sleep(1.3)
    view = back.view()
    assert view.state == "running" and work.starts == 1
    back.leave(stop=True)
    assert until(back.view, lambda v: v.finished).state == "stopped"


def test_a_script_interrupted_mid_run_leaves_the_run_going():
    """Streamlit stops a script whose connection dropped: the run must outlive the script, so it
    is still going when the browser reconnects, and a Stop from the same session still ends it at
    once."""
    reg, work = registry(grace_s=0.1, lease_s=0.2), Script(n=10_000, delay=0.01)
    with pytest.raises(KeyboardInterrupt):
        with reg.start_or_join("k", work, session="A") as sub:
            until(sub.view, lambda v: len(v.history) >= 2)
            raise KeyboardInterrupt  # what a stopped script's exception does to the block
    time.sleep(0.5)
    assert reg.peek("k").state == "running"
    back = reg.rejoin("k", "A")
    back.leave(stop=True)
    assert until(back.view, lambda v: v.finished, timeout=5).state == "stopped"


def test_a_closed_tabs_computing_run_goes_on_to_its_end_and_is_kept_for_a_reload():
    """A tab gone quiet may be closed, or a locked phone or a starved tab that comes back: a run
    already computing finishes, so the student who returns finds the picture, not a stopped one."""
    reg, work = registry(grace_s=0.1, lease_s=0.1), Script(n=80, delay=0.01)
    with pytest.raises(KeyboardInterrupt):
        with reg.start_or_join("k", work, session="A") as sub:
            until(sub.view, lambda v: len(v.history) >= 2)
            raise KeyboardInterrupt
    time.sleep(0.5)
    assert reg.peek("k").state == "running", "nobody watches, but the run goes on"
    assert until(lambda: reg.peek("k"), lambda v: v.finished, timeout=10).state == "done"
    back = reg.rejoin("k", "A-reloaded")
    assert back.view().state == "done" and len(back.view().history) == 80 and work.starts == 1


def test_a_queued_run_whose_tab_went_quiet_keeps_its_place_and_is_computed():
    """A class's starved tabs lost their queued runs when a quiet tab's place was given up: the
    student came back minutes later to the back of the queue."""
    reg = registry(max_runs=1, grace_s=0.1, lease_s=0.1)
    hog = reg.start_or_join("hog", Script(n=10_000, delay=0.01), session="H")
    until(hog.view, lambda v: v.state == "running")
    with pytest.raises(KeyboardInterrupt):
        with reg.start_or_join("k", Script(n=2), session="S") as sub:
            raise KeyboardInterrupt
    time.sleep(0.5)
    assert sub.run.view().state == "queued"
    hog.leave(stop=True)
    assert until(lambda: sub.run.view(), lambda v: v.finished, timeout=10).state == "done"
    assert reg.rejoin("k", "S").view().state == "done"


def test_stop_ends_a_run_only_when_nobody_else_watches():
    reg, work = registry(grace_s=30), Script(n=10_000, delay=0.01)
    a = reg.start_or_join("k", work, session="A")
    b = reg.start_or_join("k", work, session="B")
    a.leave(stop=True)
    time.sleep(0.2)
    assert b.view().state == "running"
    b.leave(stop=True)
    assert until(b.view, lambda v: v.finished).state == "stopped"


def test_stop_after_a_reload_ends_the_run_once_the_old_tab_lapses():
    """A reload is a new session watching the same run, and the old tab's script stopped without
    leaving. Stop on the reloaded page ends the run once the old tab's lease lapses: it does not
    compute on for nobody (before the grace period, which is long here, could matter)."""
    reg = registry(grace_s=30, lease_s=0.3)
    work = Script(n=100_000, delay=0.01)
    old_tab = reg.start_or_join("k", work, session="tab")  # never polled again, never left
    reloaded = reg.start_or_join("k", work, session="reloaded")
    assert until(reloaded.view, lambda v: len(v.history) >= 2).state == "running"
    reloaded.leave(stop=True)
    view = until(lambda: old_tab.run.view(), lambda v: v.finished, timeout=10)
    assert view.state == "stopped" and view.best is not None and len(view.history) < 100_000
    assert "nobody was watching" not in view.message, view.message


def test_a_subscriber_that_stops_polling_lapses_but_its_runs_go_on():
    """A script thread that died without leaving: it stops counting as a watcher after its lease,
    and the runs it watched, computing or queued, still finish."""
    reg = registry(max_runs=1, grace_s=0.1, lease_s=0.3)
    computing = reg.start_or_join("k", Script(n=100, delay=0.01), session="A")  # never polled again, never left
    queued = reg.start_or_join("q", Script(n=2), session="B")
    assert until(lambda: computing.run.view(), lambda v: v.subscribers == 0 and v.state == "running").history
    assert until(lambda: queued.run.view(), lambda v: v.finished, timeout=10).state == "done"
    assert computing.run.view().state == "done"


def test_the_wall_time_backstop_stops_a_stuck_run_and_keeps_its_best_image():
    reg, work = registry(max_run_s=0.06), Script(n=10_000, delay=0.02)
    sub = reg.start_or_join("k", work, session="A")
    view = until(lambda: sub.wait(-1, 0.1), lambda v: v.finished)
    assert view.state == "capped" and view.best is not None and f"ran for {WALL_BACKSTOP * 0.06:g} s" in view.message
    assert 3 <= len(view.history) < 10_000
    assert reg.start_or_join("k", work, session="B").view().state == "capped", "a capped run would cap again"


def test_a_failing_run_reports_its_error_and_frees_its_slot():
    reg = registry(max_runs=1)
    sub = reg.start_or_join("bad", Script(n=5, fail_at=3), session="A")
    view = until(sub.view, lambda v: v.finished)
    assert view.state == "failed" and "out of cheese" in view.message and view.best is not None
    ok = reg.start_or_join("good", Script(n=2), session="A")
    assert until(ok.view, lambda v: v.finished).state == "done"
    assert reg.counts() == (0, 0)


def test_queued_students_see_runs_ahead_and_a_new_run_replaces_the_queued_one():
    reg = registry(max_runs=1)
    hog = reg.start_or_join("hog", Script(n=10_000, delay=0.01), session="H")
    until(hog.view, lambda v: v.state == "running")
    first = reg.start_or_join("k1", Script(n=2), session="S")
    other = reg.start_or_join("k2", Script(n=2), session="T")
    v1 = until(first.view, lambda v: v.queue is not None)
    assert v1.state == "queued" and v1.queue.ahead == 1
    assert until(other.view, lambda v: v.queue is not None).queue.ahead == 2
    replacement = reg.start_or_join("k3", Script(n=2), session="S")
    assert until(first.view, lambda v: v.finished).state == "withdrawn"
    assert until(replacement.view, lambda v: v.queue is not None).queue.ahead == 2
    hog.leave(stop=True)
    assert until(other.view, lambda v: v.finished).state == "done"
    assert until(replacement.view, lambda v: v.finished).state == "done"


def test_a_queued_run_nobody_waits_for_is_withdrawn():
    reg = registry(max_runs=1, grace_s=0.1)
    hog = reg.start_or_join("hog", Script(n=10_000, delay=0.01), session="H")
    sub = reg.start_or_join("k", Script(n=2), session="S")
    sub.leave()
    assert until(lambda: sub.run.view(), lambda v: v.finished).state == "withdrawn"
    assert reg.peek("k") is None, "nothing was computed, so nothing is kept"
    hog.leave(stop=True)


def test_memory_budget_holds_a_run_until_there_is_room():
    rss = {"mb": 2000.0}
    reg = registry(max_runs=2, rss_mb=lambda: rss["mb"], memory_mb=2200)
    first = reg.start_or_join("a", Script(n=10_000, delay=0.01), session="A", memory_mb=150)
    until(first.view, lambda v: v.state == "running")
    second = reg.start_or_join("b", Script(n=2), session="B", memory_mb=150)
    view = until(second.view, lambda v: v.queue is not None)
    assert view.state == "queued" and view.queue.memory_bound and view.queue.ahead == 1
    rss["mb"] = 1500.0
    assert until(second.view, lambda v: v.finished).state == "done"
    first.leave(stop=True)


def test_headroom_gives_back_what_running_runs_hold():
    reg = registry(rss_mb=lambda: 1000.0, memory_mb=2200)
    assert reg.headroom_mb() == 1200
    sub = reg.start_or_join("a", Script(n=10_000, delay=0.01), session="A", memory_mb=300)
    until(sub.view, lambda v: v.state == "running")
    assert reg.headroom_mb() == 1500
    sub.leave(stop=True)


def test_the_real_loop_runs_once_for_two_students(vgg19_random):
    content, style = gradient_image(48, 40), stripes_image(40, 40)
    cfg = TransferConfig(size=40, steps=3, snapshot_every=2)
    reg = registry()
    a = start_transfer(reg, content, [style], cfg, vgg19_random, session="A", estimate_s=1.0)
    b = start_transfer(reg, content.copy(), [style.copy()], cfg, vgg19_random, session="B", estimate_s=1.0)
    assert not a.joined and b.joined and a.key == b.key == transfer_key(content, style, cfg, vgg19_random)
    va, vb = until(a.view, lambda v: v.finished), until(b.view, lambda v: v.finished)
    assert va.state == "done" == vb.state
    assert va.best.size == (40, 33) and va.best.tobytes() == vb.best.tobytes()
    assert [rec.step for rec in va.history] == [1, 2, 3, 3]
    assert math.isfinite(va.latest.total)
    other = start_transfer(reg, content, [style], TransferConfig(size=40, steps=2), vgg19_random, session="A")
    assert not other.joined and other.key != a.key
    until(other.view, lambda v: v.finished)


def test_start_transfer_refuses_over_the_limits_but_serves_what_is_done(vgg19_random):
    content, style = gradient_image(48, 40), stripes_image(40, 40)
    cfg = TransferConfig(size=40, steps=2)
    reg = registry(max_run_s=5)
    with pytest.raises(RunRefused):
        start_transfer(reg, content, [style], cfg, vgg19_random, session="A", estimate_s=50)
    sub = start_transfer(reg, content, [style], cfg, vgg19_random, session="A", estimate_s=1)
    until(sub.view, lambda v: v.finished)
    again = start_transfer(reg, content, [style], cfg, vgg19_random, session="B", estimate_s=50)
    assert again.joined and again.view().state == "done", "a finished result costs nothing to serve"


def test_the_ceiling_caps_a_runs_work_not_its_wall_time(vgg19_random, monkeypatch):
    """A busy server slows a run but does not stop it; more work than the estimate allowed does."""
    content, style = gradient_image(48, 40), stripes_image(40, 40)
    cfg = TransferConfig(size=40, steps=6)
    predicted = run_gflop(cfg, (40, 48), vgg19_random.arch)
    reg = registry(max_run_s=60)
    sub = start_transfer(reg, content, [style], cfg, vgg19_random, session="A", estimate_s=60)
    view = until(sub.view, lambda v: v.finished)
    assert view.state == "done" and 0.5 * predicted < view.history[-1].gflop < WORK_MARGIN * predicted
    monkeypatch.setattr("nst_core.serve.registry.WORK_MARGIN", 0.3)  # as if the estimate had missed the work five-fold
    sub = start_transfer(reg, content, [style], replace(cfg, seed=1), vgg19_random, session="A", estimate_s=60)
    view = until(sub.view, lambda v: v.finished)
    assert view.state == "capped" and "more work" in view.message and view.best is not None
    assert 1 <= len(view.history) < 6


def test_a_run_that_cannot_fit_even_alone_is_refused_and_the_queue_moves_on():
    reg = registry(max_runs=1, rss_mb=lambda: 2000.0, memory_mb=2200)
    big = reg.start_or_join("big", Script(n=2), session="A", memory_mb=500)
    small = reg.start_or_join("small", Script(n=2), session="B", memory_mb=50)
    view = until(big.view, lambda v: v.finished)
    assert view.state == "refused" and "smaller size" in view.message and "500 MB beside the 2000 MB" in view.message
    assert until(small.view, lambda v: v.finished).state == "done"


def test_a_stopping_run_is_not_joined_and_the_request_after_it_is_admitted_afresh(vgg19_random, monkeypatch):
    """Between Stop and the run's next step nobody joins it: the same request then is a new run,
    checked against the limits like any other."""
    slow = Script(n=10_000, delay=0.3)
    monkeypatch.setattr("nst_core.serve.registry.run", lambda *args: slow())
    content, style, cfg = gradient_image(48, 40), stripes_image(40, 40), TransferConfig(size=40, steps=3)
    reg = registry(max_run_s=5)
    first = start_transfer(reg, content, [style], cfg, vgg19_random, session="A", estimate_s=1)
    until(first.view, lambda v: v.state == "running")
    first.leave(stop=True)
    assert reg.peek(first.key).state is RunState.STOPPING and reg.rejoin(first.key, "B") is None
    with pytest.raises(RunRefused):
        start_transfer(reg, content, [style], cfg, vgg19_random, session="B", estimate_s=50)
    second = start_transfer(reg, content, [style], cfg, vgg19_random, session="B", estimate_s=1)
    assert not second.joined and second.run is not first.run
    assert until(first.run.view, lambda v: v.finished).state is RunState.STOPPED
    second.leave(stop=True)
    until(second.view, lambda v: v.finished)


def test_a_refused_run_never_looks_finished_before_it_says_why(monkeypatch):
    """The queue refuses a run before its worker writes the message: a watcher polling in between
    sees it still queued, never finished without a word."""
    from nst_core.serve.lifecycle import SharedRun
    finish = SharedRun._finish

    def slow_finish(self, state, message):
        time.sleep(0.3)
        finish(self, state, message)

    monkeypatch.setattr(SharedRun, "_finish", slow_finish)
    reg = registry(max_runs=1, rss_mb=lambda: 2000.0, memory_mb=2200)
    big = reg.start_or_join("big", Script(n=2), session="A", memory_mb=500)
    seen = []
    view = until(big.view, lambda v: seen.append((v.state, v.message)) or v.finished)
    assert view.state == "refused" and view.message
    assert all(message for state, message in seen if state in FINISHED), seen
