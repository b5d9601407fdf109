"""The explainer pages' computations, shared by every session and bounded in bytes.

``st.cache_data`` bounds only the number of entries, and a class touring the pages at 512 px
filled the server until the kernel killed it. Here each computation has a budget in MB
(:class:`nst_core.serve.caches.ByteCache`, which also gives memory back when a run needs it), one
computation per key however many students ask at once, and a key made of content digests: an
image is keyed by its pixels, a network by its weights, never by a name a student typed.
"""

from __future__ import annotations

import contextlib
import functools
import threading

import streamlit as st
import torch
from PIL import Image

from nst_core.serve.caches import ByteCache, heavy_turn
from nst_core.serve.identity import digest, network_identity

TTL_S = 3600.0
# One cache per function for the process. Pages are scripts that Streamlit runs again on every
# rerun, so a page's function is a new object each time: the cache is found by where it is defined.
_CACHES: dict[tuple[str, str], ByteCache] = {}
_turn = threading.local()  # whether this thread holds the heavy turn


def _part(value):
    if isinstance(value, torch.nn.Module):
        return network_identity(value)
    if isinstance(value, Image.Image):
        return digest(value)
    if isinstance(value, (list, tuple)):
        return tuple(_part(v) for v in value)
    if isinstance(value, bytes):
        return digest(value)
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    raise TypeError(f"cannot key a shared computation on a {type(value).__name__}")


def shared(max_mb: float, spinner: str | None = None, max_entries: int = 64, heavy: bool = False):
    """Decorate a pure function of models, images, bytes and plain values. Callers must not
    modify what it returns: every session gets the same object.

    ``heavy`` computations take the process's one turn for them (:func:`heavy_turn`) and so must
    call no other shared function: holding the turn while waiting for one that another session
    computes, itself waiting for the turn, would hang both."""
    def decorate(fn):
        name = (fn.__code__.co_filename, fn.__qualname__)
        cache = _CACHES.get(name)
        if cache is None:
            cache = _CACHES.setdefault(name, ByteCache(int(max_mb * 2**20), max_entries=max_entries, ttl_s=TTL_S))

        def call(*args):
            if not heavy:
                return fn(*args)
            with heavy_turn():
                _turn.held = True
                try:
                    return fn(*args)
                finally:
                    _turn.held = False

        @functools.wraps(fn)
        def wrapper(*args):
            if getattr(_turn, "held", False):
                raise RuntimeError(f"{fn.__qualname__} was called inside a heavy shared computation")

            def compute():
                with st.spinner(spinner) if spinner is not None else contextlib.nullcontext():
                    return call(*args)
            return cache.get_or_compute(_part(args), compute)

        wrapper.cache = cache
        return wrapper
    return decorate
