"""Caches bounded in bytes, and the process's one turn for heavy work that is not a run.

``st.cache_data`` bounds only the number of entries; a class touring the pages at 512 px filled the
server until the kernel killed it. A :class:`ByteCache` is bounded in bytes, in entries and in time,
and every one of them gives memory back when a run needs it (:func:`relieve_caches`).
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from contextlib import contextmanager

import numpy as np
import torch
from PIL import Image

from . import memory


def nbytes(value, _seen: set | None = None) -> int:
    """Approximate memory held by ``value``: tensors, arrays, images and bytes by their buffers,
    containers and dataclasses by their parts. Shared parts are counted once."""
    seen = set() if _seen is None else _seen
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, torch.Tensor):
        return value.nelement() * value.element_size()
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, Image.Image):
        return value.width * value.height * len(value.getbands())
    if isinstance(value, (bytes, bytearray, memoryview, str)):
        return len(value)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(nbytes(k, seen) + nbytes(v, seen) for k, v in value.items())
    if isinstance(value, (list, tuple, set, frozenset)):
        return sys.getsizeof(value) + sum(nbytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sys.getsizeof(value) + sum(nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


_CACHES: weakref.WeakSet = weakref.WeakSet()


class ByteCache:
    """A least-recently-used cache bounded in bytes and in entries, whose entries expire after
    ``ttl_s``. Thread-safe; :meth:`get_or_compute` runs one computation per key however many
    threads ask for it at once. A value larger than the whole bound is returned but not kept.

    Usable for any work that does not depend on who asks: finished runs, top patches,
    reconstructions, experiment results. Key it on content digests (:func:`digest`), never on
    names a student chose.
    """

    def __init__(self, max_bytes: int, max_entries: int = 256, ttl_s: float = 3600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_bytes, self.max_entries, self.ttl_s = int(max_bytes), int(max_entries), float(ttl_s)
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: OrderedDict = OrderedDict()  # key -> (value, nbytes, expires)
        self._bytes = 0
        self._computing: dict = {}  # key -> threading.Event, while one thread computes it
        _CACHES.add(self)

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._entries)

    def __contains__(self, key) -> bool:
        return self.get(key, _MISSING) is not _MISSING

    def get(self, key, default=None):
        with self._lock:
            self._expire()
            if key not in self._entries:
                return default
            self._entries.move_to_end(key)
            return self._entries[key][0]

    def put(self, key, value, size: int | None = None) -> bool:
        """Store ``value``; False if it is larger than the cache itself (then nothing is evicted)."""
        size = nbytes(value) if size is None else int(size)
        with self._lock:
            self._drop(key)
            if size > self.max_bytes:
                return False
            self._entries[key] = (value, size, self._clock() + self.ttl_s)
            self._bytes += size
            while self._bytes > self.max_bytes or len(self._entries) > self.max_entries:
                self._drop(next(iter(self._entries)))
            return True

    def pop(self, key, default=None):
        with self._lock:
            entry = self._entries.get(key)
            self._drop(key)
            return default if entry is None else entry[0]

    def get_or_compute(self, key, compute: Callable[[], object], size: Callable[[object], int] | None = None):
        """The cached value, or ``compute()``'s, computed once even when many threads ask at once."""
        while True:
            with self._lock:
                self._expire()
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key][0]
                pending = self._computing.get(key)
                if pending is None:
                    self._computing[key] = threading.Event()
                    break
            pending.wait()  # another thread computes it; then look again (it may have failed)
        try:
            value = compute()
            self.put(key, value, None if size is None else size(value))
            return value
        finally:
            with self._lock:
                self._computing.pop(key).set()

    def shrink(self, fraction: float = 0.5) -> None:
        """Drop the least recently used entries until at most ``fraction`` of the bytes remain."""
        with self._lock:
            target = self._bytes * fraction
            while self._entries and self._bytes > target:
                self._drop(next(iter(self._entries)))

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _drop(self, key) -> None:
        entry = self._entries.pop(key, None)
        if entry is not None:
            self._bytes -= entry[1]

    def _expire(self) -> None:
        now = self._clock()
        for key in [k for k, (_, _, expires) in self._entries.items() if expires <= now]:
            self._drop(key)


_MISSING = object()


def cached_bytes() -> int:
    """What every :class:`ByteCache` of the process holds, in bytes."""
    return sum(cache.bytes for cache in list(_CACHES))


def relieve_caches(fraction: float = 0.5) -> None:
    """Shrink every :class:`ByteCache` of the process, then hand the freed memory back: the last
    resort before a run is turned away for memory."""
    for cache in list(_CACHES):
        cache.shrink(fraction)
    memory.release_free_memory()


_HEAVY = threading.Lock()


@contextmanager
def heavy_turn(budget_mb: float | None = None, rss_mb: Callable[[], float | None] = memory.resident_mb):
    """Hold the process's one turn for heavy work that is not a run (an explainer page's
    activations, Grams, patch index). Each such result is shared, but a class touring the pages
    with photos of their own asks for many different ones at once: unqueued, they took the CPU
    from the runs and stacked their transient memory. One at a time, they take at most one
    computation's share from the runs; a turn that finds the process over its memory budget first
    shrinks the caches. Whoever holds the turn must not wait for another shared computation."""
    with _HEAVY:
        if not memory.fits_budget(0.0, budget_mb=budget_mb, rss_mb=rss_mb):
            relieve_caches()
        yield


