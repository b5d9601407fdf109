"""Bundled images by name, uploads, and the images the explainer pages share.

Every bundled file is listed once, at import, from the folders under ``assets/``: the catalogues
map a name to a path. A name from a widget or a link is only ever looked up in them, never joined
into a path, so no value can make the server open a file outside ``assets/``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import streamlit as st
from PIL import Image

from nst_core import ImageError, load_image
from nst_core.settings import SETTINGS
from ui.cache import shared
from ui.state import UPLOAD, catalogue_label, widget

ASSETS = Path(__file__).resolve().parents[1] / "assets"


def _files(folder: Path, suffixes=(".jpg", ".png")) -> dict[str, Path]:
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in suffixes}


def _experiment_sets() -> dict[str, tuple[dict, dict[str, Path]]]:
    """Precomputed experiments: folder name → (its index, its files by name)."""
    sets = {}
    root = ASSETS / "experiments"
    for folder in sorted(root.iterdir()) if root.is_dir() else ():
        index = folder / "index.json"
        if folder.is_dir() and index.is_file():
            sets[folder.name] = (json.loads(index.read_text()), {p.name: p for p in folder.iterdir()})
    return sets


_CATALOGUES = {"content": _files(ASSETS / "content"), "style": _files(ASSETS / "styles")}
_GALLERY = _files(ASSETS / "gallery", (".jpg",))
_GALLERY_CAPTIONS = json.loads((ASSETS / "gallery" / "index.json").read_text())
_EXPERIMENTS = _experiment_sets()


def catalogue(kind: str) -> dict[str, Path]:
    """Bundled images of one kind ("content" or "style"), by name."""
    return _CATALOGUES[kind]


def bundled_image(kind: str, name: str) -> Image.Image:
    return decode_image(_CATALOGUES[kind][name].read_bytes())[0]


def pair_key(content: str, style: str) -> str:
    return f"{content}__{style}"


def gallery_image(content: str, style: str) -> tuple[Path, str] | None:
    """The committed precomputed result for a bundled pair, with its caption, if there is one."""
    key = pair_key(content, style)
    path = _GALLERY.get(key)
    return (path, _GALLERY_CAPTIONS.get(key, "Precomputed result")) if path else None


def experiment_set(content: str, style: str, name: str) -> tuple[str, dict, dict[str, Path]]:
    """The pair's precomputed experiment ``name``, or else the first pair's that has it (an empty
    index when none was committed): a pair may have only some experiments."""
    key = pair_key(content, style)
    having = [k for k, (index, _) in _EXPERIMENTS.items() if index.get(name)]
    key = key if key in having else next(iter(having), "")
    index, files = _EXPERIMENTS.get(key, ({}, {}))
    return key, index, files


@shared(max_mb=96)
def decode_image(data: bytes) -> tuple[Image.Image, list[str]]:
    notes: list[str] = []
    return load_image(data, notes), notes


def image_picker(key: str, kind: str) -> Image.Image | None:
    """The picker of one image setting (a bundled name or an upload); returns the image or None.
    A decoded upload is kept in the session (``upload_<key>``) so other pages can use it too."""
    choice = widget(key, options=[*catalogue(kind), UPLOAD])
    if choice != UPLOAD:
        return bundled_image(kind, choice)
    upload = st.file_uploader(f"Upload a {kind} image", type=None, key=f"{key}_upload",
                              help="PNG, JPEG, WebP, GIF, BMP or TIFF, up to 10 MB.")
    if upload is None:
        st.session_state.pop(f"upload_{key}", None)
        st.info(f"Choose a file to use as the {kind} image.")
        return None
    try:
        img, notes = decode_image(upload.getvalue())
    except ImageError as exc:
        st.session_state.pop(f"upload_{key}", None)
        st.error(f"That {kind} file cannot be used: {exc}", icon="🚫")
        return None
    for note in notes:
        st.caption(f"ℹ️ {note}")
    st.session_state[f"upload_{key}"] = (upload.name, img)
    return img


def chosen(key: str, kind: str) -> tuple[str, Image.Image | None]:
    """An image setting's name and image, without drawing anything (for every page)."""
    name = st.session_state[key]
    if name != UPLOAD:
        return name, bundled_image(kind, name)
    uploaded = st.session_state.get(f"upload_{key}")
    return (uploaded[0], uploaded[1]) if uploaded else ("upload", None)


def shown_name(key: str, name: str) -> str:
    """An image setting's ``name`` (from :func:`chosen`) as the student knows it: the picker's
    words, or the uploaded file's name."""
    return name if st.session_state[key] == UPLOAD else catalogue_label(name)


def chosen_images() -> tuple[Image.Image, list[Image.Image], Image.Image | None]:
    """The content and style(s) picked on Stylize, and this session's latest generated image. A
    missing upload falls back to the default bundled image, so the explainer pages always draw."""
    content = chosen("content", "content")[1] or bundled_image("content", SETTINGS["content"].default)
    style = chosen("style", "style")[1] or bundled_image("style", SETTINGS["style"].default)
    styles = [style]
    if st.session_state["use_second_style"] and chosen("style2", "style")[1] is not None:
        styles.append(chosen("style2", "style")[1])
    generated = None
    done = [r for r in st.session_state.get("runs", []) if r.image]
    if done:
        generated = Image.open(io.BytesIO(done[0].image)).convert("RGB")
    return content, styles, generated


def images_caption() -> None:
    st.caption("Images: the content and style chosen on **Stylize** (change them there), and the latest "
               "generated image from this session's runs.")
