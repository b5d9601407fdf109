"""The run service beside the engine: it admits, queues, shares and caches runs, behind a small
backend interface (:mod:`nst_core.serve.backend`). Never imports Streamlit, nor Ray unless asked."""

from ..lazy import exports

__getattr__, __all__ = exports(__name__, {
    ".admission": ("RunRefused",),
    ".backend": ("Backend", "LocalBackend", "NetworkSpec", "RunHandle", "RunRequest", "backend_from_env"),
    ".lifecycle": ("RunView",),
    ".states": ("FINISHED", "SERVED", "TRANSITIONS", "QueueStatus", "RunState", "advance"),
})
