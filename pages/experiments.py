"""Why does the choice of layer matter? The paper's key figures, on bundled or your own images."""

from dataclasses import replace

import streamlit as st

from nst_core.describe import describe_model, network_name
from nst_core.experiments import EXPERIMENTS, PRIOR_NOTE, RECONSTRUCTION, images_used, series
from nst_core.images import fit_long_side
from nst_core.transfer import positions
from ui import experiment_jobs, frame, network, pickers, runs, state

frame.enter()

st.title("🧪 Layer experiments")
st.write("Each experiment runs the same optimization loop with one thing changed. The reconstructions start from "
         "smooth colour blobs and match **only** one layer's activations of the photo, or a few layers' Gram "
         "matrices of the painting: you see exactly what those layers remember. The other two are whole "
         "stylizations with one setting changed.")

EXPLAIN = {
    "content": "conv1_2 gives the photo back almost pixel for pixel. conv2_2 still keeps every edge and the fine "
               "detail, but large flat areas already drift in colour. conv3_2 and conv4_2 keep where things are "
               "(the hat, the glasses, the tie) while colours and texture wander: they store *what* is where, not "
               "the exact pixels. By conv5_2 only a rough outline is left among texture. That is why the content "
               "layer sits in the middle (conv4_2): it keeps the layout and leaves the surfaces free for the style.",
    "style": "With conv1_1 alone, only the style's colours come back, in blobs. Each deeper layer adds larger "
             "structures (strokes, then swirls), so the texture's scale grows. Several layers together look far "
             "more like the style than any one alone: each covers a different scale. With all five layers the picture "
             "comes out paler after the same number of steps: conv5_1's Gram is the hardest to match (by the end it "
             "carries the largest share of the style cost, as the run's panel says during Recompute), so the "
             "colours that conv1_1 asks for are matched later. It is not where the run ends up: at 192 px, 600 steps "
             "instead of 150 cut conv1_1's term to a fifth and raised the picture's contrast by a third.",
    "content_layer": "Both keep the layout; the difference is in the surfaces. Content from conv2_2 keeps more "
                     "of the photo's own colours and fine detail (the flag's red stripes, the name tag). Content "
                     "from conv4_2 lets the style repaint more of them: the flag turns to the painting's blues and "
                     "yellows, and the face takes on its strokes.",
    "beta": "With α fixed, each tenfold β trades more of the photo's colours and fine detail for the painting's "
            "strokes. The layout stays even at β = 500: these runs start from the photo, and the style cost does "
            "not care where things are, so nothing pulls the shapes apart.",
    "weights": "The same style reconstruction on two networks. The trained one rebuilds the painting's strokes; "
               "the untrained one only smears its colours, because its filters never learned what a stroke is.",
}

TRY = {
    "content": "Compare conv1_2 with conv4_2 and conv5_2: which details are gone, and what stays where it was?",
    "style": "Go from conv1_1 alone to all five layers: when do the painting's strokes appear, not just its colours?",
    "content_layer": "Look at the flag and the face: which version lets the painting repaint them?",
    "beta": "Find the first β where the painting's strokes cover the whole picture. What of the photo is left "
            "at β = 500?",
    "weights": "Cover the labels: could you tell which picture came from a network that never learned anything?",
}


def image_columns(images, captions):
    """Pictures side by side, each in its own column: on a phone the columns stack, so every picture
    keeps the screen's full width instead of shrinking into one wide strip."""
    for col, img, caption in zip(st.columns(len(images)), images, captions):
        col.image(img, caption=caption, width="stretch")


model = network.current_model()
if model.trained:
    experiment_jobs.warm_random(model)  # loaded and timed before "trained versus random" is picked
name = st.radio("Experiment", list(EXPERIMENTS), format_func=EXPERIMENTS.get, key="exp_name")
frame.try_this(TRY[name])
st.info(EXPLAIN[name], icon="💡")

