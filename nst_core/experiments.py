"""Experiments are configurations of the one loop in ``transfer.py``, never copies of it."""

from __future__ import annotations

from dataclasses import replace

from .transfer import TransferConfig


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
