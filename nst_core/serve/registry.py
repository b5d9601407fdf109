"""Every shared run of the process: in flight, queued, and finished ones kept for a while.

A class presses Run at the same moment, mostly on the same bundled pair. A student who asks for a
run already in flight joins it and sees the same live progress, and one who asks for a finished run
gets it at once from a cache bounded in bytes, in entries and in time.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator

from PIL import Image

from ..transfer import Step, TransferConfig, run
from . import memory
from .admission import check_run
from .caches import ByteCache, cached_bytes, relieve_caches
from .estimate import run_gflop
from .identity import network_identity, run_key
from .lifecycle import RunView, SharedRun
from .limits import server_limit
from .queue import FairQueue
from .states import JOINABLE, SERVED, RunState

log = logging.getLogger(__name__)
# A run's ceiling (NST_MAX_RUN_S) caps its work, not its wall time: a class pressing Run at once
# slows every run several-fold, and a wall-time cap stopped the class's one shared picture at step
# 9 of 70 after 120 s. A run may do WORK_MARGIN times the network work (Step.gflop) its estimate
# fits into the ceiling, the margin for the estimate's own error; wall time stops it only past
# lifecycle.WALL_BACKSTOP times the ceiling, in case it is stuck.
WORK_MARGIN = 1.5


class RunRegistry:
    """Every shared run of the process: in flight, queued, and finished ones kept for a while.

    ``start_or_join`` is the only way in. Limits default to the server's (``NST_MAX_RUNS``,
    ``NST_MAX_RUN_S``, ``NST_MEMORY_MB``, ``NST_RESULTS_MB``).
    """

    def __init__(self, max_runs: int | None = None, max_run_s: float | None = None,
                 queue: FairQueue | None = None, results: ByteCache | None = None,
                 grace_s: float = 4.0, lease_s: float = 10.0, poll_s: float = 0.5,
                 clock: Callable[[], float] = time.monotonic,
                 rss_mb: Callable[[], float | None] = memory.resident_mb, memory_mb: float | None = None):
        self.clock = clock
        self.max_run_s = server_limit("NST_MAX_RUN_S") if max_run_s is None else float(max_run_s)
        self.memory_mb = server_limit("NST_MEMORY_MB") if memory_mb is None else float(memory_mb)
        self.rss_mb = rss_mb
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
        if memory.fits_budget(need_mb, reserved_mb, self.memory_mb, self.rss_mb):
            return True
        if reserved_mb == 0:  # nothing is computing: make room in the caches rather than wait forever
            before = self.rss_mb()
            relieve_caches()
            if memory.fits_budget(need_mb, reserved_mb, self.memory_mb, self.rss_mb):
                return True
            log.warning("no memory for a run of %.0f MB with nothing running: resident %.0f MB, %.0f MB after "
                        "shrinking the caches (%.0f MB left in them); budget %.0f MB", need_mb, before or 0,
                        self.rss_mb() or 0, cached_bytes() / 2**20, self.memory_mb)
        return False

    def headroom_mb(self) -> float | None:
        """What the budget leaves for one run beside the server itself: the budget minus the resident
        size, with the estimates of the runs computing now given back (they will end)."""
        rss = self.rss_mb()
        if rss is None:
            return None
        with self._lock:
            computing = sum(r.memory_mb for r in self._live.values()
                            if r.state in (RunState.RUNNING, RunState.STOPPING))
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
            joined = self._join_live(key, session)
            if joined is not None:
                return joined
            cached = self._kept(key)
            if cached is not None and cached.state in SERVED:
                return Subscription(key, None, None, joined=True, final=cached)
            run = SharedRun(key, make_generator, self, session=session, estimate_s=estimate_s,
                            memory_mb=memory_mb, work_gflop=work_gflop)
            self._live[key] = run
            sub_id = run.subscribe(session)
            self.queue.enqueue(run)
            run.thread.start()
        return Subscription(key, run, sub_id, joined=False)

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
            joined = self._join_live(key, session)
            if joined is not None:
                return joined
            cached = self._kept(key)
        return Subscription(key, None, None, joined=True, final=cached) if cached is not None else None

    def _kept(self, key: str) -> RunView | None:
        """The final view of run ``key``: kept in the results, or a run that has just ended and is
        not yet handed to them (it ends under its own lock, then takes the registry's)."""
        run = self._live.get(key)
        return run.final if run is not None and run.final is not None else self.results.get(key)

    def _join_live(self, key: str, session) -> Subscription | None:
        """Subscribe ``session`` to the live run ``key``, unless there is none or it is stopping. Joining
        puts the session in the run's queue entry, which withdraws its other queued run."""
        run = self._live.get(key)
        sub_id = run.subscribe(session) if run is not None else None
        if sub_id is None:
            return None
        self.queue.join(run, session)
        return Subscription(key, run, sub_id, joined=True)

    def counts(self) -> tuple[int, int]:
        return self.queue.counts()

    def finished(self, run: SharedRun) -> None:
        """``run`` is over: forget it, and keep its final view if it has a picture."""
        with self._lock:
            if self._live.get(run.key) is run:
                del self._live[run.key]
            if run.final is not None and run.final.best is not None:
                self.results.put(run.key, run.final)


class Subscription:
    """A session watching one run, live or finished (the local backend's ``RunHandle``). Poll
    :meth:`wait` (it keeps the subscription alive) and call :meth:`leave` when done watching;
    ``with`` does that when its block ends normally.

    A block that ends by an exception (the script was stopped or rerun: a dropped connection, a
    click) does not leave: the subscription lapses after its lease, and the run goes on for the
    browser that reconnects, the rerun that follows it again or the reload that finds its result
    (:meth:`RunRegistry.rejoin`); ``leave(stop=True)`` from the same session ends it at once.
    """

    def __init__(self, key: str, run: SharedRun | None, sub_id: int | None, joined: bool,
                 final: RunView | None = None):
        self.key, self.run, self._id, self._final = key, run, sub_id, final
        self.joined = joined  # True when the run was already in flight or finished: nobody computed it anew

    def view(self) -> RunView:
        if self.run is None:
            return self._final
        if self._id is not None:
            self.run.touch(self._id)
        return self.run.view()

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        """The view once it is newer than ``after_version``, or after ``timeout`` seconds."""
        if self.run is None:
            return self._final
        if self._id is not None:
            self.run.touch(self._id)
        return self.run.wait(after_version, timeout)

    def leave(self, stop: bool = False) -> None:
        """Stop watching. With ``stop`` and nobody else watching, the run stops at its next step
        (keeping its best image) instead of after the grace period; the session's other
        subscriptions to it, left by interrupted scripts, end too."""
        if self.run is not None and self._id is not None:
            self.run.leave(self._id, stop)
            self._id = None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.leave()


def transfer_key(content, styles, config: TransferConfig, model) -> str:
    """The identity of ``transfer.run(content, styles, config, model)``: what a reloaded page
    passes to ``RunRegistry.peek`` or ``rejoin`` to find its run again."""
    return run_key(content, styles, config, network_identity(model))


def start_transfer(registry: RunRegistry, content, styles, config: TransferConfig, model, *, session,
                   estimate_s: float | None = None) -> Subscription:
    """Join the identical run in flight, get its finished result, or queue a new ``transfer.run``,
    after refusing (:class:`~nst_core.serve.admission.RunRefused`) one over the limits.

    ``content`` and ``styles`` are what the loop gets (PIL images or tensors); ``estimate_s`` is
    the caller's estimate of the run's seconds on this server.
    """
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    key = transfer_key(content, styles, config, model)
    known = registry.peek(key)
    need, work = 0.0, None
    if known is None or known.state not in JOINABLE | SERVED:  # joining or serving costs nothing
        shape = (content.height, content.width) if isinstance(content, Image.Image) else tuple(content.shape[-2:])
        need = check_run(config, shape, estimate_s, registry.max_run_s, registry.headroom_mb(),
                         model.compute_precision(config.precision), emulated=model.emulates(config.precision))
        if estimate_s:
            work = (WORK_MARGIN * run_gflop(config, shape, model.arch, len(styles))
                    * max(registry.max_run_s / estimate_s, 1.0))
    return registry.start_or_join(key, lambda: run(content, styles, config, model), session=session,
                                  estimate_s=estimate_s or 0.0, memory_mb=need, work_gflop=work)
