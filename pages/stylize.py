"""Stylize: pick a content and a style image, press Run and watch G change; the settings sit below.

Projector first: the images, the Run button and the stage (where the live preview and then the
result appear) share the top of the page, so a room sees the run start without anyone scrolling.
"""

import streamlit as st

from nst_core import FORMULAS
from nst_core.costs import STYLE_SUMS
from nst_core.describe import (differing_labels, friendly_number, run_caption, share_text, took_text,
                               used_weights_text)
from ui import frame, network, pickers, runs, state

frame.enter()

model = network.current_model()
layers = [n for n in model.table if not n.startswith("relu")]
ss = st.session_state

head, switch = st.columns([3, 1], vertical_alignment="bottom")
head.title("🎨 Stylize")
present = frame.presentation_toggle(switch)
if not present:
    st.write("The network stays frozen; only the pixels of the generated image **G** change, step by step, "
             "to lower **J(G) = α·J_content + β·J_style**.")

top = st.container()  # images, Run, and the stage
below = st.container()  # the settings
JUST_DONE = "stylize_just_done"  # a run finished in the script run before this one
TRY = ("press **Run** and watch the preview: the network never changes, only the pixels of G do (How it works "
       "§5 shows the network's checksum before and after). Then set **Start from** to *noise* (Settings → "
       "Advanced) and run again: G begins as static and takes on the painting's colours and strokes, but keeps "
       "little of the photo. With Quick only a faint outline shows through, and even Paper's 150 steps bring back "
       "only faint traces, such as the photo's strongest edges. Starting from the photo is what keeps its layout.")

# ---------------------------------------------------------------- settings (drawn first: they stay live
# while a run is drawn above them, so changing one stops the run as everywhere else)
with below:
    if not present:
        st.subheader("Settings")
        c1, c2, c3 = st.columns([1, 1, 1], vertical_alignment="bottom")
        with c1:
            state.widget("use_second_style")
        if ss["use_second_style"]:
            with c2:
                pickers.image_picker("style2", "style")
            with c3:
                state.widget("blend")
        with st.expander("Advanced: layers, weights, optimizer", expanded=False):
            c1, c2 = st.columns(2)
            state.widget("content_layer", c1, options=layers)
            state.widget("style_layers", c2, options=layers)
            state.lambda_widgets()
            state.widget("balance")
            for row in (("alpha", "beta"), ("optimizer", "steps", "lr", "init"),
                        ("levels", "tv_weight", "pooling", "preserve_color"), ("style_scale", "normalization")):
                for column, key in zip(st.columns(len(row)), row):
                    state.widget(key, column)
            frame.latex_two_lines(FORMULAS[ss["normalization"]]["style_layer"], STYLE_SUMS)
        st.caption("🔗 The page address holds these settings: copy it to share this exact setup.")

# ---------------------------------------------------------------- images and Run
two = ss["use_second_style"]
style2 = pickers.chosen("style2", "style")[1] if two else None
with top:
    inputs, stage = st.columns([1, 3] if present else [2, 3], gap="medium")
    inputs = inputs.container(key="inputs")  # its pictures are kept short (ui.frame): Run stays in view
