"""What the Ray backend's three kinds of process share: the actors' names, the settings, the
records that travel between them, and the checks the app process makes before anything reaches
the cluster. The module imports no Ray itself, and no PyTorch: the registry imports it."""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image

from ..limits import server_limit
from ..states import QueueStatus, RunState

NAMESPACE = "nst"
REGISTRY_NAME = "nst_registry"
WORKER_PREFIX = "nst_worker"  # worker i is the named actor f"{WORKER_PREFIX}_{i}"
# How often, at most, a worker sends the best image so far while it keeps improving: what a
# student keeps if the worker dies is at most this old (plus one step).
BEST_EVERY_S = 1.0
# A worker sends what its run did at most this often (and at step 1 and at the end): a small run's
# steps take milliseconds, and one message each cost the registry a tenth of a core at 64 px.
TICK_S = 0.1
MODELS_PER_WORKER = 2  # networks a worker keeps loaded, least recently used dropped first
RESULTS_COUNT = 128  # finished runs the registry keeps, besides their bytes (NST_RESULTS_MB)
MIRRORS_KEPT = 256  # runs an app process remembers following
POLL_S = 1.0  # the longest a mirror's long poll waits for a change before it renews the leases
WORKER_LOST = ("The worker computing this run stopped ({why}) at step {step}. The best image so far is kept; "
               "press Run again to compute it anew.")


def _count(name: str, default: int | None) -> int | None:
    """A positive whole number from serve/limits.py (else ``default``)."""
    return int(server_limit(name)) or default


def ray_settings() -> dict:
    """The Ray backend's settings from the environment (docs/ray.md says what each does)."""
    return {
        "workers": _count("NST_RAY_WORKERS", None),  # None: one per GPU, else one per NST_RAY_THREADS CPUs
        "threads": _count("NST_RAY_THREADS", 1),  # CPUs (torch threads) each worker takes
        "workers_per_gpu": _count("NST_RAY_WORKERS_PER_GPU", 1),
        "max_run_s": server_limit("NST_MAX_RUN_S"),
        "results_mb": server_limit("NST_RESULTS_MB"),
        "memory_mb": server_limit("NST_MEMORY_MB"),  # each worker process's budget: a run over it is refused
    }


def own_rss_mb() -> float:
    """This process's resident size in MB (0 where the system will not say)."""
    try:
        import psutil
        return psutil.Process().memory_info().rss / 2**20
    except Exception:  # noqa: BLE001 - psutil missing or refused: no memory figure, no refusal
        return 0.0


def check_address(address: str) -> str:
    address = (address or "").strip()
    if not address:
        raise ValueError("NST_RAY_ADDRESS is empty: set it to 'auto' on a node of the cluster, or to the "
                         "head's host:port.")
    if address.startswith("ray://"):
        raise ValueError(f"NST_RAY_ADDRESS={address}: Ray Client (ray://) is not supported; Ray no longer "
                         "maintains it. Run the app on a node of the cluster (join it with `ray start "
                         "--address=HEAD:6379`) and set NST_RAY_ADDRESS=auto. See docs/ray.md.")
    return address


# ---------------------------------------------------------------- what travels

@dataclass(frozen=True)
class Tick:
    """The steps a worker computed since its last send: the loop's records without tensors, the
    images encoded. A worker sends at most one every ``TICK_S`` while it runs, and one at the end."""

    steps: tuple = ()  # Step records, without best_image and image
    snapshots: tuple = ()  # (step, JPEG thumbnail of SNAPSHOT_SIDE) at the loop's snapshot steps
    preview: tuple[int, bytes] | None = None  # (step, JPEG at full size) of the newest snapshot
    best: bytes | None = None  # PNG of the best image so far, when it changed (at most every BEST_EVERY_S)
    state: str = "running"  # running, or the run's final state
    message: str = ""


@dataclass(frozen=True)
class Update:
    """What changed in a run since a mirror's last poll (all of it for a first poll)."""

    run_id: str
    key: str
    state: RunState
    version: int
    message: str
    queue: QueueStatus | None
    history_from: int  # index in the run's history of history[0]
    history: tuple
    snapshots_from: int
    snapshots: tuple
    preview: tuple[int, bytes] | None
    best_version: int
    best: bytes | None  # PNG, only when newer than the mirror's
    subscribers: int
    ended_wall: float | None  # time.time() on the registry's node when the run ended


def _encode(image, fmt: str, side: int | None = None, quality: int = 85) -> bytes:
    from ...images import to_pil  # here, not above: the registry imports this module without PyTorch
    img = to_pil(image)
    if side is not None:
        img.thumbnail((side, side))
    buf = io.BytesIO()
    if fmt == "PNG":
        img.save(buf, format="PNG", compress_level=1)
    else:
        img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()



def _decode_png(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as img:
        return img.convert("RGB")



def check_image(image, what: str = "the image") -> None:
    """Turn away, in the app process, an image the cluster could not use (``ImageError``): not an
    image, damaged, or of a size ``load_image`` never returns."""
    from ...images import MAX_ASPECT, MAX_PIXELS, MIN_SIDE, ImageError  # see _encode
    if not isinstance(image, Image.Image):
        raise ImageError(f"{what} is not an image ({type(image).__name__}).")
    w, h = image.size
    if min(w, h) < MIN_SIDE:
        raise ImageError(f"{what} is {w}×{h} pixels: each side needs at least {MIN_SIDE}.")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{what} has more than {MAX_PIXELS // 10**6} million pixels.")
    if max(w, h) / min(w, h) > MAX_ASPECT:
        raise ImageError(f"{what} is {w}×{h} pixels, narrower than 1:{MAX_ASPECT:g}.")
    try:
        image.load()
    except Exception as exc:  # noqa: BLE001 - PIL raises many kinds on a damaged file
        raise ImageError(f"{what} is damaged or truncated and cannot be decoded.") from exc

