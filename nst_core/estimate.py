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

from .images import fit_long_side
from .model import VGGFeatures, step_gflop
from .transfer import TransferConfig, bare_step_seconds, stage_plan

# Cost evaluations per L-BFGS step before any run is observed: 2.2 (trained VGG16, 128 px) and 2.7
# (random VGG16, 96 px) on the Paper preset from noise, counted on 2026-11-24.
LBFGS_EVALS = 2.5
# A run() step over a bare forward+backward pass (README, "Speed and memory": 1.07–1.15).
RUN_OVERHEAD = 1.12
PER_STEP_S = 0.004  # what a step costs outside the network at any size: Python, the progress record
PRECISION_FACTOR = {"bf16": 0.5}  # bf16 roughly halves a step on CPUs with bf16 arithmetic
SPEED_SIDE = 192  # the side at which the speed is measured: between the app's smallest and default size


def run_gflop(config: TransferConfig, shape: tuple[int, int], arch: str, n_styles: int = 1) -> float:
    """GFLOP of the whole run (see the module's docstring)."""
    per_step_evals = LBFGS_EVALS if config.optimizer == "lbfgs" else 1.0
    total, step = 0.0, 0.0
    for size, n in stage_plan(config, fit_long_side(shape, config.size)):
        step = step_gflop(arch, config.layers, size)
        total += n * per_step_evals * step + (1 + n_styles) * step / 2
    return total + step / 2


def predict_seconds(config: TransferConfig, shape: tuple[int, int], arch: str, gflop_per_s: float,
                    n_styles: int = 1) -> float:
    """The estimate before any run was observed, from the measured speed alone."""
    seconds = RUN_OVERHEAD * run_gflop(config, shape, arch, n_styles) / gflop_per_s + PER_STEP_S * config.steps
    return seconds * PRECISION_FACTOR.get(config.precision, 1.0)


def measure_speed(model: VGGFeatures, side: int = SPEED_SIDE) -> float:
    """GFLOP/s of a bare forward+backward pass on this machine (median of three, after a warm-up)."""
    layers = TransferConfig().layers
    return step_gflop(model.arch, layers, (side, side)) / bare_step_seconds(model, layers, (side, side), repeats=3)


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
        optimizer or precision (it still says how fast this server really is); failing that, 1."""
        with self._lock:
            same = list(self._ratios.get(key, ()))
            network = [r for k, rs in self._ratios.items() if k[0] == key[0] for r in rs]
        return statistics.median(same or network or [1.0])

    def estimate(self, key: tuple, predicted: float) -> float:
        return predicted * self.factor(key)


def calibration_key(description: str, config: TransferConfig) -> tuple:
    return (description, config.optimizer, config.precision)
