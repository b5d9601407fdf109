"""How does the cost fall, and which layer dominates?"""

from dataclasses import replace

import streamlit as st

from nst_core import plots
from nst_core.model import layer_table
from pages import common

common.require_frame()

st.title("📉 Cost curves")
st.write("Every step lowers J(G) = α·J_content + β·J_style a little. Here you can see how fast, which part "
         "of the cost is being paid, and which style layer carries most of it.")

model = common.current_model()

# ---------------------------------------------------------------- A/B runs started here
with st.expander("▶ Start two runs that differ in one setting (same seed)", expanded=not st.session_state.get("runs")):
    st.write("Uses the images and settings from **Stylize**; only the setting below changes between run A and B.")
    names = [n for n in layer_table(model.arch) if n.startswith("conv")]
    options = {
        "optimizer": ("Optimizer", ["adam", "lbfgs"]),
        "init": ("Start from", ["content", "noise", "style"]),
        "content_layer": ("Content layer", names),
        "beta": ("β (style weight)", [0.5, 2.0, 5.0, 20.0, 100.0]),
        "levels": ("Coarse-to-fine levels", [1, 2, 3]),
    }
    c1, c2, c3 = st.columns(3)
    field = c1.selectbox("Setting to vary", list(options), format_func=lambda f: options[f][0], key="ab_field")
    values = options[field][1]
    a = c2.selectbox("Run A", values, index=0, key=f"ab_a_{field}")
    b = c3.selectbox("Run B", values, index=1 if len(values) > 1 else 0, key=f"ab_b_{field}")
    try:
        base = common.config_from_state()
    except ValueError as exc:
        base = None
        st.error(f"The Stylize settings cannot run: {exc}.")
    content, style, _ = common.chosen_images()
    if base is not None and st.button("Run A, then B", type="primary", key="ab_run"):
        for tag, value in (("A", a), ("B", b)):
            cfg = replace(base, **{field: value})
            label = f"{tag}: {options[field][0]} = {value}"
            common.run_panel(content, [style], cfg, model, label,
                             {"network": model.description, **cfg.to_dict()}, kind=f"ab{tag}")

runs = [r for r in st.session_state.get("runs", []) if r.get("history")]
if not runs:
    st.info("No runs yet in this session. Start one on **Stylize**, or run A and B above.", icon="ℹ️")
    st.stop()

labels = {r["id"]: f"Run {r['id']}: {r['label']} ({r['status']}, {len(r['history'])} steps)" for r in runs}
run_id = st.selectbox("Run", list(labels), format_func=labels.get, key="cc_run")
entry = next(r for r in runs if r["id"] == run_id)
history = entry["history"]

st.subheader("The three costs")
st.pyplot(plots.cost_curves(history, entry["label"]))
w = entry.get("weights") or {}
if w:
    st.caption(f"α = {w['alpha']:.3g}, β = {w['beta']:.3g} in this run. Dashed lines mark a jump to a finer "
               "image size (coarse-to-fine): the costs jump too, because J_content grows with the image area.")

style_keys = [k for k in history[0] if k.startswith("style_")]
if style_keys:
    st.subheader("Which style layer dominates?")
    st.pyplot(plots.layer_costs(history, entry["label"]))
    last = history[-1]
    top = max(style_keys, key=lambda k: last[k])
    share = last[top] / max(sum(last[k] for k in style_keys), 1e-30)
    st.markdown(f"At the last step, **{top[len('style_'):]}** carries **{share:.0%}** of β·J_style. "
                "Each layer's Gram sums over its positions and channels differently, so raw costs differ by "
                "orders of magnitude; the balanced weighting (Stylize → Advanced) evens out their starting values.")

snaps = entry.get("snapshots") or []
if snaps:
    st.subheader("Filmstrip")
    pick = st.select_slider("Step", [s for s, _ in snaps], value=snaps[-1][0], key=f"film_{run_id}")
    c1, c2 = st.columns([1, 2])
    c1.image(dict(snaps)[pick], caption=f"Step {pick}", width="stretch")
    with c2:
        cols = st.columns(min(len(snaps), 6))
        for col, (step, data) in zip(cols, snaps[:: max(1, len(snaps) // 6)][:6]):
            col.image(data, caption=f"{step}", width="stretch")

if len(runs) > 1:
    st.subheader("Compare runs")
    chosen = st.multiselect("Runs to overlay", list(labels), default=list(labels)[:2], format_func=labels.get,
                            key="cc_compare")
    if chosen:
        st.pyplot(plots.compare_runs({labels[i].split(" (")[0]: next(r for r in runs if r["id"] == i)["history"]
                                      for i in chosen}))
        st.caption("Plotted against seconds, not steps: an L-BFGS step can cost several evaluations, and a "
                   "coarse step costs a quarter of a fine one. Costs are comparable only between runs that share "
                   "the image size and layer set.")
