"""Experiments are configurations of the one loop in ``transfer.py``, never copies of it."""

from __future__ import annotations

from dataclasses import replace

from .transfer import TransferConfig, preset_config


def content_reconstruction(layer: str, base: TransferConfig = TransferConfig()) -> TransferConfig:
    """Match only one layer's activations of the content image, starting from noise (β = 0).

    What comes back shows what that layer keeps: shallow layers return the photo's pixels, deep
    layers only its layout.
    """
    return replace(base, content_layer=layer, alpha=1.0, beta=0.0, init="noise", preserve_color=False)


def style_reconstruction(layers, base: TransferConfig = TransferConfig()) -> TransferConfig:
    """Match only the Gram matrices of ``layers`` of the style image, starting from noise (α = 0)."""
    layers = tuple(layers)
    return replace(base, style_layers=layers, style_weights=None, alpha=0.0, beta=1.0, init="noise",
                   preserve_color=False)


def growing_style_sets(layers) -> list[tuple[str, ...]]:
    """{l1}, {l1, l2}, … — the paper's style reconstructions with ever deeper layer sets."""
    layers = tuple(layers)
    return [layers[: k + 1] for k in range(len(layers))]


def sweep(base: TransferConfig, field: str, values) -> list[TransferConfig]:
    """One config per value of one setting, all else (seed included) equal: an A/B/… comparison."""
    return [replace(base, **{field: v}) for v in values]


CONTENT_LAYERS = ("conv1_2", "conv2_2", "conv3_2", "conv4_2", "conv5_2")
BETA_SWEEP = (0.5, 2.0, 10.0, 50.0)
# Small and short by default so a class can recompute on its own images. From noise, Adam at
# lr 0.05 reached a lower cost than L-BFGS in the same time (60 Adam steps vs 25 L-BFGS steps,
# 128 px, trained VGG16: 0.027 vs 0.076 at conv4_2), because each L-BFGS step spends ~2.5
# evaluations in its line search.
RECONSTRUCTION = TransferConfig(size=128, steps=80, optimizer="adam", lr=0.05, levels=1)
STYLIZATION = preset_config(size=128)

EXPERIMENTS = {
    "content": "Content reconstructions: match one layer only, from noise",
    "style": "Style reconstructions: match Gram matrices of growing layer sets, from noise",
    "content_layer": "The same stylization, content from conv2_2 versus conv4_2",
    "beta": "A sweep of β (style weight) with α = 1",
    "weights": "Trained versus random weights: the same content reconstruction (conv4_2)",
}


def series(name: str, style_layers=None, reconstruction: TransferConfig = RECONSTRUCTION,
           stylization: TransferConfig = STYLIZATION) -> list[tuple[str, TransferConfig]]:
    """The labelled configurations of one experiment, each to be run through ``transfer.run``.

    ``weights`` returns the same configuration twice: the caller runs it on a trained and on a
    random network, which is the only thing that differs.
    """
    style_layers = tuple(style_layers or ("conv1_1", "conv2_1", "conv3_1", "conv4_1", "conv5_1"))
    if name == "content":
        return [(layer, content_reconstruction(layer, reconstruction)) for layer in CONTENT_LAYERS]
    if name == "style":
        return [("+".join(s) if len(s) == 1 else f"conv1_1 … {s[-1]}", style_reconstruction(s, reconstruction))
                for s in growing_style_sets(style_layers)]
    if name == "content_layer":
        return [(f"content {layer}", replace(stylization, content_layer=layer)) for layer in ("conv2_2", "conv4_2")]
    if name == "beta":
        return [(f"β = {b:g}", c) for b, c in zip(BETA_SWEEP, sweep(stylization, "beta", BETA_SWEEP))]
    if name == "weights":
        cfg = content_reconstruction("conv4_2", reconstruction)
        return [("trained", cfg), ("random", cfg)]
    raise ValueError(f"unknown experiment '{name}': choose one of {', '.join(EXPERIMENTS)}")
