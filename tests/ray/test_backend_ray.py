"""The backend contract's behaviour suite (tests/unit/test_backend.py), run against the Ray backend
on the folder's local cluster: the same tests, with a ``make_backend`` that makes a RayBackend.

The server's limits reach it as they reach the local backend, through the environment:
``NST_MAX_RUNS`` becomes the number of worker processes (runs computed at once); ``NST_MAX_RUN_S``
and ``NST_MEMORY_MB`` are the app process's own ceiling and worker memory budget (the backend keeps
the lower of each and the cluster's, so a lower one needs no registry of its own).
"""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("ray", reason="Ray is not installed: pip install -r requirements-ray.txt "
                                  "to run the Ray backend's tests")

from nst_core.serve.limits import server_limit  # noqa: E402
from tests.unit import test_backend as suite  # noqa: E402

# Every test of the suite that takes a backend, and the fixtures it defines, as tests of this
# module: a test added there runs here too. make_backend is this module's own (below).
globals().update({name: getattr(suite, name) for name in dir(suite)
                  if name == "spec" or (name.startswith("test_")
                                        and "make_backend" in inspect.signature(getattr(suite, name)).parameters)})


@pytest.fixture(params=["ray"])
def make_backend(request, monkeypatch, make_ray_backend):
    def make(**limits):
        for name, value in limits.items():
            monkeypatch.setenv(name, str(value))
        return make_ray_backend(workers=int(server_limit("NST_MAX_RUNS")),
                                app={"max_run_s": server_limit("NST_MAX_RUN_S"),
                                     "memory_mb": server_limit("NST_MEMORY_MB")})
    return make
