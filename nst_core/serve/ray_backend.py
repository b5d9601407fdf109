"""Runs on a Ray cluster: the app process is a Ray driver, the runs compute in worker processes.

Chosen by ``NST_RAY_ADDRESS`` (:func:`nst_core.serve.backend.backend_from_env`); nothing else in
the app imports Ray. Operator's guide: docs/ray.md.

Three kinds of process take part:

- **The app processes** (drivers, ``ray.init(address=...)`` on a node of the cluster). Each
  refuses bad images and runs over the ceiling itself (:meth:`RayBackend.start`), before anything
  reaches the cluster, and keeps one *mirror* per run it watches: one thread that long-polls the
  registry for what changed and fans it out to every session of that process watching the run. So
  the registry hears from each app process once per run, never once per student.
- **The registry** (:class:`Registry`): one named, detached, asynchronous actor
  (``nst_registry`` in namespace ``nst``) shared by every app process attached to the cluster. It
  maps run keys to runs in flight, so identical runs are computed once cluster-wide; it keeps the
  queue (a session keeps at most one waiting run), the watchers of each run and their leases, and
  the finished results, bounded in bytes and in count, so any app process can serve them.
- **The workers** (:class:`Worker`): one actor per worker process, each holding the networks it
  has used (one copy per :class:`~nst_core.serve.backend.NetworkSpec`), on its GPU where its node
  has one. A run is one streaming call (``num_returns="streaming"``): the worker drives
  ``nst_core.transfer.run`` and yields small records of the steps it computed, at step 1 and then
  at most ten times a second, its images already encoded (JPEG thumbnails and previews, the best
  image as PNG at most about once a second). Stop is a flag the worker's loop reads after every
  step.

A worker process that dies mid-run fails that run alone: its watchers keep the best image the
registry last received and read that the worker stopped; Ray restarts the worker, and the other
runs go on.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace

import ray
from PIL import Image

from ..images import MAX_ASPECT, MAX_PIXELS, MIN_SIDE, ImageError
from ..transfer import Step
from .admission import RunRefused, check_run
from .backend import NetworkSpec, RunRequest
from .estimate import run_gflop
from .lifecycle import FINISHED, SERVED, SNAPSHOT_SIDE, WALL_BACKSTOP, QueueStatus, RunState, RunView
from .limits import server_limit
from .registry import WORK_MARGIN

log = logging.getLogger(__name__)

NAMESPACE = "nst"
REGISTRY_NAME = "nst_registry"
WORKER_PREFIX = "nst_worker"  # worker i is the named actor f"{WORKER_PREFIX}_{i}"
# How often, at most, a worker sends the best image so far while it keeps improving: what a
# student keeps if the worker dies is at most this old (plus one step).
BEST_EVERY_S = 1.0
# A worker sends what its run did at most this often (and at step 1 and at the end): a small run's
# steps take milliseconds, and one message each cost the registry a tenth of a core at 64 px.
TICK_S = 0.1
MODELS_PER_WORKER = 2  # networks a worker keeps loaded, least recently used dropped first
RESULTS_COUNT = 128  # finished runs the registry keeps, besides their bytes (NST_RESULTS_MB)
MIRRORS_KEPT = 256  # runs an app process remembers following
POLL_S = 1.0  # the longest a mirror's long poll waits for a change before it renews the leases
WORKER_LOST = ("The worker computing this run stopped ({why}) at step {step}. The best image so far is kept; "
               "press Run again to compute it anew.")


def ray_settings(environ=os.environ) -> dict:
    """The Ray backend's settings from the environment (docs/ray.md says what each does)."""
    def number(name, cast, default):
        try:
            value = cast(environ.get(name, default))
        except (TypeError, ValueError):
            return default
        return value if value > 0 else default
    return {
        "workers": number("NST_RAY_WORKERS", int, None),  # None: one per GPU, else one per NST_RAY_THREADS CPUs
        "threads": number("NST_RAY_THREADS", int, 1),  # CPUs (torch threads) each worker takes
        "workers_per_gpu": number("NST_RAY_WORKERS_PER_GPU", int, 1),
        "max_run_s": server_limit("NST_MAX_RUN_S"),
        "results_mb": server_limit("NST_RESULTS_MB"),
        "memory_mb": server_limit("NST_MEMORY_MB"),  # each worker process's budget: a run over it is refused
    }


