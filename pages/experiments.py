"""Why does the choice of layer matter? The paper's key figures, on bundled or your own images."""

import json

import streamlit as st

from nst_core import plots, run, to_pil
from nst_core.experiments import EXPERIMENTS, series
from nst_core.transfer import estimate_seconds
from pages import common

common.require_frame()

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

model = common.current_model()
name = st.radio("Experiment", list(EXPERIMENTS), format_func=EXPERIMENTS.get, key="exp_name")
st.info(EXPLAIN[name], icon="💡")

content_name = st.session_state.get("content", "chelsea cat")
style_name = st.session_state.get("style", "flow brush")
folder = common.ASSETS / "experiments" / f"{content_name.replace(' ', '_')}__{style_name.replace(' ', '_')}"
if not (folder / "index.json").is_file():
    folder = common.ASSETS / "experiments" / "chelsea_cat__flow_brush"

st.subheader("Precomputed")
index = json.loads((folder / "index.json").read_text()) if (folder / "index.json").is_file() else {}
if name in index:
    items = index[name]
    images = [common.decode_image((folder / item["file"]).read_bytes())[0] for item in items]
    st.pyplot(plots.image_row(images, [item["label"] for item in items],
                              folder.name.replace("__", " × ").replace("_", " ")))
    st.caption(f"Made with {items[0]['network']} ({items[0]['optimizer']}, {items[0]['steps']} steps at "
               f"{items[0]['size']} px each; {sum(i['seconds'] for i in items):.0f} s in all on a 2-core CPU).")
else:
    st.caption("No precomputed result for this experiment yet: recompute it below.")

st.subheader("Recompute on your images")
content, style, _ = common.chosen_images()
common.images_caption()
configs = series(name)
shape = (content.height, content.width)
seconds = sum(estimate_seconds(cfg, shape, model.arch, common.machine_speed(model.description, model)) for _, cfg in configs)
st.caption(f"{len(configs)} runs at {configs[0][1].size} px, {configs[0][1].steps} steps each: about "
           f"{seconds:.0f} s on this server with {model.description}.")
if name == "weights" and not model.trained:
    st.warning("The sidebar's weights are already random: pick trained weights to see the contrast.")

if st.button("▶ Recompute", type="primary", key="exp_run"):
    results, labels = [], []
    bar = st.progress(0.0, text="Starting…")
    slots = common.run_slots()
    with slots.slot(on_wait=lambda p: bar.progress(0.0, text=f"Queued: {p} run(s) ahead of you.")):
        for i, (label, cfg) in enumerate(configs):
            net = common.load_model(model.arch, "random")[0] if name == "weights" and label == "random" else model
            last = None
            for rec in run(content, [style], cfg, net):
                last = rec
                done = (i + rec.step / max(rec.total_steps, 1)) / len(configs)
                bar.progress(min(done, 1.0), text=f"{label}: step {rec.step}/{rec.total_steps}")
            results.append(to_pil(last.best_image))
            labels.append(label)
    st.session_state[f"exp_result_{name}"] = (results, labels)
    bar.empty()

if f"exp_result_{name}" in st.session_state:
    results, labels = st.session_state[f"exp_result_{name}"]
    st.pyplot(plots.image_row(results, labels, "Your images"))
