"""The backend contract, one behaviour suite for every backend: identical runs computed once, a
finished run served, Stop, one waiting run per session, refusals before any work, divergence.

Each backend is made by ``make_backend`` after the test has set the server's limits in the
environment (``NST_MAX_RUNS``, ``NST_MAX_RUN_S``, ``NST_MEMORY_MB``), as a server reads them.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
import types

import pytest

from nst_core.serve import (FINISHED, Backend, LocalBackend, NetworkSpec, RunHandle, RunRefused, RunRequest,
                            RunState, RunView, backend_from_env)
from nst_core.serve.identity import network_identity
from nst_core.transfer import TransferConfig

from tests.support import ROOT, gradient_image, stripes_image

QUICK = dict(size=32, steps=4, snapshot_every=2)
LONG = dict(size=32, steps=5000, snapshot_every=10)  # minutes of work: only Stop or a limit ends it


def _local(model):
    def load(spec: NetworkSpec):
        assert spec.identity == network_identity(model), "the spec names the network the test loaded"
        return model
    return LocalBackend(load_model=load)


FACTORIES = {"local": _local}


@pytest.fixture(params=["local"])
def make_backend(request, monkeypatch, vgg19_random):
    """Makes the backend under test with the limits given (environment variables), and closes it."""
    made = []

    def make(**limits) -> Backend:
        for name, value in limits.items():
            monkeypatch.setenv(name, str(value))
        backend = FACTORIES[request.param](vgg19_random)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def spec(vgg19_random) -> NetworkSpec:
    return NetworkSpec.of(vgg19_random)


def ask(spec, session="A", seed=0, estimate_s=1.0, **settings) -> RunRequest:
    config = TransferConfig(**{**QUICK, "seed": seed, **settings})
    return RunRequest(gradient_image(40, 32), (stripes_image(32, 32),), config, spec, session, estimate_s)


def finish(handle: RunHandle, timeout: float = 120.0) -> RunView:
    """Follow ``handle`` as a page does until its run is over."""
    deadline, view = time.monotonic() + timeout, handle.view()
    while not view.finished:
        assert time.monotonic() < deadline, f"still {view.state} after {timeout} s"
        view = handle.wait(view.version, timeout=0.5)
    return view


def until(backend: Backend, key: str, predicate, timeout: float = 120.0) -> RunView:
    deadline = time.monotonic() + timeout
    while True:
        view = backend.peek(key)
        if view is not None and predicate(view):
            return view
        assert time.monotonic() < deadline, f"timed out: {view and view.state}"
        time.sleep(0.02)


def test_the_backend_keeps_the_contract(make_backend, spec):
    backend = make_backend()
    assert isinstance(backend, Backend) and backend.name in ("local", "ray")
    assert backend.slots >= 1 and backend.max_run_s > 0 and backend.describe().startswith("Runs:")
    request = ask(spec)
    assert pickle.loads(pickle.dumps(request)).key == request.key, "a request travels to a worker whole"
    assert backend.peek(request.key) is None and backend.rejoin(request.key, "A") is None


def test_identical_requests_share_one_computation(make_backend, spec):
    backend = make_backend()
    a = backend.start(ask(spec, "A", steps=40, seed=1))
    b = backend.start(ask(spec, "B", steps=40, seed=1))
    assert isinstance(a, RunHandle) and not a.joined and b.joined and a.key == b.key
    va, vb = finish(a), finish(b)
    assert va.state is vb.state is RunState.DONE
    assert va.best.tobytes() == vb.best.tobytes() and va.ended == vb.ended
    assert [s.step for s in va.history] == [s.step for s in vb.history]
    assert va.latest.best_image is None and va.latest.image is None, "a view carries no tensors"
    assert pickle.loads(pickle.dumps(va)).best.tobytes() == va.best.tobytes()
    other = backend.start(ask(spec, "A", steps=40, seed=2))
    assert not other.joined and other.key != a.key
    finish(other)


def test_a_finished_run_is_served_at_once(make_backend, spec):
    backend = make_backend()
    first = finish(backend.start(ask(spec, "A", seed=3)))
    again = backend.start(ask(spec, "B", seed=3, estimate_s=10**6))  # over any ceiling: serving costs nothing
    view = again.view()
    assert again.joined and view.finished and view.state is RunState.DONE
    assert view.best.tobytes() == first.best.tobytes()
    assert backend.peek(again.key).state is RunState.DONE
    assert backend.rejoin(again.key, "C").view().state is RunState.DONE


def test_stop_keeps_the_best_image(make_backend, spec):
    backend = make_backend()
    handle = backend.start(ask(spec, "A", seed=4, **LONG))
    view = handle.view()
    while len(view.history) < 3:
        view = handle.wait(view.version, timeout=0.5)
    handle.leave(stop=True)
    view = until(backend, handle.key, lambda v: v.finished)
    assert view.state is RunState.STOPPED and view.best is not None and len(view.history) < LONG["steps"]
    assert backend.rejoin(handle.key, "A").view().state is RunState.STOPPED, "the one who stopped it finds it"
    fresh = backend.start(ask(spec, "B", seed=4, **LONG))
    assert not fresh.joined, "a stopped run is not served to a new request: it is computed afresh"
    fresh.leave(stop=True)
    until(backend, fresh.key, lambda v: v.finished)


def test_a_session_keeps_one_waiting_run(make_backend, spec):
    backend = make_backend(NST_MAX_RUNS=1)
    hog = backend.start(ask(spec, "H", seed=5, **LONG))
    until(backend, hog.key, lambda v: v.state is RunState.RUNNING)
    first = backend.start(ask(spec, "S", seed=6))
    assert until(backend, first.key, lambda v: v.queue is not None).state is RunState.QUEUED
    second = backend.start(ask(spec, "S", seed=7))
    assert finish(first).state is RunState.WITHDRAWN, "the newer Run replaced the queued one"
    view = until(backend, second.key, lambda v: v.queue is not None)
    assert view.state is RunState.QUEUED and view.queue.ahead == 1
    hog.leave(stop=True)
    assert finish(second).state is RunState.DONE


def test_a_run_over_the_ceiling_is_refused_before_any_work(make_backend, spec):
    backend = make_backend(NST_MAX_RUN_S=5)
    assert backend.max_run_s == 5
    request = ask(spec, "A", seed=8, steps=400, estimate_s=50.0)
    with pytest.raises(RunRefused) as refused:
        backend.start(request)
    assert refused.value.max_steps == 40 and "at most 40 steps" in refused.value.message
    assert backend.peek(request.key) is None, "nothing was queued or computed"


def test_a_run_that_cannot_fit_in_memory_is_refused_with_a_size_that_fits(make_backend, spec):
    backend = make_backend(NST_MEMORY_MB=1)
    request = ask(spec, "A", seed=9, size=256)
    with pytest.raises(RunRefused) as refused:
        backend.start(request)
    assert "MB" in refused.value.message
    assert backend.peek(request.key) is None


def test_a_diverged_run_ends_diverged_with_a_finite_best_image(make_backend, spec):
    backend = make_backend()
    view = finish(backend.start(ask(spec, "A", seed=10, steps=6, balance="raw", alpha=1e38, beta=1e38,
                                    init="noise")))
    assert view.state is RunState.DIVERGED and view.state in FINISHED and "diverged" in view.message
    assert view.best is not None
    served = backend.start(ask(spec, "B", seed=10, steps=6, balance="raw", alpha=1e38, beta=1e38, init="noise"))
    assert served.joined and served.view().state is RunState.DIVERGED, "the same request would diverge again"


# ---------------------------------------------------------------- choosing a backend and describing a network

def test_the_environment_chooses_the_backend_and_ray_is_imported_only_then(monkeypatch):
    monkeypatch.delenv("NST_RAY_ADDRESS", raising=False)
    assert isinstance(backend_from_env(), LocalBackend)
    monkeypatch.setenv("NST_RAY_ADDRESS", "  ")
    assert isinstance(backend_from_env(), LocalBackend)
    fake = types.ModuleType("nst_core.serve.ray_backend")
    fake.RayBackend = lambda address: ("ray at", address)
    monkeypatch.setitem(sys.modules, "nst_core.serve.ray_backend", fake)
    monkeypatch.setenv("NST_RAY_ADDRESS", "10.0.0.5:6379")
    assert backend_from_env() == ("ray at", "10.0.0.5:6379")
    loaded = subprocess.run([sys.executable, "-c", "import sys, nst_core.serve, ui.runs; print('ray' in sys.modules)"],
                            cwd=ROOT, capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "False", "the app and the service never import Ray by themselves"


def test_a_spec_rebuilds_the_same_network(vgg19_random):
    spec = NetworkSpec.of(vgg19_random)
    assert (spec.arch, spec.weights, spec.seed) == ("vgg19", "random", 0)
    assert spec.identity == network_identity(vgg19_random)
    assert network_identity(spec.load(device="cpu")) == spec.identity
    file_model = types.SimpleNamespace(arch="vgg16", source="file")
    with pytest.raises(ValueError, match="path"):
        NetworkSpec.of(file_model)
