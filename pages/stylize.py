"""Stylize: pick a content and a style image, set the costs, run, stop, download, compare."""

import streamlit as st

from nst_core import FORMULAS
from nst_core.transfer import PRESETS
from pages import common

common.require_frame()

st.title("🎨 Stylize")
st.write("The network stays frozen; only the pixels of the generated image **G** change, step by step, "
         "to lower **J(G) = α·J_content + β·J_style**.")

model = common.current_model()
table = model.table
ANY_LAYER = [n for n in table if not n.startswith("relu")]

common.init_state(common.STYLIZE_DEFAULTS)
# A layer chosen on VGG19 (conv5_4, say) may not exist after switching to VGG16.
if st.session_state["content_layer"] not in ANY_LAYER:
    st.session_state["content_layer"] = "conv4_2"
st.session_state["style_layers"] = [n for n in st.session_state["style_layers"] if n in ANY_LAYER]


def apply_preset():
    st.session_state.update(PRESETS[st.session_state["preset"]])


# ---------------------------------------------------------------- images
left, mid, right = st.columns(3)
with left:
    content_name, content = common.image_picker("content", "content", "chelsea cat")
    st.session_state["content_img"] = content
    if content is not None:
        st.image(content, width="stretch")
with mid:
    style_name, style = common.image_picker("style", "style", "flow brush")
    st.session_state["style_img"] = style
    if style is not None:
        st.image(style, width="stretch")
    second = st.checkbox("Blend in a second style", key="use_second_style",
                         help="Each layer's target Gram becomes a weighted mix of both styles' Grams.")
    style2 = None
    if second:
        _, style2 = common.image_picker("style", "style2", "stained glass")
        st.slider("Weight of the second style", 0.0, 1.0, key="blend", step=0.05,
                  help="0 uses only the first style, 1 only the second.")
with right:
    example = common.gallery_image(content_name, style_name)
    st.markdown("**A finished example**")
    if example is not None:
        st.image(str(example[0]), caption=example[1], width="stretch")
    else:
        st.caption("No precomputed result for this pair: press Run below to make one.")

# ---------------------------------------------------------------- settings
st.subheader("Settings")
st.radio("Preset", list(PRESETS), key="preset", horizontal=True, on_change=apply_preset,
         help="Quick: a few coarse-to-fine Adam steps. Paper: L-BFGS from noise with average pooling, "
              "as Gatys et al. did. Fine: more steps for a cleaner result.")
