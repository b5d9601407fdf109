"""What layers see: activations, feature grids, one channel over its image, and the top-9 patches,
shared by every session and prepared in the background so that a student sliding from conv1_1 to
conv5_1 finds each layer ready.

Two things are prepared ahead, one piece at a time on the process's one background worker
(:func:`ui.cache.background`), never blocking a page:

- the top-patch index of the bundled pictures, every layer in one pass (:data:`INDEX_SCALES`), once
  per network (:func:`warm_server`); a page shows what is done so far until it is ready;
- for an image set a student looks at, every layer's activations and default drawings, and the
  index of the student's own pictures (uploads, their latest result), which joins the bundled one.
"""

from __future__ import annotations

from PIL import Image

from nst_core import plots, to_tensor
from nst_core.analysis import BORDER_PX, activations, channel_order
from nst_core.patches import IndexBuilder, bundled_collection, index_patches, merge_indexes, patch_indexes, patch_view
from nst_core.describe import friendly_number
from nst_core.serve.caches import nbytes
from nst_core.serve.identity import digest, network_identity
from nst_core.serve.memory import memory_budget_mb, resident_mb
from ui import pickers
from ui.cache import background, shared

INDEX_SCALES = (160, 256, 384)  # a deep unit finds a face at 160 px that it misses at 384 px
# Random filters learned no scale to look for: one size shows their (meaningless) taste at a quarter
# of the cost.
RANDOM_SCALES = (256,)


def index_scales(model) -> tuple[int, ...]:
    return INDEX_SCALES if model.trained else RANDOM_SCALES
TILE_PX = 144
# The bundled index takes about 45 MB (18 layers of VGG16); it is built only while the process has
# at least this much of its memory budget left, so it never pushes a run out.
INDEX_ROOM_MB = 300.0


def index_layers(model) -> list[str]:
    """The layers the page offers: every conv (after its ReLU) and pool."""
    return [n for n in model.table if n.startswith(("conv", "pool"))]


# ---------------------------------------------------------------- activations and drawings


@shared(max_mb=160, spinner="Computing activations…", heavy=True)
def acts(model, images, layer, size):
    return _acts(model, images, layer, size)


def _acts(model, images, layer, size):
    return [a.cpu() for a in activations(model, [to_tensor(i) for i in images], layer, size)]


@shared(max_mb=64)
def grid_pictures(model, images, labels, layer, size, n, scaling):
    """The feature grids as PNGs: a student flicking between settings gets each drawing once."""
    return _grids(acts(model, images, layer, size), labels, layer, n, scaling)


def _grids(blocks, labels, layer, n, scaling):
    order = channel_order(blocks[0])
    limits = plots.scale_limits(blocks, scaling, order, n)
    return [plots.png(plots.feature_grid(block, order, f"{label} · {layer}", n=n, limits=lim), dpi=150)
            for label, block, lim in zip(labels, blocks, limits)]


@shared(max_mb=32)
def overlay(model, images, labels, size, idx, layer, channel):
    """One channel's map over its image, drawn once; a page boxes any unit's field on it."""
    return _overlay(images, labels, size, idx, layer, channel, acts(model, images, layer, size))


def _overlay(images, labels, size, idx, layer, channel, blocks):
    return plots.overlay_picture(images[idx].resize((size[1], size[0])), blocks[idx][channel],
                                 f"{labels[idx]}: {layer} channel {channel}", dpi=130)


def warm_layers(model, images, labels, size, n: int, scaling: str, first: str) -> None:
    """Prepare every layer of this image set in the background, nearest to ``first`` first: the
    activations, the feature grids at the student's ``n`` and ``scaling``, and the strongest
    channel over the first image, each stored where the page's own call finds it."""
    images, labels, size = list(images), list(labels), tuple(size)
    key = ("layers", network_identity(model), tuple(digest(i) for i in images), tuple(labels), size, n, scaling)
    names = index_layers(model)
    start = names.index(first) if first in names else 0

    def job():
        for layer in sorted(names, key=lambda name: abs(names.index(name) - start)):
            blocks = acts.peek(model, images, layer, size)
            if blocks is None:
                blocks = _acts(model, images, layer, size)
                # A shallow layer at a large size would push the student's current layer out of the
                # cache, and is the quickest to compute again: only its drawings are kept.
                if nbytes(blocks) <= acts.cache.max_bytes / 8:
                    acts.put(model, images, layer, size, value=blocks)
            if grid_pictures.peek(model, images, labels, layer, size, n, scaling) is None:
                grid_pictures.put(model, images, labels, layer, size, n, scaling,
                                  value=_grids(blocks, labels, layer, n, scaling))
            channel = int(channel_order(blocks[0])[0])
            if overlay.peek(model, images, labels, size, 0, layer, channel) is None:
                overlay.put(model, images, labels, size, 0, layer, channel,
                            value=_overlay(images, labels, size, 0, layer, channel, blocks))
            yield layer

    background().submit(key, job, priority=2)


