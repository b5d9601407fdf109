"""The server's limits, each read from the environment (or Community Cloud's secrets, which
Streamlit exports as environment variables) in this one place, with its default and what it bounds."""

from __future__ import annotations

import os

# The server's limits, each read from the environment (or Community Cloud's secrets, which
# Streamlit exports as environment variables) with its default and what it bounds.
SERVER_LIMITS: dict[str, tuple[float, str]] = {
    "NST_MAX_RUNS": (2, "runs computed at once; the rest wait in the queue"),
    "NST_MAX_RUN_S": (120.0, "ceiling on one run's estimated seconds, and on its work"),
    "NST_MEMORY_MB": (2200.0, "memory budget of the whole server process, in MB"),
    "NST_RESULTS_MB": (96.0, "memory for finished runs kept for rejoining and sharing, in MB"),
}


def server_limit(name: str) -> float:
    """A limit from the environment; a missing, unparsable or non-positive value gives the default."""
    default = SERVER_LIMITS[name][0]
    try:
        value = float(os.environ.get(name, default))
    except ValueError:
        return float(default)
    return value if value > 0 else float(default)
