"""Work shared by every session of the one server process: identical runs are computed once.

A class presses Run at the same moment, mostly on the same bundled pair. A run is identified by
the bytes of its images, its settings and its network (:func:`run_key`); a student who asks for a
run already in flight joins it and sees the same live progress, and one who asks for a finished
run gets it at once from a cache bounded in bytes, in entries and in time (:class:`ByteCache`).
Nobody sees another student's upload unless they uploaded the same bytes: the key is a digest of
those bytes.

Each run's generator (``nst_core.transfer.run``) is driven by one worker thread; subscribers only
read what it publishes. A run ends early (a computing one keeps its best image as a ``stopped``
result) only on a student's word: Stop, a newer Run that replaces a queued one, or every watcher
leaving. A watcher whose browser merely goes quiet (a closed tab, but also a phone's locked screen
or a tab starved of CPU: Streamlit's public API cannot tell them apart) does not end it: the run
waits its turn and computes, and a reload or a reconnect finds its result through the run's
identity. A run that does more work than ``NST_MAX_RUN_S`` allows stops and keeps its best image
(:data:`WORK_MARGIN`); a run estimated longer is refused up front with what to lower.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import logging
import math
import sys
import threading
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from . import memory
from .estimate import run_gflop
from .images import to_pil
from .slots import FairQueue, QueueStatus, Ticket, server_limit
from .transfer import Step, TransferConfig, run

log = logging.getLogger(__name__)

SNAPSHOT_SIDE = 160  # long side of the thumbnails kept of a run's progress
# A run's ceiling (NST_MAX_RUN_S) caps its work, not its wall time: a class pressing Run at once
# slows every run several-fold, and a wall-time cap stopped the class's one shared picture at step
# 9 of 70 after 120 s. A run may do WORK_MARGIN times the network work (Step.gflop) its estimate
# fits into the ceiling, the margin for the estimate's own error; wall time stops it only past
# WALL_BACKSTOP times the ceiling, in case it is stuck.
WORK_MARGIN = 1.5
WALL_BACKSTOP = 20
FINISHED = ("done", "diverged", "capped", "stopped", "failed", "withdrawn", "refused")
# Finished states worth serving to the next student who asks: the same request would end the same
# way. A stopped or failed run is only shown to someone rejoining it (see RunRegistry.peek).
SERVED = ("done", "diverged", "capped")


# ---------------------------------------------------------------- a cache bounded in bytes

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


def relieve_caches(fraction: float = 0.5) -> None:
    """Shrink every :class:`ByteCache` of the process, then hand the freed memory back: the last
    resort before a run is turned away for memory."""
    for cache in list(_CACHES):
        cache.shrink(fraction)
    memory.release_free_memory()


_HEAVY = threading.Lock()


@contextmanager
def heavy_turn(budget_mb: float | None = None, rss_mb: Callable[[], float | None] = memory.status_mb):
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


from .serve.identity import digest, network_identity, run_key  # noqa: E402

# ---------------------------------------------------------------- refusing work up front

class RunRefused(ValueError):
    """A run the server will not take, with what to lower (``max_steps``, ``max_size``)."""

    def __init__(self, message: str, max_steps: int | None = None, max_size: int | None = None):
        super().__init__(message)
        self.message, self.max_steps, self.max_size = message, max_steps, max_size


def check_run(config: TransferConfig, shape: tuple[int, int], estimate_s: float | None,
              max_run_s: float | None = None, headroom_mb: float | None = None, precision: str = "fp32") -> float:
    """Refuse a run whose estimate passes the ceiling on seconds, or whose memory could never fit
    (:class:`RunRefused`, saying what to lower); otherwise return its memory estimate in MB.

    ``shape`` is the content image's (H, W); ``headroom_mb`` is what the budget leaves when no
    run is computing (``RunRegistry.headroom_mb``); ``precision`` is the one the run computes in.
    """
    max_run_s = server_limit("NST_MAX_RUN_S") if max_run_s is None else max_run_s
    if estimate_s is not None and estimate_s > max_run_s:
        ratio = max_run_s / estimate_s
        steps = max(1, int(config.steps * ratio))
        size = _round_down(config.size * math.sqrt(ratio))
        tips = [f"at most {steps} steps", f"a size of {size} px or less" if size else None]
        if config.optimizer == "lbfgs":
            tips.append("Adam instead of L-BFGS (one cost evaluation per step instead of about 2.5)")
        raise RunRefused(f"This run is estimated at {estimate_s:.0f} s, over this server's limit of "
                         f"{max_run_s:.0f} s per run. Lower its work: "
                         f"{' or '.join(t for t in tips if t)}.", max_steps=steps, max_size=size or None)
    need = memory.run_memory_mb(config, shape, precision)
    if headroom_mb is not None and need > headroom_mb:
        size = memory.largest_size_within(config, shape, headroom_mb, precision)
        offer = f" A size of {size} px fits." if size else ""
        raise RunRefused(f"At {config.size} px this run needs about {need:.0f} MB, more than the "
                         f"{max(headroom_mb, 0):.0f} MB this server can give one run.{offer}", max_size=size)
    return need


def _round_down(side: float, step: int = 32) -> int:
    side = int(side) // step * step
    return side if side >= 64 else 0


# ---------------------------------------------------------------- shared runs

@dataclass(frozen=True)
class RunView:
    """Everything a subscriber draws, as of ``version``. Images are PIL; the tensors stay in the
    worker. ``latest`` keeps the costs of the last record (its image fields are dropped)."""

    key: str
    state: str  # queued | running | done | diverged | capped | stopped | failed | withdrawn | refused
    version: int
    message: str = ""
    queue: QueueStatus | None = None
    latest: Step | None = None
    history: tuple[Step, ...] = ()  # every record, images dropped
    snapshots: tuple[tuple[int, bytes], ...] = ()  # (step, JPEG thumbnail)
    preview: bytes | None = None  # the newest snapshot at full size as a JPEG, while running
    preview_step: int = 0
    best: Image.Image | None = None
    subscribers: int = 0
    # When the run finished, on the registry's clock (time.monotonic in the app): a student whose
    # tab was away when it did is told when the picture was ready, not when they came back.
    ended: float | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED


class SharedRun:
    """One computation and the subscribers who watch it. Only its worker thread touches the
    generator; everyone else reads :meth:`view`."""

    def __init__(self, key: str, make_generator: Callable[[], Iterator[Step]], ticket: Ticket,
                 registry: RunRegistry, work_gflop: float | None = None):
        self.key, self.ticket, self._registry = key, ticket, registry
        self.work_gflop = work_gflop  # the network work it may do (Step.gflop); None: wall time alone
        self._make_generator = make_generator
        self._cond = threading.Condition()
        self._subs: dict[int, tuple[object, float]] = {}  # id -> (session, watched until)
        # When the last watcher left or stopped; None while someone watches, or while the last
        # ones merely went quiet (their leases lapse, and that never ends the run).
        self._empty_since: float | None = None
        self._stop_now = False
        self._ending = False  # the worker decided to stop for want of watchers: too late to join
        self.state, self.message, self.version = "queued", "", 0
        self._history: list[Step] = []
        self._snapshots: list[tuple[int, bytes]] = []
        self._preview: tuple[int, bytes] | None = None
        self._best: torch.Tensor | None = None
        self._best_pil: tuple[torch.Tensor, Image.Image] | None = None
        self.final: RunView | None = None
        self.thread = threading.Thread(target=self._work, name=f"nst-run-{key[:8]}", daemon=True)

    # ------------------------------------------------------------ subscribers

    def _subscribe(self, session) -> int | None:
        """A new subscriber's id, or None when the run is already ending unwatched or withdrawn
        (then the caller starts a fresh one)."""
        with self._cond:
            if self._ending or self.final is not None or self.ticket.state in ("withdrawn", "refused"):
                return None
            sub_id = next(_SUB_IDS)
            self._subs[sub_id] = (session, self._registry.clock() + self._registry.lease_s)
            self._empty_since = None
            self._stop_now = False
            return sub_id

    def _touch(self, sub_id: int) -> None:
        with self._cond:
            if sub_id in self._subs:
                self._subs[sub_id] = (self._subs[sub_id][0], self._registry.clock() + self._registry.lease_s)

    def _leave(self, sub_id: int, stop: bool) -> None:
        with self._cond:
            session, _ = self._subs.pop(sub_id, (None, 0.0))
            if stop:  # the student means it: their subscriptions of interrupted scripts go too
                for other in [i for i, (s, _) in self._subs.items() if s == session]:
                    del self._subs[other]
            if session is not None and all(s != session for s, _ in self._subs.values()):
                self._registry.queue.leave(self.ticket, session)
            if not self._subs:
                self._empty_since = self._registry.clock()
                self._stop_now = self._stop_now or stop
            self._cond.notify_all()

    def _drop_session(self, session) -> None:
        """The session's newer Run replaced this queued one."""
        with self._cond:
            for sub_id in [i for i, (s, _) in self._subs.items() if s == session]:
                del self._subs[sub_id]
            if not self._subs:
                self._empty_since, self._stop_now = self._registry.clock(), True
            self._cond.notify_all()

    def _abandoned(self) -> bool:
        """Whether to give the run up: its last watcher left or pressed Stop (or a newer Run replaced
        it) and nobody came back within the grace period. A watcher whose script stopped without
        leaving (a closed tab, but also a locked phone or a starved tab) lapses after its lease and
        never ends the run, queued or computing: it may come back for its picture, and the run's
        work is bounded anyway."""
        reg = self._registry
        with self._cond:
            now = reg.clock()
            for sub_id in [i for i, (_, until) in self._subs.items() if now > until]:
                del self._subs[sub_id]
            if self._subs or self._empty_since is None:
                return False
            self._ending = self._stop_now or now - self._empty_since >= reg.grace_s
            return self._ending

    # ------------------------------------------------------------ the worker

    def _work(self) -> None:
        reg = self._registry
        try:
            admitted = reg.queue.acquire(self.ticket, on_wait=lambda status: self._publish(), poll=reg.poll_s,
                                         cancelled=self._abandoned)
        except Exception as exc:  # noqa: BLE001 - a queue failure must not kill the server
            log.exception("queue failure")
            admitted, self.message = False, f"The run could not be queued: {exc}"
        if not admitted:
            if self.ticket.state == "refused":
                held = reg._rss_mb()
                beside = f" beside the {held:.0f} MB the server holds now" if held is not None else ""
                self._finish("refused", f"This server has no room for this run: it needs about "
                                        f"{self.ticket.memory_mb:.0f} MB{beside}, and even with nothing else running "
                                        f"its budget of {reg.memory_mb:.0f} MB does not allow it. Choose a smaller "
                                        "size.")
            else:
                self._finish("withdrawn", self.message or "Nobody was waiting for this run any more.")
            return
        gen, state, message = None, "failed", ""
        started = reg.clock()
        try:
            gen = self._make_generator()
            for rec in gen:
                self._record(rec)
                if rec.status != "running":
                    state, message = rec.status, rec.message
                    break
                if self._abandoned():
                    state = "stopped"
                    message = f"Stopped at step {rec.step} when nobody was watching; the best image so far is kept."
                    break
                if self.work_gflop is not None and rec.gflop > self.work_gflop:
                    state = "capped"
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: this run needed more work than "
                               f"a run may do on this shared server (about {reg.max_run_s:g} s of it when free). "
                               "The best image so far is kept.")
                    break
                if reg.clock() - started >= WALL_BACKSTOP * reg.max_run_s:
                    state = "capped"
                    message = (f"Stopped at step {rec.step} of {rec.total_steps}: it ran for "
                               f"{WALL_BACKSTOP * reg.max_run_s:g} s, far past the {reg.max_run_s:g} s a run may "
                               "take on this shared server. The best image so far is kept.")
                    break
            else:
                state, message = "done", "Finished."
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the server down
            log.exception("run %s failed", self.key[:8])
            state, message = "failed", f"The run failed: {exc}"
        finally:
            if gen is not None:
                gen.close()
            reg.queue.release(self.ticket)
            self._finish(state, message)

    def _record(self, rec: Step) -> None:
        snapshot = preview = None
        if rec.image is not None:  # encoded once here, not once per watching student
            snapshot = (rec.step, _jpeg(rec.image, SNAPSHOT_SIDE))
            preview = (rec.step, _jpeg(rec.image, quality=90))
        with self._cond:
            self.state = "running"
            self._history.append(replace(rec, best_image=None, image=None))
            self._best = rec.best_image
            if snapshot is not None:
                self._snapshots.append(snapshot)
                self._preview = preview
            self.ticket.remaining_s = rec.eta
            self.version += 1
            self._cond.notify_all()

    def _publish(self) -> None:
        with self._cond:
            self.version += 1
            self._cond.notify_all()

    def _finish(self, state: str, message: str) -> None:
        with self._cond:
            self.state, self.message = state, message
            self.version += 1
            self.final = replace(self._view_locked(final=True), ended=self._registry.clock())
            # keep nothing but the final view: the generator's closure holds the images and the model
            self._make_generator = None
            self._best = self._preview = self._best_pil = None
            self._history, self._snapshots = [], []
            self._cond.notify_all()
        self._registry._finished(self)

    # ------------------------------------------------------------ views

    def view(self) -> RunView:
        with self._cond:
            return self.final if self.final is not None else self._view_locked(final=False)

    def _view_locked(self, final: bool) -> RunView:
        status = self._registry.queue.status(self.ticket) if self.state == "queued" else None
        best = self._best_image()
        step, preview = (0, None) if final or self._preview is None else self._preview
        latest = self._history[-1] if self._history else None  # already without its images
        return RunView(self.key, self.state, self.version, self.message, status, latest, tuple(self._history),
                       tuple(self._snapshots), preview, step, best,
                       len(self._subs))

    def _best_image(self) -> Image.Image | None:
        """One PIL conversion per best image, however many subscribers poll."""
        if self._best is None:
            return None
        if self._best_pil is None or self._best_pil[0] is not self._best:
            self._best_pil = (self._best, to_pil(self._best))
        return self._best_pil[1]

    def wait(self, after_version: int, timeout: float) -> RunView:
        with self._cond:
            if self.version <= after_version and self.final is None:
                self._cond.wait(timeout=timeout)
        return self.view()


