"""What identifies a run: content digests of its images, its settings, and its network.

A run is keyed by the bytes of its images, never by a name a student chose: nobody sees another
student's upload unless they uploaded the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import weakref

import torch
from PIL import Image

from ..transfer import TransferConfig


def digest(value) -> str:
    """A content digest of an image (PIL or tensor), bytes, or a list of them."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()


def _feed(h, value) -> None:
    if isinstance(value, Image.Image):
        h.update(f"PIL:{value.mode}:{value.size}:".encode())
        h.update(value.tobytes())
    elif isinstance(value, torch.Tensor):
        t = value.detach().cpu().contiguous()
        h.update(f"T:{t.dtype}:{tuple(t.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(value, (bytes, bytearray)):
        h.update(b"B:" + bytes(value))
    elif isinstance(value, (list, tuple)):
        h.update(f"L{len(value)}:".encode())
        for v in value:
            _feed(h, v)
    else:
        raise TypeError(f"cannot digest a {type(value).__name__}")


_FINGERPRINTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def network_identity(model) -> str:
    """Architecture, weights source, the arithmetic "auto" resolves to, device and a digest of the
    weights themselves, so two weight files with one name never share results.

    A run's config names its precision ("auto", "fp32" or "bf16"); the arithmetic "auto" picks
    depends on the model and the machine, so it is part of the network's identity: together they
    fix the arithmetic a run computes in, and two servers that resolve "auto" differently never
    share a result."""
    if model not in _FINGERPRINTS:
        h = hashlib.sha256()
        for name, p in model.state_dict().items():
            h.update(name.encode())
            _feed(h, p)
        _FINGERPRINTS[model] = h.hexdigest()[:16]
    auto = model.compute_precision("auto")
    return f"{model.arch}|{model.source}|{auto}|{model.mean.device}|{_FINGERPRINTS[model]}"


def run_key(content, styles, config: TransferConfig, network: str) -> str:
    """The identity of a run: its content and every style image (bytes), every setting, and the
    network (:func:`network_identity`)."""
    styles = list(styles) if isinstance(styles, (list, tuple)) else [styles]
    settings = json.dumps(config.to_dict(), sort_keys=True, default=str)
    h = hashlib.sha256()
    for part in (digest(content), digest(styles), settings, network):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()
