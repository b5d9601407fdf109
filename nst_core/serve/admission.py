"""Refusing work up front: a run whose estimate passes the ceiling on seconds, or whose memory could
never fit, is refused with what to lower before any work is done."""

from __future__ import annotations

import math

from ..settings import SIZES
from ..transfer import TransferConfig
from . import memory
from .estimate import LBFGS_EVALS
from .limits import server_limit


class RunRefused(ValueError):
    """A run the server will not take, with what to lower (``max_steps``, ``max_size``)."""

    def __init__(self, message: str, max_steps: int | None = None, max_size: int | None = None,
                 reason: str = ""):
        super().__init__(message)
        self.message, self.max_steps, self.max_size = message, max_steps, max_size
        self.reason = reason or message  # why, without what to lower: a page offering buttons says that itself


def check_run(config: TransferConfig, shape: tuple[int, int], estimate_s: float | None,
              max_run_s: float | None = None, headroom_mb: float | None = None, precision: str = "fp32",
              sizes: tuple[int, ...] = SIZES, emulated: bool = False) -> float:
    """Refuse a run whose estimate passes the ceiling on seconds, or whose memory could never fit
    (:class:`RunRefused`, saying what to lower); otherwise return its memory estimate in MB.

    ``shape`` is the content image's (H, W); ``headroom_mb`` is what the budget leaves when no
    run is computing (``RunRegistry.headroom_mb``); ``precision`` is the one the run computes in.
    A size offered is one of ``sizes`` (the app's own choices), so a student can pick it: a class
    was told "480 px fits" by a page whose size slider stops at 384 and 512. Where ``emulated``,
    the run's arithmetic is bfloat16 that the device only emulates, and it is told that first.
    """
    max_run_s = server_limit("NST_MAX_RUN_S") if max_run_s is None else max_run_s
    if estimate_s is not None and estimate_s > max_run_s:
        ratio = max_run_s / estimate_s
        steps = _round_steps(config.steps * ratio)
        size = _offered(_round_down(config.size * math.sqrt(ratio)), config.size, sizes)
        reason = f"This run is estimated at {estimate_s:.0f} s, over this server's limit of {max_run_s:.0f} s per run."
        tips = [f"at most {steps} steps", f"a size of {size} px" if size else None]
        if emulated:
            reason += " This server's CPU has no bfloat16 instructions: bf16 is emulated, far slower than fp32."
            tips.insert(0, "auto or fp32 arithmetic instead of bf16")
        if config.optimizer == "lbfgs":
            tips.append(f"Adam instead of L-BFGS (one cost evaluation per step instead of about {LBFGS_EVALS:g})")
        raise RunRefused(f"{reason} Lower its work: {' or '.join(t for t in tips if t)}.", max_steps=steps,
                         max_size=size, reason=reason)
    need = memory.run_memory_mb(config, shape, precision)
    if headroom_mb is not None and need > headroom_mb:
        size = _offered(memory.largest_size_within(config, shape, headroom_mb, precision), config.size, sizes)
        offer = f" A size of {size} px fits." if size else " Nothing fits now: try again when fewer runs are going on."
        reason = (f"At {config.size} px this run needs about {need:.0f} MB, more than the "
                  f"{max(headroom_mb, 0):.0f} MB this server can give one run.")
        raise RunRefused(reason + offer, max_size=size, reason=reason)
    return need


def _offered(limit: int | None, current: int, sizes: tuple[int, ...]) -> int | None:
    """The largest of ``sizes`` within ``limit`` and below ``current``; None when none is, or no
    limit was found."""
    fitting = [s for s in sizes if limit and s <= limit and s < current]
    return max(fitting) if fitting else None


def _round_steps(steps: float) -> int:
    """Steps a student would type: a multiple of 5 from 20 up, never 0."""
    steps = int(steps)
    return steps // 5 * 5 if steps >= 20 else max(1, steps)


def _round_down(side: float, step: int = 32) -> int:
    side = int(side) // step * step
    return side if side >= 64 else 0