with st.expander("Advanced: layers, weights, optimizer", expanded=False):
    c1, c2 = st.columns(2)
    c1.selectbox("Content layer", ANY_LAYER, key="content_layer",
                 help="Shallow layers pin G to the photo's exact pixels; deep layers keep only its layout.")
    c2.multiselect("Style layers", ANY_LAYER, key="style_layers",
                   help="Gram matrices of these layers define the style. Shallow ones carry colour and fine "
                        "texture, deep ones larger motifs.")
    layers = st.session_state["style_layers"]
    if layers:
        st.caption("λ per style layer (its share of the style cost)")
        cols = st.columns(len(layers))
        for col, name in zip(cols, layers):
            st.session_state.setdefault(f"lam_{name}", round(1.0 / len(layers), 3))
            col.number_input(name, 0.0, 10.0, key=f"lam_{name}", step=0.05,
                             help="Raise it to make this layer's Gram matter more.")
    st.radio("Weighting", ["auto", "raw"], key="balance", horizontal=True,
             format_func=lambda b: {"auto": "Balanced (auto)", "raw": "Raw (as the formula reads)"}[b],
             help="Balanced divides α by J_content(C, 0) and each λ by J_style[l](S, 0), so the same α and β "
                  "work on any network and size. Raw uses them exactly as typed.")
    c1, c2 = st.columns(2)
    if st.session_state["balance"] == "auto":
        scale = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0]
        for key in ("alpha", "beta"):
            if st.session_state[key] not in scale:
                st.session_state[key] = min(scale, key=lambda v: abs(v - st.session_state[key]))
        c1.select_slider("α (content weight)", scale, key="alpha",
                         help="More α: G stays closer to the photo.")
        c2.select_slider("β (style weight)", scale, key="beta",
                         help="More β: stronger texture, less of the photo.")
    else:
        c1.number_input("α (content weight)", min_value=0.0, key="alpha", format="%.3e",
                        help="Raw costs grow with activation scale: J_content like s², J_style like s⁴.")
        c2.number_input("β (style weight)", min_value=0.0, key="beta", format="%.3e",
                        help="Try values 10⁶ or more apart from α: the raw style cost is tiny.")
    c1, c2, c3, c4 = st.columns(4)
    c1.selectbox("Optimizer", ["adam", "lbfgs"], key="optimizer",
                 help="Adam takes steady steps of size lr in pixel space; L-BFGS takes bigger, curvature-aware steps.")
    c2.number_input("Steps", 1, 1000, key="steps", help="More steps: closer to the minimum, longer wait.")
    c3.number_input("Learning rate", 0.001, 10.0, key="lr", format="%.3f",
                    help="Adam: how far each pixel may move per step (0.02 ≈ 5 grey levels). L-BFGS: use 1.")
    c4.selectbox("Start from", ["content", "noise", "style"], key="init",
                 help="Starting from the photo converges much sooner than from noise.")
    c1, c2, c3, c4 = st.columns(4)
    c1.number_input("Coarse-to-fine levels", 1, 3, key="levels",
                    help="2 or 3 runs most steps at half or quarter size first: much faster.")
    c2.number_input("TV weight", 0.0, 100.0, key="tv", format="%.3f",
                    help="Total variation smooths G; 0 turns it off.")
    c3.selectbox("Pooling", ["max", "avg"], key="pooling", help="The paper swapped max for average pooling.")
    c4.checkbox("Keep the photo's colours", key="preserve_color",
                help="Takes the luminance from G and the colours from the content image.")
    st.radio("Normalization", ["seed", "mse"], key="normalization", horizontal=True,
             format_func={"seed": "Course / Gatys: ½·Σ and 1/(2·n_H·n_W·n_C)²",
                          "mse": "Mean squared (PyTorch tutorial)"}.get,
             help="Only constant factors differ; with balanced weighting the result is nearly the same.")
    st.latex(FORMULAS[st.session_state["normalization"]]["style_layer"])

ss = st.session_state
try:
    cfg = common.config_from_state(two_styles=style2 is not None)
    error = None
except ValueError as exc:
    cfg, error = None, str(exc)
common.write_query_params()

st.caption("🔗 The page address now holds these settings: copy it to share this exact setup.")
estimate = common.time_estimate(cfg, content, model) if cfg else None
if estimate:
    st.caption(f"⏱ Estimated time on this server: about {estimate:.0f} s.")

ready = content is not None and style is not None and cfg is not None and (not second or style2 is not None)
if error:
    st.error(f"These settings cannot run: {error}.", icon="🚫")
if st.button("▶ Run", type="primary", disabled=not ready, help="Start the optimization."):
    settings = {"content": content_name, "style": style_name, "network": model.description, **cfg.to_dict()}
    styles = [style] + ([style2] if style2 is not None else [])
    entry = common.run_panel(content, styles, cfg, model, f"{content_name} × {style_name}", settings)
    if entry["status"] == "done":
        st.rerun()  # redraw without the run panel: the result is in the session's gallery below

# ---------------------------------------------------------------- results
runs = ss.get("runs", [])
if runs:
    st.subheader("Latest result")
    latest = runs[0]
    c1, c2 = st.columns([3, 2])
    with c1:
        common.show_run(latest, "latest")
    with c2:
        st.markdown(f"**{latest['label']}** · {latest['model']}")
        st.markdown(common.run_summary(latest))
        if latest.get("weights"):
            w = latest["weights"]
            st.caption(f"Weights actually used: α = {w['alpha']:.3g}, β = {w['beta']:.3g} "
                       f"({'balanced' if latest['settings'].get('balance') == 'auto' else 'raw'}).")
        st.page_link("pages/cost_curves.py", label="See how its costs fell", icon="📉")
    if len(runs) > 1:
        st.subheader("This session's runs, side by side")
        cols = st.columns(4)
        for col, entry in zip(cols, runs[:4]):
            with col:
                if entry.get("image"):
                    st.image(entry["image"], width="stretch")
                st.caption(f"Run {entry['id']} · {entry['status']} · {common.run_summary(entry, short=True)}")
