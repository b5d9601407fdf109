"""What is style, concretely? The Gram matrix, from a toy block to the real network."""

import pandas as pd
import streamlit as st
import torch

from nst_core import FORMULAS, gram_matrix, plots, to_pil, to_tensor
from nst_core.analysis import (TOY_KINDS, activations, gram_distance, gram_parts, shuffle_experiment,
                               style_channel_order, toy_block, toy_entries)
from nst_core.describe import friendly_number, gram_entry_text, toy_order_text
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
    frame.try_this("choose *fire together*, then *independent*, then *never fire together*, and watch G[0, 1] in "
                   "the orange matrix fall. Then type a big number into channel 0 where channel 1 is 0: G[0, 1] "
                   "does not move, because only places where **both** fire add to it.")
    c1, c2 = st.columns([2, 3])
    kind = c1.radio("Make channels 0 and 1…", list(TOY_KINDS), horizontal=True, key="toy_kind",
                    format_func=TOY_KINDS.get)
    seed = int(c1.number_input("Random block seed", 0, 999, 0, key="toy_seed"))
    block = toy_block(kind, seed=seed)
    with c2:
        st.caption("Edit channel 0's 4×4 map (activations are ≥ 0, as after a ReLU):")
        edited = st.data_editor(pd.DataFrame(block[0].numpy()), key=f"toy_editor_{kind}_{seed}", width="stretch",
                                num_rows="fixed")
        block[0] = torch.tensor(edited.clip(lower=0).fillna(0).to_numpy(), dtype=torch.float32)
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


@shared(max_mb=128, spinner="Computing Gram matrices…", heavy=True)
def _grams(model, images, layer, side):
    blocks = [activations(model, [to_tensor(img, side)], layer)[0] for img in images]
    grams = [gram_matrix(b) for b in blocks]
    return blocks, grams, style_channel_order(blocks[0], model.table[layer])


@shared(max_mb=48, spinner="Drawing the Gram matrices…")
def _gram_pictures(model, images, layer, side, n, labels):
    _, grams, order = _grams(model, images, layer, side)
    return plots.gram_pictures(grams[0], grams[1], order, n, labels, dpi=130)


@st.fragment
def real_section(model, style, content, generated, side):
    frame.try_this("set the row and the column to the same rank: that cell is one channel's total energy. Then "
                   "look for a bright cell off the diagonal and read its two maps below: where one channel fires, "
                   "so does the other. Compare the style's Gram with the generated image's after a run.")
    layers = [n for n in model.table if n.startswith("conv") and n.endswith("_1")]
    c1, c2, c3 = st.columns(3)
    layer = c1.selectbox("Layer", layers, index=min(2, len(layers) - 1), key="gram_layer",
                         help="A style layer of the paper.")
    n = c2.select_slider("Channels shown", [16, 32, 64], value=32, key="gram_n",
                         help="The strongest channels of the style image: all of them would be unreadable.")
    others = ["generated", "content"] if generated is not None else ["content"]
    other = c3.radio("Compare the style image with", others, horizontal=True, key="gram_other")
    pair = [style, generated if other == "generated" else content]
    blocks, grams, order = _grams(model, pair, layer, side)
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
               f"top a plain ranking without saying anything about the painting. Each panel has its own colour "
               f"scale (square root, so small cells still show): compare patterns, not colours. In the difference, "
               f"red means {other} has more of that pair than the style, blue less.")
    distance = gram_distance(grams[0], grams[1])
    st.markdown(f"Over all {model.table[layer].channels}×{model.table[layer].channels} cells, the {other} image's Gram "
                f"differs from the style's by **{distance:.0%}** of the style Gram's size. "
                + ("A run lowers this: the style cost is this difference, squared and scaled." if other == "generated" else
                   "Run a stylization on **Stylize** and compare the generated image: its Gram comes much closer."))
    st.markdown(f"The red box is **G[{kk}, {kk2}]**: {friendly_number(float(grams[0][kk, kk2]))} for the style image, "
                f"{friendly_number(float(grams[1][kk, kk2]))} for the {other} image. Below, the two maps behind it "
                f"on the style image ({layer}), and their product.")
    for col, fig in zip(st.columns(3), plots.pair_panels(blocks[0], kk, kk2)):
        col.image(plots.png(fig, dpi=110), width="stretch")


real_section(model, style, content, generated, side)

# ---------------------------------------------------------------- shuffle
st.header("3 · Style ignores *where*: shuffle the image")
st.write("Cut the style image into tiles and shuffle them. Every texture is still there, only in other places. "
         "The Gram matrices hardly change, because they sum over all positions. The content cost, which "
         "compares activations position by position, jumps.")


@shared(max_mb=48, spinner="Shuffling…", heavy=True)
def _shuffle(model, img, tiles, seed, side):
    style_layers = [n for n in model.table if n.startswith("conv") and n.endswith("_1")]
    result = shuffle_experiment(model, to_tensor(img, side), style_layers, "conv4_2", tiles, seed)
    bars = plots.png(plots.shuffle_bars(result["gram_change"], result["content_change"], "conv4_2"), dpi=130)
    return {**result, "shuffled": to_pil(result["shuffled"]), "bars": bars, "original": to_pil(to_tensor(img, side))}


@st.fragment
def shuffle_section(model, style, side):
    frame.try_this("go from 2 to 8 tiles per side. The green bars stay low (the style survives the scrambling); "
                   "the red one is high from the start (the content is gone).")
    c1, c2 = st.columns(2)
    tiles = c1.select_slider("Tiles per side", [2, 3, 4, 6, 8], value=4, key="shuffle_tiles")
    seed = int(c2.number_input("Shuffle seed", 0, 999, 0, key="shuffle_seed"))
    result = _shuffle(model, style, tiles, seed, side)
    c1, c2, c3 = st.columns(3)
    c1.image(result["original"], caption="the style image", width="stretch")
    c2.image(result["shuffled"], caption=f"{tiles}×{tiles} tiles shuffled", width="stretch")
    c3.image(result["bars"], width="stretch")
    changes = result["gram_change"].values()
    st.markdown(f"The Gram matrices moved by **{min(changes):.0%} to {max(changes):.0%}**; the content cost at "
                f"conv4_2 rose to **{result['content_change']:.0%}** of what a blank image would cost.")
    st.caption("Gram bars: ‖G(S) − G(shuffled)‖ / ‖G(S)‖ for each style layer. Content bar: J_content(S, shuffled) "
               "/ J_content(S, blank) at conv4_2. Deep layers see across the tiles' seams, so their Grams move a "
               "little more.")


shuffle_section(model, style, side)
