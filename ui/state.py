"""The student's settings: kept in session state under the table's keys, fed to the widgets, and
mirrored in the page address.

Streamlit forgets a widget's value when a run does not draw it, as on every other page. So the
settings live under keys of our own (the table's), which no widget owns. A widget gets its own key
(``_w_`` + the setting's), is given the setting's value before it is drawn, and copies a change
back in its ``on_change`` callback, which Streamlit calls before the rerun. Any page, drawn or not,
can then read every setting, and the URL can always say what they are.
"""

from __future__ import annotations

import streamlit as st

from nst_core.model import ARCHS, layer_table
from nst_core.settings import (SETTINGS, WEIGHT_SCALE, config_from, defaults, inactive_reason, parse_query,
                               to_query)
from nst_core.transfer import PRESETS, TransferConfig

WIDGET = "_w_"
UPLOAD = "upload"  # an image setting's "Upload your own…" entry; never a bundled name (those have no spaces)


def _layers(arch: str) -> list[str]:
    return [n for n in layer_table(arch) if not n.startswith("relu")]


def start(sources: list[str], content: list[str], styles: list[str]) -> None:
    """Once per session: the defaults, then whatever the link says (each refusal gets a notice).
    A link may name only the weight ``sources`` the server offers and the bundled ``content`` and
    ``styles`` images."""
    ss = st.session_state
    for key, value in defaults().items():
        ss.setdefault(key, value)
    if ss.get("_link_read"):
        return
    ss["_link_read"] = True
    context = {"layers": sorted({n for arch in ARCHS for n in _layers(arch)}), "sources": sources,
               "content": content, "style": styles}
    given = {key: st.query_params.get_all(key) for key in st.query_params}
    values, notices = parse_query(given, context)
    ss.update(values)
    if notices:
        st.toast("Ignored in the link: " + "; ".join(notices[:5]) + (" …" if len(notices) > 5 else ""), icon="⚠️")


def fit_to_model(arch: str) -> None:
    """Layers chosen on one network (conv5_4 on VGG19, say) may not exist on the one now loaded."""
    ss = st.session_state
    names = _layers(arch)
    ss["arch"] = arch
    if ss["content_layer"] not in names:
        ss["content_layer"] = SETTINGS["content_layer"].default
    ss["style_layers"] = [n for n in ss["style_layers"] if n in names]
    ss["style_weights"] = {n: lam for n, lam in ss["style_weights"].items() if n in ss["style_layers"]}


def write_url(arch: str, source: str) -> None:
    """Make the page address hold the current settings and name the network really loaded."""
    values = {**{k: st.session_state[k] for k in SETTINGS}, "arch": arch, "weights_source": source}
    query = {k: v for k, v in to_query(values).items() if v != UPLOAD}
    if not values["use_second_style"]:
        for key in ("style2", "blend"):
            query.pop(SETTINGS[key].url)
    if dict(st.query_params) != query:
        st.query_params.from_dict(query)


def values() -> dict:
    return {k: st.session_state[k] for k in SETTINGS}


def config_from_state(two_styles: bool | None = None) -> TransferConfig:
    """The Stylize settings as a run configuration (ValueError for impossible ones)."""
    ss = st.session_state
    if two_styles is None:
        two_styles = bool(ss["use_second_style"])
    return config_from(values(), two_styles)


def _keep(key: str) -> None:
    value = st.session_state[WIDGET + key]
    st.session_state[key] = list(value) if isinstance(value, list) else value
    if key == "preset":
        st.session_state.update(PRESETS[value])


def _keep_lambda(name: str) -> None:
    st.session_state["style_weights"] = {**st.session_state["style_weights"],
                                         name: st.session_state[f"{WIDGET}lam_{name}"]}


def widget(key: str, where=st, options=None, label: str | None = None, fmt=None):
    """Draw the setting's widget (kind, label, choices, range and help from the table) fed from and
    feeding back into the setting's own state; return the current value."""
    s = SETTINGS[key]
    ss = st.session_state
    options = list(options if options is not None else s.choice_list())
    value = ss[key]
    kw = dict(label=label or s.label, key=WIDGET + key, help=s.help, on_change=_keep, args=(key,))
    idle = inactive_reason(key, ss)
    if idle:  # e.g. the seed of a run that starts from the photo: shown, but not offered
        kw.update(disabled=True, help=f"{s.help} {idle}")
    kind = s.widget
    if kind == "weight":
        if ss["balance"] == "auto":
            # A value from a link that is off the scale is offered beside it, not snapped to it:
            # drawing Stylize must not change what the other pages run with.
            kind, options = "select_slider", sorted({*WEIGHT_SCALE, value})
        else:
            kind = "number_raw"
    ss[WIDGET + key] = list(value) if isinstance(value, list) else value
    fmt = fmt or (catalogue_label if key in IMAGE_KEYS else s.label_of)
    if kind == "select":
        where.selectbox(options=options, format_func=fmt, **kw)
    elif kind == "radio":
        where.radio(options=options, format_func=fmt, horizontal=True, **kw)
    elif kind == "multiselect":
        # Chips on one line hid every layer past the third in a phone's column.
        where.multiselect(options=options, wrap=True, **kw)
    elif kind == "select_slider":
        where.select_slider(options=options, **kw)
    elif kind == "checkbox":
        where.checkbox(**kw)
    elif kind == "toggle":
        where.toggle(**kw)
    elif kind == "slider":
        where.slider(min_value=s.low, max_value=s.high, step=s.step, **kw)
    elif kind == "number_raw":
        where.number_input(min_value=0.0, format="%.3e", **kw)
    elif s.kind is int:
        where.number_input(min_value=int(s.low), max_value=int(s.high), **kw)
    else:
        where.number_input(min_value=float(s.low), max_value=float(s.high), format="%.3f", **kw)
    return ss[key]


def lambda_widgets() -> None:
    """One λ per chosen style layer, kept in the ``style_weights`` setting (layer → λ)."""
    s = SETTINGS["style_weights"]
    layers = st.session_state["style_layers"]
    if not layers:
        return
    st.caption(s.label + " (its share of the style cost)")
    for col, name in zip(st.columns(len(layers)), layers):
        st.session_state[f"{WIDGET}lam_{name}"] = float(st.session_state["style_weights"].get(
            name, round(1.0 / len(layers), 3)))
        col.number_input(name, s.low, s.high, step=s.step, key=f"{WIDGET}lam_{name}", help=s.help,
                         on_change=_keep_lambda, args=(name,))


IMAGE_KEYS = ("content", "style", "style2")


def catalogue_label(name: str) -> str:
    return "Upload your own…" if name == UPLOAD else name.replace("_", " ")

