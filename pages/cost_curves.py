"""How does the cost fall, and which layer dominates?"""

from dataclasses import replace

import streamlit as st

from nst_core import plots
from nst_core.describe import (differing_labels, filmstrip_steps, friendly_number, layer_share_text,
                               level_switch_note, level_switches, run_caption, share_text, used_weights_text)
from nst_core.settings import SETTINGS, ab_choices
from ui import frame, network, pickers, runs, state

frame.enter()

ss = st.session_state
head, switch = st.columns([3, 1], vertical_alignment="bottom")
head.title("📉 Cost curves")
present = frame.presentation_toggle(switch)
if not present:  # on a projector the curves come first; the words and the A/B controls stay at the desk
    st.write("Gradient descent lowers J(G) = α·J_content + β·J_style step by step. Here you can see how fast, "
             "which part of the cost is being paid, and which style layer carries most of it.")
    frame.try_this("open **Start two runs** and vary **Start from**: the content photo against noise. From the "
                   "photo, the content part starts at 0 and grows a little while the style part falls; from noise, "
                   "both start high. Either way the sum J(G) goes down at each image size: that is what gradient "
                   "descent minimizes. Where a dashed line marks a larger image, J is measured on more pixels and "
                   "may jump up.")
FIGURE_PX = 560  # wide enough to read from the back of a room, short enough to leave both plots in view

model = network.current_model()
FIGURES_KEPT = 12  # drawn figures kept per session, as PNG bytes: a few hundred KB


def _figure(kind: str, key: tuple, draw) -> bytes:
    """A figure drawn once per session and run: a finished run's history never changes, and drawing
    the four figures again took 1–3 s on every click of the page."""
    kept = ss.setdefault("_cc_figures", {})
    if key + (kind,) not in kept:
        kept[key + (kind,)] = plots.png(draw(), dpi=200)
        while len(kept) > FIGURES_KEPT:
            del kept[next(iter(kept))]
    return kept[key + (kind,)]


def _gallery():
    return [r for r in ss.get(runs.GALLERY, []) if r.history]


def _names(records) -> dict[int, str]:
    """A name per run that says what sets it apart from the others listed (``Run 3 · β 5``)."""
    if len(records) == 1:
        return {records[0].id: f"Run {records[0].id}: {records[0].label}"}
    words = differing_labels([{"run": r.id, **r.settings} for r in records])
    names = {}
    for r, w in zip(records, words):
        w = w[0].upper() + w[1:]
        names[r.id] = w if " · " in w else f"{w}: {r.label}"  # nothing else differs: name the images
    return names


def _keep_known(key: str, ids: list[int]) -> None:
    """A widget's remembered choice may name a run the gallery has since dropped."""
    if key in ss:
        value = ss[key]
        ss[key] = [i for i in value if i in ids] if isinstance(value, list) else value if value in ids else ids[0]


def ab_runs(expanded: bool) -> None:
    """Two runs with the Stylize settings that differ in one setting, then overlaid below."""
    with st.expander("Start two runs that differ in one setting (same seed)", expanded=expanded):
        st.write("Uses the images and settings from **Stylize**; only the setting below changes between run A "
                 "and B.")
        options = ab_choices([n for n in model.table if n.startswith("conv")])
        c1, c2, c3 = st.columns(3)
        name = c1.selectbox("Setting to vary", list(options), format_func=lambda k: SETTINGS[k].label,
                            key="ab_field")
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
        # Named as Stylize names its runs, so a label says what differs, not that one run lacks names.
        images = {key: pickers.chosen(key, key)[0] for key in ("content", "style")}
        if base is not None:
            jobs = [runs.Job(f"{tag}: {SETTINGS[name].label} = {fmt(v)}", content, styles,
                             replace(base, **{SETTINGS[name].field: v}), model, images)
                    for tag, v in (("A", a), ("B", b))]
            st.caption(f"⏱ Both runs: about {runs.estimate(jobs):.0f} s on this server.")
            clicked = st.button("Run A, then B", type="primary", key="ab_run")
            panel = st.empty()
            with panel.container():
                done = runs.run_panel(jobs, "ab") if clicked else runs.resume_panel(jobs, "ab")
            if done:
                panel.empty()  # a Stop button left beside finished runs would mislead
                if done[-1].status == "done":
                    st.success(f"Runs {' and '.join(str(r.id) for r in done)} finished: they are overlaid under "
                               "**Compare runs** below.", icon="✅")
                else:
                    st.error(done[-1].message, icon="💥")
                ss["cc_compare"] = [r.id for r in done if r.history]
                ss["cc_run"] = done[-1].id if done[-1].history else ss.get("cc_run")


gallery = _gallery()
if not present:
    ab_runs(expanded=not gallery)
    gallery = _gallery()

