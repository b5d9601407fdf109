"""How long will a run take? An estimate from the work it does, this machine's measured speed, and
the runs this process has already finished.

The work of a run, in GFLOP of the truncated network (``model.step_gflop``):

- each optimizer step is one forward+backward pass; an L-BFGS step may take more (its line search),
  and the first step of each level many more, since its search starts from an unscaled step;
- coarse-to-fine levels run most steps on a smaller image, so those steps cost less;
- the targets cost one forward pass (half a step) of the content and of each style image per level;
- the finished image is evaluated once more.

The measured speed is one bare forward+backward pass at a mid size. It misses what a real run adds
(the costs, the optimizer, previews, a second arithmetic such as bf16, a busy server). So every
finished run is recorded as observed / predicted, and later estimates for the same network,
optimizer and precision are scaled by the median of those ratios.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from ..images import fit_long_side
from ..model import EMULATED_BF16_FACTOR, VGGFeatures, alternated_pass_times, step_gflop
from ..transfer import TransferConfig, stage_plan

# Cost evaluations per L-BFGS step before any run is observed, counted apart for a level's first
# step, whose line search spends 4-7 (docs/benchmarks.md, "The first estimate"): averaged into every
# step, they left a short run's estimate 40% short. Calibration corrects the rest.
LBFGS_FIRST_EVALS = 5.0
LBFGS_EVALS = 1.1
# A run() step over a bare forward+backward pass (docs/benchmarks.md, "Constants behind the loop and
# the server"); what it misses on a given server, the calibration learns.
RUN_OVERHEAD = 1.12
PER_STEP_S = 0.004  # what a step costs outside the network at any size: Python, the progress record
# bf16 over fp32 for a step (docs/benchmarks.md, "Precision: bf16 against fp32"), used
# only where a run's arithmetic differs from the one its speed was measured in (see predict_run).
PRECISION_FACTOR = {"bf16": 0.5}
SPEED_SIDES = (128, 256)  # the speed is measured at these sides (see pass_cost)


def _stages(config: TransferConfig, shape: tuple[int, int], arch: str, n_styles: int):
    """(passes, GFLOP) of each stage's work (see the module's docstring), the final evaluation last;
    a forward pass alone counts as half a pass."""
    lbfgs = config.optimizer == "lbfgs"
    step = 0.0
    for size, n in stage_plan(config, fit_long_side(shape, config.size)):
        step = step_gflop(arch, config.layers, size)
        evals = (LBFGS_FIRST_EVALS + (n - 1) * LBFGS_EVALS) if lbfgs and n else n
        passes = evals + (1 + n_styles) / 2
        yield passes, passes * step
    yield 0.5, step / 2


def run_gflop(config: TransferConfig, shape: tuple[int, int], arch: str, n_styles: int = 1) -> float:
    """GFLOP of the whole run."""
    return sum(gflop for _, gflop in _stages(config, shape, arch, n_styles))


def pass_cost(speeds: dict[int, float], arch: str) -> tuple[float, float]:
    """(seconds per pass, seconds per GFLOP) fitted through the speeds measured at two sides. A pass
    has a cost that does not grow with the image (launching some forty layers, two threads meeting
    at each, worse on a busy server), so a small image is slower per GFLOP than a large one."""
    layers = TransferConfig().layers
    points = sorted((step_gflop(arch, layers, (side, side)), step_gflop(arch, layers, (side, side)) / speed)
                    for side, speed in speeds.items())
    (g1, t1), (g2, t2) = points[0], points[-1]
    per_gflop = (t2 - t1) / (g2 - g1) if g2 > g1 and t2 > t1 else t2 / g2
    fixed = max(0.0, t1 - g1 * per_gflop)
    return fixed, (t2 - fixed) / g2


def predict_seconds(config: TransferConfig, shape: tuple[int, int], arch: str, speeds: dict[int, float],
                    n_styles: int = 1) -> float:
    """The estimate before any run was observed, from the measured speeds alone."""
    fixed, per_gflop = pass_cost(speeds, arch)
    seconds = sum(RUN_OVERHEAD * (passes * fixed + gflop * per_gflop)
                  for passes, gflop in _stages(config, shape, arch, n_styles)) + PER_STEP_S * config.steps
    return seconds * PRECISION_FACTOR.get(config.precision, 1.0)


def predict_run(model: VGGFeatures, config: TransferConfig, shape: tuple[int, int], speeds: dict[int, float],
                n_styles: int = 1) -> float:
    """:func:`predict_seconds` for a run on ``model``, whose speeds :func:`measure_speed` took in the
    arithmetic "auto" chose. A fixed bf16 factor is applied only to a run forced to the other one:
    bf16's gain varies with the machine, the network and the image size (on one CPU: 0.55-0.65 of
    fp32's time for VGG16 at 96-160 px, 0.71 for the tests' small network at 64 px on one thread,
    where the fixed half left an estimate a third short in a CI run). On a CPU that only emulates
    bf16, a bf16 run gets :data:`~nst_core.model.EMULATED_BF16_FACTOR` instead."""
    used, measured = model.compute_precision(config.precision), model.compute_precision("auto")
    seconds = predict_seconds(replace(config, precision="fp32"), shape, model.arch, speeds, n_styles)
    if used == measured:
        return seconds
    if model.emulates(config.precision):
        return seconds * EMULATED_BF16_FACTOR
    return seconds * (PRECISION_FACTOR["bf16"] if used == "bf16" else 1 / PRECISION_FACTOR["bf16"])


def measure_speed(model: VGGFeatures, sides=SPEED_SIDES, tries: int = 3) -> dict[int, float]:
    """GFLOP/s of a bare forward+backward pass on this machine at each side, in the arithmetic
    "auto" chose for ``model``: the fastest of a few tries, since a neighbour's burst can only slow
    a pass down, and what a run really loses to a busy server is learnt from the finished runs
    (:class:`Calibration`). One warm-up pass per side, not one per try: later tries are warm already."""
    layers, precision = TransferConfig().layers, model.compute_precision("auto")
    return {side: step_gflop(model.arch, layers, (side, side))
            / min(alternated_pass_times(model, (side, side), layers, tries, (precision,))[precision])
            for side in sides}


QUIET_LOAD = 1.5  # a run that shared the server with, on average, fewer other computing runs was "quiet"
BUSY_MEMORY_S = 600.0  # ratios learnt under load count only this long, and only while the server is busy
MAX_AGE_S = 3600.0  # any ratio this old no longer says how fast the server is
LIVE_S = 3.0  # a run nobody has polled for this long no longer counts as computing


class Calibration:
    """Observed / predicted run times of finished runs, by key (network, optimizer, precision),
    each with when it was learnt and the server's load while it ran.

    Shared by every session of a server, so the first student's runs correct the estimates of the
    next. A run that computed beside others took longer than it would alone; that ratio is kept
    apart, used only while the server is busy again and for :data:`BUSY_MEMORY_S`: after a busy
    spell a quiet server is estimated from quiet runs (a class saw a Quick run at 256 px announced
    at 31 s take 11 s). The load is the number of runs computing at once, as the followers in this
    process see them (:meth:`seen`), so it means the same on every backend. Thread-safe.
    """

    def __init__(self, keep: int = 9, clock: Callable[[], float] = time.monotonic):
        self._ratios: dict[tuple, deque] = {}  # key -> (ratio, learnt at, load)
        self._keep = keep
        self._clock = clock
        self._lock = threading.Lock()
        self._computing: dict[str, float] = {}  # run key -> last time a follower saw it computing

    # ------------------------------------------------------------ the load now

    def seen(self, run_key: str, computing: bool) -> None:
        """A follower of ``run_key`` saw it computing (or not any more)."""
        with self._lock:
            if computing:
                self._computing[run_key] = self._clock()
            else:
                self._computing.pop(run_key, None)

    def load(self) -> int:
        """Runs computing now, as this process's followers last saw them."""
        now = self._clock()
        with self._lock:
            for key in [k for k, at in self._computing.items() if now - at > LIVE_S]:
                del self._computing[key]
            return len(self._computing)

    # ------------------------------------------------------------ what finished runs taught

    def record(self, key: tuple, predicted: float, observed: float, load: float = 1.0) -> None:
        """A finished run took ``observed`` seconds where ``predicted`` were expected, beside
        ``load`` runs computing on average (itself included)."""
        if predicted > 0 and observed > 0:
            with self._lock:
                self._ratios.setdefault(key, deque(maxlen=self._keep)).append(
                    (observed / predicted, self._clock(), max(float(load), 1.0)))

    def factor(self, key: tuple, load: float = 1.0) -> float:
        """The factor for a run on ``key`` starting beside ``load`` computing runs (itself included).

        The median ratio for ``key`` (failing that, for the same network with any other optimizer
        or precision: it still says how fast this server is), among the recent ratios learnt under
        a load like today's. The measured speed itself counts as one more ratio of 1: a single
        finished run, often a short one whose fixed costs and a neighbour's burst weigh most, only
        moves the estimate halfway (measured: a 128 px run 21% slow, carried whole to 256 px,
        announced 36% too much); once two runs agree, they outvote it.

        Busy now with nothing learnt under load: the quiet factor times the runs sharing the
        server, since two runs on the same cores each go about half as fast."""
        now, busy = self._clock(), load > QUIET_LOAD
        with self._lock:
            same = [e for e in self._ratios.get(key, ()) if now - e[1] <= MAX_AGE_S]
            network = [e for k, es in self._ratios.items() if k[0] == key[0] for e in es if now - e[1] <= MAX_AGE_S]

        def pick(entries, under_load: bool) -> list[float]:
            if under_load:
                return [r for r, at, lo in entries if lo > QUIET_LOAD and now - at <= BUSY_MEMORY_S]
            return [r for r, _, lo in entries if lo <= QUIET_LOAD]

        if busy:
            loaded = pick(same, True) or pick(network, True)
            if loaded:
                return statistics.median(loaded + [1.0])
        quiet = statistics.median((pick(same, False) or pick(network, False)) + [1.0])
        return quiet * (load if busy else 1.0)

    def estimate(self, key: tuple, predicted: float, load: float = 1.0) -> float:
        return predicted * self.factor(key, load)


