"""Streamlit glue shared by every page: the cached model, the sidebar, image pickers, and the run
panel that drives the one optimization loop. No tensor math here: that lives in ``nst_core``."""

from __future__ import annotations

import io
import json
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import streamlit as st
from PIL import Image, PngImagePlugin

from nst_core import NORMALIZATIONS, ImageError, ModelError, TransferConfig, load_image, load_vgg, run, to_pil
from nst_core.model import ARCHS, WEIGHTS_ENV, configure_threads, resolve_device
from nst_core.slots import RunSlots
from nst_core.transfer import (BALANCES, INITS, OPTIMIZERS, PAPER_STYLE_LAYERS, PRESETS, estimate_seconds,
                               measure_speed)

ROOT = Path(__file__).resolve().parents[1]
_frame = threading.local()
configure_threads()  # once per server process: a hosted container may see more cores than it gets


@contextmanager
def framed():
    """Mark this script run as coming through the entrypoint's navigation (see ``require_frame``)."""
    _frame.active = True
    try:
        yield
    finally:
        _frame.active = False


def require_frame() -> None:
    """Make sure a page runs inside the entrypoint's frame (query parameters, sidebar).

    Streamlit still runs a folder named ``pages/`` in its legacy multipage mode until the entrypoint
    first calls ``st.navigation`` (and AppTest starts every run that way). A page reached like that
    draws the frame itself, and legacy mode is switched off so later runs go through the entrypoint.
    ``client.showSidebarNavigation = false`` hides the legacy page list meanwhile.
    """
    if not getattr(_frame, "active", False):
        from streamlit.runtime.pages_manager import PagesManager
        PagesManager.uses_pages_directory = False
        load_query_params()
        sidebar()


ASSETS = ROOT / "assets"
SIZES = (128, 192, 256, 384, 512)
MAX_RUNS_KEPT = 8  # finished runs kept per session, newest first; bounds a session's memory
RUN_SOURCES = {"imagenet": "ImageNet (torchvision)", "random": "Random (untrained)"}


# ---------------------------------------------------------------- weights and the cached model

def weight_files() -> dict[str, str]:
    """Weight files the server allows: $NST_WEIGHTS and *.pth in $NST_WEIGHTS_DIR.

    Paths come only from the server's environment, never from a student, so nobody can make the
    app read an arbitrary file.
    """
    found = {}
    env = os.environ.get(WEIGHTS_ENV)
    if env and Path(env).is_file():
        found[f"file:{Path(env).name}"] = env
    folder = os.environ.get("NST_WEIGHTS_DIR")
    if folder and Path(folder).is_dir():
        for p in sorted(Path(folder).glob("*.pt*")):
            found.setdefault(f"file:{p.name}", str(p))
    return found


def source_label(source: str) -> str:
    return RUN_SOURCES.get(source) or f"Local file: {source.split(':', 1)[1]}"


@st.cache_resource(max_entries=4, show_spinner="Loading the network…")
def load_model(arch: str, source: str):
    """One frozen model per (architecture, source) for the whole process, shared by all sessions.
    A failure is cached too, so offline servers do not retry the download on every rerun."""
    allowed = weight_files()
    if source not in allowed and source not in RUN_SOURCES:
        return None, f"'{source}' is not one of this server's weight sources."
    try:
        weights = allowed.get(source, source)
        arch_arg = None if source.startswith("file:") else arch
        return load_vgg(arch_arg, weights, seed=0, device=resolve_device("auto")), None
    except (ModelError, OSError) as exc:
        return None, str(exc)


def current_model(notify: bool = False):
    """The model chosen in the sidebar, falling back to another source if it cannot be loaded.
    With ``notify``, say so and offer a retry (the sidebar does; pages just take the model)."""
    arch = st.session_state.get("arch", "vgg19")
    source = st.session_state.get("weights_source", default_source())
    model, error = load_model(arch, source)
    if model is not None:
        return model
    fallback = next(iter(weight_files()), "random")
    if notify:
        st.warning(f"**{source_label(source)} could not be loaded.** {error}\n\n"
                   f"Using **{source_label(fallback)}** instead; pick another source above.", icon="⚠️")
        if st.button("Retry loading", key=f"retry_{source}"):
            load_model.clear()
            st.rerun()
    model, _ = load_model(arch, fallback)
    return model if model is not None else load_model(arch, "random")[0]


def default_source() -> str:
    return next(iter(weight_files()), "imagenet")