def check_address(address: str) -> str:
    address = (address or "").strip()
    if not address:
        raise ValueError("NST_RAY_ADDRESS is empty: set it to 'auto' on a node of the cluster, or to the "
                         "head's host:port.")
    if address.startswith("ray://"):
        raise ValueError(f"NST_RAY_ADDRESS={address}: Ray Client (ray://) is not supported; Ray no longer "
                         "maintains it. Run the app on a node of the cluster (join it with `ray start "
                         "--address=HEAD:6379`) and set NST_RAY_ADDRESS=auto. See docs/ray.md.")
    return address


# ---------------------------------------------------------------- what travels

@dataclass(frozen=True)
class Tick:
    """The steps a worker computed since its last send: the loop's records without tensors, the
    images encoded. A worker sends at most one every ``TICK_S`` while it runs, and one at the end."""

    steps: tuple = ()  # Step records, without best_image and image
    snapshots: tuple = ()  # (step, JPEG thumbnail of SNAPSHOT_SIDE) at the loop's snapshot steps
    preview: tuple[int, bytes] | None = None  # (step, JPEG at full size) of the newest snapshot
    best: bytes | None = None  # PNG of the best image so far, when it changed (at most every BEST_EVERY_S)
    state: str = "running"  # running, or the run's final state
    message: str = ""


@dataclass(frozen=True)
class Update:
    """What changed in a run since a mirror's last poll (all of it for a first poll)."""

    run_id: str
    key: str
    state: RunState
    version: int
    message: str
    queue: QueueStatus | None
    history_from: int  # index in the run's history of history[0]
    history: tuple
    snapshots_from: int
    snapshots: tuple
    preview: tuple[int, bytes] | None
    best_version: int
    best: bytes | None  # PNG, only when newer than the mirror's
    subscribers: int
    ended_wall: float | None  # time.time() on the registry's node when the run ended


def _encode(image, fmt: str, side: int | None = None, quality: int = 85) -> bytes:
    from ..images import to_pil
    img = to_pil(image)
    if side is not None:
        img.thumbnail((side, side))
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


# ---------------------------------------------------------------- the worker

