"""The registry actor: the cluster's one registry of runs, its queue, their watchers and the
finished results (see the package's docstring)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import os
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field

import ray

from ..states import FINISHED, SERVED, QueueStatus, RunState
from .common import NAMESPACE, RESULTS_COUNT, WORKER_LOST, WORKER_PREFIX, Tick, Update, own_rss_mb
from .worker import Worker

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Run:
    run_id: str
    key: str
    request: bytes | None  # the RunRequest, pickled by the app process: read only by its worker
    estimate_s: float
    work_gflop: float | None
    max_run_s: float
    state: RunState = RunState.QUEUED
    version: int = 0
    message: str = ""
    subs: dict = field(default_factory=dict)  # sub id -> [session, watched until]
    empty_since: float | None = None
    stop_now: bool = False
    history: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    preview: tuple[int, bytes] | None = None
    best: bytes | None = None
    best_version: int = -1
    worker: int | None = None
    admitted_at: float | None = None
    remaining_s: float | None = None
    ended_wall: float | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def step(self) -> int:
        return self.history[-1].step if self.history else 0

    def nbytes(self) -> int:
        preview = len(self.preview[1]) if self.preview else 0
        return len(self.best or b"") + sum(len(s) for _, s in self.snapshots) + 600 * len(self.history) + preview + 1024


class Registry:
    """The cluster's one registry of runs (see the module's docstring). Asynchronous: every method
    runs on one event loop, so none needs a lock; long polls wait on each run's event."""

    def __init__(self, settings: dict):
        self.settings = dict(settings)
        self.max_run_s = float(settings["max_run_s"])
        self.memory_mb = float(settings.get("memory_mb", 0.0)) or None  # a worker process's budget
        self.grace_s = float(settings.get("grace_s", 4.0))
        self.lease_s = float(settings.get("lease_s", 10.0))
        self.results_bytes = int(settings["results_mb"] * 2**20)
        self.results_count = int(settings.get("results_count", RESULTS_COUNT))
        self.workers: list = []
        self.ready: list[bool] = []
        self.rss: list[float] = []  # each worker's resident MB when it last went idle
        self.busy: list[str | None] = []  # the run id each worker computes
        self.gpus = float(settings.get("gpus", 0))
        n, threads = int(settings["workers"]), int(settings.get("threads", 1))
        for i in range(n):
            options = dict(name=f"{settings.get('worker_prefix', WORKER_PREFIX)}_{i}", namespace=NAMESPACE,
                           lifetime="detached", get_if_exists=True, max_restarts=-1, max_task_retries=0,
                           max_concurrency=4, num_cpus=threads)
            if self.gpus:
                options["num_gpus"] = 1.0 / int(settings.get("workers_per_gpu", 1))
            self.workers.append(ray.remote(Worker).options(**options).remote(threads))
            self.ready.append(False)
            self.busy.append(None)
            self.rss.append(0.0)
        self.live: dict[str, _Run] = {}  # key -> the run in flight for it
        self.runs: dict[str, _Run] = {}  # run id -> every run in flight
        self.queue: list[_Run] = []
        self.results: OrderedDict[str, _Run] = OrderedDict()  # key -> a finished run, bounded
        self.ended: OrderedDict[str, _Run] = OrderedDict()  # run id -> a finished run, for late polls
        self.results_size = 0
        self.counters = {"started": 0, "joined": 0, "served": 0, "finished": 0, "failed_workers": 0}
        self._sub_ids = itertools.count(1)
        self._tasks: set = set()
        self._started = False

    # ------------------------------------------------------------ housekeeping

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _ensure_started(self) -> None:
        if self._started:
            return
        self._started = True
        for i in range(len(self.workers)):
            self._spawn(self._await_ready(i))
        self._spawn(self._sweep())

    async def _await_ready(self, i: int) -> None:
        tries = 0
        while True:
            try:
                await self.workers[i].pid.remote()
                break
            except Exception as exc:  # noqa: BLE001 - restarting, not placed yet, or broken
                tries += 1
                if tries % 60 == 1:
                    log.warning("worker %d is not ready (%s): %s", i, type(exc).__name__, str(exc)[:500])
                await asyncio.sleep(0.5)
        self.ready[i] = True
        self._dispatch()
        await self._measure(i)

    async def _sweep(self) -> None:
        """Lapse the leases of watchers that stopped polling, and give up runs nobody watches."""
        while True:
            await asyncio.sleep(0.25)
            try:
                for run in list(self.runs.values()):
                    if self._abandoned(run):
                        if run.state == RunState.QUEUED:
                            self._withdraw(run, "Nobody was waiting for this run any more.")
                        elif run.state == RunState.RUNNING:
                            why = "" if run.stop_now else " when nobody was watching"
                            self._stop(run, f"Stopped at step {run.step}{why}; the best image so far is kept.")
            except Exception:  # noqa: BLE001 - the sweep must go on
                log.exception("sweep failed")

    def _abandoned(self, run: _Run) -> bool:
        now = time.monotonic()
        for sub_id in [i for i, (_, until) in run.subs.items() if now > until]:
            del run.subs[sub_id]
        if run.subs:
            return False
        # A watcher said Stop while others watched, and those have lapsed since (a reloaded page's
        # old tab): the run ends rather than run on for nobody.
        return run.stop_now or (run.empty_since is not None and now - run.empty_since >= self.grace_s)

    def _changed(self, run: _Run) -> None:
        run.version += 1
        run.changed.set()
        run.changed = asyncio.Event()

    # ------------------------------------------------------------ the way in

    async def start(self, key: str, session: str, request: bytes | None = None, estimate_s: float = 0.0,
                    work_gflop: float | None = None, max_run_s: float = math.inf) -> dict:
        """Join the run ``key`` in flight or serve its finished result; else, given the admitted
        ``request`` (pickled: the registry passes it on unread, so it never loads PyTorch) and its
        estimated seconds, queue it, or without one answer ``{"need": True}`` (the app process then
        admits it and calls again: a request over a limit never reaches the cluster)."""
        self._ensure_started()
        run = self.live.get(key)
        sub_id = self._subscribe(run, session) if run is not None else None
        if sub_id is not None:
            self.counters["joined"] += 1
            self._take_session(session, keep=run)
            return {"run_id": run.run_id, "sub_id": sub_id, "joined": True, "update": self._update(run)}
        cached = self.results.get(key)
        if cached is not None and cached.state in SERVED:
            self.results.move_to_end(key)
            self.counters["served"] += 1
            return {"run_id": cached.run_id, "sub_id": None, "joined": True, "update": self._update(cached)}
        if request is None:
            return {"need": True}
        run = _Run(uuid.uuid4().hex, key, request, float(estimate_s or 0.0), work_gflop,
                   min(float(max_run_s), self.max_run_s))
        self.live[key] = self.runs[run.run_id] = run
        sub_id = self._subscribe(run, session)
        self._take_session(session, keep=run)
        self.queue.append(run)
        self.counters["started"] += 1
        self._dispatch()
        return {"run_id": run.run_id, "sub_id": sub_id, "joined": False, "update": self._update(run)}

    async def rejoin(self, key: str, session: str) -> dict | None:
        self._ensure_started()
        run = self.live.get(key)
        sub_id = self._subscribe(run, session) if run is not None else None
        if sub_id is not None:
            self._take_session(session, keep=run)
            return {"run_id": run.run_id, "sub_id": sub_id, "joined": True, "update": self._update(run)}
        cached = self.results.get(key)
        if cached is None:
            return None
        return {"run_id": cached.run_id, "sub_id": None, "joined": True, "update": self._update(cached)}

    async def peek(self, key: str) -> Update | None:
        run = self.live.get(key) or self.results.get(key)
        return None if run is None else self._update(run)

    async def poll(self, run_id: str, version: int, history: int, snapshots: int, best_version: int,
                   alive: list, timeout: float) -> Update | None:
        """What changed in the run since ``version`` (the mirror already has ``history`` records,
        ``snapshots`` thumbnails and the best image of ``best_version``), as soon as something did
        or after ``timeout`` seconds. Renews the leases of the watchers in ``alive``."""
        self._ensure_started()
        run = self.runs.get(run_id) or self.ended.get(run_id)
        if run is None:
            return None
        self._touch(run, alive)
        if run.version <= version and run.state not in FINISHED:
            try:
                await asyncio.wait_for(run.changed.wait(), timeout)
            except asyncio.TimeoutError:
                pass
        return self._update(run, history, snapshots, best_version)

    async def leave(self, run_id: str, sub_id: int, stop: bool) -> None:
        run = self.runs.get(run_id)
        if run is None:
            return
        session, _ = run.subs.pop(sub_id, (None, 0.0))
        if stop:  # the student means it: their subscriptions of interrupted scripts go too
            for other in [i for i, (s, _) in run.subs.items() if s == session]:
                del run.subs[other]
        run.stop_now = run.stop_now or stop
        if not run.subs:
            run.empty_since = time.monotonic()
            if run.stop_now:  # at once rather than at the next sweep
                if run.state == RunState.QUEUED:
                    self._withdraw(run, "Stopped before it started.")
                elif run.state == RunState.RUNNING:
                    self._stop(run, f"Stopped at step {run.step}; the best image so far is kept.")
        self._changed(run)

    async def info(self) -> dict:
        self._ensure_started()
        # Host memory only: a GPU worker's runs live in GPU memory, which this does not budget.
        headroom = None if self.memory_mb is None or self.gpus else self.memory_mb - max(self.rss, default=0.0)
        return {"workers": len(self.workers), "ready": sum(self.ready), "gpus": self.gpus, "headroom_mb": headroom,
                "running": sum(1 for b in self.busy if b is not None), "queued": len(self.queue),
                "results": len(self.results), "results_bytes": self.results_size,
                "max_run_s": self.max_run_s, "counters": dict(self.counters), "settings": self.settings,
                "registry": {"pid": os.getpid(), "rss_mb": round(own_rss_mb(), 1)}}

    async def reset(self, message: str = "The run service was reset; press Run again.", forget: bool = True) -> int:
        """Withdraw every queued run and stop every computing one (keeping their best images); with
        ``forget``, drop the kept results and zero the counters too. How many runs it ended. Before
        the registry is killed (an operator's upgrade: docs/ray.md) so no worker goes on computing
        for nobody, and between tests and benchmark rounds."""
        ended = 0
        for run in list(self.runs.values()):
            ended += 1
            if run.state == RunState.QUEUED:
                self._withdraw(run, message)
            elif run.state == RunState.RUNNING:
                self._stop(run, message)
        deadline = time.monotonic() + 30
        while any(b is not None for b in self.busy) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if forget:
            self.results.clear()
            self.ended.clear()
            self.results_size = 0
            self.counters = dict.fromkeys(self.counters, 0)
        return ended

    async def worker_pids(self) -> list:
        """Each worker's process id, and the run id it computes (for tests and operators)."""
        pids = []
        for i, worker in enumerate(self.workers):
            try:
                pids.append((await worker.pid.remote(), self.busy[i]))
            except Exception:  # noqa: BLE001 - restarting
                pids.append((None, self.busy[i]))
        return pids

    async def run_worker(self, run_id: str) -> int | None:
        run = self.runs.get(run_id)
        return None if run is None else run.worker

    # ------------------------------------------------------------ watchers

    def _subscribe(self, run: _Run, session: str) -> int | None:
        """A new watcher's id, or None when the run is stopping or over (the caller starts anew)."""
        if run.state not in (RunState.QUEUED, RunState.RUNNING):
            return None
        sub_id = next(self._sub_ids)
        run.subs[sub_id] = [session, time.monotonic() + self.lease_s]
        run.empty_since, run.stop_now = None, False
        self._changed(run)
        return sub_id

    def _touch(self, run: _Run, alive) -> None:
        until = time.monotonic() + self.lease_s
        for sub_id in alive:
            if sub_id in run.subs:
                run.subs[sub_id][1] = until

    def _take_session(self, session: str, keep: _Run) -> None:
        """A session keeps at most one waiting run: it leaves every other queued one, and those
        left with no watcher are withdrawn."""
        for other in list(self.queue):
            if other is keep:
                continue
            mine = [i for i, (s, _) in other.subs.items() if s == session]
            if not mine:
                continue
            for sub_id in mine:
                del other.subs[sub_id]
            if not other.subs:
                self._withdraw(other, "A newer run from the same session replaced this one in the queue.")
            else:
                self._changed(other)

    # ------------------------------------------------------------ the queue

    def _queue_status(self, run: _Run) -> QueueStatus | None:
        if run.state != RunState.QUEUED or run not in self.queue:
            return None
        before = self.queue[: self.queue.index(run)]
        now = time.monotonic()
        running = [self.runs[r] for r in self.busy if r is not None and r in self.runs]
        remaining = sum(max(r.remaining_s if r.remaining_s is not None
                            else r.estimate_s - (now - (r.admitted_at or now)), 0.0) for r in running)
        slots = max(1, sum(self.ready) or len(self.workers))
        return QueueStatus(len(running) + len(before), (remaining + sum(r.estimate_s for r in before)) / slots)

    def _dispatch(self) -> None:
        while self.queue:
            free = [i for i in range(len(self.workers)) if self.ready[i] and self.busy[i] is None]
            if not free:
                break
            run = self.queue.pop(0)
            i = free[0]
            self.busy[i], run.worker = run.run_id, i
            run.state, run.admitted_at = RunState.RUNNING, time.monotonic()
            self._changed(run)
            for other in self.queue:  # one place further up the line
                self._changed(other)
            self._spawn(self._drive(run, i))

    def _withdraw(self, run: _Run, message: str) -> None:
        if run in self.queue:
            self.queue.remove(run)
            for other in self.queue:
                self._changed(other)
        self._finish(run, RunState.WITHDRAWN, message)

    def _stop(self, run: _Run, message: str) -> None:
        run.state = RunState.STOPPING
        self._changed(run)
        worker = self.workers[run.worker]
        worker.stop.remote(run.run_id, message)

    async def _drive(self, run: _Run, i: int) -> None:
        """Follow the run's streaming call on worker ``i`` to its end."""
        state, message = RunState.FAILED, ""
        try:
            gen = self.workers[i].run.options(num_returns="streaming").remote(
                run.run_id, run.request, run.work_gflop, run.max_run_s)
            async for ref in gen:
                tick: Tick = await ref
                self._apply(run, tick)
                if tick.state != "running":
                    state, message = RunState(tick.state), tick.message
                    break
            else:
                message = "The worker ended the run without a result."
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError, ray.exceptions.ObjectLostError,
                ray.exceptions.ActorUnavailableError) as exc:
            self.counters["failed_workers"] += 1
            why = "its process ended" if not isinstance(exc, ray.exceptions.ObjectLostError) else "its result was lost"
            log.warning("worker %d died during run %s: %s", i, run.run_id[:8], exc)
            state, message = RunState.FAILED, WORKER_LOST.format(why=why, step=run.step)
            self.ready[i] = False
            self._spawn(self._await_ready(i))
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the registry down
            log.exception("run %s failed", run.run_id[:8])
            state, message = RunState.FAILED, f"The run failed: {exc}"
        finally:
            if self.busy[i] == run.run_id:
                self.busy[i] = None
            self._finish(run, state, message)
            self._dispatch()
            if self.ready[i]:
                self._spawn(self._measure(i))

    async def _measure(self, i: int) -> None:
        try:
            self.rss[i] = await self.workers[i].rss_mb.remote()
        except Exception:  # noqa: BLE001 - a dying worker is noticed by its run
            pass

    def _apply(self, run: _Run, tick: Tick) -> None:
        if tick.steps:
            run.history.extend(tick.steps)
            run.remaining_s = tick.steps[-1].eta
        run.snapshots.extend(tick.snapshots)
        if tick.preview is not None:
            run.preview = tick.preview
        if tick.best is not None:
            run.best, run.best_version = tick.best, run.version + 1
        self._changed(run)

    def _finish(self, run: _Run, state: RunState, message: str) -> None:
        if run.state in FINISHED:
            return
        run.state, run.message, run.ended_wall = state, message, time.time()
        run.request, run.preview = None, None
        run.subs.clear()
        self.counters["finished"] += 1
        if self.live.get(run.key) is run:
            del self.live[run.key]
        self.runs.pop(run.run_id, None)
        self.ended[run.run_id] = run
        while len(self.ended) > 4 * self.results_count:
            self.ended.popitem(last=False)
        if run.best is not None:
            self._keep(run)
        self._changed(run)

    def _keep(self, run: _Run) -> None:
        size = run.nbytes()
        if size > self.results_bytes:
            return
        old = self.results.pop(run.key, None)
        if old is not None:
            self.results_size -= old.nbytes()
        self.results[run.key] = run
        self.results_size += size
        while self.results_size > self.results_bytes or len(self.results) > self.results_count:
            _, dropped = self.results.popitem(last=False)
            self.results_size -= dropped.nbytes()

    # ------------------------------------------------------------ what a mirror gets

    def _update(self, run: _Run, history: int = 0, snapshots: int = 0, best_version: int = -1) -> Update:
        history, snapshots = min(history, len(run.history)), min(snapshots, len(run.snapshots))
        return Update(run.run_id, run.key, run.state, run.version, run.message, self._queue_status(run),
                      history, tuple(run.history[history:]), snapshots, tuple(run.snapshots[snapshots:]),
                      run.preview, run.best_version, run.best if run.best_version > best_version else None,
                      len(run.subs), run.ended_wall)

