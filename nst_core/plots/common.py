"""What every figure shares: projector-sized fonts, the colour map, a figure made without pyplot,
and PNG bytes."""

from __future__ import annotations

import io

from matplotlib.figure import Figure

# Sizes in points for a projector: at the dpi the pages draw with (110–130) and the width a column
# gets at 1920×1080, FONT is about 24 screen pixels and MIN_FONT, the smallest text any figure
# has, about 18; at 14 and 10 the tick labels could not be read from the back of a lecture hall.
FONT = 16
MIN_FONT = 13
CMAP = "magma"


def new_figure(w: float, h: float) -> Figure:
    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def png(fig: Figure, dpi: int = 120, tight: bool = True) -> bytes:
    """The figure as PNG bytes, for a page to cache a drawing it shows again and again. ``tight``
    trims the margins, at the price of a second drawing; a figure placed by hand needs none."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    return buf.getvalue()
