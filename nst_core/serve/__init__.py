"""The run service beside the engine: it admits, queues, shares and caches runs, behind a small
backend interface (:mod:`nst_core.serve.backend`). Never imports Streamlit, nor Ray unless asked."""

from .admission import RunRefused
from .backend import Backend, LocalBackend, NetworkSpec, RunHandle, RunRequest, backend_from_env
from .lifecycle import FINISHED, SERVED, TRANSITIONS, QueueStatus, RunState, RunView, advance

__all__ = ["FINISHED", "SERVED", "TRANSITIONS", "Backend", "LocalBackend", "NetworkSpec", "QueueStatus",
           "RunHandle", "RunRefused", "RunRequest", "RunState", "RunView", "advance", "backend_from_env"]