# ---------------------------------------------------------------- the top-9 patches


@shared(max_mb=96, max_entries=4, spinner="Searching the bundled pictures at three sizes, every layer at once…",
        heavy=True)
def bundled_index(model):
    """Every layer's top-patch index over the bundled photos and paintings (one pass). Pages do not
    call this (it takes a minute or two on two cores): :func:`warm_server` builds it in the background."""
    return patch_indexes(model, bundled_collection(pickers.ASSETS), index_layers(model), index_scales(model),
                         border_px=BORDER_PX)


@shared(max_mb=48, max_entries=32, heavy=True)
def own_index(model, own):
    """Every layer's top-patch index over a student's own pictures, ``own`` = ((name, image), …)."""
    return patch_indexes(model, list(own), index_layers(model), index_scales(model), border_px=BORDER_PX)


def _index_job(model, named, store):
    def job():
        builder = IndexBuilder(model, index_layers(model), index_scales(model), border_px=BORDER_PX)
        for done, (name, img) in enumerate(named):
            for _ in builder.adding(name, img):  # one scale per piece: a student's own work waits less
                yield done, len(named)
        store(builder.build())
    return job


def warm_server(model) -> None:
    """Start the bundled pictures' index for ``model`` in the background, unless it is there or
    under way: at a server's first page, so the class finds it ready. Returns at once."""
    if bundled_index.peek(model) is not None:
        return
    rss = resident_mb()
    if rss is not None and memory_budget_mb() - rss < INDEX_ROOM_MB:
        return  # a later page view tries again, once the runs have given memory back
    background().submit(("bundled index", network_identity(model)),
                        _index_job(model, bundled_collection(pickers.ASSETS), lambda v: bundled_index.put(model, value=v)),
                        priority=0)


def warm_own(model, own) -> None:
    """Index the student's own pictures in the background (a few seconds each)."""
    own = tuple(own)
    if own and own_index.peek(model, own) is None:
        background().submit(("own index", network_identity(model), tuple(digest(img) for _, img in own)),
                            _index_job(model, list(own), lambda v: own_index.put(model, own, value=v)), priority=1)


def index_progress(model, own=()) -> tuple[bool, tuple[int, int] | None, bool]:
    """(bundled index ready, its progress (images done, of) while it is built, own pictures ready)."""
    ready = bundled_index.peek(model) is not None
    done = None if ready else background().progress(("bundled index", network_identity(model)))
    own_ready = not own or own_index.peek(model, tuple(own)) is not None
    return ready, done, own_ready


@shared(max_mb=24)
def top_patches(model, own, layer, channel):
    """The nine places that excite ``channel`` of ``layer`` most, among the bundled pictures and
    ``own`` (already indexed: see :func:`index_progress`), each as (picture, caption, own?).
    Raises LookupError if an index it needs is not there (a page checks first)."""
    bundled = bundled_index.peek(model)
    mine = own_index.peek(model, own) if own else None
    if bundled is None or (own and mine is None):
        raise LookupError("the top-patch index is not ready")
    index = merge_indexes(bundled[layer], mine[layer]) if own else bundled[layer]
    first_own = max(bundled[layer].origin, default=-1) + 1  # merge_indexes numbers own pictures after these
    return [(patch_view(p, TILE_PX), f"{friendly_number(p.value)} · {p.source}", p.image >= first_own)
            for p in index_patches(index, channel, k=9)]


def own_pictures(content: tuple[str, Image.Image | None], styles, generated: Image.Image | None):
    """The student's own pictures to search beside the bundled ones: uploads and their latest
    result. Bundled pictures are searched already; bundled synthetic styles are left out on purpose."""
    own = []
    if content[1] is not None and content[0] not in pickers.catalogue("content"):
        own.append(("your content", content[1]))
    for n, (name, img) in enumerate(styles, 1):
        if img is not None and name not in pickers.catalogue("style"):
            own.append(("your style" if len(styles) == 1 else f"your style {n}", img))
    if generated is not None:
        own.append(("your result", generated))
    return tuple((name, _searchable(img)) for name, img in own)


def _searchable(img: Image.Image, long_side: int = 512) -> Image.Image:
    """As the bundled pictures are searched: at most 512 px (the index looks at 384 px at most)."""
    if max(img.size) <= long_side:
        return img
    small = img.copy()
    small.thumbnail((long_side, long_side), Image.Resampling.LANCZOS)
    return small
