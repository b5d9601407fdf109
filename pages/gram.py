"""What is style, concretely? The Gram matrix, from a toy block to the real network."""

import pandas as pd
import streamlit as st
import torch

from nst_core import FORMULAS, gram_matrix, plots, to_pil, to_tensor
from nst_core.analysis import (TOY_KINDS, fit_image, gram_distance, gram_parts, style_channel_order, toy_block,
                               toy_entries)
from nst_core.checks import shuffle_by_layer
from nst_core.describe import friendly_number, gram_entry_text, shuffle_text, toy_order_text
from ui import frame, network, pickers
from ui.cache import shared

frame.enter()

st.title("🧮 What is style, concretely?")
st.write("Style is measured by **which channels fire together**. For every pair of channels k and k′, "
         "multiply their two maps position by position and add everything up. That one number is G[k, k′].")
st.latex(FORMULAS["seed"]["gram"])


# ---------------------------------------------------------------- toy
@shared(max_mb=8)
def _toy_pictures(shape, values, k, k2):
    """The four toy panels for a block given as its shape and flat values (plain numbers, so the
    drawing is cached by what the student typed)."""
    block = torch.tensor(values).reshape(shape)
    return [plots.png(fig, dpi=130) for fig in plots.toy_panels(block, gram_matrix(block), k, k2)]


@st.fragment
def toy_section():
    st.header("1 · A toy layer with five channels")
    frame.try_this("choose *fire together*, then *independent*, then *never fire together*, and watch G[0, 1] "
                   "fall (under the choice, and in the orange matrix). Then type a big number into channel 0 where "
                   "channel 1 is 0: G[0, 1] does not move, because only places where **both** fire add to it.")
    c1, c2 = st.columns([2, 3])
    kind = c1.radio("Make channels 0 and 1…", list(TOY_KINDS), horizontal=True, key="toy_kind",
                    format_func=TOY_KINDS.get)
    seed = int(c1.number_input("Random block seed", 0, 999, 0, key="toy_seed"))
    entry_slot = c1.empty()  # under the choice, so a phone shows the number change without scrolling
    block = toy_block(kind, seed=seed)
    with c2:
        st.caption("Edit channel 0's 4×4 map (activations are ≥ 0, as after a ReLU):")
        edited = st.data_editor(pd.DataFrame(block[0].numpy()), key=f"toy_editor_{kind}_{seed}", width="stretch",
                                num_rows="fixed")
        block[0] = torch.tensor(edited.clip(lower=0).fillna(0).to_numpy(), dtype=torch.float32)
    entry_slot.metric("G[0, 1] of this block", friendly_number(float(gram_matrix(block)[0, 1])))
    c1, c2 = st.columns(2)
    k = c1.selectbox("Channel k", range(5), index=0, key="toy_k")
    k2 = c2.selectbox("Channel k′", range(5), index=1, key="toy_k2")
    pictures = _toy_pictures(tuple(block.shape), tuple(block.flatten().tolist()), k, k2)
    for col, picture in zip(st.columns(4), pictures):
        col.image(picture, width="stretch")
    entries = toy_entries(seed)
    st.markdown(f"**G[0, 1] in the three cases** (seed {seed}, before your edits): "
                f"{toy_order_text(entries, TOY_KINDS)}. Firing at the same places gives the largest entry; "
                "never firing together gives 0.")

    st.subheader("G is an unnormalized cross-covariance")
    st.write("The **cross-covariance** of two channels asks: when channel k is above its average, is channel k′ "
             "above its average too? Subtract each channel's mean μ, multiply, and average over the positions: "
             "positive when they rise together, about 0 when they are independent, negative when one is on "
             "where the other is off. G skips both steps, so it is that cross-covariance plus a part that is "
             "there merely because both channels are active at all:")
    st.latex(r"G_{kk'} = \sum_{i,j} a_{ijk}\,a_{ijk'} = n_H n_W \left(\operatorname{cov}_{kk'} + \mu_k\,\mu_{k'}\right)")
    st.markdown(gram_entry_text(gram_parts(block, k, k2), k, k2))


toy_section()

# ---------------------------------------------------------------- real
st.header("2 · The real thing")
model = network.current_model()
content, (style, *_), generated = pickers.chosen_images()
pickers.images_caption()
side = min(st.session_state["size"], 256)


def _style_layers(model) -> list[str]:
    return [n for n in model.table if n.startswith("conv") and n.endswith("_1")]


@shared(max_mb=128, spinner="Computing the Gram matrices of every layer…", heavy=True)
def _layer_grams(model, image, side):
    """Every style layer's Gram matrix of one image, from one forward pass, with its channel
    ranking and its activations (bfloat16: only two channels are ever drawn). Keyed by the image's
    pixels, the network and the size, so a new layer, a new count of channels or the other image
    to compare with costs no network pass: the layer box redrew in 2.5–5.7 s when every choice
    ran the network again."""
    layers = _style_layers(model)
    x = fit_image(model, layers[-1], to_tensor(image, side))
    with torch.no_grad():
        acts = model.extract(x, layers)
    return {name: (acts[name][0].to(torch.bfloat16), gram_matrix(acts[name][0]),
                   style_channel_order(acts[name][0], model.table[name])) for name in layers}


@shared(max_mb=48, spinner="Drawing the Gram matrices…")
def _gram_pictures(model, images, layer, side, n, labels):
    (_, g_s, order), (_, g_o, _) = (_layer_grams(model, img, side)[layer] for img in images)
    return plots.gram_pictures(g_s, g_o, order, n, labels, dpi=130)


@shared(max_mb=16)
def _pair_pictures(model, image, layer, side, k, k2):
    block = _layer_grams(model, image, side)[layer][0][[k, k2]].float()
    return [plots.png(fig, dpi=110, tight=False) for fig in plots.pair_panels(block, 0, 1, names=(k, k2))]


