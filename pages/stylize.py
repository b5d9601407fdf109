"""Stylize: pick a content and a style image, set the costs, run, stop, download, compare."""

import streamlit as st

from nst_core import FORMULAS
from ui import frame, network, pickers, runs, state

frame.enter()

st.title("🎨 Stylize")
st.write("The network stays frozen; only the pixels of the generated image **G** change, step by step, "
         "to lower **J(G) = α·J_content + β·J_style**.")

model = network.current_model()
layers = [n for n in model.table if not n.startswith("relu")]
ss = st.session_state

# ---------------------------------------------------------------- images
left, mid, right = st.columns(3)
with left:
    content = pickers.image_picker("content", "content")
    if content is not None:
        st.image(content, width="stretch")
with mid:
    style = pickers.image_picker("style", "style")
    if style is not None:
        st.image(style, width="stretch")
    style2 = None
    if state.widget("use_second_style"):
        style2 = pickers.image_picker("style2", "style")
        state.widget("blend")
with right:
    example = pickers.gallery_image(ss["content"], ss["style"])
    st.markdown("**A finished example**")
    if example is not None:
        st.image(str(example[0]), caption=example[1], width="stretch")
    else:
        st.caption("No precomputed result for this pair: press Run below to make one.")

# ---------------------------------------------------------------- settings
st.subheader("Settings")
state.widget("preset")
with st.expander("Advanced: layers, weights, optimizer", expanded=False):
    c1, c2 = st.columns(2)
    state.widget("content_layer", c1, options=layers)
    state.widget("style_layers", c2, options=layers)
    state.lambda_widgets()
    state.widget("balance")
    c1, c2 = st.columns(2)
    state.widget("alpha", c1)
    state.widget("beta", c2)
    c1, c2, c3, c4 = st.columns(4)
    state.widget("optimizer", c1)
    state.widget("steps", c2)
    state.widget("lr", c3)
    state.widget("init", c4)
    c1, c2, c3, c4 = st.columns(4)
    state.widget("levels", c1)
    state.widget("tv_weight", c2)
    state.widget("pooling", c3)
    state.widget("preserve_color", c4)
    state.widget("normalization")
    st.latex(FORMULAS[ss["normalization"]]["style_layer"])

two = ss["use_second_style"]
try:
    cfg, error = state.config_from_state(), None
except ValueError as exc:
    cfg, error = None, str(exc)
st.caption("🔗 The page address holds these settings: copy it to share this exact setup.")

ready = content is not None and style is not None and cfg is not None and (not two or style2 is not None)
job = None
if ready:
    names = {"content": pickers.chosen("content", "content")[0], "style": pickers.chosen("style", "style")[0]}
    job = runs.Job(f"{names['content']} × {names['style']}", content, [style] + ([style2] if two else []), cfg,
                   model, names)
    st.caption(f"⏱ Estimated time on this server: about {runs.estimate([job]):.0f} s.")
if error:
    st.error(f"These settings cannot run: {error}.", icon="🚫")
if st.button("▶ Run", type="primary", disabled=job is None, help="Start the optimization."):
    done = runs.run_panel([job], "stylize")
else:
    done = runs.resume_panel(job, "stylize")  # after a reload: the same job's run, in flight or kept
if done and done[-1].status == "done":
    st.rerun()  # redraw without the run panel: the result is in the session's gallery below

# ---------------------------------------------------------------- results
gallery = ss.get(runs.GALLERY, [])
if gallery:
    st.subheader("Latest result")
    latest = gallery[0]
    c1, c2 = st.columns([3, 2])
    with c1:
        runs.show_run(latest, "latest")
    with c2:
        st.markdown(f"**{latest.label}** · {latest.model}")
        if latest.last is not None:
            st.caption(f"⏱ Took {latest.last.elapsed:.1f} s; estimated beforehand: {latest.estimated:.1f} s.")
        st.markdown(runs.run_summary(latest))
        if latest.weights:
            w = latest.weights
            st.caption(f"Weights actually used: α = {w['alpha']:.3g}, β = {w['beta']:.3g} "
                       f"({'balanced' if latest.settings.get('balance') == 'auto' else 'raw'}).")
        st.page_link("pages/cost_curves.py", label="See how its costs fell", icon="📉")
    if len(gallery) > 1:
        st.subheader("This session's runs, side by side")
        for col, entry in zip(st.columns(4), gallery[:4]):
            with col:
                if entry.image:
                    st.image(entry.image, width="stretch")
                st.caption(f"Run {entry.id} · {entry.status} · {runs.run_summary(entry, short=True)}")
