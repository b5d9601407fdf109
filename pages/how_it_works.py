"""How it works: the whole cost function, receptive fields, and why α/β depends on the network."""

import streamlit as st

from nst_core import FORMULAS, plots
from nst_core.analysis import cost_scales, layer_shapes
from nst_core.costs import STYLE_SUMS, TV_FORMULA
from nst_core.describe import friendly_number, normalization_label
from nst_core.images import fit_long_side
from ui import claims, frame, network, pickers
from ui.cache import shared

frame.enter()

st.title("📐 How it works")
model = network.current_model()
content, (style, *_), _ = pickers.chosen_images()
norm = st.session_state["normalization"]
f = FORMULAS[norm]

st.write("Neural style transfer (Gatys, Ecker & Bethge, 2016) does not train a network. A VGG network, "
         "already trained to recognise objects, stays frozen. What changes is the image **G** itself: its "
         "pixels are moved, by gradient descent, until the network sees in G the *content* of a photo C and "
         "the *style* of an artwork S.")
frame.try_this("read one formula, then follow its *See it* link to the page that shows it at work. Check the two "
               "claims with numbers: J_content added up by hand in §1, the network's checksum before and after a "
               "run in §5. Last, the numbers in §7: doubling the image size makes the content cost grow much "
               "more than the style cost.")
st.caption(f"Formulas shown: the **{normalization_label(norm)}** normalization, the one Stylize uses now "
           f"({frame.settings_place('Settings → Advanced → Normalization')}).")

st.header("1 · Content cost")
st.latex(f["content"])
st.write("Pass C and G through the network and compare one layer l's activations, number by number. If they "
         "agree, the network sees the same things in the same places in both images. Which layer matters: "
         "a shallow one pins G to C's exact pixels, a deep one only to its layout."
         + ("" if norm == "seed" else " The mean-squared form divides the sum by the n_H·n_W·n_C activations "
            "instead of halving it: a constant factor, which α absorbs."))
# Filled at the end of the page: the check may need a short run, and the formulas below should not wait for it.
content_slot = st.container()
st.page_link("pages/experiments.py", label="See it: content reconstructions from each layer", icon="🧪")

st.header("2 · Gram matrix")
st.latex(f["gram"])
st.write("For one layer, G[k, k′] adds up, over every position, the product of channel k and channel k′. It "
         "is large when the two features tend to appear at the same places, and it forgets *where* they "
         "appear. That is what makes it a description of style rather than of layout.")
if norm == "seed":
    st.write("The course calls G an *unnormalized cross-covariance*: a cross-covariance would first subtract "
             "each channel's mean and then average the products; G does neither.")
else:
    st.write("With the mean-squared normalization chosen now, G̃ **is** averaged: the sum is divided by "
             "n_C·n_H·n_W, the positions times the channels. The channels' means are still not subtracted, so "
             "it is an averaged product, not yet a cross-covariance. The course's G is the same sum without "
             "the division, which is why the course calls it unnormalized.")
st.page_link("pages/gram.py", label="See it: toy Gram, real Gram, shuffle test", icon="🧮")

st.header("3 · Style cost, one layer")
frame.latex_two_lines(f["style_layer"], STYLE_SUMS)
st.write("Compare the Gram matrices of S and G entry by entry. "
         + ("The factor in front keeps layers of different sizes on a similar footing, though not an equal one: "
            "see the per-layer curves." if norm == "seed" else
            "With the Grams already averaged, the factor 1/n_C² makes this the mean over the n_C² entries; "
            "layers still weigh differently: see the per-layer curves."))
st.page_link("pages/cost_curves.py", label="See it: which layer's style cost dominates a run", icon="📉")

st.header("4 · Style cost over several layers")
st.latex(f["style"])
st.write("Shallow layers carry colour and fine grain; deep layers carry larger motifs. Summing several layers "
         "with weights λ[l] captures the style at every scale, which looks far better than any single layer.")
