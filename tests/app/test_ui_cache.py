"""The explainer pages' shared computations: keyed on pixels and weights, bounded in bytes, and
one cache per function even though a page's script defines its function anew on every rerun."""

import copy

import pytest
import torch

from tests.support import gradient_image, stripes_image
from ui.cache import shared


def counting(max_mb=1.0):
    calls = []

    @shared(max_mb)
    def compute(img, side):
        calls.append(side)
        return torch.zeros(side, side)
    return compute, calls


def test_same_pixels_compute_once_other_pixels_again():
    compute, calls = counting()
    compute.cache.clear()
    a = compute(gradient_image(seed=1), 8)
    b = compute(gradient_image(seed=1), 8)  # another object, the same pixels
    assert a is b and calls == [8]
    compute(stripes_image(), 8)
    compute(gradient_image(seed=1), 16)
    assert calls == [8, 8, 16]


def test_a_rerun_defines_the_function_again_and_keeps_its_cache():
    first, calls1 = counting()
    first.cache.clear()
    first(gradient_image(), 4)
    again, calls2 = counting()  # what the page's next run does
    again(gradient_image(), 4)
    assert calls1 == [4] and calls2 == [] and again.cache is first.cache


def test_results_larger_than_the_budget_are_not_kept():
    compute, calls = counting()
    compute.cache.clear()
    compute(gradient_image(), 1024)  # 4 MB of float32, over the 1 MB budget
    compute(gradient_image(), 1024)
    assert calls == [1024, 1024] and compute.cache.bytes == 0


def test_two_networks_with_one_name_do_not_share(vgg16_random):
    @shared(1)
    def describe(model):
        return float(next(model.parameters()).sum())

    other = copy.deepcopy(vgg16_random)
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert other.description == vgg16_random.description
    assert describe(vgg16_random) != describe(other)


def test_unkeyable_arguments_are_refused():
    compute, _ = counting()
    with pytest.raises(TypeError):
        compute(object(), 4)


def test_heavy_computations_take_turns_across_sessions():
    """Ten students' own photos ask for ten different heavy results at once: one computes at a time."""
    import threading
    import time

    running, most = [0], [0]
    lock = threading.Lock()

    @shared(1, heavy=True)
    def heavy(seed):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return seed

    heavy.cache.clear()
    threads = [threading.Thread(target=heavy, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most[0] == 1 and len(heavy.cache) == 6


def test_a_heavy_computation_may_not_wait_for_another_shared_one():
    @shared(1)
    def light(x):
        return x

    @shared(1, heavy=True)
    def heavy(x):
        return light(x)

    heavy.cache.clear()
    with pytest.raises(RuntimeError, match="inside a heavy shared computation"):
        heavy(1)
    assert light(2) == 2  # the turn was given back


def test_background_jobs_go_one_piece_at_a_time_most_urgent_first():
    """A long warm-up (the bundled index) must not hold back a student's own pictures: between two
    of its pieces, the more urgent job goes first."""
    import threading

    from ui.cache import Background

    worker = Background()
    order, started, release = [], threading.Event(), threading.Event()

    def slow():
        started.set()
        release.wait(10)
        order.append("slow 1")
        yield
        order.append("slow 2")
        yield

    def urgent():
        order.append("urgent 1")
        yield
        order.append("urgent 2")
        yield

    assert worker.submit("slow", slow, priority=2)
    assert started.wait(10)
    assert worker.submit("urgent", urgent, priority=0)
    assert worker.submit("urgent", urgent, priority=0)  # already queued: not twice
    release.set()
    assert worker.drain(30)
    assert order == ["slow 1", "urgent 1", "urgent 2", "slow 2"]


def test_cleared_background_jobs_end_after_the_piece_under_way_and_the_key_can_come_back():
    import threading

    from ui.cache import Background

    worker = Background()
    pieces, started, release = [], threading.Event(), threading.Event()

    def long(name):
        def job():
            for i in range(3):
                if name == "a" and i == 0:
                    started.set()
                    release.wait(10)
                pieces.append((name, i))
                yield
        return job

    assert worker.submit("a", long("a")) and started.wait(10)
    assert worker.submit("b", long("b"))
    worker.clear()
    assert worker.submit("a", long("again"))  # a new job under the key whose old piece is still under way
    release.set()
    assert worker.drain(30)
    assert pieces == [("a", 0), ("again", 0), ("again", 1), ("again", 2)]


def test_a_failed_background_job_is_not_tried_again_at_once():
    from ui.cache import Background

    worker, tries = Background(), []

    def broken():
        tries.append(1)
        raise RuntimeError("no")
        yield

    assert worker.submit("k", broken)
    assert worker.drain(30)
    assert not worker.submit("k", broken)
    assert worker.drain(30) and tries == [1]
    worker.close()
    assert not worker.submit("other", broken)  # closed at exit: nothing new starts
