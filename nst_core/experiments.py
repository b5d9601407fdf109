"""Experiments are configurations of the one loop in ``transfer.py``, never copies of it."""

from __future__ import annotations

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
BETA_SWEEP = (0.5, 2.0, 10.0, 50.0)
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