st.page_link("pages/experiments.py", label="See it: style reconstructions with growing layer sets", icon="🧪")

st.header("5 · The total")
st.latex(f["total"])
st.write("α and β set the trade-off. The gradient of J with respect to G's pixels tells each pixel which way "
         "to move; Adam or L-BFGS take the steps. An optional smoothness term can be added:")
frame.latex_two_lines(TV_FORMULA, " + ")
st.subheader("Check it: only the pixels change")
st.write("Gradient descent here moves the pixels of G; no network parameter is learned. The checksum of every "
         "weight, taken by the loop when the run began and when it ended, shows it:")
weights_slot = st.container()
st.page_link("pages/stylize.py", label="Try it: Stylize", icon="🎨")

st.header("6 · Receptive fields: how much each unit sees")
st.write("A 3×3 convolution lets each unit see one pixel further in every direction; a 2×2 pool doubles the "
         "step between units, so every later convolution grows the field twice as fast. Formally, each "
         "layer adds (kernel − 1) × (current stride) pixels.")
size = st.session_state["size"]
h, w = fit_long_side((content.height, content.width), size)
rows = layer_shapes(model, (h, w))
c1, c2 = st.columns(2)
# Every layer in view, beside the figure: a scrolling box seemed to end at conv4_1.
c1.dataframe([{k: r[k] for k in ("layer", "stride", "receptive field (px)", "n_C")} for r in rows], hide_index=True,
             height=frame.table_height(len(rows)), width="stretch")
firsts = [r for r in rows if r["layer"].endswith("_1")]
c2.pyplot(plots.receptive_fields(content.resize((w, h)), firsts))

st.header("7 · Why the right α/β depends on the network and the image size")
st.write("Multiply every activation by a factor s (a differently trained network can easily differ by 100×). "
         "J_content is a sum of squared differences: it grows by s². J_style compares Gram matrices, which are "
         "already products of two activations: it grows by s⁴. Enlarge the image: J_content sums over more "
         "positions, so it grows with the area, about 4× for twice the side, while the style cost's factor "
         "1/(2·n_H·n_W·n_C)² offsets the growth of the Gram matrix, so J_style changes far less. Neither is "
         "exactly 4× or 1× in the table below: a picture's details change with its size too. An α/β that "
         "works for one network and size is wrong by orders of magnitude for another.")


@shared(max_mb=1, spinner="Measuring cost scales…", heavy=True)
def _scales(model, content, style):
    return cost_scales(model, content, style, "conv4_2", ["conv1_1", "conv3_1", "conv5_1"], sizes=(128, 256))


table = _scales(model, content, style)
small, large = table
# One row per cost, so the table stays three numbers wide and fits a phone.
st.dataframe([{"quantity": name, f"{small['size']} px": friendly_number(small[name]),
               f"{large['size']} px": friendly_number(large[name]),
               "growth": f"{friendly_number(large[name] / small[name], 2)}×"} for name in small if name != "size"],
             hide_index=True, width="stretch")
ratio_c = large["J_content(C,0)"] / small["J_content(C,0)"]
ratio_s = large["J_style[conv3_1](S,0)"] / small["J_style[conv3_1](S,0)"]
st.markdown(f"Measured on {model.description}: doubling the size (4× the area) multiplies the content scale by "
            f"**{ratio_c:.1f}×** and the conv3_1 style scale by **{ratio_s:.1f}×**. The app's **balanced** "
            "weighting therefore divides α by J_content(C, 0) and each λ[l] by J_style[l](S, 0), both measured on "
            "your own images, so the same α = 1, β = 5 gives a similar picture on any network and at any size. "
            "The formulas stay exactly as above; only the numbers in front of them are derived.")

with content_slot:
    evidence = claims.evidence(model, content, style,
                               {k: st.session_state[k] for k in ("content_layer", "pooling", "normalization")})
    claims.content_check(evidence)
with weights_slot:
    claims.weights_check(evidence, model)