def _jpeg(image: torch.Tensor, side: int | None = None, quality: int = 85) -> bytes:
    img = to_pil(image)
    if side is not None:
        img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


_SUB_IDS = itertools.count(1)


class _Result:
    """A finished run as the results cache keeps it: its final view alone."""

    def __init__(self, final: RunView):
        self.final = final
        self.key = final.key

    def view(self) -> RunView:
        return self.final

    def wait(self, after_version: int, timeout: float) -> RunView:
        return self.final


class Subscription:
    """A session watching one run. Poll :meth:`wait` (it keeps the subscription alive) and call
    :meth:`leave` when done watching; ``with`` does that when its block ends normally.

    A block that ends by an exception (the script was stopped or rerun: a dropped connection, a
    click) does not leave: the subscription lapses after its lease, and the run goes on for the
    browser that reconnects, the rerun that follows it again or the reload that finds its result
    (:meth:`RunRegistry.rejoin`); ``leave(stop=True)`` from the same session ends it at once.
    """

    def __init__(self, run: SharedRun | _Result, sub_id: int | None, joined: bool):
        self.run, self._id = run, sub_id
        self.joined = joined  # True when the run was already in flight or finished: nobody computed it anew

    @property
    def key(self) -> str:
        return self.run.key

    def view(self) -> RunView:
        if self._id is not None:
            self.run._touch(self._id)
        return self.run.view()

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        """The view once it is newer than ``after_version``, or after ``timeout`` seconds."""
        if self._id is not None:
            self.run._touch(self._id)
        return self.run.wait(after_version, timeout)

    def leave(self, stop: bool = False) -> None:
        """Stop watching. With ``stop`` and nobody else watching, the run stops at its next step
        (keeping its best image) instead of after the grace period; the session's other
        subscriptions to it, left by interrupted scripts, end too."""
        if self._id is not None:
            self.run._leave(self._id, stop)
            self._id = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.leave()


