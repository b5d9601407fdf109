"""The explainer pages' computations, shared by every session and bounded in bytes.

``st.cache_data`` bounds only the number of entries, and a class touring the pages at 512 px
filled the server until the kernel killed it. Here each computation has a budget in MB
(:class:`nst_core.serve.caches.ByteCache`, which also gives memory back when a run needs it), one
computation per key however many students ask at once, and a key made of content digests: an
image is keyed by its pixels, a network by its weights, never by a name a student typed.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import heapq
import itertools
import logging
import threading
from collections.abc import Callable, Iterator

import streamlit as st
import torch
from PIL import Image

from nst_core.serve.caches import ByteCache, heavy_turn
from nst_core.serve.identity import digest, network_identity

TTL_S = 3600.0
# One cache per function for the process. Pages are scripts that Streamlit runs again on every
# rerun, so a page's function is a new object each time: the cache is found by where it is defined.
_CACHES: dict[tuple[str, str], ByteCache] = {}
_turn = threading.local()  # whether this thread holds the heavy turn


def _part(value):
    if isinstance(value, torch.nn.Module):
        return network_identity(value)
    if isinstance(value, Image.Image):
        return digest(value)
    if isinstance(value, (list, tuple)):
        return tuple(_part(v) for v in value)
    if isinstance(value, bytes):
        return digest(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    raise TypeError(f"cannot key a shared computation on a {type(value).__name__}")


def shared(max_mb: float, spinner: str | None = None, max_entries: int = 64, heavy: bool = False):
    """Decorate a pure function of models, images, bytes and plain values. Callers must not
    modify what it returns: every session gets the same object.

    ``heavy`` computations take the process's one turn for them (:func:`heavy_turn`) and so must
    call no other shared function: holding the turn while waiting for one that another session
    computes, itself waiting for the turn, would hang both."""
    def decorate(fn):
        name = (fn.__code__.co_filename, fn.__qualname__)
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES.setdefault(name, ByteCache(int(max_mb * 2**20), max_entries=max_entries, ttl_s=TTL_S))

        def call(*args):
            if not heavy:
                return fn(*args)
            with heavy_turn():
                _turn.held = True
                try:
                    return fn(*args)
                finally:
                    _turn.held = False

        @functools.wraps(fn)
        def wrapper(*args):
            if getattr(_turn, "held", False):
                raise RuntimeError(f"{fn.__qualname__} was called inside a heavy shared computation")

            def compute():
                with st.spinner(spinner) if spinner is not None else contextlib.nullcontext():
                    return call(*args)
            return cache.get_or_compute(_part(args), compute)

        wrapper.cache = cache
        # For work computed elsewhere (a background job that makes several entries in one pass):
        # look without computing, and store under the key a call with the same arguments uses.
        wrapper.peek = lambda *args: cache.get(_part(args))
        wrapper.put = lambda *args, value: cache.put(_part(args), value)
        return wrapper
    return decorate


log = logging.getLogger(__name__)


class Background:
    """One worker thread for work a page will want soon: the bundled pictures' top-patch index,
    a student's own pictures added to it, every layer of an image set.

    A job is a generator function; each ``next()`` is one short piece of work done while holding
    the heavy turn (:func:`heavy_turn`), so a student's own heavy computation waits at most one
    piece, and the highest-priority job (lowest number) goes next. A job stores its results with
    a shared function's ``put``; it must call no shared function itself (the turn is held).
    Bounded: at most ``max_jobs`` jobs wait, and a key that failed is not tried again within ``TTL_S``."""

    def __init__(self, max_jobs: int = 24):
        self.max_jobs = max_jobs
        self._lock = threading.Condition()
        self._heap: list = []  # (priority, order, key)
        self._jobs: dict = {}  # key -> [generator, progress]
        self._failed = ByteCache(2**20, max_entries=256, ttl_s=TTL_S)  # keys that raised: not again soon
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._closed = False

    def submit(self, key, job: Callable[[], Iterator], priority: int = 1) -> bool:
        """Queue ``job`` under ``key`` unless it is queued or running; False if it is not queued (the
        queue is full, or the key failed lately). Submit only what is missing: a finished job is
        not remembered, its results are."""
        with self._lock:
            if key in self._jobs or key in self._failed:
                return key in self._jobs
            if len(self._jobs) >= self.max_jobs or self._closed:
                return False
            self._jobs[key] = [None, job, None]
            heapq.heappush(self._heap, (priority, next(self._order), key))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="nst-background", daemon=True)
                self._thread.start()
            self._lock.notify_all()
            return True

    def progress(self, key):
        """What the job ``key`` last yielded (for a page to say how far it got), or None."""
        with self._lock:
            entry = self._jobs.get(key)
            return entry[2] if entry else None

    def pending(self, key) -> bool:
        with self._lock:
            return key in self._jobs

    def clear(self) -> None:
        """Forget every job; the piece under way finishes and its job ends there (when the caches
        its results were for are cleared: a test run's next test, for instance)."""
        with self._lock:
            self._heap.clear()
            self._jobs.clear()
            self._lock.notify_all()

    def drain(self, timeout: float = 600.0) -> bool:
        """Wait until no job is left (for tests and scripts); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._jobs and not self._busy, timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._heap or self._closed:
                    return  # the next submit starts a fresh thread
                priority, order, key = heapq.heappop(self._heap)
                entry = self._jobs[key]
                self._busy = True
            finished, failed = True, False
            try:
                with heavy_turn():
                    _turn.held = True
                    try:
                        if entry[0] is None:
                            entry[0] = entry[1]()
                        entry[2] = next(entry[0])
                        finished = False
                    finally:
                        _turn.held = False
            except StopIteration:
                pass
            except Exception:  # a failed warm-up costs only speed: the page computes on demand
                log.exception("background job %r failed", key)
                failed = True
            with self._lock:
                self._busy = False
                ours = self._jobs.get(key) is entry  # not when cleared while its piece ran
                if finished:
                    if ours:
                        del self._jobs[key]
                    if failed:
                        self._failed.put(key, True, size=1)
                elif ours:
                    heapq.heappush(self._heap, (priority, order, key))
                self._lock.notify_all()

    def close(self, timeout: float = 60.0) -> None:
        """Stop after the piece under way and wait for it: torch aborts the process if it exits
        while a thread is inside a computation."""
        with self._lock:
            self._closed = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)


_BACKGROUND = Background()
atexit.register(_BACKGROUND.close)


def background() -> Background:
    """The process's one background worker."""
    return _BACKGROUND
