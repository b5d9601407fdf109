"""Caches bounded in bytes, entries and time; the heavy turn."""

from __future__ import annotations

import threading
import time

import pytest
import torch
from PIL import Image

from nst_core.serve.caches import ByteCache, heavy_turn, nbytes


def test_cache_is_bounded_in_bytes_least_recently_used_first():
    cache = ByteCache(max_bytes=100, max_entries=10)
    cache.put("a", b"x" * 40)
    cache.put("b", b"x" * 40)
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", b"x" * 40)
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.bytes == 80


def test_cache_is_bounded_in_entries():
    cache = ByteCache(max_bytes=10**6, max_entries=2)
    for k in "abc":
        cache.put(k, b"x")
    assert len(cache) == 2 and "a" not in cache


def test_cache_entries_expire(clock):
    cache = ByteCache(max_bytes=1000, ttl_s=60, clock=clock)
    cache.put("a", b"x" * 10)
    clock.now = 59
    assert cache.get("a") == b"x" * 10
    clock.now = 61
    assert cache.get("a") is None and cache.bytes == 0


def test_a_value_larger_than_the_cache_is_not_kept_and_evicts_nothing():
    cache = ByteCache(max_bytes=100)
    cache.put("small", b"x" * 50)
    assert cache.put("huge", b"x" * 101) is False
    assert "huge" not in cache and "small" in cache


def test_get_or_compute_computes_once_for_many_threads():
    cache = ByteCache(max_bytes=10**6)
    calls, start = [], threading.Barrier(6)

    def compute():
        calls.append(1)
        time.sleep(0.1)
        return torch.zeros(10)

    results = []

    def ask():
        start.wait()
        results.append(cache.get_or_compute("k", compute))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1
    assert all(r is results[0] for r in results)


def test_get_or_compute_retries_after_a_failure():
    cache = ByteCache(max_bytes=10**6)

    def boom():
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get_or_compute("k", boom)
    assert cache.get_or_compute("k", lambda: 7) == 7


def test_nbytes_counts_buffers():
    assert nbytes(torch.zeros(2, 3, dtype=torch.float32)) == 24
    assert nbytes(Image.new("RGB", (10, 5))) == 150
    t = torch.zeros(100)
    assert nbytes([t, t]) < 2 * 400, "a shared tensor is counted once"


def test_a_heavy_turn_over_the_memory_budget_shrinks_the_caches_first():
    cache = ByteCache(10_000)
    for i in range(4):
        cache.put(i, b"", 1000)
    with heavy_turn(budget_mb=100, rss_mb=lambda: 50):
        assert cache.bytes == 4000  # within the budget: nothing is dropped
    with heavy_turn(budget_mb=100, rss_mb=lambda: 150):
        assert cache.bytes == 2000
