"""The Layer experiments' runs. The page has no steps or size control, so it fits its runs to the
server's limits itself before offering them (:func:`nst_core.experiments.fit_to_limits`), and the
random network of "trained versus random" is loaded and timed in the background before it is needed."""

from __future__ import annotations

import json
from dataclasses import replace

import streamlit as st

from nst_core import TransferConfig, VGGFeatures
from nst_core.experiments import fit_to_limits
from nst_core.serve.memory import largest_size_within
from ui import network, runs
from ui.cache import background

_warmed: set = set()  # architectures whose random twin is loaded and timed in this process


def random_twin(model: VGGFeatures) -> VGGFeatures:
    """The untrained network of the same architecture, for the trained-versus-random experiment."""
    return network.load_model(model.arch, "random")[0]


def warm_random(model: VGGFeatures) -> None:
    """Load the random twin and measure its speed in the background: done when the experiment is
    chosen, they took 20–34 s in front of the student."""
    if model.arch in _warmed:
        return

    def job():
        twin = random_twin(model)
        yield "loaded"
        runs.machine_speed(twin.description, twin)
        _warmed.add(model.arch)
        yield "timed"

    background().submit(("random twin", model.arch), job, priority=1)


def fitted_jobs(configs: list[tuple[str, TransferConfig]], content, styles, models: list[VGGFeatures]
                ) -> tuple[list[runs.Job], str]:
    """One job per labelled configuration, on ``models`` (one per configuration), with steps and
    size lowered together where the server would refuse a run; and what was lowered, and why.

    While a batch is computing, the fit it started with is kept: a run that finishes recalibrates
    the estimates, and jobs that changed under a rerun would stop the batch. Otherwise the fit is
    made again, with what the finished runs taught about this server's speed."""
    ss = st.session_state
    memo = ss.setdefault("_exp_fits", {})
    if "live" not in ss and "interrupted" not in ss:  # ui.runs keeps a computing batch under these keys
        memo.clear()
    key = json.dumps([[label, c.to_dict()] for label, c in configs] + [m.description for m in models]
                     + [content.size, len(styles)], sort_keys=True, default=str)
    if key in memo:
        steps, size, note = memo[key]
        return [runs.Job(label, content, styles, replace(c, steps=steps, size=size), m)
                for (label, c), m in zip(configs, models)], note

    def estimate(i: int, config: TransferConfig) -> float:
        return runs.estimate([runs.Job(configs[i][0], content, styles, config, models[i])])

    registry = getattr(network.backend(), "registry", None)  # the local backend admits against its memory
    headroom = registry.headroom_mb() if registry is not None else None
    first = configs[0][1]
    max_size = (None if headroom is None else
                largest_size_within(first, (content.height, content.width), headroom,
                                    models[0].compute_precision(first.precision)))
    fitted, note = fit_to_limits([c for _, c in configs], estimate, network.backend().max_run_s, max_size)
    jobs = [runs.Job(label, content, styles, cfg, m) for (label, _), cfg, m in zip(configs, fitted, models)]
    memo[key] = (fitted[0].steps, fitted[0].size, note)
    while len(memo) > 8:  # a session tries a handful of experiments; keep it small
        del memo[next(iter(memo))]
    return jobs, note