@st.fragment
def real_section(model, style, content, generated, side):
    frame.try_this("set the row and the column to the same rank: that cell is one channel's total energy. Then "
                   "look for a bright cell off the diagonal and read its two maps below: where one channel fires, "
                   "so does the other. Compare the style's Gram with the generated image's after a run.")
    layers = _style_layers(model)
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Layer", layers, index=min(2, len(layers) - 1), key="gram_layer",
                         help="A style layer of the paper.")
    n = c2.select_slider("Channels shown", [16, 32, 64], value=32, key="gram_n",
                         help="The strongest channels of the style image: all of them would be unreadable.")
    if generated is not None:
        other = c3.radio("Compare the style image with", ["generated", "content"], horizontal=True, key="gram_other")
    else:  # a choice of one is no choice
        other = "content"
        c3.caption("Compared with the content image. After a run on **Stylize**, the generated image can be "
                   "compared here too.")
    pair = [style, generated if other == "generated" else content]
    (_, g_style, order), (_, g_other, _) = (_layer_grams(model, img, side)[layer] for img in pair)
    c1, c2 = st.columns(2)
    ci = c1.slider("Cell row k (rank)", 0, n - 1, 0, key=f"gram_ci_{n}")
    cj = c2.slider("Cell column k′ (rank)", 0, n - 1, 1, key=f"gram_cj_{n}")
    # Drawn once per layer and size; a move of the sliders only draws the red box on them.
    pictures = _gram_pictures(model, pair, layer, side, n, ("S (style)", f"{other[0].upper()} ({other})"))
    for col, picture in zip(st.columns(3), pictures):
        col.image(picture.with_box(ci, cj), width="stretch")
    kk, kk2 = int(order[ci]), int(order[cj])
    st.caption(f"Rank 0 is the channel that fires most on the style image **away from its edges**: every layer "
               f"pads the image with zeros, so a few channels fire at the black frame around it, and they would "
               f"top a plain ranking without saying anything about the painting. The Gram itself sums over every "
               f"place, frame included, so the brightest cell on its diagonal may be such a channel, not rank 0. "
               f"Each panel has its own colour scale (square root, so small cells still show): compare patterns, "
               f"not colours. In the difference, red means {other} has more of that pair than the style, blue less.")
    distance = gram_distance(g_style, g_other)
    st.markdown(f"Over all {model.table[layer].channels}×{model.table[layer].channels} cells, the {other} image's Gram "
                f"differs from the style's by **{distance:.0%}** of the style Gram's size. "
                + ("A run lowers this: the style cost is this difference, squared and scaled." if other == "generated" else
                   "Run a stylization on **Stylize** and compare the generated image: its Gram comes much closer."))
    st.markdown(f"The red box is **G[{kk}, {kk2}]**: {friendly_number(float(g_style[kk, kk2]))} for the style image, "
                f"{friendly_number(float(g_other[kk, kk2]))} for the {other} image. Below, the two maps behind it "
                f"on the style image ({layer}), and their product.")
    for col, picture in zip(st.columns(3), _pair_pictures(model, style, layer, side, kk, kk2)):
        col.image(picture, width="stretch")


real_section(model, style, content, generated, side)

# ---------------------------------------------------------------- shuffle
st.header("3 · Style ignores *where*: shuffle the image")
st.write("Cut the style image into tiles and move every tile somewhere else. The content cost compares "
         "activations place by place, so it jumps at every layer. A Gram matrix adds up over all places, so "
         "moving a tile would not change it at all, were it not for the seams: where two tiles meet there is "
         "now an edge the painting never had, and a unit whose view crosses a seam sees it. The more a unit "
         "sees compared with a tile, the more its layer's Gram moves.")


@shared(max_mb=48, spinner="Shuffling…", heavy=True)
def _shuffle(model, img, tiles, seed, side):
    result = shuffle_by_layer(model, to_tensor(img, side), _style_layers(model), tiles, seed)
    bars = plots.png(plots.shuffle_layer_bars(result.layers, "How much each layer changed"), dpi=130)
    return {"layers": result.layers, "tile": result.tile, "shuffled": to_pil(result.shuffled), "bars": bars,
            "original": to_pil(result.image)}


@st.fragment
def shuffle_section(model, style, side):
    frame.try_this("start at 2 tiles per side: every green bar is far shorter than the red one above it. Then go "
                   "to 8: the green bars grow, on most paintings most at the deep layers, whose units see across "
                   "several seams (conv5_1 sees 132 px). Fewer, larger tiles change the Grams less: a Gram matrix "
                   "sums over positions, so only what straddles a seam changes.")
    c1, c2 = st.columns(2)
    tiles = c1.select_slider("Tiles per side", [2, 3, 4, 6, 8], value=2, key="shuffle_tiles")
    seed = int(c2.number_input("Shuffle seed", 0, 999, 0, key="shuffle_seed"))
    result = _shuffle(model, style, tiles, seed, side)
    c1, c2, c3 = st.columns(3)
    c1.image(result["original"], caption="the style image", width="stretch")
    c2.image(result["shuffled"], caption=f"{tiles}×{tiles} tiles, every one moved", width="stretch")
    c3.image(result["bars"], width="stretch")
    st.markdown(shuffle_text(result["layers"], result["tile"]))
    st.caption("Red: ‖a(S) − a(shuffled)‖ / ‖a(S)‖ at that layer, which is √(J_content(S, shuffled) / "
               "J_content(S, blank)) were it the content layer. Green: ‖G(S) − G(shuffled)‖ / ‖G(S)‖, the "
               "Frobenius norms the style cost uses. Both are changes as a fraction of their own size.")


shuffle_section(model, style, side)
