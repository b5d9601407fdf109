"""Every AppTest starts from empty Streamlit caches, as a fresh server would, except for the two
things that do not depend on the test: a network built from the same arguments, and the speed of
this machine. Those are made once per test run, so a test pays for its page, not for a rebuild.
A served run's replay is quick here (0.1 s rather than seconds). Background warm-ups run only in
the tests marked ``warmups`` (those about them), and end with the test."""

from __future__ import annotations

import functools
import sys

import pytest
import streamlit as st

from tests.support import ROOT


def _memoized(fn):
    cache = {}

    @functools.wraps(fn)
    def once(*args, **kwargs):
        key = (args, tuple(sorted(kwargs.items())))
        if key not in cache:
            cache[key] = fn(*args, **kwargs)
        return cache[key]
    return once


def _patch_everywhere(monkeypatch, original, replacement) -> None:
    """Replace ``original`` in every project module that imported it by name."""
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("nst_core", "ui") and getattr(module, original.__name__, None) is original:
            monkeypatch.setattr(module, original.__name__, replacement)


@functools.cache
def _once_per_run() -> list[tuple]:
    """(the app's function, its stand-in made once per test run), for the network and the speed.
    Imported at the first test, not with this file: pytest-xdist's controller loads it and runs none."""
    import nst_core
    from nst_core.serve import estimate
    measure = estimate.measure_speed
    speeds: dict = {}

    def measure_once(model, *args, **kwargs):
        # GFLOP/s are the machine's in an arithmetic, whichever VGG and weights measured them. One
        # try, not the best of three: a page's estimates need the speed's size, not its last 10%.
        key = (model.compute_precision("auto"), str(model.mean.device))
        if key not in speeds:
            speeds[key] = measure(model, *args, **{"tries": 1, **kwargs})
        return speeds[key]
    # Models are frozen and read-only: sharing one is what the app does.
    return [(nst_core.load_vgg, _memoized(nst_core.load_vgg)), (measure, measure_once)]


@pytest.fixture(autouse=True)
def _clean(request, monkeypatch, tmp_path):
    import ui.network  # noqa: F401 - imported here so its names can be patched
    import ui.runs
    from ui.cache import background
    monkeypatch.delenv("NST_WEIGHTS", raising=False)
    monkeypatch.delenv("NST_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.chdir(ROOT)
    for original, replacement in _once_per_run():
        _patch_everywhere(monkeypatch, original, replacement)
    # A served or joined run is replayed at a pace for the eye; tests check what is shown, not the pace.
    monkeypatch.setattr(ui.runs, "REPLAY_S", 0.1)
    monkeypatch.setattr(ui.runs, "CATCH_UP_S", 0.1)
    if request.node.get_closest_marker("warmups") is None:
        # Warm-ups prepare what a student may open next; a test opens only its own page, and their
        # CPU went to the other worker's tests. Their queue is full, as on a busy server.
        monkeypatch.setattr(background(), "max_jobs", 0)
    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    # The test's warm-ups were for caches about to be cleared: they must not take the next test's CPU.
    background().clear()
    background().drain(60)
    st.cache_data.clear()
    st.cache_resource.clear()