def remaining_s(history, estimate_s: float | None) -> float | None:
    """Seconds a computing run has left, from its loop records (``transfer.Step``, oldest first)
    and the estimate announced before it started.

    The loop's own figure (``Step.eta``) divides the time so far by the work done, so at step 1 it
    charges the whole set-up (targets, the first pass) to one step: "about 88 s left" at step 1 of
    a 12 s run. Here the measured pace is taken between records, after the first, and blended with
    the estimate's pace, trusting the measurement more as the run goes (fully from 30% of its
    work); under load the estimate was 3-4× low, which the measurement corrects within a few steps.
    None when there is nothing to go on."""
    if not history:
        return estimate_s if estimate_s else None
    last = history[-1]
    if last.status != "running":
        return 0.0
    done = _fraction(last)
    prior = estimate_s * (1.0 - done) if estimate_s else None
    first = history[0]
    measured = None
    if len(history) >= 2 and done > _fraction(first) and last.elapsed > first.elapsed:
        pace = (last.elapsed - first.elapsed) / (done - _fraction(first))
        measured = pace * (1.0 - done)
    if measured is None:
        return prior if prior is not None else (last.eta or None)
    if prior is None:
        return measured
    trust = min(1.0, done / TRUST_MEASURED_AT)
    return trust * measured + (1.0 - trust) * prior


TRUST_MEASURED_AT = 0.3  # share of the run's work after which the measured pace alone is used


def _fraction(rec) -> float:
    """Share of the run's work done at ``rec``: the loop's eta is time so far × work left / work done."""
    if rec.eta and rec.eta > 0 and rec.elapsed > 0:
        return rec.elapsed / (rec.elapsed + rec.eta)
    return min(rec.step / max(rec.total_steps, 1), 1.0)


def time_left_text(seconds: float | None) -> str:
    """Time left in words a student can take in at a glance, never a figure more precise than
    it is: "a few seconds left", "about 25 s left", "about a minute left", "about 4 minutes left"."""
    if seconds is None or seconds < 1:
        return ""
    if seconds < 8:
        return "a few seconds left"
    if seconds < 50:
        return f"about {max(10, 5 * round(seconds / 5))} s left"
    if seconds < 90:
        return "about a minute left"
    if seconds < 15 * 60:
        return f"about {round(seconds / 60)} minutes left"
    return "more than a quarter of an hour left"


def calibration_key(description: str, config: TransferConfig) -> tuple:
    return (description, config.optimizer, config.precision)