class Worker:
    """One worker process: it keeps its networks loaded and computes one run per streaming call.

    Threaded (``max_concurrency``), so :meth:`stop` is heard while :meth:`run` computes."""

    def __init__(self, threads: int = 1):
        import torch
        self.threads = threads
        torch.set_num_threads(max(1, threads))
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self._models: OrderedDict = OrderedDict()
        self._models_lock = threading.Lock()
        self._stops: dict[str, str] = {}
        self.runs = 0

    def pid(self) -> int:
        return os.getpid()

    def rss_mb(self) -> float:
        """This worker process's resident size in MB (0 where the system will not say)."""
        try:
            import psutil
            return psutil.Process().memory_info().rss / 2**20
        except Exception:  # noqa: BLE001 - psutil missing or refused: no memory figure, no refusal
            return 0.0

    def info(self) -> dict:
        return {"pid": os.getpid(), "device": self.device, "threads": self.threads, "runs": self.runs,
                "models": [s.arch + "/" + s.weights for s in self._models]}

    def stop(self, run_id: str, message: str) -> None:
        self._stops[run_id] = message

    def _model(self, spec: NetworkSpec):
        with self._models_lock:
            if spec in self._models:
                self._models.move_to_end(spec)
                return self._models[spec]
            model = spec.load(self.device)
            self._models[spec] = model
            while len(self._models) > MODELS_PER_WORKER:
                self._models.popitem(last=False)
            return model

    def run(self, run_id: str, request: RunRequest, work_gflop: float | None, max_run_s: float):
        """Compute one run, yielding a :class:`Tick` at step 1, then at most every ``TICK_S``; the
        last one carries the final state. Stop, the work cap and the wall backstop are checked
        after every step."""
        from ..transfer import run as transfer_run
        self.runs += 1
        gen = best_tensor = best_sent = latest_image = None
        step, best_at, sent_at = 0, 0.0, 0.0
        steps, snapshots = [], []

        def tick(final: bool = False, **ending) -> Tick:
            nonlocal best_sent, best_at, latest_image, steps, snapshots
            best = None
            if best_tensor is not None and best_tensor is not best_sent and (
                    final or snapshots or time.monotonic() - best_at >= BEST_EVERY_S):
                best, best_sent, best_at = _encode(best_tensor, "PNG"), best_tensor, time.monotonic()
            preview = None if latest_image is None else (latest_image[0], _encode(latest_image[1], "JPEG", quality=90))
            out = Tick(tuple(steps), tuple(snapshots), preview, best, **ending)
            steps, snapshots, latest_image = [], [], None
            return out

        try:
            model = self._model(request.network)
            gen = transfer_run(request.content, list(request.styles), request.config, model)
            started = time.monotonic()
            for rec in gen:
                step, best_tensor = rec.step, rec.best_image
                steps.append(replace(rec, best_image=None, image=None))
                if rec.image is not None:
                    snapshots.append((rec.step, _encode(rec.image, "JPEG", SNAPSHOT_SIDE)))
                    latest_image = (rec.step, rec.image)
                now = time.monotonic()
                if rec.status != "running":
                    yield tick(True, state=rec.status, message=rec.message)
                    return
                stop = self._stops.pop(run_id, None)
                if stop is not None:
                    yield tick(True, state="stopped", message=stop)
                    return
                if work_gflop is not None and rec.gflop > work_gflop:
                    yield tick(True, state="capped", message=(
                        f"Stopped at step {rec.step} of {rec.total_steps}: this run needed more work than a run may do "
                        f"on this shared server (about {max_run_s:g} s of it when free). The best image so far is kept."))
                    return
                if now - started >= WALL_BACKSTOP * max_run_s:
                    yield tick(True, state="capped", message=(
                        f"Stopped at step {rec.step} of {rec.total_steps}: it ran for {WALL_BACKSTOP * max_run_s:g} s, "
                        f"far past the {max_run_s:g} s a run may take on this shared server. The best image so far "
                        "is kept."))
                    return
                if rec.step == 1 or now - sent_at >= TICK_S:
                    sent_at = now
                    yield tick()
            yield tick(True, state="done", message="Finished.")  # a loop of no steps
        except Exception as exc:  # noqa: BLE001 - one bad run must not take the worker down
            log.exception("run %s failed", run_id[:8])
            yield tick(True, state="failed", message=f"The run failed at step {step}: {exc}")
        finally:
            if gen is not None:
                gen.close()
            self._stops.pop(run_id, None)


# ---------------------------------------------------------------- the registry

