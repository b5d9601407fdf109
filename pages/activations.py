"""What does layer L see? Channel maps, one unit's receptive field, and the patches it likes best."""

import streamlit as st

from nst_core import plots, to_tensor
from nst_core.analysis import (BORDER_PX, activations, bundled_collection, channel_order, index_patches, layer_shapes,
                               patch_index, receptive_field_box)
from nst_core.describe import friendly_number
from nst_core.images import fit_long_side
from ui import frame, network, pickers
from ui.cache import shared

frame.enter()

st.title("🔬 What does each layer see?")
st.write("Each layer turns the image into a stack of **channels**: maps of where one learned filter "
         "responds. Shallow layers have small receptive fields and respond to colours and edges; "
         "deeper layers see larger regions and respond to whole textures and object parts.")
frame.try_this("slide the layer from conv1_1 to conv5_1. Watch the maps get coarser, the cyan box grow, and the "
               "top-9 patches change from one colour or edge to a shared texture or shape.")

model = network.current_model()
content, (style, *_), generated = pickers.chosen_images()
pickers.images_caption()
size = st.session_state["size"]
names = [n for n in model.table if n.startswith(("conv", "pool"))]

st.subheader("The network, layer by layer")
layer = st.select_slider("Layer", names, value="conv3_1" if "conv3_1" in names else names[0], key="act_layer",
                         help="Slide deeper: the maps get coarser (stride) and each unit sees more (receptive field).")
h, w = fit_long_side((content.height, content.width), size)
rows = layer_shapes(model, (h, w))
# The marker and the receptive field first: on a phone the table scrolls sideways, and these are
# what the slider is about.
first = ("layer", "receptive field (px)", "stride")
st.dataframe([{"": "▶" if r["layer"] == layer else "", **{k: r[k] for k in first},
               **{k: v for k, v in r.items() if k not in first}} for r in rows],
             hide_index=True, height=260, width="stretch")
info = model.table[layer]
st.info(f"**{layer}**: {info.channels} channels on a {h // info.stride}×{w // info.stride} grid for a {w}×{h} image. "
        f"Each unit is {info.stride} px from its neighbour and sees a {info.receptive_field}×{info.receptive_field} px "
        f"patch. As in the paper, conv names mean the output *after* the ReLU (Caffe applied it in place).",
        icon="📏")


@shared(max_mb=160, spinner="Computing activations…", heavy=True)
def _acts(model, images, layer, size):
    return [a.cpu() for a in activations(model, [to_tensor(i) for i in images], layer, size)]


labelled = [("content", content), ("style", style)] + ([("generated", generated)] if generated is not None else [])
blocks = _acts(model, [img for _, img in labelled], layer, (h, w))
order = channel_order(blocks[0])


@shared(max_mb=64)
def _grid_pictures(model, images, layer, size, n, scaling):
    """The feature grids as PNGs: a student flicking between settings gets each drawing once."""
    blocks = _acts(model, images, layer, size)
    limits = plots.scale_limits(blocks, scaling, order, n)
    return [plots.png(plots.feature_grid(block, order, f"{label} · {layer}", n=n, limits=lim), dpi=150)
            for (label, _), block, lim in zip(labelled, blocks, limits)]


@st.fragment
def maps_section(layer):
    st.subheader("Channel maps")
    c1, c2 = st.columns(2)
    scaling = c1.radio("Colour scale", ["channel", "layer", "global"], horizontal=True, key="act_scaling",
                       format_func={"channel": "per channel", "layer": "per image", "global": "shared by all"}.get,
                       help="Per channel stretches every map; shared makes strong and weak channels comparable.")
    n = c2.select_slider("Channels shown", [4, 9, 16, 25], value=16, key="act_n")
    pictures = _grid_pictures(model, [img for _, img in labelled], layer, (h, w), n, scaling)
    for col, picture in zip(st.columns(len(pictures)), pictures):
        col.image(picture, width="stretch")
    st.caption("Channels are sorted by their mean activation on the content image, strongest first; the same "
               "channels are shown for every image, so you can compare them.")
    if generated is None:
        st.caption("Run a stylization on **Stylize** to add the generated image here.")