with inputs:
    columns = st.columns(3 if two and style2 is not None else 2)
    with columns[0]:
        content = pickers.image_picker("content", "content")
        if content is not None:
            st.image(content, width="stretch")
    with columns[1]:
        style = pickers.image_picker("style", "style")
        if style is not None:
            st.image(style, width="stretch")
    if len(columns) == 3:  # the second style is part of the recipe, so it is shown beside the first
        columns[2].caption(f"Blended in at {ss['blend']:.0%}: {state.catalogue_label(ss['style2'])}")
        columns[2].image(style2, width="stretch")
    if not present:
        state.widget("preset")
    try:
        cfg, error = state.config_from_state(), None
    except ValueError as exc:
        cfg, error = None, str(exc)
    ready = content is not None and style is not None and cfg is not None and (not two or style2 is not None)
    job = None
    if ready:
        names = {"content": pickers.chosen("content", "content")[0], "style": pickers.chosen("style", "style")[0]}
        label = " × ".join(pickers.shown_name(key, name) for key, name in names.items())
        job = runs.Job(label, content, [style] + ([style2] if two else []), cfg, model, names)
    if error:
        st.error(f"These settings cannot run: {error}.", icon="🚫")
    # A row, not columns: columns stack on a phone, which put the words beside Run below the fold.
    run_row = st.container(horizontal=True, wrap=False, vertical_alignment="center", gap="medium")
    # No tooltip: it would cover the presets above while the pointer rests on Run during the run.
    clicked = run_row.button("▶ Run", type="primary", disabled=job is None)
    clicked = runs.run_requested("stylize") or clicked  # a refusal's "Run at 384 px" counts as Run
    beside_run = run_row.empty()
    just_done = ss.pop(JUST_DONE, False)
    if job is not None:
        # On a phone the run's panel opens below the fold: without a word beside Run, Run seemed to do nothing.
        beside_run.caption("⏳ Running: its preview and Stop are in the run's panel (below, on a phone)." if clicked
                           else "✅ Done: the result is in the stage (below, on a phone)." if just_done
                           else runs.estimate_text([job]))

# ---------------------------------------------------------------- the stage: live run, then the result
with stage:
    box = st.container(key="stage")
with box:
    panel = st.empty()
    # Claimed before the run starts: Streamlit would otherwise keep showing the previous result,
    # faded, under the live preview until the run ends.
    shown = st.empty()
    with panel.container():
        # After a dropped connection or a reload, the same job's run is found in flight and shown again.
        jobs = [job] if job is not None else []
        done = (runs.run_panel(jobs, "stylize", retry=True) if clicked and jobs
                else runs.resume_panel(jobs, "stylize"))
    if done and done[-1].status == "done":
        ss[JUST_DONE] = True  # said beside Run after the redraw: on a phone the result is below the fold
        st.rerun()  # redraw with the result in the stage and the run in the gallery
    if clicked and job is not None:  # refused or stopped: Run can be pressed again
        beside_run.caption(runs.estimate_text([job]))
    # Otherwise the panel already gave way to its message (and a refusal's buttons): no Stop is left.
    gallery = ss.get(runs.GALLERY, [])
    picture, words = shown.container().columns([3, 2])
    if gallery:
        latest = gallery[0]
        with picture:
            st.subheader("Latest result")
            runs.show_run(latest, "latest")
        with words:
            st.markdown(f"**{latest.label}**")
            if latest.last is not None:
                st.markdown(f"Final cost J = {friendly_number(latest.last.total)}: {share_text(latest.last)}.")
                st.caption(took_text(latest.last, latest.estimated))
            st.page_link("pages/cost_curves.py", label="See how its costs fell", icon="📉")
            st.caption(run_caption(latest.settings, name_network=False) + ". 🧠 "
                       + network.honest_weights(latest.model))
            if latest.weights:
                with st.expander("α, β and λ as the run used them"):
                    st.caption(used_weights_text(latest.weights, latest.settings.get("balance")) + ".")
    else:
        example = pickers.gallery_image(ss["content"], ss["style"])
        with picture:
            st.markdown("**A finished example**")
            if example is not None:
                st.image(str(example[0]), width="stretch")
            else:
                st.caption("No precomputed result for this pair: press ▶ Run to make one.")
        with words:
            if example is not None:
                st.caption(example[1] + (" (the first style only)" if two else ""))
            # The example names its own network above; this line is about the student's next run.
            st.caption("🧠 ▶ Run uses " + network.honest_weights(model.description))
    frame.try_this(TRY)  # after the stage: on a phone the run shows right under the Run button

# ---------------------------------------------------------------- this session's runs
if len(gallery) > 1:
    st.subheader("This session's runs, side by side")
    shown = gallery[:4]
    labels = differing_labels([{"run": r.id, **r.settings} for r in shown])
    for col, entry, label in zip(st.columns(4), shown, labels):
        with col:
            if entry.image:
                st.image(entry.image, width="stretch")
            st.caption(f"{label[0].upper()}{label[1:]} · {entry.status}")
