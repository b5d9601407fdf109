"""Weight sources, the cached models, the server's run backend, and the sidebar every page shares."""

from __future__ import annotations

import gc
import logging
import sys
import threading
import weakref
from pathlib import Path

import streamlit as st

from nst_core import ModelError, load_vgg
from nst_core.describe import describe_model, describe_network, offline_notice
from nst_core.model import WEIGHTS_ENV, VGGFeatures, configure_threads, resolve_device
from nst_core.serve import Backend, LocalBackend, NetworkSpec, backend_from_env
from nst_core.serve.limits import server_setting
from ui import state

log = logging.getLogger(__name__)
configure_threads()  # once per server process: a hosted container may see more cores than it gets
# A run's loop competes for the GIL with every session's script thread; a shorter switch interval keeps
# it moving (docs/benchmarks.md, "Constants behind the loop and the server").
sys.setswitchinterval(0.0002)
# Streamlit collects garbage after every script run; the modules and classes loaded by now live as long
# as the process, so they are moved out of the collector's sight once.
gc.freeze()
RUN_SOURCES = {"imagenet": "ImageNet (torchvision)", "random": "Random (untrained)"}


def weight_files() -> dict[str, str]:
    """Weight files the server allows: $NST_WEIGHTS and *.pth in $NST_WEIGHTS_DIR.

    Paths come only from the server's environment, never from a student, so nobody can make the
    app read an arbitrary file.
    """
    found = {}
    env = server_setting(WEIGHTS_ENV)
    if env and Path(env).is_file():
        found[f"file:{Path(env).name}"] = env
    folder = server_setting("NST_WEIGHTS_DIR")
    if folder and Path(folder).is_dir():
        for p in sorted(Path(folder).glob("*.pt*")):
            found.setdefault(f"file:{p.name}", str(p))
    return found


def sources() -> list[str]:
    return [*weight_files(), *RUN_SOURCES]


def source_label(source: str, keep: int = 24) -> str:
    """A source's name in the sidebar; a file's is its stem, shortened in the middle to fit the box."""
    if source in RUN_SOURCES:
        return RUN_SOURCES[source]
    stem = Path(source.split(":", 1)[1]).stem
    return f"File: {stem if len(stem) <= keep else stem[:keep - 9] + '…' + stem[-8:]}"


@st.cache_resource(max_entries=4, show_spinner="Loading the network…")
def _load_weights(arch: str | None, weights: str) -> VGGFeatures:
    """One frozen model per (architecture, weights) for the whole process, shared by all sessions
    and by the runs of the local backend. Raises on failure, and Streamlit caches only successes."""
    model = load_vgg(arch, weights, seed=0, device=resolve_device("auto"))
    _SPECS[model] = NetworkSpec.of(model, weights=weights)
    return model


_SPECS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> how a worker builds it again


def _load(arch: str, source: str) -> VGGFeatures:
    """The model of a weight source; a file's own depth decides its architecture."""
    if source.startswith("file:"):
        return _load_weights(None, weight_files().get(source, source))
    return _load_weights(arch, source)


def network_spec(model: VGGFeatures) -> NetworkSpec:
    """How a run's worker builds ``model`` itself (a file's path is known only where it was loaded)."""
    return _SPECS.get(model) or NetworkSpec.of(model)


def model_for(spec: NetworkSpec) -> VGGFeatures:
    """The cached model of a spec: the local backend computes with the model the pages hold."""
    return _load_weights(spec.arch if spec.weights in ("random", "imagenet") else None, spec.weights)


@st.cache_resource(max_entries=1)
def _backend() -> tuple[Backend, str | None]:
    try:
        return backend_from_env(load_model=model_for), None
    except Exception as exc:  # noqa: BLE001 - a cluster out of reach must not take every page down
        log.exception("the run backend at NST_RAY_ADDRESS could not start")
        return LocalBackend(load_model=model_for), (
            f"The Ray cluster named by NST_RAY_ADDRESS could not be used ({exc}). Runs are computed on "
            "this server instead; see docs/ray.md.")


def backend() -> Backend:
    """Where this server's runs are computed, one for the process: in it, or on the Ray cluster at
    ``NST_RAY_ADDRESS``. Every session's identical runs meet there and are computed once. A cluster
    that cannot be reached leaves the runs to this process, and the sidebar says so."""
    return _backend()[0]