if not gallery:
    st.info("No runs yet in this session. Start one on **Stylize**, or run A and B above.", icon="ℹ️")
    st.stop()

ids = [r.id for r in gallery]
by_id = {r.id: r for r in gallery}
names = _names(gallery)
_keep_known("cc_run", ids)
pick_run, pick_scale = st.columns([3, 2], vertical_alignment="bottom")
# Steps by the last record's number: the final record repeats the last step, so the records are one more.
run_id = pick_run.selectbox("Run", ids, key="cc_run", format_func=lambda i: f"{names[i]} ({by_id[i].status}, "
                                                                             f"{by_id[i].last.step} steps)")
entry = by_id[run_id]
history = entry.history
last = history[-1]
SCALES = {"auto": "Automatic", "linear": "Linear (stacked)", "log": "Log"}
scale = pick_scale.radio("Cost axis", list(SCALES), format_func=SCALES.get, horizontal=True, key="cc_scale",
                         help="Linear stacks the parts, so they add up to J. Log draws one line per part and shows "
                              "a fall over many orders of magnitude; the automatic choice takes it when J falls "
                              "more than 20-fold.")
run_tag = (entry.id, entry.key, len(history), scale)  # a live run's history grows: its length is part of the key
costs, layers = st.columns(2, gap="medium")
with costs:
    st.subheader("The three costs")
    st.image(_figure("costs", run_tag, lambda: plots.cost_curves(history, scale=scale)), width=FIGURE_PX)
    st.markdown(f"At the end **J = {friendly_number(last.total)}**: {share_text(last)}.")
    switch_note = level_switch_note(history)
    if switch_note:
        st.info(switch_note, icon="🔍")
with layers:
    st.subheader("Which style layer carries the cost")
    if last.style_layers:
        st.image(_figure("shares", run_tag, lambda: plots.layer_shares(history, title="")), width=FIGURE_PX)
        st.markdown(f"At the end, {layer_share_text(last)}.")
        st.caption("Each layer's Gram sums over its own positions and channels, so raw costs differ by orders of "
                   "magnitude; the balanced weighting (Stylize → Advanced) evens out their starting values.")
    else:
        st.caption("This run has no style layers.")
st.caption(f"**Run {entry.id}**: {run_caption(entry.settings, name_network=False)}. "
           f"🧠 {network.honest_weights(entry.model)}"
           + (f" Weights used: {used_weights_text(entry.weights, entry.settings.get('balance'))}." if entry.weights
              else ""))
if last.style_layers:
    with st.expander("Each style layer's cost on a log scale"):
        st.image(_figure("layers", run_tag, lambda: plots.layer_costs(history, entry.label)), width="stretch")


@st.fragment
def filmstrip(entry) -> None:
    """The run's snapshots; moving the slider redraws only this, not the page's figures."""
    snaps = entry.snapshots
    st.subheader("Filmstrip")
    pick = st.select_slider("Step", [s for s, _ in snaps], value=snaps[-1][0], key=f"film_{entry.id}")
    c1, c2 = st.columns([1, 2])
    c1.image(dict(snaps)[pick], caption=f"Step {pick}", width="stretch")
    strip = filmstrip_steps([s for s, _ in snaps], [s["step"] for s in level_switches(entry.history)])
    # One row of small pictures that wraps, rather than columns that a phone stacks full width.
    c2.image([dict(snaps)[s] for s, _ in strip], width=120,
             caption=[f"step {s}" + (" · larger image" if larger else "") for s, larger in strip])


if entry.snapshots:
    filmstrip(entry)

if len(gallery) > 1:
    st.subheader("Compare runs")
    _keep_known("cc_compare", ids)
    ss.setdefault("cc_compare", ids[:2])
    chosen = st.multiselect("Runs to overlay", ids, format_func=names.get, key="cc_compare")
    if chosen:
        picked = [by_id[i] for i in chosen]
        overlay = _names(picked)  # only what differs between the runs shown together
        figure, words = st.columns(2, gap="medium")
        compared = tuple((r.id, r.key, len(r.history)) for r in picked) + (scale,)
        figure.image(_figure("compare", compared, lambda: plots.compare_runs(
            {overlay[r.id]: r.history for r in picked}, scale=scale)), width=FIGURE_PX)
        with words:
            for r in picked:
                st.markdown(f"**{overlay[r.id]}** ends at J = {friendly_number(r.last.total)} after "
                            f"{r.last.elapsed:.0f} s: {share_text(r.last)}.")
            st.caption("Plotted against seconds, not steps: an L-BFGS step can cost several evaluations, and a "
                       "coarse step costs a quarter of a fine one. Costs are comparable only between runs that "
                       "share the image size and layer set.")
            with st.expander("Every setting of each run"):
                for r in picked:
                    st.caption(f"**{overlay[r.id]}**: {run_caption(r.settings)}.")
