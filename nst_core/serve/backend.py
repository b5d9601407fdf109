"""Where runs are computed, behind one small interface: the pages never know which backend ran
their work.

- :class:`LocalBackend` (the default): in this process, as on Community Cloud; no extra dependency.
- ``RayBackend`` (``nst_core.serve.ray_backend``): a Ray cluster, for a department's GPU server or
  many machines. Chosen by ``NST_RAY_ADDRESS``; Ray is imported only then.

A request carries everything a worker process needs to do the run itself (images, a frozen config,
how to build the network), and every answer is a :class:`RunView`: frozen, picklable, no tensors.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from PIL import Image

from ..model import VGGFeatures, load_vgg, resolve_device
from ..transfer import TransferConfig
from .identity import network_identity, run_key
from .lifecycle import RunView
from .limits import server_setting
from .registry import RunRegistry, start_transfer


@dataclass(frozen=True)
class NetworkSpec:
    """What a worker process needs to build the same network itself."""

    arch: str  # "vgg16" | "vgg19"
    weights: str  # "random" | "imagenet" | a path to a features state dict
    seed: int = 0
    identity: str = ""  # network_identity() of the app's model: part of the run key

    @classmethod
    def of(cls, model: VGGFeatures, weights: str | None = None, seed: int = 0) -> NetworkSpec:
        """The spec of a loaded model. A model read from a file does not keep its path: pass it as
        ``weights`` (the app's weight sources know it)."""
        if weights is None:
            if model.source == "file":
                raise ValueError("a network loaded from a file needs its path: NetworkSpec.of(model, weights=path)")
            weights = model.source
        return cls(model.arch, weights, seed, network_identity(model))

    def load(self, device: str = "auto") -> VGGFeatures:
        arch = self.arch if self.weights in ("random", "imagenet") else None  # a file decides its depth
        return load_vgg(arch, self.weights, seed=self.seed, device=resolve_device(device))


@dataclass(frozen=True)
class RunRequest:
    """One student's request for one run; picklable (PIL images, a frozen config, plain values)."""

    content: Image.Image
    styles: tuple[Image.Image, ...]
    config: TransferConfig
    network: NetworkSpec
    session: str  # a stable id of the student's session: at most one waiting run per session
    estimate_s: float | None = None  # the caller's estimate of the run's seconds on this server

    @property
    def key(self) -> str:
        return run_key(self.content, list(self.styles), self.config, self.network.identity)


@runtime_checkable
class RunHandle(Protocol):
    """One session watching one run. Poll :meth:`wait` (it keeps the watch alive) and :meth:`leave`
    when done; a watcher that stops polling without leaving lapses, and its run goes on."""

    key: str
    joined: bool  # True when someone else's run in flight, or a finished one, was joined or served

    def view(self) -> RunView: ...

    def wait(self, after_version: int = -1, timeout: float = 0.5) -> RunView:
        """The view once it is newer than ``after_version``, or after ``timeout`` seconds."""

    def leave(self, stop: bool = False) -> None:
        """Stop watching; with ``stop`` and nobody else watching, the run stops at its next step
        and keeps its best image."""


@runtime_checkable
class Backend(Protocol):
    name: str  # "local" | "ray"
    slots: int  # runs computed at once
    max_run_s: float  # the ceiling on one run's estimated seconds

    def start(self, request: RunRequest) -> RunHandle:
        """Join the identical run in flight, serve a finished one, or queue a new one. Raises
        ``RunRefused`` (admission) before any work."""

    def rejoin(self, key: str, session: str) -> RunHandle | None:
        """Watch the run ``key`` again if it is in flight, or get its kept result in any state."""

    def peek(self, key: str) -> RunView | None:
        """The run in flight or its kept result, in any state, without starting anything."""

    def describe(self) -> str:
        """One line for the sidebar, e.g. "Runs: on this server, 2 at a time"."""

    def close(self) -> None: ...


class LocalBackend:
    """Runs in this process: one :class:`~nst_core.serve.registry.RunRegistry` of shared runs.

    ``load_model`` builds the network of a :class:`NetworkSpec`; the app passes its own cached
    loader so a run uses the model its pages already hold. By default each spec is loaded once.
    """

    name = "local"

    def __init__(self, registry: RunRegistry | None = None,
                 load_model: Callable[[NetworkSpec], VGGFeatures] | None = None):
        self.registry = registry if registry is not None else RunRegistry()
        self._load_model = load_model or self._load_once
        self._models: dict[NetworkSpec, VGGFeatures] = {}
        self._lock = threading.Lock()

    @property
    def slots(self) -> int:
        return self.registry.queue.slots

    @property
    def max_run_s(self) -> float:
        return self.registry.max_run_s

    def _load_once(self, spec: NetworkSpec) -> VGGFeatures:
        with self._lock:
            if spec not in self._models:
                self._models[spec] = spec.load()
            return self._models[spec]

    def start(self, request: RunRequest) -> RunHandle:
        model = self._load_model(request.network)
        return start_transfer(self.registry, request.content, list(request.styles), request.config, model,
                              session=request.session, estimate_s=request.estimate_s)

    def rejoin(self, key: str, session: str) -> RunHandle | None:
        return self.registry.rejoin(key, session)

    def peek(self, key: str) -> RunView | None:
        return self.registry.peek(key)

    def describe(self) -> str:
        return f"Runs: on this server, {self.slots} at a time."

    def close(self) -> None:
        """Nothing to release: run threads end with their runs."""


def backend_from_env(load_model: Callable[[NetworkSpec], VGGFeatures] | None = None) -> Backend:
    """The backend the server's environment names: Ray at ``NST_RAY_ADDRESS`` when it is set, else
    :class:`LocalBackend` (given ``load_model``)."""
    address = server_setting("NST_RAY_ADDRESS")
    if not address:
        return LocalBackend(load_model=load_model)
    from .ray_backend import RayBackend  # Ray is an optional dependency, imported only when asked for
    return RayBackend(address)
