"""Why does the choice of layer matter? The paper's key figures, on bundled or your own images."""

from dataclasses import replace

import streamlit as st

from nst_core import plots
from nst_core.experiments import EXPERIMENTS, RECONSTRUCTION, series
from ui import frame, network, pickers, runs, state

frame.enter()

st.title("🧪 Layer experiments")
st.write("Each experiment runs the same optimization loop with one thing changed. Start from noise and match "
         "**only** one layer's activations, and you see exactly what that layer remembers of the photo.")

EXPLAIN = {
    "content": "Shallow layers (conv1_2, conv2_2) give the photo back almost pixel for pixel. Deeper layers keep "
               "where things are, but let colours and fine detail drift: they store *what* is there, not the "
               "exact pixels. That is why the content layer sits in the middle (conv4_2).",
    "style": "With conv1_1 alone, only colours and the finest grain come back. Each deeper layer adds larger "
             "structures, so the texture's scale grows. Several layers together look far more like the style "
             "than any one alone: each covers a different scale.",
    "content_layer": "Content from conv2_2 holds the photo's pixels tightly, so the style can only tint it. "
                     "Content from conv4_2 keeps the layout and lets the style repaint the surfaces.",
    "beta": "With α fixed, a larger β trades the photo for the texture, step by step.",
    "weights": "An untrained network's conv4_2 still keeps some layout (convolutions are local), but the "
               "trained one keeps recognisable shapes: what the features mean is learned.",
}

model = network.current_model()
name = st.radio("Experiment", list(EXPERIMENTS), format_func=EXPERIMENTS.get, key="exp_name")
st.info(EXPLAIN[name], icon="💡")

st.subheader("Precomputed")
pair, index, files = pickers.experiment_set(st.session_state["content"], st.session_state["style"])
items = [item for item in index.get(name, []) if item.get("file") in files]
if items:
    images = [pickers.decode_image(files[item["file"]].read_bytes())[0] for item in items]
    st.pyplot(plots.image_row(images, [item["label"] for item in items],
                              pair.replace("__", " × ").replace("_", " ")))
    st.caption(f"Made with {items[0]['network']} ({items[0]['optimizer']}, {items[0]['steps']} steps at "
               f"{items[0]['size']} px each; {sum(i['seconds'] for i in items):.0f} s in all on a 2-core CPU).")
else:
    st.caption("No precomputed result for this experiment yet: recompute it below.")

st.subheader("Recompute on your images")
content, styles, _ = pickers.chosen_images()
pickers.images_caption()
try:
    stylize = state.config_from_state(two_styles=len(styles) > 1)
except ValueError as exc:
    st.error(f"The Stylize settings cannot run: {exc}.")
    st.stop()
# Reconstructions keep their own recipe (from noise, small and short, so a class can recompute);
# the network's pooling, normalization, arithmetic and seed are the student's, as are all the
# stylization settings of the layer and β experiments.
recon = replace(RECONSTRUCTION, pooling=stylize.pooling, normalization=stylize.normalization,
                precision=stylize.precision, seed=stylize.seed)
configs = series(name, stylize.style_layers, reconstruction=recon, stylization=stylize)
jobs = [runs.Job(label, content, styles, cfg,
                 network.load_model(model.arch, "random")[0] if name == "weights" and label == "random" else model)
        for label, cfg in configs]
st.caption(f"{len(jobs)} runs at {configs[0][1].size} px, {configs[0][1].steps} steps each, with the Stylize "
           f"settings: about {runs.estimate(jobs):.0f} s on this server with {model.description}.")
if name == "weights" and not model.trained:
    st.warning("The sidebar's weights are already random: pick trained weights to see the contrast.")

result_key = f"exp_result_{name}"
if st.button("▶ Recompute", type="primary", key="exp_run"):
    runs.run_panel(jobs, "experiment", dest=result_key)

results = [r for r in st.session_state.get(result_key, []) if r.image]
if results:
    st.pyplot(plots.image_row([pickers.decode_image(r.image)[0] for r in results],
                              [r.label if r.status == "done" else f"{r.label} ({r.status})" for r in results],
                              "Your images"))