def sidebar() -> None:
    """Network, weights, image size and seed: shared by every page through widget keys."""
    recover_interrupted()
    with st.sidebar:
        st.header("Network")
        sources = list(weight_files()) + ["imagenet", "random"]
        st.session_state.setdefault("weights_source", default_source())
        if st.session_state["weights_source"] not in sources:
            st.session_state["weights_source"] = sources[0]
        st.selectbox("Weights", sources, key="weights_source", format_func=source_label,
                     help="Trained weights give real style transfer; random ones show what training adds.")
        if st.session_state["weights_source"].startswith("file:"):
            model = current_model(notify=True)
            st.caption(f"Architecture: {model.arch.upper()} (fixed by the weights file)")
        else:
            st.selectbox("Architecture", ("vgg19", "vgg16"), key="arch",
                         help="VGG19 is the paper's network; VGG16 lacks conv3_4, conv4_4 and conv5_4.")
            model = current_model(notify=True)
        if model.trained:
            st.success(f"In use: {model.description}", icon="✅")
        else:
            st.warning(f"In use: {model.description}. Untrained filters respond to colour and "
                       "texture only weakly and at random: expect noisy, washed-out results.", icon="🎲")
        st.header("Images")
        init_state(SIDEBAR_DEFAULTS)
        st.select_slider("Image size (long side, px)", SIZES, key="size",
                         help="Bigger looks finer but each step costs about (size/256)² times more.")
        st.number_input("Seed", 0, 10**6, key="seed",
                        help="Fixes the starting noise, so the same settings give the same image.")


def init_state(defaults: dict) -> None:
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)


# ---------------------------------------------------------------- images

def bundled(kind: str) -> dict[str, Path]:
    folder = ASSETS / ("content" if kind == "content" else "styles")
    return {p.stem.replace("_", " "): p for p in sorted(folder.iterdir()) if p.suffix in (".jpg", ".png")}


@st.cache_data(max_entries=32, ttl="1h", show_spinner=False)
def decode_image(data: bytes) -> tuple[Image.Image, list[str]]:
    notes: list[str] = []
    return load_image(data, notes), notes


def image_picker(kind: str, key: str, default: str) -> tuple[str, Image.Image | None]:
    """A bundled image or an upload; returns (name, image). Bad uploads get a message, not a crash."""
    choices = bundled(kind)
    names = list(choices) + ["Upload your own…"]
    st.session_state.setdefault(key, default if default in choices else names[0])
    choice = st.selectbox(f"{kind.capitalize()} image", names, key=key)
    if choice != "Upload your own…":
        return choice, decode_image(choices[choice].read_bytes())[0]
    upload = st.file_uploader(f"Upload a {kind} image", type=None, key=f"{key}_upload",
                              help="PNG, JPEG, WebP, GIF, BMP or TIFF, up to 10 MB.")
    if upload is None:
        st.info(f"Choose a file to use as the {kind} image.")
        return "upload", None
    try:
        img, notes = decode_image(upload.getvalue())
    except ImageError as exc:
        st.error(f"That {kind} file cannot be used: {exc}", icon="🚫")
        return upload.name, None
    for note in notes:
        st.caption(f"ℹ️ {note}")
    return upload.name, img


# ---------------------------------------------------------------- the run panel

@st.cache_resource
def run_slots() -> RunSlots:
    """One queue for the whole server process (Streamlit sessions are threads of one process)."""
    return RunSlots(int(os.environ.get("NST_MAX_RUNS", "2")))


