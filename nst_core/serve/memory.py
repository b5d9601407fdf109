"""The server's memory budget: what the process uses now, and what one more run would add.

Community Cloud gives the whole app 2.7 GB; past it the kernel kills the server and every student
loses their work. Work is therefore admitted against ``NST_MEMORY_MB`` (default 2200, leaving room
for Streamlit's own spikes), measured from this process's resident size plus an estimate of the
new run's activations.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import psutil

from ..images import fit_long_side
from ..transfer import TransferConfig, stage_plan
from .limits import server_limit

# One forward+backward through VGG19 to conv5_1 keeps every activation (and each ReLU's output,
# since no ReLU runs in place) for the backward pass: memory grows with the image's pixels, and
# under bf16 autocast the saved activations take half the bytes. Measured with
# `scripts/measure_run_memory.py --sizes 128 256 384 512 --steps 30 --optimizer lbfgs --arch vgg19
# [--precision fp32]` (random VGG19, a full L-BFGS history, torch 2.14.1, 2026-11-27): a run added
# 113, 326, 595 and 1043 MB in fp32 and 119, 264, 465 and 731 MB in bf16. The lines below lie on
# or above every point; Adam added less (654 MB at 512 px in bf16), VGG16 about the same (705 MB).
RUN_MB_PER_MEGAPIXEL = {"fp32": 3750.0, "bf16": 2550.0}
RUN_MB_FIXED = {"fp32": 80.0, "bf16": 100.0}


def resident_mb() -> float | None:
    """This process's resident size now, in MB; None where the system will not say."""
    try:
        return psutil.Process().memory_info().rss / 2**20
    except psutil.Error:
        return None


def memory_budget_mb() -> float:
    return server_limit("NST_MEMORY_MB")


def release_free_memory() -> None:
    """Hand memory that Python and the C allocator hold but no longer use back to the system.

    After a run, glibc keeps most of the freed activations in its arenas, so the resident size
    overstates what is in use (measured: 986 MB after a 384 px run, 815 MB after this).
    """
    gc.collect()
    _malloc_trim()


_TRIM_EVERY_S = 5.0  # a class finishing one shared run at once trims once, not thirty times
_trim_lock = threading.Lock()
_last_trim = [-_TRIM_EVERY_S]


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):
            libc.malloc_trim(0)
    except OSError:
        pass


def trim_after_run(force: bool = False, clock: Callable[[], float] = time.monotonic) -> bool:
    """Hand the C allocator's free pages back to the system after a run, at most once every few
    seconds; no garbage collection (it would hold the GIL from every watching session). Returns
    whether it trimmed. glibc keeps a run's freed activations in its per-thread arenas, so without
    this the resident size drifts up run after run (figures in scripts/measure_rss_growth.py)."""
    now = clock()
    with _trim_lock:
        if not force and now - _last_trim[0] < _TRIM_EVERY_S:
            return False
        _last_trim[0] = now
    _malloc_trim()
    return True


def run_memory_mb(config: TransferConfig, shape: tuple[int, int], precision: str = "fp32") -> float:
    """Estimated peak memory one run adds, in MB, for a content image of ``shape`` (H, W), computed
    in ``precision`` ("fp32" or "bf16", as ``VGGFeatures.compute_precision`` resolves it). The
    largest stage sets the peak."""
    pixels = max(h * w for (h, w), _ in stage_plan(config, fit_long_side(shape, config.size)))
    return RUN_MB_FIXED[precision] + RUN_MB_PER_MEGAPIXEL[precision] * pixels / 1e6


def largest_size_within(config: TransferConfig, shape: tuple[int, int], mb: float, precision: str = "fp32",
                        step: int = 32) -> int | None:
    """The largest long side (a multiple of ``step``, at least 64) whose run fits in ``mb``, or None."""
    side = (int(config.size) // step) * step
    while side >= 64:
        if run_memory_mb(replace(config, size=side), shape, precision) <= mb:
            return side
        side -= step
    return None


def fits_budget(need_mb: float, reserved_mb: float = 0.0, budget_mb: float | None = None,
                rss_mb: Callable[[], float | None] = resident_mb) -> bool:
    """Whether ``need_mb`` more fits: resident size now + the estimates of the runs already
    admitted (``reserved_mb``: their activations come and go within each step, so the resident
    size between steps misses them) + ``need_mb`` ≤ the budget. Where the first look says no,
    freed memory is handed back and it looks again. Where the resident size is unknown it always fits."""
    budget = memory_budget_mb() if budget_mb is None else budget_mb
    for attempt in range(2):
        rss = rss_mb()
        if rss is None or rss + reserved_mb + need_mb <= budget:
            return True
        if attempt == 0:
            release_free_memory()
    return False