@dataclass(eq=False)
class _Run:
    run_id: str
    key: str
    request: RunRequest | None
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
                            self._stop(run, f"Stopped at step {run.step} when nobody was watching; the best image "
                                            "so far is kept.")
            except Exception:  # noqa: BLE001 - the sweep must go on
                log.exception("sweep failed")

    def _abandoned(self, run: _Run) -> bool:
        now = time.monotonic()
        for sub_id in [i for i, (_, until) in run.subs.items() if now > until]:
            del run.subs[sub_id]
        if run.subs or run.empty_since is None:
            return False
        return run.stop_now or now - run.empty_since >= self.grace_s

    def _changed(self, run: _Run) -> None:
        run.version += 1
        run.changed.set()
        run.changed = asyncio.Event()

    # ------------------------------------------------------------ the way in

    async def start(self, key: str, session: str, request: RunRequest | None = None,
                    work_gflop: float | None = None, max_run_s: float = math.inf) -> dict:
        """Join the run ``key`` in flight or serve its finished result; else, given the admitted
        ``request``, queue it, or without one answer ``{"need": True}`` (the app process then
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
        run = _Run(uuid.uuid4().hex, key, request, float(request.estimate_s or 0.0), work_gflop,
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
        if not run.subs:
            run.empty_since = time.monotonic()
            run.stop_now = run.stop_now or stop
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
                "max_run_s": self.max_run_s, "counters": dict(self.counters), "settings": self.settings}

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


# ---------------------------------------------------------------- the app process's side

class _Mirror:
    """One run as this app process sees it: one thread long-polls the registry while a session of
    the process watches, and every watching session reads the view it assembles."""

    def __init__(self, backend: RayBackend, update: Update):
        self.backend, self.run_id, self.key = backend, update.run_id, update.key
        self._cond = threading.Condition()
        self._history: list = []
        self._snapshots: list = []
        self._best_version, self._best = -1, None
        self._ended: float | None = None
        self._subs: dict[int, float] = {}  # sub id -> when its session last polled
        self._seen = time.monotonic()
        self._thread: threading.Thread | None = None
        self.view: RunView | None = None
        self._apply(update)

    def _apply(self, u: Update) -> None:
        with self._cond:
            if self.view is not None and u.version < self.view.version:
                return
            del self._history[u.history_from:]
            self._history.extend(u.history)
            del self._snapshots[u.snapshots_from:]
            self._snapshots.extend(u.snapshots)
            if u.best is not None and u.best_version > self._best_version:
                self._best_version, self._best = u.best_version, _decode_png(u.best)
            if u.ended_wall is not None and self._ended is None:  # once, so every view says the same
                self._ended = time.monotonic() - max(time.time() - u.ended_wall, 0.0)
            ended = self._ended
            step, preview = u.preview if u.preview is not None else (0, None)
            self.view = RunView(self.key, u.state, u.version, u.message, u.queue,
                                self._history[-1] if self._history else None, tuple(self._history),
                                tuple(self._snapshots), preview, step, self._best, u.subscribers, ended)
            self._cond.notify_all()

    def _fail(self, message: str) -> None:
        with self._cond:
            if self.view.finished:
                return
            self.view = replace(self.view, state=RunState.FAILED, message=message, version=self.view.version + 1,
                                preview=None, queue=None, ended=time.monotonic())
            self._cond.notify_all()

    # ------------------------------------------------------------ sessions of this process

    def watch(self, sub_id: int | None) -> None:
        with self._cond:
            if sub_id is not None:
                self._subs[sub_id] = time.monotonic()
            self._seen = time.monotonic()
            if self.view.finished or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._follow, name=f"nst-ray-{self.run_id[:8]}", daemon=True)
            self._thread.start()

    def drop(self, sub_id: int) -> None:
        with self._cond:
            self._subs.pop(sub_id, None)

    def wait(self, after_version: int, timeout: float) -> RunView:
        with self._cond:
            if self.view.version <= after_version and not self.view.finished:
                self._cond.wait(timeout=timeout)
            return self.view

    def _follow(self) -> None:
        registry, lease = self.backend._registry, self.backend.lease_s
        while True:
            with self._cond:
                now = time.monotonic()
                alive = [i for i, t in self._subs.items() if now - t < lease]
                if self.view.finished or (not alive and now - self._seen > lease):
                    self._thread = None
                    return
                have = (self.view.version, len(self._history), len(self._snapshots), self._best_version)
            try:
                update = ray.get(registry.poll.remote(self.run_id, *have, alive, POLL_S), timeout=POLL_S + 60)
            except (ray.exceptions.RayActorError, ray.exceptions.ActorUnavailableError,
                    ray.exceptions.GetTimeoutError) as exc:
                log.warning("lost the registry while following run %s: %s", self.run_id[:8], exc)
                self._fail("The cluster's run registry stopped answering, so this run's progress is lost. "
                           "The best image so far is kept; press Run again.")
                continue
            if update is None:
                self._fail("The cluster no longer knows this run (its registry was restarted). The best image "
                           "so far is kept; press Run again.")
                continue
            self._apply(update)


def _decode_png(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")


class RayHandle:
    """One session watching one run on the cluster (the :class:`~nst_core.serve.backend.RunHandle`
    protocol)."""

    def __init__(self, mirror: _Mirror, sub_id: int | None, joined: bool):
        self._mirror, self._id, self.joined = mirror, sub_id, joined
        self.key = mirror.key
        mirror.watch(sub_id)

    def view(self) -> RunView:
        self._mirror.watch(self._id)
        return self._mirror.view

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        self._mirror.watch(self._id)
        return self._mirror.wait(after_version, timeout)

    def leave(self, stop: bool = False) -> None:
        if self._id is None:
            return
        sub_id, self._id = self._id, None
        self._mirror.drop(sub_id)
        try:
            ray.get(self._mirror.backend._registry.leave.remote(self._mirror.run_id, sub_id, stop), timeout=30)
        except Exception:  # noqa: BLE001 - a lost registry has forgotten the watcher anyway
            log.warning("could not tell the registry that a watcher of run %s left", self._mirror.run_id[:8])

    def __enter__(self) -> RayHandle:
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.leave()


class RayBackend:
    """Runs on the Ray cluster at ``address`` (the :class:`~nst_core.serve.backend.Backend`
    protocol). The first app process to attach creates the registry and the workers with its
    settings (:func:`ray_settings`, overridden by ``settings``); later ones use them as they are.

    ``registry_name``, ``worker_prefix``, ``grace_s`` and ``lease_s`` exist for tests and the
    benchmark, which start several registries on one cluster.
    """

    name = "ray"

    def __init__(self, address: str = "auto", *, registry_name: str = REGISTRY_NAME,
                 worker_prefix: str = WORKER_PREFIX, init: dict | None = None, **settings):
        self.address = check_address(address)
        if not ray.is_initialized():
            ray.init(address=self.address, namespace=NAMESPACE, log_to_driver=False, **(init or {}))
        wanted = {**ray_settings(), **settings, "worker_prefix": worker_prefix}
        resources = ray.cluster_resources()
        wanted["gpus"] = float(resources.get("GPU", 0))
        if not wanted.get("workers"):
            if wanted["gpus"]:
                wanted["workers"] = int(wanted["gpus"]) * int(wanted.get("workers_per_gpu", 1))
            else:
                wanted["workers"] = max(1, int(resources.get("CPU", 1)) // int(wanted.get("threads", 1)))
        self._registry = ray.remote(Registry).options(
            name=registry_name, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
            max_restarts=-1, max_concurrency=10_000).remote(wanted)
        self._info = ray.get(self._registry.info.remote(), timeout=120)
        self._info_at = time.monotonic()
        self.registry_name = registry_name
        self.worker_prefix = self._info["settings"].get("worker_prefix", worker_prefix)
        self.lease_s = float(self._info["settings"].get("lease_s", 10.0))
        # The ceiling holds cluster-wide: the registry's (its creator's NST_MAX_RUN_S), or this
        # process's own if lower.
        self.max_run_s = min(float(wanted["max_run_s"]), float(self._info["max_run_s"]))
        self._mirrors: dict[str, _Mirror] = {}
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        return int(self._info["workers"])

    # ------------------------------------------------------------ the protocol

    def start(self, request: RunRequest) -> RayHandle:
        """Refuse a bad image (``ImageError``) here, in the app process; join the identical run in
        flight or serve its finished result (that costs nothing, so nothing is refused); else refuse
        a run over the ceiling or over a worker's memory (:class:`RunRefused`), here too, or queue
        it on the cluster."""
        for i, image in enumerate((request.content, *request.styles)):
            check_image(image, "the content image" if i == 0 else "the style image")
        if not request.styles and request.config.beta > 0:
            raise ImageError("A style transfer needs at least one style image.")
        key = request.key
        answer = ray.get(self._registry.start.remote(key, request.session))
        if answer.get("need"):  # nobody computes it nor kept it: admit it here, then send it
            config, shape = request.config, (request.content.height, request.content.width)
            precision = "fp32" if config.precision == "auto" else config.precision
            check_run(config, shape, request.estimate_s, self.max_run_s, self.info()["headroom_mb"], precision)
            work = None
            if request.estimate_s:
                work = (WORK_MARGIN * run_gflop(config, shape, request.network.arch, len(request.styles))
                        * max(self.max_run_s / request.estimate_s, 1.0))
            answer = ray.get(self._registry.start.remote(key, request.session, request, work, self.max_run_s))
        return self._handle(answer)

    def rejoin(self, key: str, session: str) -> RayHandle | None:
        answer = ray.get(self._registry.rejoin.remote(key, session))
        return None if answer is None else self._handle(answer)

    def peek(self, key: str) -> RunView | None:
        update = ray.get(self._registry.peek.remote(key))
        return None if update is None else _Mirror(self, update).view

    def describe(self) -> str:
        info = self.info()
        gpus = int(info["gpus"]) if float(info["gpus"]).is_integer() else info["gpus"]
        return (f"Runs: Ray cluster at {self.address}, {info['workers']} worker{'s' * (info['workers'] != 1)} "
                f"({gpus} GPU{'s' * (gpus != 1)})")

    def info(self, max_age_s: float = 5.0) -> dict:
        """The registry's state (workers, queue, counters), at most ``max_age_s`` old."""
        if time.monotonic() - self._info_at > max_age_s:
            self._info, self._info_at = ray.get(self._registry.info.remote(), timeout=30), time.monotonic()
        return self._info

    def close(self) -> None:
        """Detach this app process; the registry, the workers and the runs stay on the cluster."""
        with self._lock:
            self._mirrors.clear()

    # ------------------------------------------------------------ mirrors

    def _handle(self, answer: dict) -> RayHandle:
        update: Update = answer["update"]
        with self._lock:
            mirror = self._mirrors.get(update.key)
            if mirror is None or mirror.run_id != update.run_id:
                mirror = self._mirrors[update.key] = _Mirror(self, update)
                while len(self._mirrors) > MIRRORS_KEPT:  # the oldest finished ones; a handle keeps its own
                    done = [k for k, m in self._mirrors.items() if m.view.finished]
                    self._mirrors.pop(done[0] if done else next(iter(self._mirrors)))
            else:
                mirror._apply(update)
        return RayHandle(mirror, answer["sub_id"], answer["joined"])


