"""How long will a run take? An estimate from the work it does, this machine's measured speed, and
the runs this process has already finished.

The work of a run, in GFLOP of the truncated network (``model.step_gflop``):

- each optimizer step is one forward+backward pass, and an L-BFGS step several (its line search);
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
from collections import deque
from dataclasses import replace

from ..images import fit_long_side
from ..model import VGGFeatures, step_gflop
from ..transfer import TransferConfig, bare_step_seconds, stage_plan

# Cost evaluations per L-BFGS step before any run is observed, counted at 128 px on 2026-11-26 (the
# step reuses its predecessor's last evaluation): 1.1-1.2 on the trained VGG16 for every preset, 1.2
# (Quick) to 2.3 (Paper, from noise) on a random one. Between the two, so a run near the work ceiling
# on a random network stays within WORK_MARGIN; calibration corrects it from the first finished run.
LBFGS_EVALS = 1.7
# A run() step over a bare forward+backward pass (README, "Speed and memory": 1.07–1.15).
RUN_OVERHEAD = 1.12
PER_STEP_S = 0.004  # what a step costs outside the network at any size: Python, the progress record
# bf16 over fp32 for a step (README, "Speed and memory": the benchmark's precision section), used
# only where a run's arithmetic differs from the one its speed was measured in (see predict_run).
PRECISION_FACTOR = {"bf16": 0.5}
SPEED_SIDES = (128, 256)  # the speed is measured at these sides (see pass_cost)


def _stages(config: TransferConfig, shape: tuple[int, int], arch: str, n_styles: int):
    """(passes, GFLOP) of each stage's work (see the module's docstring), the final evaluation last;
    a forward pass alone counts as half a pass."""
    per_step_evals = LBFGS_EVALS if config.optimizer == "lbfgs" else 1.0
    step = 0.0
    for size, n in stage_plan(config, fit_long_side(shape, config.size)):
        step = step_gflop(arch, config.layers, size)
        passes = n * per_step_evals + (1 + n_styles) / 2
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
    where the fixed half left an estimate a third short in a CI run)."""
    used, measured = model.compute_precision(config.precision), model.compute_precision("auto")
    seconds = predict_seconds(replace(config, precision="fp32"), shape, model.arch, speeds, n_styles)
    if used == measured:
        return seconds
    return seconds * (PRECISION_FACTOR["bf16"] if used == "bf16" else 1 / PRECISION_FACTOR["bf16"])


def measure_speed(model: VGGFeatures, sides=SPEED_SIDES, tries: int = 3) -> dict[int, float]:
    """GFLOP/s of a bare forward+backward pass on this machine at each side, in the arithmetic
    "auto" chose for ``model``: the fastest of a few tries, since a neighbour's burst can only slow
    a pass down, and what a run really loses to a busy server is learnt from the finished runs
    (:class:`Calibration`)."""
    layers, precision = TransferConfig().layers, model.compute_precision("auto")
    return {side: step_gflop(model.arch, layers, (side, side))
            / min(bare_step_seconds(model, layers, (side, side), precision=precision) for _ in range(tries))
            for side in sides}


class Calibration:
    """Observed / predicted run times of finished runs, by key (network, optimizer, precision).

    Shared by every session of a server, so the first student's runs correct the estimates of the
    next. Thread-safe; keeps the latest ``keep`` ratios per key.
    """

    def __init__(self, keep: int = 9):
        self._ratios: dict[tuple, deque] = {}
        self._keep = keep
        self._lock = threading.Lock()

    def record(self, key: tuple, predicted: float, observed: float) -> None:
        if predicted > 0 and observed > 0:
            with self._lock:
                self._ratios.setdefault(key, deque(maxlen=self._keep)).append(observed / predicted)

    def factor(self, key: tuple) -> float:
        """The median ratio for ``key``; failing that, for the same network with any other
        optimizer or precision (it still says how fast this server really is).

        The measured speed itself counts as one more ratio of 1: a single finished run, often a
        short one whose fixed costs and a neighbour's burst weigh most, only moves the estimate
        halfway (measured: a 128 px run 21% slow, carried whole to 256 px, announced 36% too
        much); once two runs agree, they outvote it."""
        with self._lock:
            same = list(self._ratios.get(key, ()))
            network = [r for k, rs in self._ratios.items() if k[0] == key[0] for r in rs]
        return statistics.median((same or network) + [1.0])

    def estimate(self, key: tuple, predicted: float) -> float:
        return predicted * self.factor(key)


def calibration_key(description: str, config: TransferConfig) -> tuple:
    return (description, config.optimizer, config.precision)