maps_section(layer)


@shared(max_mb=160, spinner="Searching the bundled photos and paintings at three sizes (once per layer)…", heavy=True)
def _index(model, layer):
    return patch_index(model, bundled_collection(pickers.ASSETS), layer, border_px=BORDER_PX)


@shared(max_mb=24)
def _patches_png(model, layer, channel):
    patches = index_patches(_index(model, layer), channel, k=9)
    return plots.png(plots.patches_grid(patches, f"Top 9 places for {layer}, channel {channel}"), dpi=130)


@shared(max_mb=32)
def _overlay(model, images, size, idx, layer, channel, title):
    amap = _acts(model, images, layer, size)[idx][channel]
    return plots.overlay_picture(images[idx].resize((size[1], size[0])), amap, title, dpi=130)


@st.fragment
def unit_section(blocks, layer):
    st.subheader("Zoom into one channel")
    # The widgets' keys carry the layer and its grid: a new layer starts from its own strongest
    # channel and its middle unit, never from a channel number or a row that the layer lacks.
    gh, gw = blocks[0].shape[1], blocks[0].shape[2]
    tag = f"{layer}_{gh}x{gw}"
    c1, c2, c3, c4 = st.columns(4)
    which = c1.selectbox("Image", [label for label, _ in labelled], key="act_which")
    idx = [label for label, _ in labelled].index(which)
    block = blocks[idx]
    channel = int(c2.number_input(f"Channel (0–{info.channels - 1})", 0, info.channels - 1, value=int(order[0]),
                                  key=f"act_channel_{tag}"))
    i = c3.slider("Unit row", 0, gh - 1, gh // 2, key=f"act_i_{tag}")
    j = c4.slider("Unit column", 0, gw - 1, gw // 2, key=f"act_j_{tag}")
    box = receptive_field_box(info, i, j, (h, w))
    col, text = st.columns(2)
    # Drawn once per image and channel; moving to another unit only outlines its field.
    overlay = _overlay(model, [img for _, img in labelled], (h, w), idx, layer, channel,
                       f"{which}: {layer} channel {channel}")
    col.image(overlay.with_rect(box, colour="#00e5ff"), width="stretch")
    text.markdown(f"The colours show where channel {channel} responds. The cyan box is everything the unit at "
                  f"row {i}, column {j} can see: a {info.receptive_field} px receptive field. Its activation "
                  f"there is **{friendly_number(float(block[channel, i, j]))}** (strongest anywhere on this image: "
                  f"{friendly_number(float(block[channel].max()))}).\n\nOn shallow layers the box is a few pixels, "
                  "enough for an edge or a colour. On conv4 and conv5 it covers a large part of the image, so a "
                  "unit can respond to an eye or a whole wheel.")

    st.subheader(f"Which patches excite channel {channel} most?")
    st.write("Following Zeiler & Fergus (2013): search every bundled photo and painting, each at three sizes, "
             "for the places where this channel responds most. Each cell shows one place with the unit's "
             "receptive field boxed in cyan, its activation, and the picture it comes from; no two cells show "
             "the same place, and no picture gives more than three. Places at a picture's very edge are left "
             "out: there the unit also sees the black frame the network pads every image with.")
    c1, c2 = st.columns(2)
    c1.image(_patches_png(model, layer, channel), width="stretch")
    c2.markdown("**Look for:** on **conv1_1** the boxes are tiny, and the nine share one colour or one edge "
                "direction. On **conv3_1** and **conv5_1** the boxes grow and the nine share a texture or a "
                "shape, found in different pictures. Change the channel to see another unit's taste.")
    if not model.trained:
        c2.warning("These are random weights: the patterns are not learned ones.", icon="🎲")


unit_section(blocks, layer)