def shutdown_service(registry_name: str = REGISTRY_NAME, worker_prefix: str = WORKER_PREFIX,
                     message: str = "The run service was restarted; press Run again.") -> int:
    """Stop the registry's runs (they keep their best images), then end the registry and its worker
    processes; how many runs it ended. The next app process to attach creates them anew, with its
    code and its settings: what an upgrade of the app needs (docs/ray.md). Call after ``ray.init``."""
    ended = 0
    try:
        registry = ray.get_actor(registry_name, namespace=NAMESPACE)
    except ValueError:
        registry = None
    if registry is not None:
        ended = ray.get(registry.reset.remote(message), timeout=120)
        ray.kill(registry)
    missing, i = 0, 0
    while missing < 8:  # workers are numbered from 0; a few gaps are tolerated
        try:
            ray.kill(ray.get_actor(f"{worker_prefix}_{i}", namespace=NAMESPACE))
            missing = 0
        except ValueError:
            missing += 1
        i += 1
    return ended


def main(argv=None) -> None:
    """``python -m nst_core.serve.ray_backend status|restart``, on a node of the cluster: what the
    run service holds, or end it so the next app process recreates it (docs/ray.md)."""
    import argparse
    import json
    p = argparse.ArgumentParser(prog="python -m nst_core.serve.ray_backend", description=main.__doc__)
    p.add_argument("command", choices=["status", "restart"])
    p.add_argument("--address", default=os.environ.get("NST_RAY_ADDRESS", "auto"))
    p.add_argument("--registry", default=REGISTRY_NAME)
    p.add_argument("--workers", default=WORKER_PREFIX, help="the workers' name prefix")
    args = p.parse_args(argv)
    ray.init(address=check_address(args.address), namespace=NAMESPACE, log_to_driver=False)
    if args.command == "restart":
        print(f"ended {shutdown_service(args.registry, args.workers)} run(s); the registry and its workers are gone")
        return
    try:
        registry = ray.get_actor(args.registry, namespace=NAMESPACE)
    except ValueError:
        print(f"no registry '{args.registry}' in namespace '{NAMESPACE}': no app process has attached yet")
        return
    info = ray.get(registry.info.remote(), timeout=30)
    info["worker_pids"] = ray.get(registry.worker_pids.remote(), timeout=30)
    print(json.dumps(info, indent=2, default=str))


def check_image(image, what: str = "the image") -> None:
    """Turn away, in the app process, an image the cluster could not use (``ImageError``): not an
    image, damaged, or of a size ``load_image`` never returns."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"{what} is not an image ({type(image).__name__}).")
    w, h = image.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{what} is {w}×{h} pixels: each side needs at least {MIN_SIDE}.")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{what} has more than {MAX_PIXELS // 10**6} million pixels.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{what} is {w}×{h} pixels, narrower than 1:{MAX_ASPECT:g}.")
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds on a damaged file
        raise ImageError(f"{what} is damaged or truncated and cannot be decoded.") from exc


if __name__ == "__main__":
    from nst_core.serve import ray_backend as _module  # the actor classes by their importable name

    _module.main()
