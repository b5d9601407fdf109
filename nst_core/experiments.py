"""Experiments are configurations of the one loop in ``transfer.py``, never copies of it."""

from __future__ import annotations

import math
from dataclasses import replace

from .transfer import TransferConfig, preset_config


# Priors that make a reconstruction honest in class time (Mahendran & Vedaldi 2015). Whatever
# high-frequency noise G starts from survives wherever a deep layer is blind to it, so from white
# noise a student sees coloured noise where the layer in fact keeps the layout. A smooth start
# (colour blobs) fixes that; a content reconstruction also needs a total-variation penalty. On Grace
# Hopper at 192 px, 150 Adam steps: from white noise, conv4_2 and conv5_2 gave noise; with the prior,
# the hat, face, tie and shoulders show. A texture needs no penalty: from the smooth start the strokes
# of The Starry Night grew from colour blobs (conv1_1) to swirls as deeper layers joined, whereas
# from white noise every set gave the same fine grain.
CONTENT_PRIOR = dict(init="smooth", tv_weight=2.0)
STYLE_PRIOR = dict(init="smooth", tv_weight=0.0)
NO_PRIOR = dict(init="noise", tv_weight=0.0)


def content_reconstruction(layer: str, base: TransferConfig = TransferConfig(**CONTENT_PRIOR)) -> TransferConfig:
    """Match only one layer's activations of the content image (β = 0), from ``base``'s start.

    What comes back shows what that layer keeps: shallow layers return the photo's pixels, deep
    layers only its objects and layout.
    """
    return replace(base, content_layer=layer, alpha=1.0, beta=0.0, preserve_color=False)


def style_reconstruction(layers, base: TransferConfig = TransferConfig(**STYLE_PRIOR)) -> TransferConfig:
    """Match only the Gram matrices of ``layers`` of the style image (α = 0), from ``base``'s start."""
    layers = tuple(layers)
    return replace(base, style_layers=layers, style_weights=None, alpha=0.0, beta=1.0, preserve_color=False)


def growing_style_sets(layers) -> list[tuple[str, ...]]:
    """{l1}, {l1, l2}, … — the paper's style reconstructions with ever deeper layer sets."""
    layers = tuple(layers)
    return [layers[: k + 1] for k in range(len(layers))]


def sweep(base: TransferConfig, field: str, values) -> list[TransferConfig]:
    """One config per value of one setting, all else (seed included) equal: an A/B/… comparison."""
    return [replace(base, **{field: v}) for v in values]


CONTENT_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
# A decade apart, with the default β = 5 among them: from nearly the photo to the painting's strokes
# everywhere (0.5 to 50 in smaller steps gave four look-alikes at 384 px).
BETA_SWEEP = (0.5, 5.0, 50.0, 500.0)
# Sized so a class can recompute on its own images in about a minute, and big enough for a deep
# layer's layout to show (at 128 px conv5_2 has 8×8 positions). From a smooth start, Adam at lr 0.05
# beat L-BFGS at equal time: 150 Adam steps gave a sharper conv4_2 and conv5_2 layout than 60
# L-BFGS steps (192 px, trained VGG16, Grace Hopper), since an L-BFGS step spends ~2.5 evaluations.
RECONSTRUCTION = TransferConfig(size=192, steps=150, optimizer="adam", lr=0.05, levels=1, **CONTENT_PRIOR)
STYLIZATION = preset_config(size=128)

EXPERIMENTS = {
    "content": "Content reconstructions: match one layer only",
    "style": "Style reconstructions: match Gram matrices of growing layer sets",
    "content_layer": "The same stylization, content from conv2_2 versus conv4_2",
    "beta": "A sweep of β (style weight) with α = 1",
    "weights": "Trained versus random weights: the same style reconstruction (conv1_1 … conv5_1)",
}
PRIOR_NOTE = ("Reconstructions start from smooth colour blobs, and content ones also pay a small total-variation "
              "penalty: without that prior, the starting noise survives wherever a deep layer cannot see it.")