st.subheader("Precomputed")
pair, index, files = pickers.experiment_set(st.session_state["content"], st.session_state["style"], name)
items = [item for item in index.get(name, []) if item.get("file") in files]
if items:
    # The committed JPEGs go to the browser as they are: no decoding and encoding on every rerun.
    images = [files[item["file"]].read_bytes() for item in items]
    # Only the images this experiment's pictures come from: a content reconstruction never sees the painting.
    used = zip(("photo", "painting"), pair.split("__"), images_used(name))
    st.caption(" · ".join(f"{kind}: {image.replace('_', ' ')}" for kind, image, shown in used if shown).capitalize())
    image_columns(images, [item["label"] for item in items])
    with_prior = ", from the prior's smooth start" if items[0].get("init") == "smooth" else ""
    networks = " and ".join(dict.fromkeys(network_name(item["network"]) for item in items))  # two: trained, random
    st.caption(f"Made with {networks} ({items[0]['optimizer']}, {items[0]['steps']} steps at "
               f"{items[0]['size']} px each{with_prior}; {sum(i['seconds'] for i in items):.0f} s in all on a "
               "busy 2-core CPU).")
else:
    st.caption("No precomputed result for this experiment yet: recompute it below.")

st.subheader("Recompute on your images")
# The prior changes only what is recomputed here (the pictures above were made with it), and only
# the reconstructions: a stylization starts from the photo.
prior = True
if series(name) != series(name, prior=False):  # the reconstructions, not the stylizations
    penalty = " and a total-variation penalty" if any(c.tv_weight for _, c in series(name)) else ""
    prior = st.toggle(f"Prior: smooth start{penalty}", value=True, key="exp_prior",
                      help="Switch it off to start from white noise: a deep layer cannot see fine-grained noise, "
                           "so it never removes it, and the layout drowns in it.")
    st.caption(PRIOR_NOTE if prior else "Prior off: your reconstructions start from white noise with no "
               "smoothness penalty. Compare a deep layer with the pictures above, made with the prior.")
content, styles, _ = pickers.chosen_images()
pickers.images_caption()
try:
    stylize = state.config_from_state(two_styles=len(styles) > 1)
except ValueError as exc:
    st.error(f"The Stylize settings cannot run: {exc}.")
    st.stop()
# Reconstructions keep their own recipe (a prior, sized so a class can recompute in about a minute);
# the network's pooling, normalization, arithmetic and seed are the student's, as are all the
# stylization settings of the layer and β experiments.
recon = replace(RECONSTRUCTION, pooling=stylize.pooling, normalization=stylize.normalization,
                precision=stylize.precision, seed=stylize.seed)
configs = series(name, stylize.style_layers, reconstruction=recon, stylization=stylize, prior=prior)
models = [experiment_jobs.random_twin(model) if name == "weights" and label == "random" else model
          for label, _ in configs]
# This page has no steps or size control: it lowers them itself where the server would refuse a run.
jobs, fitted = experiment_jobs.fitted_jobs(configs, content, styles, models)
st.caption(f"{len(jobs)} runs at {jobs[0].config.size} px, {jobs[0].config.steps} steps each, with the Stylize "
           f"settings: about {runs.estimate(jobs):.0f} s on this server with {model.description}."
           + (f" 🧠 {describe_model(model)}" if model.trained else ""))
if fitted:
    st.caption(f"⚖️ {fitted}")
if name == "content" and items and jobs[0].config.size < items[0]["size"]:
    # A 192 px recompute of the deepest layer often kept no outline at all, while the words above promise one.
    deep, size, made = configs[-1][1].content_layer, jobs[0].config.size, items[0]["size"]
    n_H, n_W = positions(model, deep, fit_long_side((content.height, content.width), size))
    st.caption(f"At {size} px, {deep} sees your picture as a grid of only {n_H}×{n_W} places; the pictures "
               f"above, at {made} px, had {positions(model, deep, (made, made))[0]} on the long side. Your {deep} "
               "may keep no outline at all.")
if name == "weights" and not model.trained:
    st.warning("The sidebar's weights are already random: pick trained weights to see the contrast.")

result_key = f"exp_result_{name}"
if st.button("▶ Recompute", type="primary", key="exp_run"):
    runs.run_panel(jobs, "experiment", dest=result_key)
else:
    runs.resume_panel(jobs, "experiment", dest=result_key)

results = [r for r in st.session_state.get(result_key, []) if r.image]
if results:
    st.caption("Your images")
    image_columns([pickers.decode_image(r.image)[0] for r in results],
                  [r.label if r.status == "done" else f"{r.label} ({r.status})" for r in results])
