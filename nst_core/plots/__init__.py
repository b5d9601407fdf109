"""Matplotlib figures for the explainer pages, and the live cost chart. Each figure function returns
a ``Figure``.

Figures are built with ``matplotlib.figure.Figure`` directly, never through pyplot, so they hold
no global state: concurrent sessions cannot draw into each other's figures, and nothing leaks
when a figure goes out of scope. Font sizes are set for a classroom projector.

``maps`` draws what the network computes, ``curves`` what a run's costs did; pages use both
through this package's names.
"""

from .common import CMAP, FONT, MIN_FONT, png
from .curves import (LOG_DECADES, TERMS, compare_runs, cost_curves, layer_costs, layer_shares,
                     live_cost_chart, stage_spans)
from .maps import (CellPicture, cell_picture, channel_overlay, feature_grid, gram_panels,
                   gram_pictures, overlay_picture, pair_panels, receptive_fields, scale_limits,
                   shuffle_layer_bars, toy_panels)

__all__ = ["CMAP", "FONT", "LOG_DECADES", "MIN_FONT", "TERMS", "CellPicture", "cell_picture",
           "channel_overlay", "compare_runs", "cost_curves", "feature_grid", "gram_panels",
           "gram_pictures", "layer_costs", "layer_shares", "live_cost_chart", "overlay_picture",
           "pair_panels", "png", "receptive_fields", "scale_limits", "shuffle_layer_bars",
           "stage_spans", "toy_panels"]
