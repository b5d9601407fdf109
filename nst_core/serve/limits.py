"""The server's limits and settings, each read from the environment (or Community Cloud's secrets,
which Streamlit exports as environment variables) in this one place, with what it sets."""

from __future__ import annotations

import os

# name -> (default, what it bounds)
SERVER_LIMITS: dict[str, tuple[float, str]] = {
    "NST_MAX_RUNS": (2, "runs computed at once; the rest wait in the queue"),
    "NST_MAX_RUN_S": (120.0, "ceiling on one run's estimated seconds, and on its work"),
    "NST_MEMORY_MB": (2200.0, "memory budget of the whole server process, in MB"),
    "NST_RESULTS_MB": (96.0, "memory for finished runs kept for rejoining and sharing, in MB"),
    # Read only by the Ray backend (docs/ray.md).
    "NST_RAY_WORKERS": (0, "Ray worker processes, i.e. runs computed at once on the cluster; 0: one per GPU "
                           "times NST_RAY_WORKERS_PER_GPU, else the cluster's CPUs over NST_RAY_THREADS"),
    "NST_RAY_THREADS": (1, "CPUs (PyTorch threads) each Ray worker process takes"),
    "NST_RAY_WORKERS_PER_GPU": (1, "Ray worker processes sharing one GPU"),
}


def server_limit(name: str) -> float:
    """A limit from the environment; a missing, unparsable or non-positive value gives the default."""
    default = SERVER_LIMITS[name][0]
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return float(default)
    return value if value > 0 else float(default)


# name -> what it sets; unset or empty means the default behaviour.
SERVER_SETTINGS: dict[str, str] = {
    "NST_WEIGHTS": "a features state dict the server offers as a weight source",
    "NST_WEIGHTS_DIR": "a folder whose *.pt and *.pth files the server offers as weight sources",
    "NST_RAY_ADDRESS": "the Ray cluster that computes the runs; unset: this process computes them",
}


def server_setting(name: str) -> str:
    """A setting from the environment, stripped; "" when it is unset."""
    if name not in SERVER_SETTINGS:
        raise KeyError(f"{name} is not one of the server's settings")
    return os.environ.get(name, "").strip()