def backend_line() -> tuple[str, str | None]:
    """The sidebar's line on where runs are computed, and a warning when that is not where the
    server's settings asked for."""
    chosen, problem = _backend()
    try:
        return chosen.describe(), problem
    except Exception as exc:  # noqa: BLE001 - a registry that stopped answering is said, not raised
        log.warning("the run backend did not describe itself: %s", exc)
        return "Runs: the Ray cluster is not answering just now; runs wait until it does.", problem


@st.cache_resource(max_entries=1)
def _failures() -> tuple[dict, threading.Lock]:
    """Sources that failed to load in this process, with the reason: an offline server does not retry
    a download on every rerun, and "Retry loading" forgets one entry, not everyone's models."""
    return {}, threading.Lock()


def load_model(arch: str, source: str) -> tuple[VGGFeatures | None, str | None]:
    """(model, None), or (None, why not)."""
    if source not in sources():
        return None, f"'{source}' is not one of this server's weight sources."
    failed, lock = _failures()
    with lock:
        if (arch, source) in failed:
            return None, failed[(arch, source)]
    try:
        return _load(arch, source), None
    except (ModelError, OSError) as exc:
        with lock:
            failed[(arch, source)] = str(exc)
        return None, str(exc)


def retry(arch: str, source: str) -> None:
    failed, lock = _failures()
    with lock:
        failed.pop((arch, source), None)


def current_model(notify: bool = False) -> VGGFeatures:
    """The model chosen in the sidebar, falling back to another source if it cannot be loaded.
    With ``notify``, say so and offer a retry of that one source (the sidebar does)."""
    ss = st.session_state
    arch, source = ss["arch"], ss["weights_source"]
    model, error = load_model(arch, source)
    used = source
    if model is None:
        used = next((s for s in weight_files() if s != source), "random")
        model = load_model(arch, used)[0]
        if model is None:
            used, model = "random", load_model(arch, "random")[0]
        if notify:
            if source == "imagenet":  # a class needs to know what happened, not the download's traceback
                st.warning(offline_notice(arch, _instead(used, model), model.trained), icon="📴")
            else:
                st.warning(f"**{source_label(source)} could not be loaded.** {error}\n\n"
                           f"Using **{source_label(used)}** instead; pick another source above.", icon="⚠️")
            if st.button("Retry loading", key=f"retry_{source}"):
                retry(arch, source)
                st.rerun()
    ss["_loaded_source"] = used
    return model


def _instead(source: str, model: VGGFeatures) -> str:
    if source == "random":
        return f"a {model.arch.upper()} with random, untrained weights"
    return f"the offline {model.arch.upper()} described below"  # the "In use" line names what it is


def honest_weights(description: str) -> str:
    """:func:`describe_weights` for a finished run, which keeps only its network's description
    (``VGG16, weights from x.pth``): the HED file is then named as the edge detector it is."""
    return describe_network(description)


def loaded_source() -> str:
    return st.session_state["_loaded_source"]


def sidebar() -> VGGFeatures:
    """Network, weights, arithmetic, image size and seed: shared by every page. Returns the model."""
    ss = st.session_state
    if ss["weights_source"] not in sources():
        ss["weights_source"] = next(iter(weight_files()), "imagenet")
    with st.sidebar:
        st.header("Network")
        state.widget("weights_source", options=sources(), fmt=source_label)
        if ss["weights_source"].startswith("file:"):
            model = current_model(notify=True)
            st.caption(f"Architecture: {model.arch.upper()} (fixed by the weights file)")
        else:
            state.widget("arch")
            model = current_model(notify=True)
        state.fit_to_model(model.arch)
        if model.trained:
            st.success(f"In use: {describe_model(model)}", icon="✅")
        else:
            st.warning(f"In use: {describe_model(model)} Untrained filters respond to colour and "
                       "texture only weakly and at random: expect noisy, washed-out results.", icon="🎲")
        state.widget("precision")
        st.caption(f"Arithmetic: {model.precision_label(ss['precision'])}. The image, the Gram matrices "
                   "and the costs always stay in float32.")
        line, problem = backend_line()
        st.caption(line)
        if problem:
            st.warning(problem, icon="⚠️")
        st.header("Images")
        state.widget("size")
        state.widget("seed")
    return model
