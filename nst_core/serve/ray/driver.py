"""The app process's side: :class:`RayBackend` (the backend protocol), one mirror per run this
process follows, and a :class:`RayHandle` per session watching it (see the package's docstring)."""

from __future__ import annotations

import logging
import math
import pickle
import threading
import time
from dataclasses import replace

import ray

from ...images import ImageError
from ..admission import check_run
from ..backend import RunRequest
from ..estimate import run_gflop
from ..lifecycle import RunView
from ..registry import WORK_MARGIN
from ..states import RunState
from .common import (MIRRORS_KEPT, NAMESPACE, POLL_S, REGISTRY_NAME, WORKER_PREFIX, Update, _decode_png,
                     check_address, check_image, ray_settings)
from .registry import Registry

log = logging.getLogger(__name__)


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
        # So does a worker's memory budget (NST_MEMORY_MB): the registry's, or this process's if lower.
        self._memory_cut_mb = max(0.0, float(self._info["settings"].get("memory_mb") or 0.0)
                                  - float(wanted.get("memory_mb") or math.inf))
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
            check_run(config, shape, request.estimate_s, self.max_run_s, self.headroom_mb(), precision)
            work = None
            if request.estimate_s:
                work = (WORK_MARGIN * run_gflop(config, shape, request.network.arch, len(request.styles))
                        * max(self.max_run_s / request.estimate_s, 1.0))
            answer = ray.get(self._registry.start.remote(key, request.session, pickle.dumps(request),
                                                         request.estimate_s or 0.0, work, self.max_run_s))
        return self._handle(answer)

    def rejoin(self, key: str, session: str) -> RayHandle | None:
        answer = ray.get(self._registry.rejoin.remote(key, session))
        return None if answer is None else self._handle(answer)

    def peek(self, key: str) -> RunView | None:
        update = ray.get(self._registry.peek.remote(key))
        return None if update is None else _Mirror(self, update).view

    def describe(self) -> str:
        info = self.info(timeout_s=3.0)  # the sidebar of every page waits on it
        gpus = int(info["gpus"]) if float(info["gpus"]).is_integer() else info["gpus"]
        workers, ready = int(info["workers"]), int(info["ready"])
        starting = f", {ready} ready" if ready < workers else ""  # starting, restarting, or never placed
        return (f"Runs: Ray cluster at {self.address}, {workers} worker{'s' * (workers != 1)}{starting} "
                f"({gpus} GPU{'s' * (gpus != 1)})")

    def headroom_mb(self) -> float | None:
        """MB a new run may take in a worker process (None: not budgeted, as on a GPU)."""
        headroom = self.info()["headroom_mb"]
        return None if headroom is None else headroom - self._memory_cut_mb

    def info(self, max_age_s: float = 5.0, timeout_s: float = 30.0) -> dict:
        """The registry's state (workers, queue, counters), at most ``max_age_s`` old."""
        if time.monotonic() - self._info_at > max_age_s:
            self._info, self._info_at = ray.get(self._registry.info.remote(), timeout=timeout_s), time.monotonic()
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