def series(name: str, style_layers=None, reconstruction: TransferConfig = RECONSTRUCTION,
           stylization: TransferConfig = STYLIZATION, prior: bool = True) -> list[tuple[str, TransferConfig]]:
    """The labelled configurations of one experiment, each to be run through ``transfer.run``.

    ``prior=False`` runs the reconstructions from white noise with no smoothness penalty, so a
    student can see why the prior is there. ``weights`` returns the same configuration twice: the
    caller runs it on a trained and on a random network, which is the only thing that differs.
    """
    style_layers = tuple(style_layers or ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"))
    content_base = replace(reconstruction, **(CONTENT_PRIOR if prior else NO_PRIOR))
    style_base = replace(reconstruction, **(STYLE_PRIOR if prior else NO_PRIOR))
    if name == "content":
        return [(layer, content_reconstruction(layer, content_base)) for layer in CONTENT_LAYERS]
    if name == "style":
        return [("+".join(s) if len(s) == 1 else f"conv1_1 … {s[-1]}", style_reconstruction(s, style_base))
                for s in growing_style_sets(style_layers)]
    if name == "content_layer":
        return [(f"content {layer}", replace(stylization, content_layer=layer)) for layer in ("conv2_2", "conv4_2")]
    if name == "beta":
        return [(f"β = {b:g}", c) for b, c in zip(BETA_SWEEP, sweep(stylization, "beta", BETA_SWEEP))]
    if name == "weights":
        cfg = style_reconstruction(style_layers, style_base)
        return [("trained", cfg), ("random", cfg)]
    raise ValueError(f"unknown experiment '{name}': choose one of {', '.join(EXPERIMENTS)}")


def images_used(name: str) -> tuple[bool, bool]:
    """(photo, painting): whether experiment ``name``'s pictures are made from the pair's photo and
    from its painting. A content reconstruction never sees the painting, a style one never the photo."""
    configs = [c for _, c in series(name)]
    return (any(c.alpha > 0 or c.init == "content" for c in configs),
            any(c.beta > 0 or c.init == "style" for c in configs))


# A page that starts its own runs leaves this share of the server's ceiling unused: every run that
# finishes recalibrates the estimate, and the next run of the batch is admitted against the new one
# (a first run 1.8 times slower than announced lifts the next estimate by 1.4, the median with the
# measured speed).
FIT_MARGIN = 0.7
MIN_STEPS = 30  # fewer Adam steps from the smooth start leave even conv1_2's reconstruction blurred


def fit_to_limits(configs: list[TransferConfig], estimate, max_run_s: float, max_size: int | None = None,
                  margin: float = FIT_MARGIN, min_steps: int | None = None, min_size: int = 96,
                  ) -> tuple[list[TransferConfig], str]:
    """The experiment's configurations with fewer steps, then a smaller size, so that every run
    fits the server's limits; and a sentence saying what changed and why ("" if nothing did).

    ``estimate(i, config)`` is the seconds the server will announce for run ``i`` with
    ``config``; every run must come in at ``margin`` × ``max_run_s`` or less. ``max_size`` is the
    largest size the memory budget allows one run. All runs keep the same steps and size, so they
    stay comparable: the costliest run sets them."""
    if not configs:
        return configs, ""
    min_steps = MIN_STEPS if min_steps is None else min_steps
    steps, size = configs[0].steps, configs[0].size
    if max_size is not None and size > max_size:
        size = max(min_size, int(max_size))
    target = margin * max_run_s

    def worst(steps: int, size: int) -> float:
        return max(estimate(i, replace(c, steps=steps, size=size)) for i, c in enumerate(configs))

    seconds = worst(steps, size)
    for _ in range(12):
        if seconds <= target:
            break
        ratio = target / seconds
        fewer = max(min_steps, int(steps * ratio * 0.97))
        if fewer < steps:
            steps = fewer
        else:
            smaller = max(min_size, int(size * math.sqrt(ratio)) // 16 * 16)
            if smaller >= size:
                break  # nothing left to lower: the server will refuse and say why
            size = smaller
        seconds = worst(steps, size)
    fitted = [replace(c, steps=steps, size=size) for c in configs]
    if (steps, size) == (configs[0].steps, configs[0].size):
        return fitted, ""
    parts = [f"{steps} steps instead of {configs[0].steps}" if steps != configs[0].steps else "",
             f"{size} px instead of {configs[0].size}" if size != configs[0].size else ""]
    why = (f"so that each run fits this server's limit of {max_run_s:.0f} s per run (the longest is now about "
           f"{seconds:.0f} s)")
    if max_size is not None and configs[0].size > max_size:
        why += f" and its memory for one run ({max_size} px at most)"
    return fitted, f"Fitted to this server: {' and '.join(p for p in parts if p)}, {why}."
