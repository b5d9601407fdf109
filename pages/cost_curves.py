"""How does the cost fall, and which layer dominates?"""

from dataclasses import replace

import streamlit as st

from nst_core import plots
from nst_core.settings import SETTINGS, ab_choices
from ui import frame, network, pickers, runs, state

frame.enter()

st.title("📉 Cost curves")
st.write("Every step lowers J(G) = α·J_content + β·J_style a little. Here you can see how fast, which part "
         "of the cost is being paid, and which style layer carries most of it.")

model = network.current_model()
gallery = [r for r in st.session_state.get(runs.GALLERY, []) if r.history]

# ---------------------------------------------------------------- A/B runs started here
with st.expander("▶ Start two runs that differ in one setting (same seed)", expanded=not gallery):
    st.write("Uses the images and settings from **Stylize**; only the setting below changes between run A and B.")
    options = ab_choices([n for n in model.table if n.startswith("conv")])
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Setting to vary", list(options), format_func=lambda k: SETTINGS[k].label, key="ab_field")
    values = options[name]
    fmt = SETTINGS[name].label_of
    a = c2.selectbox("Run A", values, index=0, key=f"ab_a_{name}", format_func=fmt)
    b = c3.selectbox("Run B", values, index=1 if len(values) > 1 else 0, key=f"ab_b_{name}", format_func=fmt)
    try:
        base = state.config_from_state()
    except ValueError as exc:
        base = None
        st.error(f"The Stylize settings cannot run: {exc}.")
    content, styles, _ = pickers.chosen_images()
    if base is not None:
        jobs = [runs.Job(f"{tag}: {SETTINGS[name].label} = {fmt(v)}", content, styles,
                         replace(base, **{SETTINGS[name].field: v}), model) for tag, v in (("A", a), ("B", b))]
        st.caption(f"⏱ Both runs: about {runs.estimate(jobs):.0f} s on this server.")
        if st.button("Run A, then B", type="primary", key="ab_run"):
            runs.run_panel(jobs, "ab")
            gallery = [r for r in st.session_state.get(runs.GALLERY, []) if r.history]

if not gallery:
    st.info("No runs yet in this session. Start one on **Stylize**, or run A and B above.", icon="ℹ️")
    st.stop()

labels = {r.id: f"Run {r.id}: {r.label} ({r.status}, {len(r.history)} steps)" for r in gallery}
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="cc_run")
entry = next(r for r in gallery if r.id == run_id)
rows = entry.rows()

st.subheader("The three costs")
st.pyplot(plots.cost_curves(rows, entry.label))
w = entry.weights
if w:
    st.caption(f"α = {w['alpha']:.3g}, β = {w['beta']:.3g} in this run. Dashed lines mark a jump to a finer "
               "image size (coarse-to-fine): the costs jump too, because J_content grows with the image area.")

per_layer = entry.history[-1].style_layers
if per_layer:
    st.subheader("Which style layer dominates?")
    st.pyplot(plots.layer_costs(rows, entry.label))
    top = max(per_layer, key=per_layer.get)
    share = per_layer[top] / max(sum(per_layer.values()), 1e-30)
    st.markdown(f"At the last step, **{top}** carries **{share:.0%}** of β·J_style. "
                "Each layer's Gram sums over its positions and channels differently, so raw costs differ by "
                "orders of magnitude; the balanced weighting (Stylize → Advanced) evens out their starting values.")

if entry.snapshots:
    snaps = entry.snapshots
    st.subheader("Filmstrip")
    pick = st.select_slider("Step", [s for s, _ in snaps], value=snaps[-1][0], key=f"film_{run_id}")
    c1, c2 = st.columns([1, 2])
    c1.image(dict(snaps)[pick], caption=f"Step {pick}", width="stretch")
    with c2:
        for col, (step, data) in zip(st.columns(min(len(snaps), 6)), snaps[:: max(1, len(snaps) // 6)][:6]):
            col.image(data, caption=f"{step}", width="stretch")

if len(gallery) > 1:
    st.subheader("Compare runs")
    chosen = st.multiselect("Runs to overlay", list(labels), default=list(labels)[:2], format_func=labels.get,
                            key="cc_compare")
    if chosen:
        by_id = {r.id: r for r in gallery}
        st.pyplot(plots.compare_runs({labels[i].split(" (")[0]: by_id[i].rows() for i in chosen}))
        st.caption("Plotted against seconds, not steps: an L-BFGS step can cost several evaluations, and a "
                   "coarse step costs a quarter of a fine one. Costs are comparable only between runs that share "
                   "the image size and layer set.")