class RunRegistry:
    """Every shared run of the process: in flight, queued, and finished ones kept for a while.

    ``start_or_join`` is the only way in. Limits default to the server's (``NST_MAX_RUNS``,
    ``NST_MAX_RUN_S``, ``NST_MEMORY_MB``, ``NST_RESULTS_MB``).
    """

    def __init__(self, max_runs: int | None = None, max_run_s: float | None = None,
                 queue: FairQueue | None = None, results: ByteCache | None = None,
                 grace_s: float = 4.0, lease_s: float = 10.0, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 rss_mb: Callable[[], float | None] = memory.status_mb, memory_mb: float | None = None):
        self.clock = clock
        self.max_run_s = server_limit("NST_MAX_RUN_S") if max_run_s is None else float(max_run_s)
        self.memory_mb = server_limit("NST_MEMORY_MB") if memory_mb is None else float(memory_mb)
        self._rss_mb = rss_mb
        self.queue = queue or FairQueue(int(server_limit("NST_MAX_RUNS") if max_runs is None else max_runs),
                                        fits=self._fits, clock=clock)
        self.results = results or ByteCache(int(server_limit("NST_RESULTS_MB") * 2**20), max_entries=128,
                                            ttl_s=2 * 3600, clock=clock)
        # lease_s: a watcher that stops polling (its script stopped) counts as gone after this long.
        self.grace_s, self.lease_s, self.poll_s = grace_s, lease_s, poll_s
        self._lock = threading.Lock()
        self._live: dict[str, SharedRun] = {}

    # ------------------------------------------------------------ memory

    def _fits(self, need_mb: float, reserved_mb: float) -> bool:
        if memory.fits_budget(need_mb, reserved_mb, self.memory_mb, self._rss_mb):
            return True
        if reserved_mb == 0:  # nothing is computing: make room in the caches rather than wait forever
            before = self._rss_mb()
            relieve_caches()
            if memory.fits_budget(need_mb, reserved_mb, self.memory_mb, self._rss_mb):
                return True
            log.warning("no memory for a run of %.0f MB with nothing running: resident %.0f MB, %.0f MB after "
                        "shrinking the caches (%.0f MB left in them); budget %.0f MB", need_mb, before or 0,
                        self._rss_mb() or 0, sum(c.bytes for c in list(_CACHES)) / 2**20, self.memory_mb)
        return False

    def headroom_mb(self) -> float | None:
        """What the budget leaves for one run beside the server itself: the budget minus the resident
        size, with the estimates of the runs computing now given back (they will end)."""
        rss = self._rss_mb()
        if rss is None:
            return None
        with self._lock:
            computing = sum(r.ticket.memory_mb for r in self._live.values() if r.ticket.state == "running")
        return self.memory_mb - rss + computing

    # ------------------------------------------------------------ the way in

    def start_or_join(self, key: str, make_generator: Callable[[], Iterator[Step]], *, session,
                      estimate_s: float = 0.0, memory_mb: float = 0.0,
                      work_gflop: float | None = None) -> Subscription:
        """Join the run ``key`` if it is in flight, get it at once if it finished (done, diverged or
        capped) and is still cached, or queue a new one that ``make_generator()`` computes.

        ``session`` is any stable id of the student's session: a session keeps at most one queued
        run, so a new request replaces its queued one. Call :func:`check_run` first to refuse runs
        over the limits; ``estimate_s`` and ``memory_mb`` feed the queue's wait and memory budget;
        ``work_gflop`` caps the run's work (see :data:`WORK_MARGIN`).
        """
        with self._lock:
            run, sub_id = self._subscribe_live(key, session)
            joined = run is not None
            if joined:
                affected = self.queue.join(run.ticket, session)
            else:
                cached = self.results.get(key)
                if cached is not None and cached.state in SERVED:
                    return Subscription(_Result(cached), None, joined=True)
                ticket = Ticket(sessions={session}, estimate_s=float(estimate_s or 0.0), memory_mb=float(memory_mb))
                run = SharedRun(key, make_generator, ticket, self, work_gflop)
                self._live[key] = run
                sub_id = run._subscribe(session)
                affected = self.queue.enqueue(ticket)
                run.thread.start()
            self._drop_replaced(affected, session)
        return Subscription(run, sub_id, joined=joined)

    def peek(self, key: str) -> RunView | None:
        """The run in flight or its kept result, in any state, without starting anything: how a
        reloaded page finds the run it lost (or a stopped one) through the same identity."""
        with self._lock:
            run = self._live.get(key)
            cached = self.results.get(key) if run is None else None
        return run.view() if run is not None else cached

    def rejoin(self, key: str, session) -> Subscription | None:
        """Watch the run ``key`` again if it is in flight, or get its kept result in any state (a
        reload, or a student back with the same images and settings); None if there is neither."""
        with self._lock:
            run, sub_id = self._subscribe_live(key, session)
            if run is None:
                cached = self.results.get(key)
                return Subscription(_Result(cached), None, joined=True) if cached is not None else None
            self._drop_replaced(self.queue.join(run.ticket, session), session)
        return Subscription(run, sub_id, joined=True)

    def _subscribe_live(self, key: str, session) -> tuple[SharedRun | None, int | None]:
        run = self._live.get(key)
        sub_id = run._subscribe(session) if run is not None else None
        return (run, sub_id) if sub_id is not None else (None, None)

    def _drop_replaced(self, affected: list[Ticket], session) -> None:
        """The session left these queued runs for a newer request: forget it there too."""
        for other in list(self._live.values()):
            if other.ticket in affected:
                other._drop_session(session)

    def counts(self) -> tuple[int, int]:
        return self.queue.counts()

    def _finished(self, run: SharedRun) -> None:
        with self._lock:
            if self._live.get(run.key) is run:
                del self._live[run.key]
            if run.final is not None and run.final.best is not None:
                self.results.put(run.key, run.final)


