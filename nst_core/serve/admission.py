"""Refusing work up front: a run whose estimate passes the ceiling on seconds, or whose memory could
never fit, is refused with what to lower before any work is done."""

from __future__ import annotations

import math

from ..transfer import TransferConfig
from . import memory
from .limits import server_limit


class RunRefused(ValueError):
    """A run the server will not take, with what to lower (``max_steps``, ``max_size``)."""

    def __init__(self, message: str, max_steps: int | None = None, max_size: int | None = None):
        super().__init__(message)
        self.message, self.max_steps, self.max_size = message, max_steps, max_size


def check_run(config: TransferConfig, shape: tuple[int, int], estimate_s: float | None,
              max_run_s: float | None = None, headroom_mb: float | None = None, precision: str = "fp32") -> float:
    """Refuse a run whose estimate passes the ceiling on seconds, or whose memory could never fit
    (:class:`RunRefused`, saying what to lower); otherwise return its memory estimate in MB.

    ``shape`` is the content image's (H, W); ``headroom_mb`` is what the budget leaves when no
    run is computing (``RunRegistry.headroom_mb``); ``precision`` is the one the run computes in.
    """
    max_run_s = server_limit("NST_MAX_RUN_S") if max_run_s is None else max_run_s
    if estimate_s is not None and estimate_s > max_run_s:
        ratio = max_run_s / estimate_s
        steps = max(1, int(config.steps * ratio))
        size = _round_down(config.size * math.sqrt(ratio))
        tips = [f"at most {steps} steps", f"a size of {size} px or less" if size else None]
        if config.optimizer == "lbfgs":
            tips.append("Adam instead of L-BFGS (one cost evaluation per step instead of about 2.5)")
        raise RunRefused(f"This run is estimated at {estimate_s:.0f} s, over this server's limit of "
                         f"{max_run_s:.0f} s per run. Lower its work: "
                         f"{' or '.join(t for t in tips if t)}.", max_steps=steps, max_size=size or None)
    need = memory.run_memory_mb(config, shape, precision)
    if headroom_mb is not None and need > headroom_mb:
        size = memory.largest_size_within(config, shape, headroom_mb, precision)
        offer = f" A size of {size} px fits." if size else ""
        raise RunRefused(f"At {config.size} px this run needs about {need:.0f} MB, more than the "
                         f"{max(headroom_mb, 0):.0f} MB this server can give one run.{offer}", max_size=size)
    return need


def _round_down(side: float, step: int = 32) -> int:
    side = int(side) // step * step
    return side if side >= 64 else 0