def png_bytes(img: Image.Image, settings: dict | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if settings:
        info.add_text("nst-settings", json.dumps(settings, default=str))
    buf = io.BytesIO()
    img.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _thumb(img: Image.Image, side: int = 160) -> bytes:
    img = img.copy()
    img.thumbnail((side, side))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def _store(live: dict, status: str, message: str) -> dict:
    """Turn the live record of a run into a finished entry of this session's gallery."""
    runs = st.session_state.setdefault("runs", [])
    entry = {**live, "status": status, "message": message, "id": st.session_state.get("run_counter", 0) + 1}
    st.session_state["run_counter"] = entry["id"]
    best = live.get("best")
    entry["image"] = png_bytes(to_pil(best), live["settings"]) if best is not None else None
    entry.pop("best", None)
    runs.insert(0, entry)
    del runs[MAX_RUNS_KEPT:]
    return entry


def recover_interrupted() -> None:
    """A Stop click or a widget change reruns the page mid-run: keep what that run had reached."""
    live = st.session_state.pop("live", None)
    if live is not None and live.get("best") is not None:
        _store(live, "stopped", f"Stopped at step {live['history'][-1]['step'] if live['history'] else 0}; "
                                "the best image so far is kept.")


def run_panel(content: Image.Image, styles: list[Image.Image], cfg: TransferConfig, model, label: str,
              settings: dict, kind: str = "stylize") -> dict | None:
    """Run the loop with a progress bar, a live preview and a Stop button; return the stored run."""
    slots = run_slots()
    status = st.empty()
    stop_col, bar_col = st.columns([1, 5])
    stop_col.button("⏹ Stop", key=f"stop_{kind}", help="Stops the run and keeps the best image so far.")
    bar = bar_col.progress(0.0, text="Waiting…")
    preview, chart = st.columns(2)
    preview_slot, chart_slot = preview.empty(), chart.empty()

    def waiting(position: int) -> None:
        bar.progress(0.0, text=f"Queued: {position} run(s) ahead of you share this server's "
                               f"{slots.slots} slot(s). It starts by itself.")

    live = {"label": label, "kind": kind, "settings": settings, "history": [], "snapshots": [], "best": None,
            "weights": {}, "model": model.description, "started": time.time()}
    st.session_state["live"] = live
    gen = None
    with slots.slot(on_wait=waiting):
        try:
            gen = run(content, styles, cfg, model)
            for rec in gen:
                live["history"].append(rec.as_row())
                live["best"], live["weights"] = rec.best_image, rec.weights
                text = (f"Step {rec.step}/{rec.total_steps} · J = {rec.total:.4g} "
                        f"(α·J_content {rec.content:.3g}, β·J_style {rec.style:.3g}) · "
                        f"{rec.elapsed:.0f} s, about {rec.eta:.0f} s left")
                bar.progress(min(rec.step / max(rec.total_steps, 1), 1.0), text=text)
                if rec.image is not None:
                    snap = to_pil(rec.image)
                    live["snapshots"].append((rec.step, _thumb(snap)))
                    preview_slot.image(snap, caption=f"Step {rec.step}", width="stretch")
                    chart_slot.line_chart([{"α·J_content": h["content"], "β·J_style": h["style"]}
                                           for h in live["history"]], height=220)
                if rec.status != "running":
                    break
        finally:
            if gen is not None:
                gen.close()
    st.session_state.pop("live", None)
    final = live["history"][-1] if live["history"] else None
    entry = _store(live, "done" if rec.status == "done" else rec.status, rec.message)
    if rec.status == "diverged":
        status.error(rec.message, icon="💥")
    else:
        status.success(f"Done in {final['elapsed']:.1f} s.", icon="✅")
    return entry


def run_summary(entry: dict, short: bool = False) -> str:
    """The settings that matter most for comparing runs, in words."""
    s = entry.get("settings", {})
    parts = {"content layer": s.get("content_layer"), "style layers": ", ".join(s.get("style_layers") or ()),
             "optimizer": s.get("optimizer"), "steps": s.get("steps"), "size": s.get("size"), "β": s.get("beta"),
             "start": s.get("init")}
    parts = {k: v for k, v in parts.items() if v not in (None, "")}
    if short:
        return ", ".join(f"{k} {v}" for k, v in parts.items() if k != "style layers")
    return "\n".join(f"- **{k}**: {v}" for k, v in parts.items())


def show_run(entry: dict, key: str) -> None:
    """One finished run: its image, status, download buttons and settings."""
    if entry.get("image") is None:
        st.info("This run stopped before its first step.")
        return
    st.image(entry["image"], caption=f"Run {entry['id']}: {entry['label']} ({entry['status']})", width="stretch")
    if entry["status"] != "done":
        st.caption(entry["message"])
    c1, c2 = st.columns(2)
    c1.download_button("⬇ Download PNG", entry["image"], file_name=f"nst_run{entry['id']}.png", mime="image/png",
                       key=f"dl_{key}", help="The PNG also carries the settings in its metadata.")
    c2.download_button("⬇ Settings (JSON)", json.dumps(entry["settings"], indent=2, default=str),
                       file_name=f"nst_run{entry['id']}.json", mime="application/json", key=f"dlj_{key}")


def config_from_state(two_styles: bool = False) -> TransferConfig:
    """The Stylize page's settings as a run configuration (raises ValueError for impossible ones)."""
    ss = st.session_state
    init_state({**STYLIZE_DEFAULTS, **SIDEBAR_DEFAULTS})
    layers = tuple(ss["style_layers"])
    return TransferConfig(
        content_layer=ss["content_layer"], style_layers=layers,
        style_weights=tuple(ss.get(f"lam_{n}", 1.0 / max(len(layers), 1)) for n in layers),
        alpha=float(ss["alpha"]), beta=float(ss["beta"]), tv_weight=float(ss["tv"]), balance=ss["balance"],
        normalization=ss["normalization"],
        optimizer=ss["optimizer"], lr=float(ss["lr"]), steps=int(ss["steps"]), init=ss["init"], size=int(ss["size"]),
        levels=int(ss["levels"]), seed=int(ss["seed"]), pooling=ss["pooling"], preserve_color=ss["preserve_color"],
        style_blend=(1 - ss["blend"], ss["blend"]) if two_styles else None)


@st.cache_resource(max_entries=4, show_spinner=False)
def machine_speed(description: str, _model) -> float:
    return measure_speed(_model)


def time_estimate(cfg: TransferConfig, content: Image.Image | None, model) -> float | None:
    if content is None:
        return None
    shape = (content.height, content.width)
    return estimate_seconds(cfg, shape, model.arch, machine_speed(model.description, model))


def gallery_image(content_name: str, style_name: str):
    """The precomputed result for a bundled pair, with its caption, if one was committed."""
    stem = f"{content_name.replace(' ', '_')}__{style_name.replace(' ', '_')}"
    path = ASSETS / "gallery" / f"{stem}.jpg"
    if not path.is_file():
        return None
    index = ASSETS / "gallery" / "index.json"
    captions = json.loads(index.read_text()) if index.is_file() else {}
    return path, captions.get(stem, "Precomputed result")


# ---------------------------------------------------------------- shareable URLs

def _parse(value: str, like):
    if isinstance(like, bool):
        return value.lower() in ("1", "true", "yes")
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    if isinstance(like, list):
        return [v for v in value.split(",") if v]
    return value


STYLIZE_DEFAULTS = {
    "preset": "Quick", "content_layer": "conv4_2", "style_layers": list(PAPER_STYLE_LAYERS), "balance": "auto",
    "alpha": 1.0, "beta": 5.0, "tv": 0.0, "normalization": "seed", "preserve_color": False, "blend": 0.5, "use_second_style": False,
    **PRESETS["Quick"],
}
SIDEBAR_DEFAULTS = {"size": 256, "seed": 0, "arch": "vgg19"}
# Settings a link carries; the sidebar's are shared by every page.
URL_KEYS = ["weights_source", "arch", "size", "seed", "content", "style", "preset", "content_layer", "style_layers",
            "balance", "alpha", "beta", "steps", "optimizer", "lr", "init", "levels", "tv", "pooling",
            "preserve_color", "normalization"]


_CHOICES = {"arch": ARCHS, "optimizer": OPTIMIZERS, "init": INITS, "pooling": ("max", "avg"),
            "balance": BALANCES, "preset": tuple(PRESETS), "size": SIZES, "normalization": NORMALIZATIONS}
_RANGES = {"steps": (1, 1000), "levels": (1, 3), "lr": (0.001, 10.0), "tv": (0.0, 100.0), "alpha": (0.0, 1e12),
           "beta": (0.0, 1e12), "seed": (0, 10**6)}


def _valid(key: str, value) -> bool:
    if key in _CHOICES:
        return value in _CHOICES[key]
    if key in _RANGES:
        lo, hi = _RANGES[key]
        return lo <= value <= hi
    return True


def load_query_params() -> None:
    """Once per session, seed the widgets from the page address so a shared link reproduces a setup.
    Values that do not parse are ignored; the widgets validate the rest."""
    if st.session_state.get("_query_loaded"):
        return
    st.session_state["_query_loaded"] = True
    defaults = {**STYLIZE_DEFAULTS, **SIDEBAR_DEFAULTS}
    for key in URL_KEYS:
        if key in st.query_params and key not in ("content", "style"):
            like = defaults.get(key, "")
            try:
                value = _parse(st.query_params[key], like)
                if not _valid(key, value):
                    raise ValueError(key)
                st.session_state[key] = value
            except ValueError:
                st.toast(f"Ignored the link's value for {key}.")
    if "content" in st.query_params:
        st.session_state["content"] = st.query_params["content"].replace("_", " ")
    if "style" in st.query_params:
        st.session_state["style"] = st.query_params["style"].replace("_", " ")


def write_query_params() -> None:
    out = {}
    for key in URL_KEYS:
        value = st.session_state.get(key)
        if value is None or value == "Upload your own…":
            continue
        out[key] = ",".join(value) if isinstance(value, list) else str(value).replace(" ", "_")
    if dict(st.query_params) != out:
        st.query_params.from_dict(out)


# ---------------------------------------------------------------- the images the explainer pages use

def image_key(img: Image.Image) -> str:
    """A content hash, so caches key on the picture itself rather than on its name."""
    import hashlib
    return hashlib.md5(img.tobytes() + str(img.size).encode()).hexdigest()


def chosen_images() -> tuple[Image.Image, Image.Image, Image.Image | None]:
    """The content and style picked on Stylize (or the defaults), and the latest generated image."""
    ss = st.session_state
    content = ss.get("content_img") or decode_image(bundled("content")["chelsea cat"].read_bytes())[0]
    style = ss.get("style_img") or decode_image(bundled("style")["flow brush"].read_bytes())[0]
    generated = None
    runs = [r for r in ss.get("runs", []) if r.get("image")]
    if runs:
        generated = Image.open(io.BytesIO(runs[0]["image"])).convert("RGB")
    return content, style, generated


def images_caption() -> None:
    st.caption("Images: the content and style chosen on **Stylize** (change them there), and the latest "
               "generated image from this session's runs.")