def transfer_key(content, styles, config: TransferConfig, model) -> str:
    """The identity of ``transfer.run(content, styles, config, model)``: what a reloaded page
    passes to ``RunRegistry.peek`` or ``rejoin`` to find its run again."""
    return run_key(content, styles, config, network_identity(model))


def start_transfer(registry: RunRegistry, content, styles, config: TransferConfig, model, *, session,
                   estimate_s: float | None = None) -> Subscription:
    """The one call a run panel makes: join the identical run in flight, get its finished result,
    or queue a new ``transfer.run`` — after refusing (:class:`RunRefused`) one over the limits.

    ``content`` and ``styles`` are what the loop gets (PIL images or tensors); ``estimate_s`` is
    the caller's estimate of the run's seconds on this server.
    """
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    key = transfer_key(content, styles, config, model)
    known = registry.peek(key)
    need, work = 0.0, None
    if known is None or (known.finished and known.state not in SERVED):  # joining costs nothing
        shape = (content.height, content.width) if isinstance(content, Image.Image) else tuple(content.shape[-2:])
        need = check_run(config, shape, estimate_s, registry.max_run_s, registry.headroom_mb(),
                         model.compute_precision(config.precision))
        if estimate_s:
            work = (WORK_MARGIN * run_gflop(config, shape, model.arch, len(styles))
                    * max(registry.max_run_s / estimate_s, 1.0))
    return registry.start_or_join(key, lambda: run(content, styles, config, model), session=session,
                                  estimate_s=estimate_s or 0.0, memory_mb=need, work_gflop=work)
