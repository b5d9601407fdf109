"""The Ray backend's tests: one small local Ray cluster for the whole folder (2 CPUs, no dashboard),
started by the first test that needs it and shut down after the folder's last test. Tests share
registries by setting, each reset between tests (fresh queue, watchers and results), over the
cluster's shared, warm worker processes.

Ray is optional (requirements-ray.txt): without it every test here is skipped, saying so.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest

try:
    import ray
except ImportError:  # the modules skip themselves (pytest.importorskip), saying why
    ray = None

from nst_core.serve.backend import RunRequest
from nst_core.transfer import TransferConfig
from tests.ray.app_process import SPEC, noise  # the small network (random VGG16) and the images

SKIP_REASON = "Ray is not installed: pip install -r requirements-ray.txt to run the Ray backend's tests"


HERE = os.path.dirname(__file__)
_warming: list[threading.Thread] = []


def pytest_collection_modifyitems(config, items):
    for item in items:
        if str(item.fspath).startswith(HERE):
            item.add_marker(pytest.mark.ray)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item, nextitem):
    """After the folder's last test (and its fixtures' teardown), end the cluster: its processes
    hold gigabytes and would otherwise stay until the whole session ends."""
    result = yield
    if nextitem is None or not str(nextitem.fspath).startswith(HERE):
        _stop_cluster()
    return result


def _stop_cluster() -> None:
    """End the local cluster, its registries and workers with it; at most once."""
    for thread in _warming:
        thread.join(timeout=60)
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture(scope="session")
def ray_address():
    """Start the folder's local cluster; its GCS address lets other processes attach as drivers."""
    if ray is None:
        pytest.skip(SKIP_REASON)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    ray.init(num_cpus=2, include_dashboard=False, namespace="nst", log_to_driver=False,
             object_store_memory=200 * 2**20, configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        _stop_cluster()


class Registries:
    """One registry per distinct setting of the tests, made once (each is a process that imports
    PyTorch: seconds) and reset between tests; they end with the cluster. Settings are completed
    with the environment's defaults first, so tests asking for the same registry in other words
    share it."""

    def __init__(self):
        self.names: dict = {}
        self._lock = threading.Lock()

    def backend(self, settings: dict, app: dict | None = None):
        """A RayBackend on the registry of ``settings``, made by a backend of those settings if it
        is new; with ``app``, one attached as an app process whose own limits are those."""
        from nst_core.serve.limits import SERVER_LIMITS
        from nst_core.serve.ray import RayBackend, ray_settings
        defaults = {**ray_settings(), "max_run_s": SERVER_LIMITS["NST_MAX_RUN_S"][0],  # not a test's own limits
                    "memory_mb": SERVER_LIMITS["NST_MEMORY_MB"][0]}
        full = {**{k: v for k, v in defaults.items() if k != "workers"}, **settings}
        with self._lock:
            name = self.names.setdefault(tuple(sorted(full.items())), f"test_{uuid.uuid4().hex[:8]}")
        creator = RayBackend("auto", registry_name=name, **full)
        return creator if app is None else RayBackend("auto", registry_name=name, **{**full, **app})


@pytest.fixture(scope="session")
def _registries(ray_address):
    registries = Registries()
    # The two registries most tests use, and the worker processes, start in the background while
    # the first test sets itself up: on two cores that overlap saves seconds.
    warm = threading.Thread(target=lambda: [registries.backend({"workers": n}) for n in (2, 1)], daemon=True)
    _warming.append(warm)
    warm.start()
    return registries


@pytest.fixture
def make_ray_backend(_registries):
    """``make_ray_backend(workers=2, app=None, **settings)``: a fresh RayBackend (its own mirrors) on a
    registry of these settings over the cluster's shared workers; ``app`` holds the attaching app
    process's own ``max_run_s`` and ``memory_mb`` (the backend keeps the lower of each and the
    registry's). The registry is reset when the test ends: its runs stopped, its results and
    counters forgotten."""
    used = []

    def make(app: dict | None = None, **settings):
        settings.setdefault("workers", 2)
        backend = _registries.backend(settings, app)
        used.append(backend)
        return backend

    yield make
    for backend in used:
        ray.get(backend._registry.reset.remote(forget=True), timeout=60)
        backend.close()


@pytest.fixture
def make_request():
    """``make_request(seed, steps=20, session="s1", **config)``: a run on the small network at 48 px
    whose images follow from ``seed`` (one seed, one run key)."""
    def make(seed: int, steps: int = 20, session: str = "s1", estimate_s: float | None = 5.0, **config):
        config = TransferConfig(**{"size": 48, "steps": steps, "optimizer": "adam", "lr": 0.05,
                                   "snapshot_every": 5, **config})
        return RunRequest(noise(2 * seed), (noise(2 * seed + 1),), config, SPEC, session, estimate_s)
    return make


def follow(handle, until=lambda v: v.finished, timeout: float = 60.0):
    """Poll ``handle`` as a page does until ``until(view)``; the last view."""
    import time
    deadline = time.monotonic() + timeout
    view = handle.view()
    while not until(view):
        assert time.monotonic() < deadline, f"gave up waiting: {view.state} at version {view.version}"
        view = handle.wait(view.version, 0.5)
    return view


@pytest.fixture
def follow_run():
    return follow
