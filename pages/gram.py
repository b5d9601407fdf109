"""What is style, concretely? The Gram matrix, from a toy block to the real network."""

import pandas as pd
import streamlit as st
import torch

from nst_core import FORMULAS, gram_matrix, plots, to_pil, to_tensor
from nst_core.analysis import activations, channel_correlation, gram_order, shuffle_experiment, toy_block
from ui import frame, network, pickers
from ui.cache import shared

frame.enter()

st.title("🧮 What is style, concretely?")
st.write("Style is measured by **which channels fire together**. For every pair of channels k and k′, "
         "multiply their two maps position by position and add everything up. That one number is G[k, k′].")
st.latex(FORMULAS["seed"]["gram"])

# ---------------------------------------------------------------- toy
st.header("1 · A toy layer with five channels")
c1, c2 = st.columns([2, 3])
kind = c1.radio("Make channels 0 and 1…", ["correlated", "anticorrelated", "random"], horizontal=True,
                key="toy_kind", format_func={"correlated": "fire together", "anticorrelated": "never fire together",
                                             "random": "independent"}.get)
seed = c1.number_input("Random block seed", 0, 999, 0, key="toy_seed")
block = toy_block(kind, seed=int(seed))
with c2:
    st.caption("Edit channel 0's 4×4 map (values are activations ≥ 0):")
    edited = st.data_editor(pd.DataFrame(block[0].numpy()), key=f"toy_editor_{kind}_{seed}", width="stretch",
                            num_rows="fixed")
    block[0] = torch.tensor(edited.clip(lower=0).fillna(0).to_numpy(), dtype=torch.float32)
c1, c2 = st.columns(2)
k = c1.selectbox("Channel k", range(5), index=0, key="toy_k")
k2 = c2.selectbox("Channel k′", range(5), index=1, key="toy_k2")
gram = gram_matrix(block)
st.pyplot(plots.toy_walkthrough(block, gram, k, k2))
corr = channel_correlation(block)[k, k2]
st.markdown(f"**G[{k}, {k2}] = {float(gram[k, k2]):.3g}**: the sum of the green products. Channels that are often "
            f"large at the same places give a large entry; channels that never overlap give 0. "
            f"(Their correlation across positions is {float(corr):+.2f}.) The diagonal G[k, k] is a channel's "
            "total energy. The whole matrix is F·Fᵀ, where each row of F is one channel's map, flattened.")

# ---------------------------------------------------------------- real
st.header("2 · The real thing")
model = network.current_model()
content, (style, *_), generated = pickers.chosen_images()
pickers.images_caption()
layers = [n for n in model.table if n.startswith("conv") and n.endswith("_1")]
c1, c2, c3 = st.columns(3)
layer = c1.selectbox("Layer", layers, index=min(2, len(layers) - 1), key="gram_layer",
                     help="A style layer of the paper.")
n = c2.select_slider("Channels shown", [16, 32, 64], value=32, key="gram_n",
                     help="The strongest channels of the style image; all of them would be unreadable on a projector.")
other = c3.radio("Compare the style image with", ["generated", "content"] if generated is not None else ["content"],
                 horizontal=True, key="gram_other")
size = st.session_state["size"]
side = min(size, 256)


@shared(max_mb=128, spinner="Computing Gram matrices…")
def _grams(model, images, layer, side):
    blocks = [activations(model, [to_tensor(img, side)], layer)[0] for img in images]
    return blocks, [gram_matrix(b) for b in blocks]


pair = [style, generated if other == "generated" and generated is not None else content]
(blocks, grams) = _grams(model, pair, layer, side)
order = gram_order(grams[0])
c1, c2 = st.columns(2)
ci = c1.slider("Cell row k (rank by energy)", 0, n - 1, 0, key="gram_ci")
cj = c2.slider("Cell column k′ (rank by energy)", 0, n - 1, 1, key="gram_cj")
st.pyplot(plots.gram_heatmaps(grams[0], grams[1], order, n, labels=("S style", f"{other[0].upper()} {other}"),
                              cell=(ci, cj)))
kk, kk2 = int(order[ci]), int(order[cj])
st.caption(f"Channels are sorted by the style Gram's diagonal, so the strong ones gather at the top left. "
           f"The red box is G[{kk}, {kk2}]; below are the two maps behind it, on the style image.")
st.pyplot(plots.pair_maps(blocks[0], kk, kk2, f"style image, {layer}: channels {kk} and {kk2}"))

# ---------------------------------------------------------------- shuffle
st.header("3 · Style ignores *where*: shuffle the image")
st.write("Cut the style image into tiles and shuffle them. Every texture is still there, only in other places. "
         "The Gram matrices hardly change, because they sum over all positions. The content cost, which "
         "compares activations position by position, jumps.")
c1, c2 = st.columns(2)
tiles = c1.select_slider("Tiles per side", [2, 3, 4, 6, 8], value=4, key="shuffle_tiles")
shuffle_seed = c2.number_input("Shuffle seed", 0, 999, 0, key="shuffle_seed")


@shared(max_mb=48, spinner="Shuffling…")
def _shuffle(model, img, tiles, seed, side):
    style_layers = [n for n in model.table if n.startswith("conv") and n.endswith("_1")]
    return shuffle_experiment(model, to_tensor(img, side), style_layers, "conv4_2", tiles, seed)


result = _shuffle(model, style, tiles, int(shuffle_seed), side)
c1, c2 = st.columns([2, 3])
c1.pyplot(plots.image_row([style.resize((side, side * style.height // style.width)), to_pil(result["shuffled"])],
                          ["style", f"{tiles}×{tiles} tiles shuffled"]))
c2.pyplot(plots.shuffle_bars(result["gram_change"], result["content_change"], "conv4_2"))
st.caption("Relative change: ‖G(S) − G(shuffled)‖ / ‖G(S)‖ for each style layer; J_content(S, shuffled) / "
           "J_content(S, 0) at conv4_2. Deep layers see across tile seams, so their Grams move a little more.")
